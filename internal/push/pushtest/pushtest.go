// Package pushtest is a push service on loopback for tests: it speaks RFC 8030 to Herald,
// verifies each push's VAPID JWT (RFC 8292: ES256 under the key the request names, which must
// be the server's, aud the endpoint's origin, exp in the next 24 hours, sub a mailto: or https:
// contact) and decrypts its payload (RFC 8291, aes128gcm) with the private key of the
// subscription, which it made as a browser would. It answers 201, or what a test asks for.
//
// The decryption is the receiving browser's side, written here from the RFC with the standard
// library, independently of the library Herald encrypts with.
package pushtest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Service is the push service. Its zero value is not usable; call New.
type Service struct {
	// URL is the service's origin, http://127.0.0.1:port.
	URL string
	srv *httptest.Server
	t   TB

	mu      sync.Mutex
	vapid   string // the VAPID public key pushes must be signed with; "" accepts any
	subs    map[string]*Subscription
	answers map[string][]Answer
	pushes  []Push
	errs    []string
	changed chan struct{} // closed and replaced on every push
	// Log, when set, receives a line per push (the decrypted payload included).
	Log func(format string, args ...any)
	// CountOnly skips verification and decryption: benchmarks measure the sender, not the
	// receiver. Set it before the first push.
	CountOnly bool
}

// Subscription is a browser's subscription: what it registers with Herald (Endpoint, P256DH,
// Auth) and the private key it decrypts with.
type Subscription struct {
	ID       string
	Endpoint string
	P256DH   string
	Auth     string
	priv     *ecdh.PrivateKey
	secret   []byte
}

// JSON is the subscription as a browser's PushSubscription.toJSON() writes it.
func (s *Subscription) JSON() string {
	return fmt.Sprintf(`{"endpoint":%q,"expirationTime":null,"keys":{"p256dh":%q,"auth":%q}}`, s.Endpoint, s.P256DH, s.Auth)
}

// Answer is a response the service gives to the next push of a subscription.
type Answer struct {
	Status     int
	RetryAfter string
}

// Push is one request the service received.
type Push struct {
	Subscription string
	// Payload is the decrypted payload; nil if the request did not verify.
	Payload []byte
	TTL     string
	Topic   string
	Urgency string
	// Status is what the service answered.
	Status int
	At     time.Time
}

// TB is what the service needs of a test: testing.TB, or a program's stand-in when the
// service is run by hand.
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

var _ TB = testing.TB(nil)

// New starts a service on loopback, closed when the test ends. vapidPublic is the key pushes
// must be signed with ("" for any valid one).
func New(t TB, vapidPublic string) *Service {
	s := &Service{t: t, vapid: vapidPublic, subs: map[string]*Subscription{}, answers: map[string][]Answer{}, changed: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Subscribe makes a subscription as a browser does: a P-256 key pair and a 16-byte secret.
func (s *Service) Subscribe() *Subscription {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		s.t.Fatal(err)
	}
	secret := make([]byte, 16)
	rand.Read(secret)
	id := base64.RawURLEncoding.EncodeToString(secret[:9])
	sub := &Subscription{
		ID:       id,
		Endpoint: s.URL + "/push/" + id,
		P256DH:   base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()),
		Auth:     base64.RawURLEncoding.EncodeToString(secret),
		priv:     priv,
		secret:   secret,
	}
	s.mu.Lock()
	s.subs[id] = sub
	s.mu.Unlock()
	return sub
}

// Answer queues answers for the next pushes to sub; after them it answers 201.
func (s *Service) Answer(sub *Subscription, answers ...Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers[sub.ID] = append(s.answers[sub.ID], answers...)
}

// Pushes returns the pushes sub received, in order, whatever was answered.
func (s *Service) Pushes(sub *Subscription) []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Push
	for _, p := range s.pushes {
		if p.Subscription == sub.ID {
			out = append(out, p)
		}
	}
	return out
}

// Delivered returns the payloads of the pushes to sub that were answered 2xx.
func (s *Service) Delivered(sub *Subscription) [][]byte {
	var out [][]byte
	for _, p := range s.Pushes(sub) {
		if p.Status >= 200 && p.Status < 300 {
			out = append(out, p.Payload)
		}
	}
	return out
}

// Errors returns what failed verification or decryption.
func (s *Service) Errors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.errs...)
}

// Wait returns when cond holds, checked after every push, or fails the test after timeout.
func (s *Service) Wait(timeout time.Duration, what string, cond func() bool) {
	s.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			s.t.Fatalf("push service: waited %s for %s; errors: %v", timeout, what, s.Errors())
		}
	}
}

func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/push/")
	s.mu.Lock()
	sub := s.subs[id]
	s.mu.Unlock()
	if r.Method != http.MethodPost || !ok || sub == nil {
		http.Error(w, "no such subscription", http.StatusNotFound)
		return
	}
	p := Push{Subscription: id, TTL: r.Header.Get("TTL"), Topic: r.Header.Get("Topic"), Urgency: r.Header.Get("Urgency"), At: time.Now()}
	var payload []byte
	var err error
	if s.CountOnly {
		io.Copy(io.Discard, r.Body)
	} else {
		payload, err = s.verify(r, sub)
	}
	if err != nil {
		p.Status = http.StatusForbidden // what a push service answers a push it cannot accept
	} else {
		p.Payload, p.Status = payload, http.StatusCreated
	}
	s.mu.Lock()
	if err != nil {
		s.errs = append(s.errs, err.Error())
	} else if q := s.answers[id]; len(q) > 0 {
		p.Status = q[0].Status
		if q[0].RetryAfter != "" {
			w.Header().Set("Retry-After", q[0].RetryAfter)
		}
		s.answers[id] = q[1:]
	}
	s.pushes = append(s.pushes, p)
	seq := len(s.pushes)
	close(s.changed)
	s.changed = make(chan struct{})
	logf := s.Log
	s.mu.Unlock()
	if logf != nil {
		logf("push service: POST /push/%s TTL=%s Topic=%q Urgency=%s → %d; decrypted: %s (err: %v)", id, p.TTL, p.Topic, p.Urgency, p.Status, p.Payload, err)
	}
	if p.Status == http.StatusCreated {
		w.Header().Set("Location", s.URL+"/message/"+strconv.Itoa(seq))
	}
	w.WriteHeader(p.Status)
}

// verify checks the request's VAPID authorization and decrypts its body.
func (s *Service) verify(r *http.Request, sub *Subscription) ([]byte, error) {
	if ce := r.Header.Get("Content-Encoding"); ce != "aes128gcm" {
		return nil, fmt.Errorf("Content-Encoding %q, want aes128gcm", ce)
	}
	if _, err := strconv.Atoi(r.Header.Get("TTL")); err != nil {
		return nil, fmt.Errorf("TTL header %q is not a number (RFC 8030 §5.2 requires it)", r.Header.Get("TTL"))
	}
	if err := s.verifyVAPID(r.Header.Get("Authorization")); err != nil {
		return nil, fmt.Errorf("VAPID: %w", err)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 8192))
	if err != nil {
		return nil, err
	}
	if len(body) > 4096+86 {
		return nil, fmt.Errorf("body of %d bytes is over the 4096-byte record RFC 8291 allows", len(body))
	}
	return Decrypt(body, sub.priv, sub.secret)
}

// verifyVAPID checks "vapid t=<JWT>, k=<public key>" (RFC 8292 §3).
func (s *Service) verifyVAPID(h string) error {
	rest, ok := strings.CutPrefix(h, "vapid ")
	if !ok {
		return fmt.Errorf("Authorization %q is not the vapid scheme", h)
	}
	var tok, key string
	for _, part := range strings.Split(rest, ",") {
		part = strings.TrimSpace(part)
		if v, ok := strings.CutPrefix(part, "t="); ok {
			tok = v
		} else if v, ok := strings.CutPrefix(part, "k="); ok {
			key = v
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil {
		return fmt.Errorf("k is not base64url")
	}
	if s.vapid != "" && key != s.vapid {
		return fmt.Errorf("k is not the server's public key")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return fmt.Errorf("k: %w", err)
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithExpirationRequired(), jwt.WithAudience(s.URL))
	if err != nil {
		return err
	}
	exp, _ := claims.GetExpirationTime()
	if exp.After(time.Now().Add(24 * time.Hour)) {
		return fmt.Errorf("exp is more than 24 hours ahead")
	}
	sub, _ := claims.GetSubject()
	if !strings.HasPrefix(sub, "mailto:") && !strings.HasPrefix(sub, "https:") {
		return fmt.Errorf("sub %q is not a mailto: or https: URL", sub)
	}
	return nil
}

// Decrypt decrypts an aes128gcm body (RFC 8188) encrypted for a subscription (RFC 8291 §3.4):
// the receiver's side.
func Decrypt(body []byte, priv *ecdh.PrivateKey, authSecret []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("body shorter than the aes128gcm header")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if len(body) < 21+idlen || idlen != 65 {
		return nil, fmt.Errorf("key id of %d bytes, want the sender's 65-byte public key", idlen)
	}
	asPub, err := ecdh.P256().NewPublicKey(body[21 : 21+idlen])
	if err != nil {
		return nil, fmt.Errorf("sender key: %w", err)
	}
	ciphertext := body[21+idlen:]
	if rs < 18 || uint32(len(ciphertext)) > rs {
		return nil, fmt.Errorf("one record of %d bytes, record size %d", len(ciphertext), rs)
	}
	shared, err := priv.ECDH(asPub)
	if err != nil {
		return nil, err
	}
	// IKM from the ECDH secret, the auth secret and both public keys (RFC 8291 §3.3).
	info := append(append([]byte("WebPush: info\x00"), priv.PublicKey().Bytes()...), asPub.Bytes()...)
	prkKey, err := hkdf.Extract(sha256.New, shared, authSecret)
	if err != nil {
		return nil, err
	}
	ikm, err := hkdf.Expand(sha256.New, prkKey, string(info), 32)
	if err != nil {
		return nil, err
	}
	// CEK and nonce from the IKM and the salt (RFC 8188 §2.2, §2.3).
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, nonce, ciphertext, nil)
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	// The last record ends in 0x02 and then zero padding (RFC 8188 §2).
	i := len(plain) - 1
	for i >= 0 && plain[i] == 0 {
		i--
	}
	if i < 0 || plain[i] != 2 {
		return nil, errors.New("no last-record delimiter (0x02) before the padding")
	}
	return plain[:i], nil
}
