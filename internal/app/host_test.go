package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/config"
)

// answer is what one request got: its status, and the code and message of a JSON error.
type answer struct {
	status        int
	code, message string
	body          string
}

// requestHost sends one request to base with the given Host header, as a browser would after a
// DNS rebinding: to this server's address, under another name.
func requestHost(t *testing.T, base, method, path, host, body string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
	if host != "" {
		req.Host = host
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %s): %v", method, path, host, err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode}
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		return a // a stream that opened; not read here
	}
	raw, _ := io.ReadAll(resp.Body)
	a.body = string(raw)
	var e struct {
		Error struct{ Code, Message string }
	}
	if json.Unmarshal(raw, &e) == nil {
		a.code, a.message = e.Error.Code, e.Error.Message
	}
	return a
}

// TestDevModeHost: in dev mode every route, the page and /metrics included, answers only
// loopback Host names, so that a web page cannot read feeds or publish through DNS rebinding;
// the refusal is a JSON 403 that says why.
func TestDevModeHost(t *testing.T) {
	s := startServer(t, nil) // dev mode, with the web page
	port := must(url.Parse(s.url)).Port()
	routes := []struct{ method, path, body string }{
		{"POST", "/v1/notifications", `{"to":["alice"],"type":"rebound"}`},
		{"GET", "/v1/notifications?user=alice", ""},
		{"GET", "/v1/notifications/unread-count?user=alice", ""},
		{"POST", "/v1/notifications/read-all?user=alice", ""},
		{"GET", "/v1/stream?user=alice", ""},
		{"GET", "/", ""},
		{"GET", "/herald.js", ""},
		{"GET", "/metrics", ""},
		{"GET", "/healthz", ""},
		{"GET", "/no/such/path", ""},
	}
	hosts := []struct {
		host    string
		allowed bool
	}{
		{"localhost:" + port, true},
		{"localhost", true},
		{"LocalHost.:" + port, true},
		{"127.0.0.1:" + port, true},
		{"127.0.0.1", true},
		{"[::1]:" + port, true},
		{"[::1]", true},
		{"evil.example", false},
		{"evil.example:" + port, false},
		{"localhost.evil.example:" + port, false},
		{"app.localhost:" + port, false}, // not every resolver keeps *.localhost on loopback
		{"192.168.1.5:" + port, false},   // an address, but not loopback: only with --insecure
	}
	for _, h := range hosts {
		for _, r := range routes {
			t.Run(h.host+" "+r.method+" "+r.path, func(t *testing.T) {
				a := requestHost(t, s.url, r.method, r.path, h.host, r.body)
				refused := a.status == http.StatusForbidden && a.code == herald.EFORBIDDEN
				switch {
				case h.allowed && refused:
					t.Fatalf("refused: %d %s", a.status, a.message)
				case h.allowed:
				case !refused:
					t.Fatalf("answered %d %.80q, want a JSON 403", a.status, a.body)
				case !strings.Contains(a.message, "loopback") || !strings.Contains(a.message, "auth"):
					t.Fatalf("the message %q does not say why (loopback names only) and what to do (auth)", a.message)
				}
			})
		}
	}
	// The publishes under loopback names were stored, and none under a foreign one.
	allowed := 0
	for _, h := range hosts {
		if h.allowed {
			allowed++
		}
	}
	var inbox struct{ Notifications []struct{ Type string } }
	s.getJSON(t, "/v1/notifications?user=alice&types=rebound", &inbox)
	if len(inbox.Notifications) != allowed {
		t.Fatalf("%d publishes stored, want %d: one for each loopback name, none for the others", len(inbox.Notifications), allowed)
	}
}

// TestAuthModeAnswersAnyHost: with auth on the Host is not restricted: a rebound name gains a
// page nothing without a credential, and a real deployment has names of its own.
func TestAuthModeAnswersAnyHost(t *testing.T) {
	s := startAuthServer(t, nil)
	for _, path := range []string{"/healthz", "/"} {
		if a := requestHost(t, s.url, "GET", path, "herald.example.com", ""); a.status != http.StatusOK {
			t.Errorf("GET %s on herald.example.com: %d %s", path, a.status, a.body)
		}
	}
	req, _ := http.NewRequest("GET", s.url+"/v1/notifications", nil)
	req.Host = "herald.example.com"
	req.Header.Set("Authorization", "Bearer "+s.token(t, "alice"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("inbox on herald.example.com with a token: %d", resp.StatusCode)
	}
}

// TestDevModeHostOptions: --allowed-hosts adds names; --insecure, which serves dev mode to the
// network on purpose, adds every IP address (an address in Host involved no DNS answer) but no
// names; the metrics listener holds to the same policy.
func TestDevModeHostOptions(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*config.Config)
		allowed []string
		refused []string
	}{
		{"allowed-hosts", func(c *config.Config) { c.AllowedHosts = "herald.test, Dev-VM.internal." },
			[]string{"herald.test:8080", "HERALD.TEST", "dev-vm.internal", "localhost", "[::1]:1"},
			[]string{"evil.example", "sub.herald.test", "10.0.0.7:8080"}},
		{"insecure", func(c *config.Config) { c.Insecure = true },
			[]string{"10.0.0.7:8080", "[2001:db8::7]:8080", "192.168.1.5", "localhost:1"},
			[]string{"evil.example", "herald.test", "10.0.0.7.nip.io"}},
		{"insecure and allowed-hosts", func(c *config.Config) { c.Insecure = true; c.AllowedHosts = "herald.test" },
			[]string{"10.0.0.7:8080", "herald.test:8080"},
			[]string{"evil.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, func(c *config.Config) {
				tt.mutate(c)
				c.MetricsAddr = "127.0.0.1:0"
			})
			for _, base := range []string{s.url, "http://" + s.MetricsAddr()} {
				for _, h := range tt.allowed {
					if a := requestHost(t, base, "GET", "/healthz", h, ""); a.status != http.StatusOK {
						t.Errorf("%s, Host %s: %d %s", base, h, a.status, a.body)
					}
				}
				for _, h := range tt.refused {
					if a := requestHost(t, base, "GET", "/healthz", h, ""); a.status != http.StatusForbidden {
						t.Errorf("%s, Host %s: %d, want 403", base, h, a.status)
					}
				}
			}
		})
	}
}
