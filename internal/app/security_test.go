package app

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/config"
)

const (
	testSecret   = "s3cret-s3cret-s3cret-s3cret-s3cret!"
	testIssuer   = "https://id.example.com"
	testAudience = "herald"
	billingKey   = "hk_billing-0123456789abcdef"
	supportKey   = "hk_support-0123456789abcdef"
)

// authServer starts Herald with every kind of credential configured: an HS256 secret (from a
// file), an RSA public key, a hashed publisher key on the command line and a plain one in a file.
type authServer struct {
	*server
	rsaKey *rsa.PrivateKey
	pubPEM []byte
}

func startAuthServer(t *testing.T, mutate func(*config.Config)) *authServer {
	t.Helper()
	dir := t.TempDir()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	s := startServer(t, func(c *config.Config) {
		c.JWTSecretFile = write("secret", []byte(testSecret+"\n"))
		c.JWTPublicKeys = write("keys.pem", pubPEM)
		c.PublisherKeys = "billing=" + auth.HashKey(billingKey)
		c.PublisherKeyFile = write("publishers", []byte("# plain keys, protected by the file's mode\nsupport="+supportKey+"\n"))
		c.JWTIssuer = testIssuer
		c.JWTAudience = testAudience
		if mutate != nil {
			mutate(c)
		}
	})
	return &authServer{server: s, rsaKey: rsaKey, pubPEM: pubPEM}
}

func claimsFor(user string, kv ...any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": user, "iss": testIssuer, "aud": testAudience, "exp": time.Now().Add(time.Hour).Unix()}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

func signed(t testing.TB, method jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (a *authServer) token(t testing.TB, user string, kv ...any) string {
	return signed(t, jwt.SigningMethodHS256, []byte(testSecret), claimsFor(user, kv...))
}

// call makes one request and returns the status and decoded JSON error code ("" for none).
func (s *server) call(t *testing.T, method, path string, header http.Header, body string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	if body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := s.client().Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		return resp.StatusCode, "", resp.Header // a stream that opened; not read here
	}
	raw, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Code, Message string }
	}
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(raw, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Errorf("%s %s: %d with body %q, want a JSON error", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, e.Error.Code, resp.Header
}

func bearer(cred string) http.Header { return http.Header{"Authorization": {"Bearer " + cred}} }

// TestSecurityMatrix: every way in, right and wrong, against a real listener. Each request gets
// its documented status and JSON error; nobody reads or changes another user's data; and the
// server stays healthy throughout.
func TestSecurityMatrix(t *testing.T) {
	s := startAuthServer(t, nil)
	alice, bob := s.token(t, "alice"), s.token(t, "bob")
	publisher := s.token(t, "backend", "scope", "herald:publish")

	// Bob has a notification; alice has one; everybody has a broadcast.
	publish := func(body string) string {
		status, _, _ := s.call(t, "POST", "/v1/notifications", bearer(billingKey), body)
		if status != http.StatusCreated {
			t.Fatalf("publish %s: %d", body, status)
		}
		var page struct{ Notifications []struct{ ID string } }
		s.getJSONAuth(t, "/v1/notifications?limit=1", bob, &page)
		return page.Notifications[0].ID
	}
	bobsID := publish(`{"to":["bob"],"data":"for bob"}`)
	if status, _, _ := s.call(t, "POST", "/v1/notifications", bearer(supportKey), `{"to":["alice"]}`); status != 201 {
		t.Fatalf("publish with the file's key: %d", status)
	}
	if status, _, _ := s.call(t, "POST", "/v1/notifications", bearer(publisher), `{"broadcast":true}`); status != 201 {
		t.Fatalf("publish with a publisher token: %d", status)
	}

	hs := func(c jwt.MapClaims) string { return signed(t, jwt.SigningMethodHS256, []byte(testSecret), c) }
	enc := base64.RawURLEncoding.EncodeToString
	none := enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(must(json.Marshal(claimsFor("alice")))) + "."
	crit := jwt.NewWithClaims(jwt.SigningMethodHS256, claimsFor("alice"))
	crit.Header["crit"], crit.Header["b64"] = []string{"b64"}, false
	critToken := must(crit.SignedString([]byte(testSecret)))
	hugeHeader := http.Header{"Authorization": {"Bearer " + alice}, "X-Padding": {strings.Repeat("p", 70<<10)}}
	now := time.Now()

	tests := []struct {
		name, method, path string
		header             http.Header
		body               string
		status             int
		code               string
	}{
		// Who may open a stream.
		{"stream: HS256 token", "GET", "/v1/stream", bearer(alice), "", 200, ""},
		{"stream: RS256 token", "GET", "/v1/stream", bearer(signed(t, jwt.SigningMethodRS256, s.rsaKey, claimsFor("alice"))), "", 200, ""},
		{"stream: cookie", "GET", "/v1/stream", http.Header{"Cookie": {"herald_token=" + alice}}, "", 200, ""},
		{"stream: no token", "GET", "/v1/stream", nil, "", 401, herald.EUNAUTHORIZED},
		{"stream: dev-mode ?user= means nothing", "GET", "/v1/stream?user=alice", nil, "", 401, herald.EUNAUTHORIZED},
		{"stream: malformed token", "GET", "/v1/stream", bearer("eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln"), "", 401, herald.EUNAUTHORIZED},
		{"stream: not a token", "GET", "/v1/stream", bearer("garbage"), "", 401, herald.EUNAUTHORIZED},
		{"stream: wrong scheme", "GET", "/v1/stream", http.Header{"Authorization": {"Token " + alice}}, "", 401, herald.EUNAUTHORIZED},
		{"stream: wrong signature", "GET", "/v1/stream", bearer(signed(t, jwt.SigningMethodHS256, []byte("not-the-secret-not-the-secret-!!"), claimsFor("alice"))), "", 401, herald.EUNAUTHORIZED},
		{"stream: alg none", "GET", "/v1/stream", bearer(none), "", 401, herald.EUNAUTHORIZED},
		{"stream: HS256 keyed with the RSA public key", "GET", "/v1/stream", bearer(signed(t, jwt.SigningMethodHS256, s.pubPEM, claimsFor("alice"))), "", 401, herald.EUNAUTHORIZED},
		{"stream: expired", "GET", "/v1/stream", bearer(hs(claimsFor("alice", "exp", now.Add(-time.Hour).Unix()))), "", 401, herald.EUNAUTHORIZED},
		{"stream: no exp", "GET", "/v1/stream", bearer(hs(claimsFor("alice", "exp", nil))), "", 401, herald.EUNAUTHORIZED},
		{"stream: not yet valid", "GET", "/v1/stream", bearer(hs(claimsFor("alice", "nbf", now.Add(time.Hour).Unix()))), "", 401, herald.EUNAUTHORIZED},
		{"stream: exp a numeric string", "GET", "/v1/stream", bearer(hs(claimsFor("alice", "exp", strconv.FormatInt(now.Add(time.Hour).Unix(), 10)))), "", 401, herald.EUNAUTHORIZED},
		{"stream: a critical header extension", "GET", "/v1/stream", bearer(critToken), "", 401, herald.EUNAUTHORIZED},
		{"stream: wrong issuer", "GET", "/v1/stream", bearer(hs(claimsFor("alice", "iss", "https://evil.example.com"))), "", 401, herald.EUNAUTHORIZED},
		{"stream: wrong audience", "GET", "/v1/stream", bearer(hs(claimsFor("alice", "aud", "someone-else"))), "", 401, herald.EUNAUTHORIZED},
		{"stream: query token while disabled", "GET", "/v1/stream?access_token=" + alice, nil, "", 401, herald.EUNAUTHORIZED},
		{"stream: publisher key", "GET", "/v1/stream", bearer(billingKey), "", 403, herald.EFORBIDDEN},
		{"stream: publisher token without sub", "GET", "/v1/stream", bearer(hs(claimsFor("", "sub", nil, "scope", "herald:publish"))), "", 403, herald.EFORBIDDEN},
		{"stream: alice's token on bob's ?user=", "GET", "/v1/stream?user=bob", bearer(alice), "", 403, herald.EFORBIDDEN},
		{"stream: oversized headers", "GET", "/v1/stream", hugeHeader, "", 431, herald.ETOOLARGE},
		// A sub that would display as another user's id ("alice" with a right-to-left override,
		// or with an invisible character) is not a user id at all.
		{"stream: sub with a bidi override", "GET", "/v1/stream", bearer(hs(claimsFor("ali\u202ece"))), "", 401, herald.EUNAUTHORIZED},
		{"inbox: sub with a zero-width space", "GET", "/v1/notifications", bearer(hs(claimsFor("alice\u200b"))), "", 401, herald.EUNAUTHORIZED},
		{"inbox: sub with a line separator", "GET", "/v1/notifications", bearer(hs(claimsFor("alice\u2028"))), "", 401, herald.EUNAUTHORIZED},

		// Who may publish.
		{"publish: hashed key", "POST", "/v1/notifications", bearer(billingKey), `{"to":["carol"]}`, 201, ""},
		{"publish: subscriber token", "POST", "/v1/notifications", bearer(alice), `{"to":["bob"]}`, 403, herald.EFORBIDDEN},
		{"publish: no credentials", "POST", "/v1/notifications", nil, `{"to":["bob"]}`, 401, herald.EUNAUTHORIZED},
		{"publish: unknown key", "POST", "/v1/notifications", bearer("hk_not-a-key-0123456789"), `{"to":["bob"]}`, 401, herald.EUNAUTHORIZED},
		{"publish: publisher token in a cookie", "POST", "/v1/notifications", http.Header{"Cookie": {"herald_token=" + publisher}}, `{"to":["bob"]}`, 401, herald.EUNAUTHORIZED},
		{"publish: expired publisher token", "POST", "/v1/notifications", bearer(s.token(t, "backend", "scope", "herald:publish", "exp", now.Add(-time.Hour).Unix())), `{"to":["bob"]}`, 401, herald.EUNAUTHORIZED},
		{"batch: subscriber token", "POST", "/v1/notifications/batch", bearer(alice), `{"notifications":[{"to":["bob"]}]}`, 403, herald.EFORBIDDEN},

		// Alice's token on bob's data: indistinguishable from data that does not exist.
		{"get bob's notification", "GET", "/v1/notifications/" + bobsID, bearer(alice), "", 404, herald.ENOTFOUND},
		{"mark bob's read", "POST", "/v1/notifications/" + bobsID + "/read", bearer(alice), "", 404, herald.ENOTFOUND},
		{"mark bob's unread", "DELETE", "/v1/notifications/" + bobsID + "/read", bearer(alice), "", 404, herald.ENOTFOUND},
		{"bob's inbox by ?user=", "GET", "/v1/notifications?user=bob", bearer(alice), "", 403, herald.EFORBIDDEN},
		{"bob gets his own", "GET", "/v1/notifications/" + bobsID, bearer(bob), "", 200, ""},
		{"inbox without a token", "GET", "/v1/notifications", nil, "", 401, herald.EUNAUTHORIZED},
		{"unread count without a token", "GET", "/v1/notifications/unread-count", nil, "", 401, herald.EUNAUTHORIZED},
		{"read-all with a publisher key", "POST", "/v1/notifications/read-all", bearer(billingKey), "", 403, herald.EFORBIDDEN},

		// Cross-site requests riding on the cookie.
		{"read-all from another site", "POST", "/v1/notifications/read-all",
			http.Header{"Cookie": {"herald_token=" + alice}, "Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example.com"}}, "", 403, herald.EFORBIDDEN},
		{"read-all same-origin", "POST", "/v1/notifications/read-all",
			http.Header{"Cookie": {"herald_token=" + alice}, "Sec-Fetch-Site": {"same-origin"}}, "", 200, ""},

		// Health needs nothing.
		{"healthz", "GET", "/healthz", nil, "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code, header := s.call(t, tt.method, tt.path, tt.header, tt.body)
			if status != tt.status || code != tt.code {
				t.Errorf("got %d %q, want %d %q", status, code, tt.status, tt.code)
			}
			if status == 401 && header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}

	// Bob's notification is still unread: alice's attempts changed nothing.
	var unread map[string]int
	s.getJSONAuth(t, "/v1/notifications/unread-count", bob, &unread)
	if unread["unread"] != 2 {
		t.Errorf("bob has %d unread, want 2 (his own and the broadcast)", unread["unread"])
	}
	// Alice's stream carries only her feed.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, ch, err := s.openStreamWith(ctx, "", http.Header{"Authorization": {"Bearer " + alice}, "Last-Event-ID": {"0.0"}})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range ch {
		if string(ev.Env.Data) == `"for bob"` {
			t.Fatal("alice's stream carried bob's notification")
		}
		if ev.Env.Broadcast {
			break // her own came first (it is older), then the broadcast: the whole feed
		}
	}
	cancel()
	// And the server is healthy.
	if status, _, _ := s.call(t, "GET", "/healthz", nil, ""); status != 200 {
		t.Fatalf("healthz: %d", status)
	}
}

// getJSONAuth is getJSON with a bearer token.
func (s *server) getJSONAuth(t *testing.T, path, token string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestTokenExpiryEndsStream: a stream lives as long as its token is accepted (exp plus the
// leeway), then tells the client and ends; the client resumes with a fresh token and loses nothing.
func TestTokenExpiryEndsStream(t *testing.T) {
	s := startAuthServer(t, func(c *config.Config) { c.JWTLeeway = 0 })
	exp := time.Now().Add(1500 * time.Millisecond)
	short := s.token(t, "alice", "exp", exp.Unix())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	status, ch, err := s.openStreamWith(ctx, "", bearer(short))
	if err != nil || status != 200 {
		t.Fatalf("open: %d %v", status, err)
	}
	var last string
	var expired bool
	for ev := range ch {
		last = ev.Cursor
		if ev.Type == herald.ControlPrefix+"expired" {
			expired = true
		}
	}
	// exp has one-second precision: the stream ends within a second after it.
	if !expired {
		t.Fatal("the stream ended without herald.expired")
	}
	if d := time.Since(time.Unix(exp.Unix(), 0)); d < 0 || d > 2*time.Second {
		t.Errorf("the stream ended %s after exp", d)
	}
	// Published meanwhile, then resumed with a fresh token.
	if status, _, _ := s.call(t, "POST", "/v1/notifications", bearer(billingKey), `{"to":["alice"],"type":"later"}`); status != 201 {
		t.Fatal(status)
	}
	_, ch, err = s.openStreamWith(ctx, "", http.Header{"Authorization": {"Bearer " + s.token(t, "alice")}, "Last-Event-ID": {last}})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range ch {
		if ev.Type == "later" {
			return
		}
	}
	t.Fatal("the resumed stream did not deliver what was published meanwhile")
}

// TestLogsHoldNoSecrets runs requests carrying every kind of credential, valid and not, in the
// header, the cookie and the query string, then searches the logs for them.
func TestLogsHoldNoSecrets(t *testing.T) {
	s := startAuthServer(t, func(c *config.Config) {
		c.AllowQueryToken = true
		c.LogLevel = "debug"
	})
	alice := s.token(t, "alice")
	expired := s.token(t, "alice", "exp", time.Now().Add(-time.Hour).Unix())
	forged := signed(t, jwt.SigningMethodHS256, []byte("forged-forged-forged-forged-forged"), claimsFor("alice"))
	ctx, cancel := context.WithCancel(context.Background())
	for _, h := range []http.Header{bearer(alice), bearer(expired), bearer(forged), bearer(billingKey), bearer(supportKey),
		{"Cookie": {"herald_token=" + alice}}} {
		s.call(t, "GET", "/v1/notifications", h, "")
		s.call(t, "POST", "/v1/notifications", h, `{"to":["alice"]}`)
		if _, ch, err := s.openStreamWith(ctx, "", h); err == nil && ch != nil {
			<-ch
		}
	}
	for _, q := range []string{"access_token=" + alice, "access_token=" + expired} {
		s.call(t, "GET", "/v1/stream?"+q+"&types=%zz", nil, "")
		if _, ch, err := s.openStreamWith(ctx, q, nil); err == nil && ch != nil {
			<-ch
		}
	}
	cancel()
	s.stop()
	logs := s.logBuf.String()
	if !strings.Contains(logs, "auth:") {
		t.Fatalf("the logs do not even describe the auth mode:\n%s", logs)
	}
	for name, secret := range map[string]string{
		"secret": testSecret, "token": alice, "expired token": expired, "forged token": forged,
		"billing key": billingKey, "support key": supportKey,
		// A token's signature alone is as good as the token for a replay: look for it too.
		"token signature": alice[strings.LastIndex(alice, ".")+1:],
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain the %s", name)
		}
	}
}

// TestStartupRefusals: a server with auth refuses configuration that would be unsafe or broken,
// naming the setting.
func TestStartupRefusals(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("tiny"), 0o600)
	private := filepath.Join(dir, "private.pem")
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	os.WriteFile(private, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600)
	tests := []struct {
		name   string
		mutate func(*config.Config)
		want   string
	}{
		{"short secret file", func(c *config.Config) { c.JWTSecretFile = short }, "32 bytes"},
		{"missing secret file", func(c *config.Config) { c.JWTSecretFile = filepath.Join(dir, "none") }, "jwt-secret-file"},
		{"private key given as public", func(c *config.Config) { c.JWTPublicKeys = private }, "private key"},
		{"plain key on the command line", func(c *config.Config) { c.JWTSecret = testSecret; c.PublisherKeys = "a=" + billingKey }, "hashes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Addr = "127.0.0.1:0"
			cfg.Store = "sqlite:" + filepath.Join(t.TempDir(), "h.db")
			tt.mutate(&cfg)
			a, err := New(context.Background(), cfg, discardLogger())
			if err == nil {
				a.close()
				t.Fatal("New accepted it")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

// TestAnswersAreNotCached: answers depend on who asks, and a cookie does not stop a shared
// cache from storing them, so every JSON answer says no-store.
func TestAnswersAreNotCached(t *testing.T) {
	s := startAuthServer(t, nil)
	for _, path := range []string{"/v1/notifications", "/v1/notifications/unread-count", "/v1/notifications/1"} {
		_, _, h := s.call(t, "GET", path, http.Header{"Cookie": {"herald_token=" + s.token(t, "alice")}}, "")
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", path, h.Get("Cache-Control"))
		}
	}
}
