package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/heraldhq/herald"
)

// HostPolicy is the set of Host headers a dev-mode server answers.
//
// In dev mode anyone who reaches the port may read any feed and publish, and loopback is what
// keeps strangers out. DNS rebinding gets around that: a web page on attacker.example, open in
// the developer's browser, has its name re-resolved to 127.0.0.1 and then reads the server's
// answers as its own origin's. The browser still sends Host: attacker.example, so answering only
// the names that cannot be rebound stops it: localhost and IP addresses. An address in the Host
// header names the server directly; no DNS answer was involved.
type HostPolicy struct {
	// Names are accepted besides the loopback ones (--allowed-hosts), lower-case, without port,
	// brackets or trailing dot.
	Names []string
	// AnyIP accepts a Host that is any IP address, not only a loopback one: with --insecure the
	// server is meant to be reached over the network, by address.
	AnyIP bool
}

// Allows reports whether host, a Host header (a name or an address, with or without a port),
// is one the policy answers.
func (p *HostPolicy) Allows(host string) bool {
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	} else if strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") {
		name = name[1 : len(name)-1] // an IPv6 address without a port
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if name == "" {
		return false
	}
	if name == "localhost" {
		return true
	}
	if addr, err := netip.ParseAddr(name); err == nil {
		return p.AnyIP || addr.Unmap().IsLoopback()
	}
	for _, n := range p.Names {
		if name == n {
			return true
		}
	}
	return false
}

// GuardHost refuses, with a JSON 403, requests whose Host the API's HostPolicy does not allow;
// next serves the others. Without a policy (auth on) it returns next. It wraps everything a
// listener serves, the web page included, since any of it read through a rebound name gives
// the page's author what the developer's browser can reach.
func (a *API) GuardHost(next http.Handler) http.Handler {
	p := a.opts.Hosts
	if p == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.Allows(r.Host) {
			a.writeError(w, r, herald.Errorf(herald.EFORBIDDEN, "dev mode serves only loopback host names "+
				"(localhost, 127.0.0.1, [::1]) and --allowed-hosts, against DNS rebinding; configure auth to serve other names"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
