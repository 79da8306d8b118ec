package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
)

func TestHostPolicyAllows(t *testing.T) {
	loopback := &HostPolicy{}
	named := &HostPolicy{Names: []string{"herald.test"}}
	anyIP := &HostPolicy{AnyIP: true}
	tests := []struct {
		policy *HostPolicy
		host   string
		want   bool
	}{
		{loopback, "localhost", true},
		{loopback, "localhost:8080", true},
		{loopback, "LOCALHOST:8080", true},
		{loopback, "localhost.:8080", true},
		{loopback, "127.0.0.1", true},
		{loopback, "127.0.0.1:8080", true},
		{loopback, "127.8.9.10:1", true},
		{loopback, "[::1]", true},
		{loopback, "[::1]:8080", true},
		{loopback, "[::ffff:127.0.0.1]:8080", true},
		{loopback, "", false},
		{loopback, ":8080", false},
		{loopback, "evil.example", false},
		{loopback, "evil.example:8080", false},
		{loopback, "localhost.evil.example", false},
		{loopback, "app.localhost", false},
		{loopback, "127.0.0.1.nip.io", false},
		{loopback, "2130706433", false}, // 127.0.0.1 as a number: not how a browser sends it
		{loopback, "0.0.0.0:8080", false},
		{loopback, "10.0.0.7:8080", false},
		{loopback, "[2001:db8::7]:8080", false},
		{loopback, "herald.test", false},
		{named, "herald.test", true},
		{named, "Herald.Test:8443", true},
		{named, "sub.herald.test", false},
		{named, "localhost:1", true},
		{anyIP, "10.0.0.7:8080", true},
		{anyIP, "[2001:db8::7]:8080", true},
		{anyIP, "0.0.0.0", true},
		{anyIP, "evil.example", false},
		{anyIP, "herald.test", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			if got := tt.policy.Allows(tt.host); got != tt.want {
				t.Fatalf("%+v.Allows(%q) = %v, want %v", *tt.policy, tt.host, got, tt.want)
			}
		})
	}
}

// TestGuardHost: a refused Host gets the JSON 403 and never reaches the handler; without a
// policy (auth on) every Host does.
func TestGuardHost(t *testing.T) {
	tests := []struct {
		name    string
		hosts   *HostPolicy
		host    string
		reached bool
	}{
		{"dev mode, loopback", &HostPolicy{}, "127.0.0.1:8080", true},
		{"dev mode, other name", &HostPolicy{}, "evil.example", false},
		{"auth, other name", nil, "evil.example", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reached := false
			h := New(Options{Hosts: tt.hosts}).GuardHost(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached = true
			}))
			req := httptest.NewRequest("POST", "/v1/notifications", strings.NewReader(`{"broadcast":true}`))
			req.Host = tt.host
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if reached != tt.reached {
				t.Fatalf("reached the handler: %v, want %v", reached, tt.reached)
			}
			if tt.reached {
				return
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			if rec.Code != http.StatusForbidden || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error.Code != herald.EFORBIDDEN {
				t.Fatalf("got %d %q, want a JSON 403", rec.Code, rec.Body)
			}
			if !strings.Contains(e.Error.Message, "loopback") {
				t.Errorf("message %q does not say why", e.Error.Message)
			}
		})
	}
}

// TestMetricsRoutes: the API's own /metrics is a JSON 404 unless MetricsOnAPI; OpsHandler
// always serves it, with health, and nothing else.
func TestMetricsRoutes(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		ops     bool // through OpsHandler rather than Handler
		method  string
		path    string
		status  int
		content string
	}{
		{"api, default", Options{}, false, "GET", "/metrics", 404, "application/json"},
		{"api, metrics on", Options{MetricsOnAPI: true}, false, "GET", "/metrics", 200, "text/plain"},
		{"ops, metrics", Options{}, true, "GET", "/metrics", 200, "text/plain"},
		{"ops, healthz", Options{}, true, "GET", "/healthz", 200, "application/json"},
		{"ops, an API route", Options{}, true, "POST", "/v1/notifications", 404, "application/json"},
		{"ops, wrong method", Options{}, true, "DELETE", "/healthz", 405, "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := New(tt.opts)
			defer a.Close()
			h := a.OpsHandler()
			if !tt.ops {
				var err error
				if h, err = a.Handler(); err != nil {
					t.Fatal(err)
				}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.status || !strings.HasPrefix(rec.Header().Get("Content-Type"), tt.content) {
				t.Fatalf("got %d %s, want %d %s", rec.Code, rec.Header().Get("Content-Type"), tt.status, tt.content)
			}
		})
	}
}
