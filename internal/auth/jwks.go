package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// jwks is an identity provider's JSON Web Key Set, fetched at start, every refresh interval,
// and when a token names a key it does not hold: the provider rotated keys since the last fetch.
//
// The fetching is ours, not keyfunc's, for two reasons. A fetch caused by an unknown kid must
// not run under the request's context (a client that hangs up would abort it, and the rotation
// would go unseen until the next periodic refresh) nor behind a limiter wait that shares its
// deadline. And the keys are screened: only asymmetric public keys of a sound size, meant for
// verifying signatures, are kept.
type jwks struct {
	url     string
	client  *http.Client
	log     *slog.Logger
	store   *jwkset.MemoryJWKSet
	kf      keyfunc.Keyfunc
	unknown *rate.Limiter // fetches for unknown kids
	fetchMu sync.Mutex    // one fetch at a time
}

// maxJWKSBytes bounds a key set's size; real ones are a few kilobytes.
const maxJWKSBytes = 1 << 20

func newJWKS(url string, client *http.Client, log *slog.Logger, unknownEvery time.Duration) (*jwks, error) {
	store := jwkset.NewMemoryStorage()
	kf, err := keyfunc.New(keyfunc.Options{Storage: store})
	if err != nil {
		return nil, err
	}
	return &jwks{url: url, client: client, log: log, store: store, kf: kf,
		unknown: rate.NewLimiter(rate.Every(unknownEvery), 1)}, nil
}

// run refreshes the set every interval until ctx ends.
func (j *jwks) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := j.fetch(ctx); err != nil && ctx.Err() == nil {
				j.log.Warn("auth: JWKS refresh failed; keeping the keys already known", "url", j.url, "err", err)
			}
		}
	}
}

// fetch replaces the keys with the provider's current set. On any failure the old keys stay.
func (j *jwks) fetch(ctx context.Context) error {
	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	var set jwkset.JWKSMarshal
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJWKSBytes)).Decode(&set); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	var keys []jwkset.JWK
	for i, m := range set.Keys {
		k, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			j.log.Warn("auth: JWKS key skipped", "url", j.url, "index", i, "kid", m.KID, "err", err)
			continue
		}
		if why := unusable(k.Key()); why != "" {
			j.log.Warn("auth: JWKS key skipped", "url", j.url, "index", i, "kid", m.KID, "why", why)
			continue
		}
		if why := notForSignatures(m); why != "" {
			// Info, not Warn: providers publish encryption keys beside signing keys on purpose.
			j.log.Info("auth: JWKS key skipped", "url", j.url, "index", i, "kid", m.KID, "why", why)
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return errors.New("the set holds no usable key")
	}
	return j.store.KeyReplaceAll(ctx, keys)
}

// unusable says why a key from a set cannot verify tokens here, or "" if it can.
func unusable(key any) string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Sprintf("an RSA key of %d bits (at least 2048 are required)", k.N.BitLen())
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return fmt.Sprintf("a %T: only RSA, ECDSA and Ed25519 public keys verify tokens", key)
	}
	return ""
}

// notForSignatures says why a key's own metadata forbids verifying signatures with it, or ""
// if it does not: "use" (RFC 7517 §4.2) other than "sig", or "key_ops" (§4.3) present without
// "verify". Dropping such keys at fetch keeps them from both lookups, by kid and without one
// (keyfunc applies "use" only through a whitelist, and that would also drop keys with no "use").
func notForSignatures(m jwkset.JWKMarshal) string {
	if m.USE != "" && m.USE != jwkset.UseSig {
		return fmt.Sprintf("its use is %q, not signatures", m.USE)
	}
	// nil is an absent key_ops; an empty list allows no operation at all.
	if m.KEYOPS != nil && !slices.Contains(m.KEYOPS, jwkset.KeyOpsVerify) {
		return `its key_ops do not include "verify"`
	}
	return ""
}

// key returns the key a token names (kid), fetching the set once if it is unknown and the
// limiter allows. The fetch is detached from the request, so that the rotation is seen even if
// this client leaves; tokens that arrive meanwhile with unknown kids are refused at once.
func (j *jwks) key(ctx context.Context, t *jwt.Token) (any, error) {
	k, err := j.kf.KeyfuncCtx(ctx)(t)
	if err == nil || !errors.Is(err, jwkset.ErrKeyNotFound) || !j.unknown.Allow() {
		return k, err
	}
	if ferr := j.fetch(context.WithoutCancel(ctx)); ferr != nil {
		j.log.Warn("auth: JWKS fetch for an unknown key id failed", "url", j.url, "err", ferr)
		return nil, err
	}
	return j.kf.KeyfuncCtx(ctx)(t)
}

// all returns the keys of the set that may verify a token of algorithm alg that names no key:
// those whose "alg" member is absent or alg. keyfunc checks a key's alg only on the lookup by
// kid, so without this a key published for RS256 would also verify PS256 tokens.
func (j *jwks) all(ctx context.Context, alg string) ([]jwt.VerificationKey, error) {
	all, err := j.store.KeyReadAll(ctx)
	if err != nil {
		return nil, err
	}
	var keys []jwt.VerificationKey
	for _, k := range all {
		if a := k.Marshal().ALG; a != "" && a.String() != alg {
			continue
		}
		keys = append(keys, k.Key())
	}
	return keys, nil
}
