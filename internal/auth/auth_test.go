package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhq/herald"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

// sign makes a token with any method and key; claims are given as a map so tests can write
// exactly what a hostile client would.
func sign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// unsigned makes an "alg": "none" token by hand (the library refuses to without a special key).
func unsigned(claims jwt.MapClaims) string {
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	c, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc(c) + "."
}

// rawToken signs an HS256 token over exactly the header and payload given, so tests can write
// JSON that no claims type would marshal.
func rawToken(t testing.TB, header, payload string) string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	s := enc([]byte(header)) + "." + enc([]byte(payload))
	sig, err := jwt.SigningMethodHS256.Sign(s, secret)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s + "." + enc(sig)
}

func valid(sub string) jwt.MapClaims {
	return jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}
}

func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func request(header, cookie, query string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/stream?"+query, nil)
	if header != "" {
		r.Header.Set("Authorization", header)
	}
	if cookie != "" {
		r.AddCookie(&http.Cookie{Name: DefaultCookie, Value: cookie})
	}
	return r
}

func newAuth(t testing.TB, cfg Config) *Authenticator {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

func TestSubscriber(t *testing.T) {
	rsaKey := must(rsa.GenerateKey(rand.Reader, 2048))
	ecKey := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	edPub, edKey := must2(ed25519.GenerateKey(rand.Reader))
	otherRSA := must(rsa.GenerateKey(rand.Reader, 2048))
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&rsaKey.PublicKey))})

	a := newAuth(t, Config{
		Secret:     secret,
		PublicKeys: []crypto.PublicKey{&rsaKey.PublicKey, &ecKey.PublicKey, edPub},
		Issuer:     "https://id.example.com",
		Audience:   "herald",
		Leeway:     5 * time.Second,
		Keys:       must(ParseKeys("billing="+HashKey("hk_billing-key-0123456789"), false)),
		Cookie:     DefaultCookie,
	})
	good := with(valid("alice"), "iss", "https://id.example.com", "aud", "herald")
	now := time.Now()

	tests := []struct {
		name             string
		header, cookie   string
		query            string
		wantUser         string
		wantCode, wantIn string
	}{
		{name: "HS256 header", header: "Bearer " + sign(t, jwt.SigningMethodHS256, secret, good, nil), wantUser: "alice"},
		{name: "scheme is case-insensitive", header: "bearer " + sign(t, jwt.SigningMethodHS256, secret, good, nil), wantUser: "alice"},
		{name: "RS256", header: "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKey, good, nil), wantUser: "alice"},
		{name: "PS256", header: "Bearer " + sign(t, jwt.SigningMethodPS256, rsaKey, good, nil), wantUser: "alice"},
		{name: "ES256", header: "Bearer " + sign(t, jwt.SigningMethodES256, ecKey, good, nil), wantUser: "alice"},
		{name: "EdDSA", header: "Bearer " + sign(t, jwt.SigningMethodEdDSA, edKey, good, nil), wantUser: "alice"},
		{name: "cookie", cookie: sign(t, jwt.SigningMethodHS256, secret, good, nil), wantUser: "alice"},
		{name: "matching ?user=", header: "Bearer " + sign(t, jwt.SigningMethodHS256, secret, good, nil), query: "user=alice", wantUser: "alice"},
		{name: "within leeway", header: "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with(good, "exp", now.Add(-2*time.Second).Unix()), nil), wantUser: "alice"},

		{name: "nothing", wantCode: herald.EUNAUTHORIZED, wantIn: "no credentials"},
		{name: "not bearer", header: "Basic YWxpY2U6cHc=", wantCode: herald.EUNAUTHORIZED, wantIn: "Bearer"},
		{name: "empty bearer", header: "Bearer ", wantCode: herald.EUNAUTHORIZED, wantIn: "Bearer"},
		{name: "garbage", header: "Bearer not-a-token", wantCode: herald.EUNAUTHORIZED},
		{name: "malformed", header: "Bearer abc.def.ghi", wantCode: herald.EUNAUTHORIZED, wantIn: "malformed"},
		{name: "wrong secret", header: "Bearer " + sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), good, nil), wantCode: herald.EUNAUTHORIZED, wantIn: "signature"},
		{name: "wrong RSA key", header: "Bearer " + sign(t, jwt.SigningMethodRS256, otherRSA, good, nil), wantCode: herald.EUNAUTHORIZED, wantIn: "signature"},
		{name: "alg none", header: "Bearer " + unsigned(good), wantCode: herald.EUNAUTHORIZED},
		{name: "HS256 keyed with the RSA public key", header: "Bearer " + sign(t, jwt.SigningMethodHS256, pubPEM, good, nil), wantCode: herald.EUNAUTHORIZED, wantIn: "signature"},
		{name: "algorithm not allowed", header: "Bearer " + sign(t, jwt.SigningMethodHS512, []byte(strings.Repeat("k", 64)), good, nil), wantCode: herald.EUNAUTHORIZED, wantIn: "algorithm"},
		{name: "expired", header: "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with(good, "exp", now.Add(-time.Minute).Unix()), nil), wantCode: herald.EUNAUTHORIZED, wantIn: "expired"},
		{name: "no exp", header: "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with(good, "exp", nil), nil), wantCode: herald.EUNAUTHORIZED, wantIn: "exp"},
		{name: "not valid yet", header: "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with(good, "nbf", now.Add(time.Hour).Unix()), nil), wantCode: herald.EUNAUTHORIZED, wantIn: "not valid yet"},
		{name: "issued in the future", header: "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with(good, "iat", now.Add(time.Hour).Unix()), nil), wantCode: herald.EUNAUTHORIZED, wantIn: "not valid yet"},
		{name: "wrong issuer", header: "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with(good, "iss", "https://evil.example.com"), nil), wantCode: herald.EUNAUTHORIZED, wantIn: "issuer"},
		{name: "no issuer", header: "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with(good, "iss", nil), nil), wantCode: herald.EUNAUTHORIZED, wantIn: "issuer"},
		{name: "wrong audience", header: "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with(good, "aud", "other"), nil), wantCode: herald.EUNAUTHORIZED, wantIn: "audience"},
		{name: "no sub", header: "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with(good, "sub", nil, "scope", "herald:publish"), nil), wantCode: herald.EFORBIDDEN, wantIn: "sub"},
		{name: "sub not a user id", header: "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with(good, "sub", "a\nb"), nil), wantCode: herald.EUNAUTHORIZED, wantIn: "sub"},
		{name: "another user's ?user=", header: "Bearer " + sign(t, jwt.SigningMethodHS256, secret, good, nil), query: "user=bob", wantCode: herald.EFORBIDDEN},
		{name: "publisher key", header: "Bearer hk_billing-key-0123456789", wantCode: herald.EFORBIDDEN, wantIn: "publisher key"},
		{name: "query token while disabled", query: "access_token=" + sign(t, jwt.SigningMethodHS256, secret, good, nil), wantCode: herald.EUNAUTHORIZED, wantIn: "disabled"},
		{name: "bad header does not fall back to the cookie", header: "Bearer junk", cookie: sign(t, jwt.SigningMethodHS256, secret, good, nil), wantCode: herald.EUNAUTHORIZED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := a.Subscriber(request(tt.header, tt.cookie, tt.query))
			if got := herald.ErrorCode(err); got != tt.wantCode {
				t.Fatalf("Subscriber: %+v, %v; want code %q", s, err, tt.wantCode)
			}
			if err != nil {
				if !strings.Contains(herald.ErrorMessage(err), tt.wantIn) {
					t.Errorf("message %q does not mention %q", herald.ErrorMessage(err), tt.wantIn)
				}
				return
			}
			if s.User != tt.wantUser {
				t.Errorf("user %q, want %q", s.User, tt.wantUser)
			}
			if s.Expires.IsZero() || s.Expires.Before(time.Now()) {
				t.Errorf("Expires = %v, want a time to come", s.Expires)
			}
		})
	}
}

func TestQueryToken(t *testing.T) {
	a := newAuth(t, Config{Secret: secret, QueryToken: true})
	tok := sign(t, jwt.SigningMethodHS256, secret, valid("alice"), nil)
	if s, err := a.Subscriber(request("", "", "access_token="+tok)); err != nil || s.User != "alice" {
		t.Fatalf("query token: %+v, %v", s, err)
	}
	if _, err := a.Subscriber(request("", "", "access_token=")); herald.ErrorCode(err) != herald.EUNAUTHORIZED {
		t.Fatalf("empty query token: %v", err)
	}
	// Publishing never takes a query token: it would be a link anyone could be made to follow.
	r := request("", "", "access_token="+sign(t, jwt.SigningMethodHS256, secret, with(valid("svc"), "scope", DefaultPublishScope), nil))
	if _, err := a.Publisher(r); herald.ErrorCode(err) != herald.EUNAUTHORIZED {
		t.Fatalf("Publisher with a query token: %v", err)
	}
}

func TestStreamExpiry(t *testing.T) {
	a := newAuth(t, Config{Secret: secret, Leeway: 3 * time.Second})
	exp := time.Now().Add(time.Minute).Truncate(time.Second)
	s, err := a.Subscriber(request("Bearer "+sign(t, jwt.SigningMethodHS256, secret, with(valid("alice"), "exp", exp.Unix()), nil), "", ""))
	if err != nil {
		t.Fatal(err)
	}
	if want := exp.Add(3 * time.Second); !s.Expires.Equal(want) {
		t.Fatalf("Expires = %v, want exp plus the leeway %v", s.Expires, want)
	}
}

func TestPublisher(t *testing.T) {
	keys := must(ParseKeys("billing="+HashKey("hk_billing-key-0123456789")+"\nsupport=hk_support-key-0123456789", true))
	a := newAuth(t, Config{Secret: secret, Keys: keys, PublishScope: "notify"})
	tests := []struct {
		name, header, cookie string
		wantID, wantCode     string
	}{
		{name: "hashed key", header: "Bearer hk_billing-key-0123456789", wantID: "billing"},
		{name: "plain key from a file", header: "Bearer hk_support-key-0123456789", wantID: "support"},
		{name: "token with the scope", header: "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with(valid("svc"), "scope", "read notify"), nil), wantID: `jwt:""` + `"svc"`},
		{name: "token with scp list", header: "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with(valid("svc"), "scp", []string{"notify"}), nil), wantID: `jwt:""` + `"svc"`},
		{name: "subscriber token", header: "Bearer " + sign(t, jwt.SigningMethodHS256, secret, valid("alice"), nil), wantCode: herald.EFORBIDDEN},
		{name: "other scope", header: "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with(valid("svc"), "scope", "herald:publish"), nil), wantCode: herald.EFORBIDDEN},
		{name: "unknown key", header: "Bearer hk_nobody-0123456789012", wantCode: herald.EUNAUTHORIZED},
		{name: "no credentials", wantCode: herald.EUNAUTHORIZED},
		{name: "cookie is not enough", cookie: sign(t, jwt.SigningMethodHS256, secret, with(valid("svc"), "scope", "notify"), nil), wantCode: herald.EUNAUTHORIZED},
		{name: "expired publisher token", header: "Bearer " + sign(t, jwt.SigningMethodHS256, secret, with(valid("svc"), "scope", "notify", "exp", time.Now().Add(-time.Hour).Unix()), nil), wantCode: herald.EUNAUTHORIZED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.Publisher(request(tt.header, tt.cookie, ""))
			if got := herald.ErrorCode(err); got != tt.wantCode {
				t.Fatalf("Publisher: %+v, %v; want code %q", p, err, tt.wantCode)
			}
			if err == nil && p.ID != tt.wantID {
				t.Errorf("ID %q, want %q", p.ID, tt.wantID)
			}
		})
	}
}

func TestDev(t *testing.T) {
	if s, err := (Dev{}).Subscriber(request("", "", "user=alice")); err != nil || s.User != "alice" || !s.Expires.IsZero() {
		t.Fatalf("Dev.Subscriber = %+v, %v", s, err)
	}
	if _, err := (Dev{}).Subscriber(request("", "", "")); herald.ErrorCode(err) != herald.EUNAUTHORIZED {
		t.Fatalf("Dev.Subscriber without ?user=: %v", err)
	}
	if _, err := (Dev{}).Subscriber(request("", "", "user=%00")); herald.ErrorCode(err) != herald.EINVALID {
		t.Fatalf("Dev.Subscriber with a bad user: %v", err)
	}
	if _, err := (Dev{}).Publisher(request("", "", "")); err != nil {
		t.Fatalf("Dev.Publisher: %v", err)
	}
}

func TestNewRefuses(t *testing.T) {
	small := must(rsa.GenerateKey(rand.Reader, 1024))
	p224 := must(ecdsa.GenerateKey(elliptic.P224(), rand.Reader))
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"nothing to verify tokens", Config{Keys: []Key{{Name: "k"}}}, "no way to verify"},
		{"short secret", Config{Secret: []byte("short")}, "32 bytes"},
		{"small RSA key", Config{PublicKeys: []crypto.PublicKey{&small.PublicKey}}, "2048"},
		{"unsupported curve", Config{PublicKeys: []crypto.PublicKey{&p224.PublicKey}}, "curve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(tt.cfg)
			if err == nil {
				a.Close()
				t.Fatal("New accepted it")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestAlgorithmAllowlist(t *testing.T) {
	rsaKey := must(rsa.GenerateKey(rand.Reader, 2048))
	ec384 := must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"secret", Config{Secret: secret}, "HS256"},
		{"RSA", Config{PublicKeys: []crypto.PublicKey{&rsaKey.PublicKey}}, "RS256,RS384,RS512,PS256,PS384,PS512"},
		{"P-384", Config{PublicKeys: []crypto.PublicKey{&ec384.PublicKey}}, "ES384"},
		{"secret and RSA", Config{Secret: secret, PublicKeys: []crypto.PublicKey{&rsaKey.PublicKey}}, "HS256,RS256,RS384,RS512,PS256,PS384,PS512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			algs, err := algorithms(&tt.cfg)
			if err != nil || strings.Join(algs, ",") != tt.want {
				t.Fatalf("algorithms = %v, %v; want %s", algs, err, tt.want)
			}
		})
	}
}

func TestMint(t *testing.T) {
	a := newAuth(t, Config{Secret: secret, Issuer: "me", Audience: "herald", Leeway: time.Second})
	now := time.Now()
	tok, err := Mint(secret, Token{User: "alice", TTL: time.Hour, Publish: true, Issuer: "me", Audience: "herald"}, now)
	if err != nil {
		t.Fatal(err)
	}
	r := request("Bearer "+tok, "", "")
	if s, err := a.Subscriber(r); err != nil || s.User != "alice" {
		t.Fatalf("minted token as subscriber: %+v, %v", s, err)
	}
	if p, err := a.Publisher(r); err != nil || p.ID != `jwt:"me""alice"` {
		t.Fatalf("minted token as publisher: %+v, %v", p, err)
	}
	// The scope claim is the space-separated string of RFC 8693.
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if !strings.Contains(string(payload), `"scope":"herald:publish"`) {
		t.Errorf("payload %s: scope is not a string", payload)
	}
	for _, bad := range []Token{{TTL: time.Hour}, {User: "alice"}, {User: "a\x00b", TTL: time.Hour}} {
		if _, err := Mint(secret, bad, now); err == nil {
			t.Errorf("Mint(%+v) succeeded", bad)
		}
	}
	if _, err := Mint(nil, Token{User: "alice", TTL: time.Hour}, now); err == nil {
		t.Error("Mint without a secret succeeded")
	}
}

func TestParseKeys(t *testing.T) {
	h := HashKey("hk_some-key-0123456789")
	tests := []struct {
		name       string
		text       string
		plain      bool
		wantNames  []string
		wantErrHas string
	}{
		{name: "named hash", text: "billing=" + h, wantNames: []string{"billing"}},
		{name: "unnamed hash", text: h, wantNames: []string{"key-" + strings.TrimPrefix(h, "sha256:")[:8]}},
		{name: "comma list", text: "a=" + h + ", b=" + HashKey("hk_other-key-0123456789"), wantNames: []string{"a", "b"}},
		{name: "file with comments", text: "# keys, one a line\n\nsupport=hk_support-key-0123456789\n", plain: true, wantNames: []string{"support"}},
		{name: "empty", text: "", wantNames: nil},
		{name: "plain key on the command line", text: "a=hk_support-key-0123456789", wantErrHas: "hashes"},
		{name: "short plain key", text: "a=short", plain: true, wantErrHas: "16 characters"},
		{name: "bad hex", text: "a=sha256:zz", wantErrHas: "64 hex"},
		{name: "bad name", text: "a b=" + h, wantErrHas: "name"},
		{name: "duplicate name", text: "a=" + h + "\na=" + HashKey("hk_other-key-0123456789"), wantErrHas: "twice"},
		{name: "duplicate key", text: "a=" + h + "\nb=" + h, wantErrHas: "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := ParseKeys(tt.text, tt.plain)
			if tt.wantErrHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrHas) {
					t.Fatalf("ParseKeys: %v; want an error mentioning %q", err, tt.wantErrHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, k := range keys {
				names = append(names, k.Name)
			}
			if strings.Join(names, ",") != strings.Join(tt.wantNames, ",") {
				t.Fatalf("names %v, want %v", names, tt.wantNames)
			}
		})
	}
}

func TestNewKey(t *testing.T) {
	a, b := NewKey(), NewKey()
	if a == b || !strings.HasPrefix(a, KeyPrefix) || len(a) < 40 || isJWT(a) {
		t.Fatalf("NewKey: %q, %q", a, b)
	}
	keys := must(ParseKeys("x="+HashKey(a), false))
	if k, ok := newKeyring(keys).match(a); !ok || k.Name != "x" {
		t.Fatal("a new key does not match its own hash")
	}
	if _, ok := newKeyring(keys).match(b); ok {
		t.Fatal("another key matches")
	}
}

func TestParsePublicKeys(t *testing.T) {
	rsaKey := must(rsa.GenerateKey(rand.Reader, 2048))
	ecKey := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	edPub, _ := must2(ed25519.GenerateKey(rand.Reader))
	block := func(typ string, b []byte) string { return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})) }
	cert := must(x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "id"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "id"}}, &ecKey.PublicKey, ecKey))
	tests := []struct {
		name    string
		pem     string
		want    int
		wantErr string
	}{
		{"PKIX keys of every type", block("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(&rsaKey.PublicKey))) +
			block("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(&ecKey.PublicKey))) +
			block("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(edPub))), 3, ""},
		{"PKCS#1", block("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)), 1, ""},
		{"certificate", block("CERTIFICATE", cert), 1, ""},
		{"private key", block("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(ecKey))), 0, "private key"},
		{"nothing", "not pem at all", 0, "no PEM"},
		{"corrupt", block("PUBLIC KEY", []byte("junk")), 0, "PUBLIC KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := ParsePublicKeys([]byte(tt.pem))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParsePublicKeys: %v; want an error mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(keys) != tt.want {
				t.Fatalf("ParsePublicKeys: %d keys, %v; want %d", len(keys), err, tt.want)
			}
		})
	}
}

// jwksServer serves a JSON Web Key Set whose keys the test replaces, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    map[string]*ecdsa.PrivateKey
	fetches int
	delay   time.Duration
}

func newJWKSServer(t *testing.T) *jwksServer {
	j := &jwksServer{keys: map[string]*ecdsa.PrivateKey{}}
	j.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.mu.Lock()
		defer j.mu.Unlock()
		j.fetches++
		time.Sleep(j.delay)
		store := jwkset.NewMemoryStorage()
		for kid, k := range j.keys {
			jwk, err := jwkset.NewJWKFromKey(&k.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: jwkset.AlgES256}})
			if err != nil {
				t.Error(err)
			}
			store.KeyWrite(r.Context(), jwk)
		}
		b, _ := store.JSONPublic(r.Context())
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}))
	t.Cleanup(j.Close)
	return j
}

func (j *jwksServer) set(keys map[string]*ecdsa.PrivateKey) {
	j.mu.Lock()
	j.keys = keys
	j.mu.Unlock()
}

func (j *jwksServer) count() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.fetches
}

// TestJWKS runs against a real JWKS endpoint: keys are fetched at start, a key rotated in
// mid-run is found by refreshing on its unknown kid, a kid nobody publishes is refused, and a
// retired key stops working at the next refresh.
func TestJWKS(t *testing.T) {
	k1 := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	k2 := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	rogue := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	srv := newJWKSServer(t)
	srv.set(map[string]*ecdsa.PrivateKey{"k1": k1})

	a := newAuth(t, Config{JWKSURL: srv.URL, JWKSRefresh: time.Hour, JWKSUnknownKID: 100 * time.Millisecond})
	token := func(key *ecdsa.PrivateKey, kid string) *http.Request {
		return request("Bearer "+sign(t, jwt.SigningMethodES256, key, valid("alice"), map[string]any{"kid": kid}), "", "")
	}
	check := func(step string, r *http.Request, wantCode string) {
		t.Helper()
		_, err := a.Subscriber(r)
		if got := herald.ErrorCode(err); got != wantCode {
			t.Fatalf("%s: %v; want code %q", step, err, wantCode)
		}
	}
	check("k1 at start", token(k1, "k1"), "")
	fetches := srv.count()

	srv.set(map[string]*ecdsa.PrivateKey{"k1": k1, "k2": k2}) // the provider rotates in k2
	check("k2 after rotation", token(k2, "k2"), "")
	if srv.count() != fetches+1 {
		t.Fatalf("%d fetches after the unknown kid, want %d", srv.count(), fetches+1)
	}
	check("k1 still", token(k1, "k1"), "")

	time.Sleep(150 * time.Millisecond)
	check("a kid nobody publishes", token(rogue, "rogue"), herald.EUNAUTHORIZED)
	check("a known kid with the wrong key", token(rogue, "k2"), herald.EUNAUTHORIZED)
	check("no kid: every known key is tried", request("Bearer "+sign(t, jwt.SigningMethodES256, k2, valid("alice"), nil), "", ""), "")

	// A flood of unknown kids fetches at most once per interval, and fails fast meanwhile
	// instead of queueing for the refresh limiter.
	slow := newAuth(t, Config{JWKSURL: srv.URL, JWKSUnknownKID: time.Minute})
	before := srv.count()
	start := time.Now()
	for i := 0; i < 20; i++ {
		if _, err := slow.Subscriber(token(rogue, "flood")); herald.ErrorCode(err) != herald.EUNAUTHORIZED {
			t.Fatalf("flood: %v", err)
		}
	}
	if n := srv.count() - before; n > 2 {
		t.Errorf("%d JWKS fetches for 20 unknown kids, want at most 2 (start and one refresh)", n)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("20 refused tokens took %s", d)
	}
}

// TestJWKSSlowRotation: the fetch for an unknown kid has its own deadline, not the request's,
// and a client that hangs up meanwhile does not abort it.
func TestJWKSSlowRotation(t *testing.T) {
	k1 := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	k2 := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	srv := newJWKSServer(t)
	srv.set(map[string]*ecdsa.PrivateKey{"k1": k1})
	a := newAuth(t, Config{JWKSURL: srv.URL, JWKSUnknownKID: time.Minute})
	srv.set(map[string]*ecdsa.PrivateKey{"k1": k1, "k2": k2})
	srv.mu.Lock()
	srv.delay = 1500 * time.Millisecond
	srv.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond) // the client gives up
	defer cancel()
	r := request("Bearer "+sign(t, jwt.SigningMethodES256, k2, valid("alice"), map[string]any{"kid": "k2"}), "", "").WithContext(ctx)
	if s, err := a.Subscriber(r); err != nil || s.User != "alice" {
		t.Fatalf("a rotated key behind a slow JWKS: %+v, %v", s, err)
	}
}

// TestJWKSScreensKeys: symmetric keys and short RSA keys in a set are never used.
func TestJWKSScreensKeys(t *testing.T) {
	small := must(rsa.GenerateKey(rand.Reader, 1024))
	good := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	ctx := context.Background()
	store := jwkset.NewMemoryStorage()
	for kid, key := range map[string]any{"oct": []byte(strings.Repeat("s", 32)), "small": &small.PublicKey, "good": &good.PublicKey} {
		jwk, err := jwkset.NewJWKFromKey(key, jwkset.JWKOptions{Marshal: jwkset.JWKMarshalOptions{Private: true}, Metadata: jwkset.JWKMetadataOptions{KID: kid}})
		if err != nil {
			t.Fatal(err)
		}
		store.KeyWrite(ctx, jwk)
	}
	set, _ := store.JSONPrivate(ctx) // private: so that the oct key's secret is published
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(set) }))
	defer srv.Close()
	a := newAuth(t, Config{JWKSURL: srv.URL})
	tests := []struct {
		name     string
		token    string
		wantCode string
	}{
		{"HS256 with the published oct key", sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("s", 32)), valid("alice"), map[string]any{"kid": "oct"}), herald.EUNAUTHORIZED},
		{"RS256 with a 1024-bit key", sign(t, jwt.SigningMethodRS256, small, valid("alice"), map[string]any{"kid": "small"}), herald.EUNAUTHORIZED},
		{"ES256 with a good key", sign(t, jwt.SigningMethodES256, good, valid("alice"), map[string]any{"kid": "good"}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := a.Subscriber(request("Bearer "+tt.token, "", "")); herald.ErrorCode(err) != tt.wantCode {
				t.Fatalf("%v; want code %q", err, tt.wantCode)
			}
		})
	}
}

// TestStrictTokens: a header with crit is refused (Herald understands no extension), exp, nbf
// and iat must be JSON numbers in range, and claim names match exactly. Each refusal says what is
// wrong without quoting the token (the QQQ markers must not come back).
func TestStrictTokens(t *testing.T) {
	a := newAuth(t, Config{Secret: secret})
	now := time.Now().Unix()
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	exp, past := num(now+3600), num(now-3600)
	const hs256 = `{"alg":"HS256","typ":"JWT"}`
	tests := []struct {
		name, header, payload string
		wantUser              string
		wantCode, wantIn      string
	}{
		{name: "numbers", header: hs256, payload: `{"sub":"alice","exp":` + exp + `,"nbf":` + num(now) + `,"iat":` + num(now) + `}`, wantUser: "alice"},
		{name: "fractions and spaces", header: hs256, payload: `{ "sub" : "alice" , "exp" : ` + exp + `.5 , "iat" : ` + num(now) + `.25 }`, wantUser: "alice"},
		{name: "an unknown header parameter that is not critical", header: `{"alg":"HS256","QQQ":1}`, payload: `{"sub":"alice","exp":` + exp + `}`, wantUser: "alice"},

		{name: "crit naming an extension", header: `{"alg":"HS256","crit":["QQQ"],"QQQ":true}`, payload: `{"sub":"alice","exp":` + exp + `}`, wantCode: herald.EUNAUTHORIZED, wantIn: "critical (crit)"},
		{name: "crit naming b64", header: `{"alg":"HS256","crit":["b64"],"b64":true}`, payload: `{"sub":"alice","exp":` + exp + `}`, wantCode: herald.EUNAUTHORIZED, wantIn: "critical (crit)"},
		{name: "crit empty", header: `{"alg":"HS256","crit":[]}`, payload: `{"sub":"alice","exp":` + exp + `}`, wantCode: herald.EUNAUTHORIZED, wantIn: "crit header is malformed"},
		{name: "crit a string", header: `{"alg":"HS256","crit":"QQQ"}`, payload: `{"sub":"alice","exp":` + exp + `}`, wantCode: herald.EUNAUTHORIZED, wantIn: "crit header is malformed"},
		{name: "crit null", header: `{"alg":"HS256","crit":null}`, payload: `{"sub":"alice","exp":` + exp + `}`, wantCode: herald.EUNAUTHORIZED, wantIn: "crit header is malformed"},
		{name: "crit not names", header: `{"alg":"HS256","crit":[1,""]}`, payload: `{"sub":"alice","exp":` + exp + `}`, wantCode: herald.EUNAUTHORIZED, wantIn: "crit header is malformed"},

		{name: "exp a numeric string", header: hs256, payload: `{"sub":"alice","exp":"` + exp + `"}`, wantCode: herald.EUNAUTHORIZED, wantIn: "exp claim is not a JSON number"},
		{name: "exp a boolean", header: hs256, payload: `{"sub":"alice","exp":true}`, wantCode: herald.EUNAUTHORIZED, wantIn: "exp claim is not a JSON number"},
		{name: "exp null", header: hs256, payload: `{"sub":"alice","exp":null}`, wantCode: herald.EUNAUTHORIZED, wantIn: "exp claim is not a JSON number"},
		{name: "exp beyond any time", header: hs256, payload: `{"sub":"alice","exp":1e300}`, wantCode: herald.EUNAUTHORIZED, wantIn: "exp claim is out of range"},
		{name: "nbf a numeric string", header: hs256, payload: `{"sub":"alice","exp":` + exp + `,"nbf":"` + num(now) + `"}`, wantCode: herald.EUNAUTHORIZED, wantIn: "nbf claim is not a JSON number"},
		{name: "nbf a boolean", header: hs256, payload: `{"sub":"alice","exp":` + exp + `,"nbf":false}`, wantCode: herald.EUNAUTHORIZED, wantIn: "nbf claim is not a JSON number"},
		{name: "nbf null", header: hs256, payload: `{"sub":"alice","exp":` + exp + `,"nbf":null}`, wantCode: herald.EUNAUTHORIZED, wantIn: "nbf claim is not a JSON number"},
		{name: "nbf that wraps into the past", header: hs256, payload: `{"sub":"alice","exp":` + exp + `,"nbf":9223372036854775808}`, wantCode: herald.EUNAUTHORIZED, wantIn: "nbf claim is out of range"},
		{name: "iat a numeric string", header: hs256, payload: `{"sub":"alice","exp":` + exp + `,"iat":"` + num(now) + `"}`, wantCode: herald.EUNAUTHORIZED, wantIn: "iat claim is not a JSON number"},
		{name: "iat null", header: hs256, payload: `{"sub":"alice","exp":` + exp + `,"iat":null}`, wantCode: herald.EUNAUTHORIZED, wantIn: "iat claim is not a JSON number"},
		{name: "iat an object", header: hs256, payload: `{"sub":"alice","exp":` + exp + `,"iat":{"QQQ":1}}`, wantCode: herald.EUNAUTHORIZED, wantIn: "iat claim is not a JSON number"},

		{name: "EXP is not exp", header: hs256, payload: `{"sub":"alice","EXP":` + exp + `}`, wantCode: herald.EUNAUTHORIZED, wantIn: "no expiry"},
		{name: "Exp does not stretch exp", header: hs256, payload: `{"sub":"alice","exp":` + past + `,"Exp":` + exp + `}`, wantCode: herald.EUNAUTHORIZED, wantIn: "expired"},
		{name: "SUB is not sub", header: hs256, payload: `{"SUB":"alice","exp":` + exp + `}`, wantCode: herald.EFORBIDDEN, wantIn: "sub"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := rawToken(t, tt.header, tt.payload)
			s, err := a.Subscriber(request("Bearer "+tok, "", ""))
			if got := herald.ErrorCode(err); got != tt.wantCode {
				t.Fatalf("Subscriber: %+v, %v; want code %q", s, err, tt.wantCode)
			}
			if err == nil {
				if s.User != tt.wantUser {
					t.Errorf("user %q, want %q", s.User, tt.wantUser)
				}
				return
			}
			msg := herald.ErrorMessage(err)
			if !strings.Contains(msg, tt.wantIn) {
				t.Errorf("message %q does not mention %q", msg, tt.wantIn)
			}
			for _, part := range append(strings.Split(tok, "."), "QQQ") {
				if part != "" && strings.Contains(msg, part) {
					t.Errorf("message %q quotes the token", msg)
				}
			}
		})
	}
}

// TestJWKSKeyMetadata: a key of the set verifies a token only if its own metadata allows it,
// whether or not the token names it (kid). "use" other than "sig" (RFC 7517 §4.2) and
// "key_ops" without "verify" (§4.3) rule a key out; an "alg" rules out every other algorithm.
// Keys with none of these members, or with matching ones, verify as before, and the algorithm
// allowlist still applies.
func TestJWKSKeyMetadata(t *testing.T) {
	ec := func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) }
	sig, plain, encKey, verifyOp, encryptOp, noOps := ec(), ec(), ec(), ec(), ec(), ec()
	rsaKey := must(rsa.GenerateKey(rand.Reader, 2048))
	published := []struct {
		key     crypto.PublicKey
		members map[string]any
	}{
		{&sig.PublicKey, map[string]any{"kid": "sig", "use": "sig", "alg": "ES256"}},
		{&plain.PublicKey, map[string]any{"kid": "plain"}},
		{&encKey.PublicKey, map[string]any{"kid": "enc", "use": "enc"}},
		{&verifyOp.PublicKey, map[string]any{"kid": "verify-op", "key_ops": []string{"verify"}}},
		{&encryptOp.PublicKey, map[string]any{"kid": "encrypt-op", "key_ops": []string{"encrypt"}}},
		{&noOps.PublicKey, map[string]any{"kid": "no-ops", "key_ops": []string{}}},
		{&rsaKey.PublicKey, map[string]any{"kid": "rs256", "alg": "RS256"}},
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	for _, p := range published {
		jwk := must(jwkset.NewJWKFromKey(p.key, jwkset.JWKOptions{}))
		var m map[string]any
		if err := json.Unmarshal(must(json.Marshal(jwk.Marshal())), &m); err != nil {
			t.Fatal(err)
		}
		maps.Copy(m, p.members)
		set.Keys = append(set.Keys, m)
	}
	body := must(json.Marshal(set))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer srv.Close()
	a := newAuth(t, Config{JWKSURL: srv.URL})

	tests := []struct {
		name     string
		method   jwt.SigningMethod
		key      any
		kid      string // "" for a token that names no key
		wantCode string
	}{
		{"use sig, by kid", jwt.SigningMethodES256, sig, "sig", ""},
		{"use sig, no kid", jwt.SigningMethodES256, sig, "", ""},
		{"no use, alg or key_ops, by kid", jwt.SigningMethodES256, plain, "plain", ""},
		{"no use, alg or key_ops, no kid", jwt.SigningMethodES256, plain, "", ""},
		{"use enc, by kid", jwt.SigningMethodES256, encKey, "enc", herald.EUNAUTHORIZED},
		{"use enc, no kid", jwt.SigningMethodES256, encKey, "", herald.EUNAUTHORIZED},
		{"key_ops with verify, by kid", jwt.SigningMethodES256, verifyOp, "verify-op", ""},
		{"key_ops with verify, no kid", jwt.SigningMethodES256, verifyOp, "", ""},
		{"key_ops without verify, by kid", jwt.SigningMethodES256, encryptOp, "encrypt-op", herald.EUNAUTHORIZED},
		{"key_ops without verify, no kid", jwt.SigningMethodES256, encryptOp, "", herald.EUNAUTHORIZED},
		{"empty key_ops, no kid", jwt.SigningMethodES256, noOps, "", herald.EUNAUTHORIZED},
		{"alg matches, by kid", jwt.SigningMethodRS256, rsaKey, "rs256", ""},
		{"alg matches, no kid", jwt.SigningMethodRS256, rsaKey, "", ""},
		{"alg differs, by kid", jwt.SigningMethodPS256, rsaKey, "rs256", herald.EUNAUTHORIZED},
		{"alg differs, no kid", jwt.SigningMethodPS256, rsaKey, "", herald.EUNAUTHORIZED},
		{"algorithm outside the allowlist", jwt.SigningMethodHS256, secret, "", herald.EUNAUTHORIZED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var header map[string]any
			if tt.kid != "" {
				header = map[string]any{"kid": tt.kid}
			}
			tok := sign(t, tt.method, tt.key, valid("alice"), header)
			s, err := a.Subscriber(request("Bearer "+tok, "", ""))
			if got := herald.ErrorCode(err); got != tt.wantCode {
				t.Fatalf("Subscriber: %+v, %v; want code %q", s, err, tt.wantCode)
			}
		})
	}
}

// TestSeveralCookies: two cookies of the token's name (one tossed in by a sibling subdomain)
// are refused rather than guessed between.
func TestSeveralCookies(t *testing.T) {
	a := newAuth(t, Config{Secret: secret})
	r := request("", sign(t, jwt.SigningMethodHS256, secret, valid("alice"), nil), "")
	r.AddCookie(&http.Cookie{Name: DefaultCookie, Value: sign(t, jwt.SigningMethodHS256, secret, valid("mallory"), nil)})
	if _, err := a.Subscriber(r); herald.ErrorCode(err) != herald.EUNAUTHORIZED {
		t.Fatalf("two cookies: %v", err)
	}
}

// TestKeyErrorsDoNotEchoKeys: a key the parser refuses is never quoted in its error.
func TestKeyErrorsDoNotEchoKeys(t *testing.T) {
	// Each entry holds a secret-looking part (QQQ...) that must not come back in the error.
	for _, entry := range []string{"QQQc2VjcmV0LXNlY3JldC1zZWNyZXQ=", "QQQabc=", "QQQ y z=secretsecretsecret", "sha256:QQQnothex", "QQQbad name=sha256:00"} {
		_, err := ParseKeys(entry, false)
		if err == nil {
			t.Errorf("%q accepted on the command line", entry)
			continue
		}
		if strings.Contains(err.Error(), "QQQ") {
			t.Errorf("error %q quotes the entry", err)
		}
	}
	// A plain key with "=" padding is one unnamed key, not a name and the rest.
	keys, err := ParseKeys("c2VjcmV0LXNlY3JldC1zZWNyZXQ=", true)
	if err != nil || len(keys) != 1 || !strings.HasPrefix(keys[0].Name, "key-") {
		t.Fatalf("padded plain key: %+v, %v", keys, err)
	}
	if _, ok := newKeyring(keys).match("c2VjcmV0LXNlY3JldC1zZWNyZXQ="); !ok {
		t.Fatal("the padded key does not match itself")
	}
}

func TestJWKSDownAtStart(t *testing.T) {
	srv := newJWKSServer(t)
	url := srv.URL
	srv.Close()
	a := newAuth(t, Config{JWKSURL: url})
	k := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	_, err := a.Subscriber(request("Bearer "+sign(t, jwt.SigningMethodES256, k, valid("alice"), map[string]any{"kid": "k"}), "", ""))
	if herald.ErrorCode(err) != herald.EUNAUTHORIZED {
		t.Fatalf("with the JWKS unreachable: %v; want unauthorized", err)
	}
}

// FuzzCredentials feeds arbitrary headers, cookies and query strings to both checks: they must
// not panic, and every refusal is a client error with a code.
func FuzzCredentials(f *testing.F) {
	tok := sign(f, jwt.SigningMethodHS256, secret, valid("alice"), nil)
	for _, s := range []string{"", "Bearer " + tok, "Bearer a.b.c", "bearer  x", "Bearer hk_x", "Basic x", "Bearer " + unsigned(valid("a")),
		"Bearer eyJhbGciOiJIUzI1NiJ9.e30.", "Bearer ..", "Bearer \x00"} {
		f.Add(s, tok, "access_token="+tok)
	}
	a := newAuth(f, Config{Secret: secret, QueryToken: true, Keys: must(ParseKeys("k="+HashKey("hk_key-0123456789abc"), false))})
	ok := map[string]bool{"": true, herald.EUNAUTHORIZED: true, herald.EFORBIDDEN: true, herald.EINVALID: true}
	f.Fuzz(func(t *testing.T, header, cookie, query string) {
		r := httptest.NewRequest(http.MethodGet, "/v1/stream", nil)
		r.URL.RawQuery = query
		if header != "" {
			r.Header["Authorization"] = []string{header}
		}
		if cookie != "" {
			r.Header["Cookie"] = []string{DefaultCookie + "=" + cookie}
		}
		s, err := a.Subscriber(r)
		if !ok[herald.ErrorCode(err)] {
			t.Fatalf("Subscriber: code %q (%v)", herald.ErrorCode(err), err)
		}
		if err == nil && (s.User == "" || herald.ValidateUser(s.User) != nil) {
			t.Fatalf("Subscriber accepted user %q", s.User)
		}
		if _, err := a.Publisher(r); !ok[herald.ErrorCode(err)] {
			t.Fatalf("Publisher: code %q (%v)", herald.ErrorCode(err), err)
		}
	})
}

// FuzzToken signs arbitrary headers and payloads with the server's secret, so that the fuzzer
// reaches the checks that run after the signature: Herald's payload decoding and header check.
// A token may only be accepted with no crit, with exp a JSON number and nbf and iat absent or
// numbers, and for the user its exact "sub" names.
func FuzzToken(f *testing.F) {
	exp := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	for _, s := range [][2]string{
		{`{"alg":"HS256"}`, `{"sub":"alice","exp":` + exp + `}`},
		{`{"alg":"HS256","crit":["b64"],"b64":false}`, `{"sub":"alice","exp":` + exp + `}`},
		{`{"alg":"HS256","crit":[]}`, `{"sub":"alice","exp":` + exp + `}`},
		{`{"alg":"HS256"}`, `{"sub":"alice","exp":"` + exp + `"}`},
		{`{"alg":"HS256"}`, `{"sub":"alice","exp":` + exp + `,"nbf":null,"iat":true}`},
		{`{"alg":"HS256"}`, `{"sub":"alice","exp":1,"Exp":` + exp + `,"SUB":"bob"}`},
		{`{"alg":"HS256"}`, `{"sub":"alice","exp":` + exp + `.5e0,"nbf":-0}`},
	} {
		f.Add(s[0], s[1])
	}
	a := newAuth(f, Config{Secret: secret})
	ok := map[string]bool{"": true, herald.EUNAUTHORIZED: true, herald.EFORBIDDEN: true}
	f.Fuzz(func(t *testing.T, header, payload string) {
		s, err := a.Subscriber(request("Bearer "+rawToken(t, header, payload), "", ""))
		if !ok[herald.ErrorCode(err)] {
			t.Fatalf("code %q (%v)", herald.ErrorCode(err), err)
		}
		if err != nil {
			return
		}
		var h map[string]any
		if json.Unmarshal([]byte(header), &h) != nil || h["crit"] != nil {
			t.Fatalf("accepted a token with header %q", header)
		}
		var p map[string]json.RawMessage
		if json.Unmarshal([]byte(payload), &p) != nil {
			t.Fatalf("accepted a token with payload %q", payload)
		}
		isNumber := func(raw json.RawMessage) bool {
			var n json.Number
			return len(raw) > 0 && raw[0] != '"' && json.Unmarshal(raw, &n) == nil && n != ""
		}
		for _, name := range []string{"exp", "nbf", "iat"} {
			if raw, present := p[name]; (present || name == "exp") && !isNumber(raw) {
				t.Fatalf("accepted %s %s in payload %q", name, raw, payload)
			}
		}
		var sub string
		if json.Unmarshal(p["sub"], &sub) != nil || s.User != sub {
			t.Fatalf("accepted user %q from payload %q", s.User, payload)
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}
