package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/config"
)

// TestCORS: allowed origins get credentialed CORS answers, preflights included; others get
// nothing a browser would accept.
func TestCORS(t *testing.T) {
	s := startAuthServer(t, func(c *config.Config) { c.CORSOrigins = "https://app.example.com, http://localhost:3000" })
	tests := []struct {
		name, method, origin string
		header               http.Header
		wantOrigin           string
	}{
		{"preflight from an allowed origin", "OPTIONS", "https://app.example.com",
			http.Header{"Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"authorization,content-type"}}, "https://app.example.com"},
		{"GET from an allowed origin", "GET", "http://localhost:3000", nil, "http://localhost:3000"},
		{"preflight from another origin", "OPTIONS", "https://evil.example.com",
			http.Header{"Access-Control-Request-Method": {"POST"}}, ""},
		{"GET from another origin", "GET", "https://evil.example.com", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, s.url+"/v1/notifications/unread-count", nil)
			req.Header.Set("Origin", tt.origin)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.wantOrigin {
				t.Fatalf("Access-Control-Allow-Origin = %q, want %q", got, tt.wantOrigin)
			}
			if tt.wantOrigin == "" {
				return
			}
			if resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
				t.Error("credentials not allowed for an allowed origin")
			}
			if tt.method == "OPTIONS" && (resp.StatusCode >= 300 || resp.Header.Get("Access-Control-Allow-Methods") == "") {
				t.Errorf("preflight: %d, methods %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Methods"))
			}
		})
	}
	// A listed origin may also change state with the cookie (the CSRF guard trusts it).
	h := http.Header{"Cookie": {"herald_token=" + s.token(t, "alice")}, "Origin": {"https://app.example.com"}, "Sec-Fetch-Site": {"same-site"}}
	if status, _, _ := s.call(t, "POST", "/v1/notifications/read-all", h, ""); status != 200 {
		t.Fatalf("read-all from an allowed origin: %d", status)
	}
}

func TestCORSOriginsValidated(t *testing.T) {
	for _, origins := range []string{"*", "app.example.com", "https://app.example.com/path", "ftp://x"} {
		cfg := config.Default()
		cfg.CORSOrigins = origins
		if err := cfg.Validate(); err == nil {
			t.Errorf("cors-origins %q accepted", origins)
		}
	}
}

// TestPublishRateLimit: a publisher over its rate gets 429 with Retry-After; another publisher
// is not affected; the bucket refills.
func TestPublishRateLimit(t *testing.T) {
	s := startAuthServer(t, func(c *config.Config) {
		c.PublishRate = 5
		c.PublishBurst = 3
	})
	for i := 0; i < 3; i++ {
		if status, _, _ := s.call(t, "POST", "/v1/notifications", bearer(billingKey), `{"to":["a"]}`); status != 201 {
			t.Fatalf("publish %d within the burst: %d", i, status)
		}
	}
	status, code, h := s.call(t, "POST", "/v1/notifications", bearer(billingKey), `{"to":["a"]}`)
	if status != 429 || code != herald.ERATELIMITED {
		t.Fatalf("over the burst: %d %q", status, code)
	}
	if secs, err := strconv.Atoi(h.Get("Retry-After")); err != nil || secs < 1 {
		t.Fatalf("Retry-After %q", h.Get("Retry-After"))
	}
	if status, _, _ := s.call(t, "POST", "/v1/notifications", bearer(supportKey), `{"to":["a"]}`); status != 201 {
		t.Fatalf("another publisher: %d", status)
	}
	time.Sleep(250 * time.Millisecond) // 5/s: a token is back
	if status, _, _ := s.call(t, "POST", "/v1/notifications", bearer(billingKey), `{"to":["a"]}`); status != 201 {
		t.Fatalf("after the refill: %d", status)
	}
}

// TestPublishWorkFlags: the limits on a publish's work are wired from their flags: the users a
// request names (--max-request-recipients, 413), and the notifications a publisher creates
// (--publish-rate counts them, with Retry-After until the request fits; a request above
// --publish-burst gets 413). Both refusals are counted in herald_publish_refused_total.
func TestPublishWorkFlags(t *testing.T) {
	s := startServer(t, func(c *config.Config) {
		c.MaxRecipients = 3
		c.MaxRequestRecipients = 4
		c.MaxTopicSubscribers = 4 // at most the request's: config refuses a topic no publish could reach
		c.PublishRate = 0.01      // a token every 100 s: refilling during the test does not count
		c.PublishBurst = 5
	})
	steps := []struct {
		name, path, body string
		status           int
		retryAfter       string
	}{
		{"over the request's recipients", "/v1/notifications/batch", `{"notifications":[{"to":["a","b","c"]},{"to":["d","e"]}]}`, 413, ""},
		{"four of five tokens", "/v1/notifications/batch", `{"notifications":[{"to":["a","b"]},{"to":["c","d"]}]}`, 201, ""},
		{"two when one is left", "/v1/notifications", `{"to":["a","b"]}`, 429, "100"},
		{"the last one", "/v1/notifications", `{"broadcast":true}`, 201, ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			status, _, h := s.call(t, "POST", st.path, nil, st.body)
			if status != st.status || h.Get("Retry-After") != st.retryAfter {
				t.Fatalf("got %d with Retry-After %q, want %d with %q", status, h.Get("Retry-After"), st.status, st.retryAfter)
			}
		})
	}
	fams, _ := s.scrape(t)
	for _, reason := range []string{"too_large", "rate_limited"} {
		if n := value(t, fams, "herald_publish_refused_total", "reason="+reason); n != 1 {
			t.Errorf("herald_publish_refused_total{reason=%q} = %v, want 1", reason, n)
		}
	}
	if n := value(t, fams, "herald_publish_inflight_notifications"); n != 0 {
		t.Errorf("herald_publish_inflight_notifications = %v with nothing in flight", n)
	}
}

// TestGlobalConnectionCap: past --max-connections open streams the next gets 503 with
// Retry-After; a closed one frees its slot.
func TestGlobalConnectionCap(t *testing.T) {
	s := startServer(t, func(c *config.Config) { c.MaxConnections = 2 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, cancelFirst := context.WithCancel(ctx)
	for i, c := range []context.Context{first, ctx} {
		status, ch, err := s.openStream(c, "user=u"+strconv.Itoa(i), "")
		if err != nil || status != 200 {
			t.Fatalf("stream %d: %d %v", i, status, err)
		}
		<-ch
	}
	status, code, h := s.call(t, "GET", "/v1/stream?user=u9", nil, "")
	if status != 503 || code != herald.EUNAVAILABLE || h.Get("Retry-After") == "" {
		t.Fatalf("third stream: %d %q Retry-After %q", status, code, h.Get("Retry-After"))
	}
	cancelFirst()
	waitFor(t, 5*time.Second, "the first stream to close", func() bool { return s.Hub.Stats().Subscriptions == 1 })
	if status, ch, err := s.openStream(ctx, "user=u9", ""); err != nil || status != 200 {
		t.Fatalf("after a close: %d %v", status, err)
	} else {
		<-ch
	}
}

// TestTLS serves HTTPS with a certificate, negotiates HTTP/2 (which lifts the browser's limit of
// six connections per origin), and streams over it.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "herald"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)

	s := startServer(t, func(c *config.Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	pool := x509.NewCertPool()
	cert, _ := x509.ParseCertificate(der)
	pool.AddCert(cert)
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer transport.CloseIdleConnections()
	s.httpClient = &http.Client{Transport: transport}
	if s.url[:8] != "https://" {
		t.Fatalf("URL %q is not https", s.url)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/healthz", nil)
	resp, err := s.httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
	}
	status, ch, err := s.openStreamWith(ctx, "user=alice", nil)
	if err != nil || status != 200 {
		t.Fatalf("stream: %d %v", status, err)
	}
	<-ch
	if status, _, _ := s.call(t, "POST", "/v1/notifications", nil, `{"to":["alice"],"type":"over-tls"}`); status != 201 {
		t.Fatalf("publish: %d", status)
	}
	for ev := range ch {
		if ev.Type == "over-tls" {
			return
		}
	}
	t.Fatal("no event over TLS")
}
