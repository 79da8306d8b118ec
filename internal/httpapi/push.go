package httpapi

import (
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/heraldhq/herald"
)

// Web Push (docs/push.md): a browser's service worker subscribes with the push service of its
// browser, using the server's VAPID public key, and registers the subscription here; the
// outbox (internal/push) then pushes notifications to it. Each subscriber manages only their
// own subscriptions.

// PushOptions configure the Web Push endpoints; nil in Options turns them off (404).
type PushOptions struct {
	// PublicKey is the VAPID public key browsers subscribe with (base64url).
	PublicKey string
	// CheckEndpoint accepts or refuses a subscription's endpoint (push.Endpoints.Check).
	CheckEndpoint func(endpoint string) error
	// MaxSubscriptions bounds one user's subscriptions.
	MaxSubscriptions int
}

// maxPushBody is the bytes of a subscription: an endpoint of at most 1 KiB and two keys.
const maxPushBody = 4096

// pushSubscription is a subscription as the browser's PushSubscription.toJSON() writes it,
// as POST takes it.
type pushSubscription struct {
	Endpoint string `json:"endpoint"`
	// ExpirationTime is what the browser says (a time in ms, or null); Herald does not keep
	// it: a push service answers 404 or 410 for an expired subscription, which removes it.
	ExpirationTime any      `json:"expirationTime"`
	Keys           pushKeys `json:"keys"`
}

type pushKeys struct {
	P256DH string `json:"p256dh"`
	Auth   string `json:"auth"`
}

// pushEnabled answers 404 when push is off; when it returns false the request is answered.
func (a *API) pushEnabled(w http.ResponseWriter, r *http.Request) bool {
	if a.opts.Push == nil {
		a.writeError(w, r, herald.Errorf(herald.ENOTFOUND, "Web Push is not configured on this server (--vapid-private-key-file)"))
		return false
	}
	return true
}

// pushKey is GET /v1/push/key: the VAPID public key, which is public (no credential needed).
func (a *API) pushKey(w http.ResponseWriter, r *http.Request) {
	if !a.pushEnabled(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"public_key": a.opts.Push.PublicKey})
}

// addPushSubscription is POST /v1/push/subscriptions: 201 for a new browser, 200 for one
// registered before (its keys updated).
func (a *API) addPushSubscription(w http.ResponseWriter, r *http.Request) {
	if !a.pushEnabled(w, r) {
		return
	}
	caller, err := a.opts.Auth.Subscriber(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var req pushSubscription
	if err := decodeSmall(w, r, maxPushBody, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.opts.Push.CheckEndpoint(req.Endpoint); err != nil {
		a.writeError(w, r, prefixed("endpoint: ", err))
		return
	}
	if err := checkKey("keys.p256dh", req.Keys.P256DH, 65); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := checkKey("keys.auth", req.Keys.Auth, 16); err != nil {
		a.writeError(w, r, err)
		return
	}
	created, err := a.opts.Store.AddPushSubscription(r.Context(), herald.PushSubscription{
		User: caller.User, Endpoint: req.Endpoint, P256DH: req.Keys.P256DH, Auth: req.Keys.Auth,
	}, a.opts.Push.MaxSubscriptions)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]string{"endpoint": req.Endpoint})
}

// checkKey checks a subscription key: base64url (padded or not) of n bytes; the ECDH key must
// also be an uncompressed point (0x04 first), which is all the browser ever sends.
func checkKey(field, s string, n int) error {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	switch {
	case s == "":
		return herald.Errorf(herald.EINVALID, "%s is required", field)
	case err != nil || len(b) != n:
		return herald.Errorf(herald.EINVALID, "%s must be %d bytes in base64url, as the browser's PushSubscription gives it", field, n)
	case n == 65 && b[0] != 4:
		return herald.Errorf(herald.EINVALID, "%s must be an uncompressed P-256 public key", field)
	}
	return nil
}

// deletePushSubscription is DELETE /v1/push/subscriptions {"endpoint": …} (or ?endpoint=):
// 204, or 404 when the caller has no subscription of that endpoint.
func (a *API) deletePushSubscription(w http.ResponseWriter, r *http.Request) {
	if !a.pushEnabled(w, r) {
		return
	}
	caller, err := a.opts.Auth.Subscriber(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	endpoint := r.URL.Query().Get("endpoint")
	if endpoint == "" {
		var req struct {
			Endpoint string `json:"endpoint"`
		}
		if err := decodeSmall(w, r, maxPushBody, &req); err != nil {
			a.writeError(w, r, err)
			return
		}
		endpoint = req.Endpoint
	}
	if endpoint == "" {
		a.writeError(w, r, herald.Errorf(herald.EINVALID, "\"endpoint\" is required"))
		return
	}
	if err := a.opts.Store.DeletePushSubscription(r.Context(), caller.User, endpoint); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// pushSubscriptions is GET /v1/push/subscriptions: the caller's subscriptions, oldest first.
func (a *API) pushSubscriptions(w http.ResponseWriter, r *http.Request) {
	if !a.pushEnabled(w, r) {
		return
	}
	caller, err := a.opts.Auth.Subscriber(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	subs, err := a.opts.Store.PushSubscriptions(r.Context(), caller.User)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	// The keys are not listed: they are the browser's, and the list is for managing devices.
	type listed struct {
		Endpoint  string `json:"endpoint"`
		CreatedAt string `json:"created_at"`
	}
	out := make([]listed, len(subs))
	for i, s := range subs {
		out[i] = listed{Endpoint: s.Endpoint, CreatedAt: s.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000Z07:00")}
	}
	writeJSON(w, http.StatusOK, map[string]any{"subscriptions": out})
}
