// Package auth tells who is calling: subscribers by a JWT whose sub is their user id, publishers
// by an API key or a JWT carrying the publish scope. Dev is the no-auth mode for a server bound to
// loopback.
//
// Credentials come from the Authorization header. A subscriber may also present its token in a
// cookie (how a browser's EventSource authenticates) or, when the operator allows it, in the
// access_token query parameter. Publishing needs the header: a cookie the browser sends on its own
// must never be enough to publish.
package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhq/herald"
)

// Defaults of Config's optional fields.
const (
	DefaultCookie       = "herald_token"
	DefaultPublishScope = "herald:publish"
	DefaultLeeway       = 10 * time.Second
	DefaultJWKSRefresh  = time.Hour
	// DefaultJWKSUnknownKID is the least time between two JWKS fetches caused by tokens naming a
	// key the set does not hold (a rotation the periodic refresh has not seen yet).
	DefaultJWKSUnknownKID = 10 * time.Second
)

// QueryParam is the query parameter that carries a subscriber token when Config.QueryToken
// allows it. Anything that logs a URL must redact it.
const QueryParam = "access_token"

// Config says which credentials are accepted.
type Config struct {
	// Secret verifies HS256 tokens.
	Secret []byte
	// PublicKeys verify RS*, PS*, ES* and EdDSA tokens (by the key's type).
	PublicKeys []crypto.PublicKey
	// JWKSURL is a JSON Web Key Set fetched at start, every JWKSRefresh, and when a token names a
	// key it does not hold (at most every JWKSUnknownKID).
	JWKSURL        string
	JWKSRefresh    time.Duration
	JWKSUnknownKID time.Duration
	// HTTPClient fetches the JWKS; http.DefaultClient's transport with a 10 s timeout when nil.
	HTTPClient *http.Client

	// Issuer and Audience, when set, must match the token's iss and aud.
	Issuer   string
	Audience string
	// Leeway absorbs clock skew on exp, nbf and iat (DefaultLeeway is a good value; 0 is none).
	Leeway time.Duration
	// PublishScope is the scope (in the scope or scp claim) that lets a token publish.
	PublishScope string

	// Keys are the publisher API keys.
	Keys []Key

	// Cookie is the name of the cookie that may carry a subscriber token.
	Cookie string
	// QueryToken allows a subscriber token in the access_token query parameter.
	QueryToken bool

	Logger *slog.Logger
}

// Enabled reports whether c configures any credential; without one the server runs in dev mode.
func (c *Config) Enabled() bool {
	return len(c.Secret) > 0 || len(c.PublicKeys) > 0 || c.JWKSURL != "" || len(c.Keys) > 0
}

// Authenticator checks credentials. Close stops its JWKS refresh.
type Authenticator struct {
	cfg    Config
	log    *slog.Logger
	algs   []string
	parser *jwt.Parser
	jwks   *jwks // nil without a JWKS URL
	keys   *keyring

	cancel    func()
	closeOnce sync.Once
}

// New returns an Authenticator for cfg. With a JWKS URL it fetches the set before returning
// (a failure is logged, not fatal: the identity provider may come back) and refreshes it in the
// background until Close.
func New(cfg Config) (*Authenticator, error) {
	if len(cfg.Secret) == 0 && len(cfg.PublicKeys) == 0 && cfg.JWKSURL == "" {
		return nil, errors.New("auth: no way to verify subscriber tokens: configure a JWT secret, public keys or a JWKS URL")
	}
	if cfg.Cookie == "" {
		cfg.Cookie = DefaultCookie
	}
	if cfg.PublishScope == "" {
		cfg.PublishScope = DefaultPublishScope
	}
	if cfg.JWKSRefresh <= 0 {
		cfg.JWKSRefresh = DefaultJWKSRefresh
	}
	if cfg.JWKSUnknownKID <= 0 {
		cfg.JWKSUnknownKID = DefaultJWKSUnknownKID
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	algs, err := algorithms(&cfg)
	if err != nil {
		return nil, err
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithIssuedAt(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	a := &Authenticator{
		cfg:    cfg,
		log:    cfg.Logger,
		algs:   algs,
		parser: jwt.NewParser(opts...),
		keys:   newKeyring(cfg.Keys),
		cancel: func() {},
	}
	if cfg.JWKSURL != "" {
		if err := a.startJWKS(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (a *Authenticator) startJWKS() error {
	client := a.cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	j, err := newJWKS(a.cfg.JWKSURL, client, a.log, a.cfg.JWKSUnknownKID)
	if err != nil {
		return fmt.Errorf("auth: JWKS %s: %w", a.cfg.JWKSURL, err)
	}
	// A provider that is down at start is not fatal: tokens are refused until it answers (an
	// unknown kid triggers a fetch), and the refresh keeps trying.
	if err := j.fetch(context.Background()); err != nil {
		a.log.Warn("auth: JWKS not fetched at start; tokens are refused until it is", "url", a.cfg.JWKSURL, "err", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		j.run(ctx, a.cfg.JWKSRefresh)
	}()
	a.jwks = j
	a.cancel = func() { cancel(); <-done }
	return nil
}

// Close stops the background JWKS refresh and waits for it. It may be called more than once.
func (a *Authenticator) Close() {
	a.closeOnce.Do(a.cancel)
}

// Describe says what the Authenticator accepts, for the start-up log. It names no secret.
func (a *Authenticator) Describe() []any {
	d := []any{"algorithms", strings.Join(a.algs, ","), "publisher_keys", len(a.cfg.Keys),
		"cookie", a.cfg.Cookie, "query_token", a.cfg.QueryToken, "publish_scope", a.cfg.PublishScope}
	if a.cfg.JWKSURL != "" {
		d = append(d, "jwks", a.cfg.JWKSURL)
	}
	if a.cfg.Issuer != "" {
		d = append(d, "issuer", a.cfg.Issuer)
	}
	if a.cfg.Audience != "" {
		d = append(d, "audience", a.cfg.Audience)
	}
	return d
}

// Challenge is the WWW-Authenticate header of a 401.
func (a *Authenticator) Challenge() string { return `Bearer realm="herald"` }

// Subscriber returns the user whose feed the request may read: the sub of its token.
func (a *Authenticator) Subscriber(r *http.Request) (herald.Subscriber, error) {
	cred, err := a.credential(r, true)
	if err != nil {
		return herald.Subscriber{}, err
	}
	if !isJWT(cred) {
		if _, ok := a.keys.match(cred); ok {
			return herald.Subscriber{}, herald.Errorf(herald.EFORBIDDEN, "a publisher key cannot read a feed; present the user's token")
		}
		return herald.Subscriber{}, unauthorized("the credential is not a valid token")
	}
	c, err := a.parse(r.Context(), cred)
	if err != nil {
		return herald.Subscriber{}, err
	}
	if c.Subject == "" {
		return herald.Subscriber{}, herald.Errorf(herald.EFORBIDDEN, "the token names no user (sub); it cannot read a feed")
	}
	if err := herald.ValidateUser(c.Subject); err != nil {
		return herald.Subscriber{}, unauthorized("the token's sub is not a valid user id")
	}
	if u := r.URL.Query().Get("user"); u != "" && u != c.Subject {
		return herald.Subscriber{}, herald.Errorf(herald.EFORBIDDEN, "the token is not for the user named by ?user=")
	}
	// The stream lives as long as the token would be accepted: ending it at exp and accepting the
	// same token again for the leeway would make a client reconnect in a loop.
	return herald.Subscriber{User: c.Subject, Expires: c.ExpiresAt.Add(a.cfg.Leeway)}, nil
}

// Publisher returns the publisher the request comes from: a named API key, or a token with the
// publish scope.
func (a *Authenticator) Publisher(r *http.Request) (herald.Publisher, error) {
	cred, err := a.credential(r, false)
	if err != nil {
		return herald.Publisher{}, err
	}
	if !isJWT(cred) {
		k, ok := a.keys.match(cred)
		if !ok {
			return herald.Publisher{}, unauthorized("unknown publisher key")
		}
		return herald.Publisher{ID: k.Name}, nil
	}
	c, err := a.parse(r.Context(), cred)
	if err != nil {
		return herald.Publisher{}, err
	}
	if !c.has(a.cfg.PublishScope) {
		return herald.Publisher{}, herald.Errorf(herald.EFORBIDDEN, "this token may not publish: it lacks the %q scope", a.cfg.PublishScope)
	}
	// Quoted, so that no two (issuer, subject) pairs make the same id.
	return herald.Publisher{ID: "jwt:" + strconv.Quote(c.Issuer) + strconv.Quote(c.Subject)}, nil
}

// credential returns the request's credential: the Authorization header's, or for a subscriber
// the cookie's or (when allowed) the query parameter's. A header that is present but malformed
// is an error, not a reason to look elsewhere.
func (a *Authenticator) credential(r *http.Request, subscriber bool) (string, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, value, ok := strings.Cut(h, " ")
		value = strings.TrimSpace(value)
		if !ok || !strings.EqualFold(scheme, "Bearer") || value == "" || strings.ContainsAny(value, " \t") {
			return "", unauthorized(`the Authorization header must be "Bearer <token or key>"`)
		}
		return value, nil
	}
	if !subscriber {
		return "", unauthorized("publishing needs a publisher key or token in the Authorization header")
	}
	if cookies := r.CookiesNamed(a.cfg.Cookie); len(cookies) > 0 {
		if len(cookies) > 1 {
			// A sibling subdomain can set a cookie of the same name for the parent domain
			// ("cookie tossing"): rather than guess which is the user's, refuse.
			return "", unauthorized("several " + a.cfg.Cookie + " cookies were sent; the stale one must be cleared")
		}
		if cookies[0].Value != "" {
			return cookies[0].Value, nil
		}
	}
	if q := r.URL.Query(); q.Has(QueryParam) {
		if !a.cfg.QueryToken {
			return "", unauthorized("tokens in the query string are disabled on this server; use the Authorization header or the cookie")
		}
		if v := q.Get(QueryParam); v != "" {
			return v, nil
		}
	}
	return "", unauthorized("no credentials: send a token in the Authorization header or the " + a.cfg.Cookie + " cookie")
}

func unauthorized(msg string) error { return herald.Errorf(herald.EUNAUTHORIZED, "%s", msg) }

// isJWT tells a token from an API key: a compact JWS is three dot-separated parts, and keys
// have no dots.
func isJWT(s string) bool { return strings.Count(s, ".") == 2 }

// Dev is dev mode: the subscriber is whoever ?user= names and anyone may publish, all in one
// idempotency scope. It is only for a server bound to loopback.
type Dev struct{}

// Subscriber returns the ?user= parameter.
func (Dev) Subscriber(r *http.Request) (herald.Subscriber, error) {
	u := r.URL.Query().Get("user")
	if u == "" {
		return herald.Subscriber{}, herald.Errorf(herald.EUNAUTHORIZED, "dev mode: name the user with ?user=<id>")
	}
	if err := herald.ValidateUser(u); err != nil {
		return herald.Subscriber{}, err
	}
	return herald.Subscriber{User: u}, nil
}

// Publisher lets anyone publish.
func (Dev) Publisher(*http.Request) (herald.Publisher, error) { return herald.Publisher{}, nil }
