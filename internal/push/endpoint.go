package push

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/heraldhq/herald"
)

// DefaultHosts are the push services of the browsers in use: Chrome and Chromium-based browsers
// (FCM), Firefox (Mozilla autopush), Safari (Apple) and Edge (WNS).
const DefaultHosts = "fcm.googleapis.com,updates.push.services.mozilla.com,web.push.apple.com,*.notify.windows.com"

// MaxEndpointLen bounds a subscription's endpoint; real ones are under 500 bytes.
const MaxEndpointLen = 1024

// Endpoints decides which push services Herald sends to. A subscription's endpoint is a URL the
// browser got from its push service; a client could send any URL instead, and Herald would
// then POST to it from inside the network: only the listed services are accepted.
type Endpoints struct {
	// Hosts are exact host names, or "*.example.com" for any name under example.com.
	Hosts []string
	// Loopback also accepts http and https endpoints on loopback addresses (tests, and a push
	// service on the same machine).
	Loopback bool
}

// ParseHosts reads a comma-separated list of push service hosts.
func ParseHosts(s string) ([]string, error) {
	var out []string
	for _, h := range strings.Split(s, ",") {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		name := strings.TrimPrefix(h, "*.")
		if strings.ContainsAny(name, "*/:@ ") || !strings.Contains(name, ".") {
			return nil, fmt.Errorf("push-hosts: %q is not a host name or *.domain", h)
		}
		out = append(out, h)
	}
	return out, nil
}

// Check reports whether endpoint may be a subscription's: an https URL of a listed host, or
// with Loopback an http(s) URL of a loopback address.
func (e Endpoints) Check(endpoint string) error {
	if len(endpoint) > MaxEndpointLen {
		return herald.Errorf(herald.ETOOLARGE, "endpoint is longer than %d bytes", MaxEndpointLen)
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return herald.Errorf(herald.EINVALID, "endpoint must be an absolute https URL")
	}
	host := strings.ToLower(u.Hostname())
	if e.Loopback && (u.Scheme == "http" || u.Scheme == "https") && loopback(host) {
		return nil
	}
	if u.Scheme != "https" {
		return herald.Errorf(herald.EINVALID, "endpoint must be an https URL")
	}
	if u.Port() != "" && u.Port() != "443" {
		return herald.Errorf(herald.EINVALID, "endpoint must not name a port")
	}
	for _, h := range e.Hosts {
		if suffix, ok := strings.CutPrefix(h, "*"); ok {
			if strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
				return nil
			}
		} else if host == h {
			return nil
		}
	}
	return herald.Errorf(herald.EINVALID, "endpoint host %q is not a push service this server sends to (--push-hosts)", truncate(host, 80))
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.IsLoopback()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
