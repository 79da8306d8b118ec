package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhq/herald"
)

// asymmetric are the algorithms a JWKS may use. HMAC is never among them: a symmetric key
// published in a key set would let anyone who reads the set mint tokens.
var asymmetric = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// algorithms is the allowlist: exactly what the configured keys can verify. Everything else,
// "none" included, is refused before any key is looked at.
func algorithms(cfg *Config) ([]string, error) {
	var algs []string
	add := func(a ...string) {
		for _, x := range a {
			if !slices.Contains(algs, x) {
				algs = append(algs, x)
			}
		}
	}
	if len(cfg.Secret) > 0 {
		if len(cfg.Secret) < 32 {
			return nil, errors.New("auth: the JWT secret must be at least 32 bytes (HS256 is only as strong as its key)")
		}
		add("HS256")
	}
	for _, k := range cfg.PublicKeys {
		switch k := k.(type) {
		case *rsa.PublicKey:
			if k.N.BitLen() < 2048 {
				return nil, fmt.Errorf("auth: an RSA public key has %d bits; at least 2048 are required", k.N.BitLen())
			}
			add("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
		case *ecdsa.PublicKey:
			switch k.Curve {
			case elliptic.P256():
				add("ES256")
			case elliptic.P384():
				add("ES384")
			case elliptic.P521():
				add("ES512")
			default:
				return nil, errors.New("auth: an ECDSA public key is on an unsupported curve (P-256, P-384 or P-521)")
			}
		case ed25519.PublicKey:
			add("EdDSA")
		default:
			return nil, fmt.Errorf("auth: unsupported public key type %T", k)
		}
	}
	if cfg.JWKSURL != "" {
		add(asymmetric...)
	}
	return algs, nil
}

// scopes is a scope claim: a space-separated string (RFC 8693) or a list of strings (as some
// identity providers write scp).
type scopes []string

func (s *scopes) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		*s = strings.Fields(str)
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("scope must be a string or a list of strings")
	}
	*s = list
	return nil
}

// MarshalJSON writes the space-separated form.
func (s scopes) MarshalJSON() ([]byte, error) { return json.Marshal(strings.Join(s, " ")) }

type claims struct {
	jwt.RegisteredClaims
	Scope scopes `json:"scope,omitempty"`
	Scp   scopes `json:"scp,omitempty"`
}

// UnmarshalJSON reads a token's payload more strictly than encoding/json would. Member names
// match exactly: encoding/json folds case, so {"exp":1,"Exp":9999999999} would stretch a token's
// life and "SUB" would name its user, though no other JWT library reads them so. And exp, nbf and
// iat must be JSON numbers in a sane range: the library also takes numeric strings, a null would
// quietly skip the check it stands for, and a number too large for a time wraps into the past.
func (c *claims) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*c = claims{}
	for _, f := range []struct {
		name string
		dst  any
	}{
		{"iss", &c.Issuer}, {"sub", &c.Subject}, {"aud", &c.Audience}, {"jti", &c.ID},
		{"scope", &c.Scope}, {"scp", &c.Scp},
	} {
		if raw, ok := m[f.name]; ok {
			if err := json.Unmarshal(raw, f.dst); err != nil {
				return err
			}
		}
	}
	for _, f := range []struct {
		name string
		dst  **jwt.NumericDate
	}{
		{"exp", &c.ExpiresAt}, {"nbf", &c.NotBefore}, {"iat", &c.IssuedAt},
	} {
		if raw, ok := m[f.name]; ok {
			d, err := numericDate(raw)
			if err != nil {
				return unauthorized(fmt.Sprintf("the token's %s claim %s", f.name, err))
			}
			*f.dst = d
		}
	}
	return nil
}

// maxNumericDate bounds exp, nbf and iat: 2^53 s, the largest whole number a JSON parser is sure
// to read exactly (RFC 7493) and hundreds of millions of years away; time.Time overflows far
// beyond it.
const maxNumericDate = 1 << 53

// numericDate reads a NumericDate (RFC 7519 §2): a JSON number of seconds, maybe fractional. Its
// errors complete "the token's exp claim ..." and never quote the value.
func numericDate(raw json.RawMessage) (*jwt.NumericDate, error) {
	// raw is one well-formed JSON value (the payload decoded), so a leading '-' or digit makes
	// it a number and nothing else: not a string, boolean, null, object or list.
	if len(raw) == 0 || raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return nil, errors.New("is not a JSON number")
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.Abs(f) > maxNumericDate {
		return nil, errors.New("is out of range")
	}
	var d jwt.NumericDate
	if err := d.UnmarshalJSON(raw); err != nil {
		return nil, errors.New("is not a JSON number")
	}
	return &d, nil
}

// checkHeader refuses a header Herald cannot honour. The header's "crit" (RFC 7515 §4.1.11) lists
// extensions a recipient must understand or else reject the token; the library ignores crit, and
// Herald understands no extension, so any crit is refused. A malformed one (not a non-empty list
// of names) gets its own message, to help whoever makes the tokens.
func checkHeader(h map[string]any) error {
	crit, ok := h["crit"]
	if !ok {
		return nil
	}
	names, _ := crit.([]any)
	if len(names) == 0 {
		return unauthorized("the token's crit header is malformed: it must be a non-empty list of header names")
	}
	for _, n := range names {
		if s, _ := n.(string); s == "" {
			return unauthorized("the token's crit header is malformed: it must be a non-empty list of header names")
		}
	}
	return unauthorized("the token's header marks extensions as critical (crit); Herald supports none")
}

func (c *claims) has(scope string) bool {
	return slices.Contains(c.Scope, scope) || slices.Contains(c.Scp, scope)
}

// parse verifies a token and its claims. Its errors are safe to show the caller.
func (a *Authenticator) parse(ctx context.Context, token string) (*claims, error) {
	var c claims
	if _, err := a.parser.ParseWithClaims(token, &c, a.keyfunc(ctx)); err != nil {
		// Herald's own checks (the payload's decoding, the header's) already say what is wrong.
		var e *herald.Error
		if errors.As(err, &e) {
			return nil, e
		}
		return nil, unauthorized(reason(err))
	}
	return &c, nil
}

// reason says why a token was refused, without echoing any of it.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "the token is malformed"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "the token is not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "the token's issuer is not accepted"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "the token's audience is not accepted"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// The library names the claim: "<claim> claim is required".
		for _, c := range []struct{ claim, says string }{
			{"exp", "the token has no expiry (exp)"},
			{"iss", "the token's issuer is not accepted: it has none"},
			{"aud", "the token's audience is not accepted: it has none"},
		} {
			if strings.Contains(err.Error(), c.claim+" claim") {
				return c.says
			}
		}
		return "the token lacks a required claim"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "the token's signature or algorithm is not accepted"
	}
	return "the token is not valid"
}

// keyfunc picks the keys for a token's algorithm: the secret for HS256, else the JWKS key the
// token names (kid) or, without a kid, every public key known (of the set's, those published for
// no algorithm or for the token's). The parser has already refused
// algorithms outside the allowlist, and each key only verifies its own algorithm family, so an
// RSA public key can never serve as an HMAC secret.
func (a *Authenticator) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		// The parser calls the keyfunc before verifying anything: the one place to see the header.
		if err := checkHeader(t.Header); err != nil {
			return nil, err
		}
		if _, ok := t.Method.(*jwt.SigningMethodHMAC); ok {
			if len(a.cfg.Secret) == 0 {
				return nil, errors.New("no secret")
			}
			return a.cfg.Secret, nil
		}
		var set jwt.VerificationKeySet
		if a.jwks != nil {
			if _, ok := t.Header["kid"].(string); ok {
				key, err := a.jwks.key(ctx, t)
				if err == nil {
					return key, nil
				}
				if len(a.cfg.PublicKeys) == 0 {
					return nil, err
				}
			} else if keys, err := a.jwks.all(ctx, t.Method.Alg()); err == nil {
				set.Keys = append(set.Keys, keys...)
			}
		}
		for _, k := range a.cfg.PublicKeys {
			set.Keys = append(set.Keys, k)
		}
		if len(set.Keys) == 0 {
			return nil, errors.New("no key")
		}
		return set, nil
	}
}

// Token describes a token to mint.
type Token struct {
	User     string
	TTL      time.Duration
	Publish  bool // add the publish scope
	Scope    string
	Issuer   string
	Audience string
}

// Mint signs an HS256 token, for development, tests and backends that share the secret.
func Mint(secret []byte, t Token, now time.Time) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("no JWT secret configured (set --jwt-secret-file or HERALD_JWT_SECRET)")
	}
	if t.User == "" && !t.Publish {
		return "", errors.New("a token needs a user (--user), the publish scope (--publish), or both")
	}
	if t.User != "" {
		if err := herald.ValidateUser(t.User); err != nil {
			return "", err
		}
	}
	if t.TTL <= 0 {
		return "", errors.New("the token's lifetime must be positive")
	}
	c := claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject:   t.User,
		Issuer:    t.Issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(t.TTL)),
	}}
	if t.Audience != "" {
		c.Audience = jwt.ClaimStrings{t.Audience}
	}
	if t.Publish {
		scope := t.Scope
		if scope == "" {
			scope = DefaultPublishScope
		}
		c.Scope = scopes{scope}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

// ParsePublicKeys reads every public key of a PEM file: PKIX "PUBLIC KEY" blocks (RSA, ECDSA,
// Ed25519), PKCS#1 "RSA PUBLIC KEY" blocks, and the keys of "CERTIFICATE" blocks.
func ParsePublicKeys(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var key any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = cert.PublicKey
			}
		default:
			if strings.Contains(block.Type, "PRIVATE") {
				return nil, errors.New("the file holds a private key; give Herald only the public key")
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s block: %w", block.Type, err)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key found")
	}
	return keys, nil
}
