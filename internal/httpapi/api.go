// Package httpapi serves Herald's public API v1: publishing, the SSE stream, and the inbox.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/cors"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/metrics"
)

// Authenticator tells who is calling. internal/auth implements it, for JWTs and API keys and for
// dev mode. Errors are *herald.Error values with codes unauthorized or forbidden.
type Authenticator interface {
	// Subscriber returns the user whose feed the request may read.
	Subscriber(r *http.Request) (herald.Subscriber, error)
	// Publisher returns the publisher the request comes from.
	Publisher(r *http.Request) (herald.Publisher, error)
}

type denyAll struct{}

func (denyAll) Subscriber(*http.Request) (herald.Subscriber, error) {
	return herald.Subscriber{}, herald.Errorf(herald.EUNAUTHORIZED, "no authentication is configured")
}

func (denyAll) Publisher(*http.Request) (herald.Publisher, error) {
	return herald.Publisher{}, herald.Errorf(herald.EUNAUTHORIZED, "no authentication is configured")
}

// challenger is an Authenticator that names its scheme in the WWW-Authenticate header of a 401.
type challenger interface{ Challenge() string }

// Options configure the API. Zero limits take the defaults in Defaults.
type Options struct {
	// Push configures Web Push's endpoints (push.go); nil: push is off.
	Push *PushOptions

	Store  herald.Store
	Hub    *hub.Hub
	Auth   Authenticator
	Logger *slog.Logger
	// Metrics receives the API's measurements; a private set when nil.
	Metrics *metrics.Metrics
	// Bus, when set, must answer for the node to be ready.
	Bus interface{ Ping(context.Context) error }
	// Limiter, when set, admits or refuses each publish request by its publisher.
	Limiter *Limiter
	// Inflight, when set, bounds the publish work of all publishers at once.
	Inflight *Inflight
	// CORSOrigins may call the API from a browser, with credentials.
	CORSOrigins []string
	// OnState, when set, is told of every change of a user's state of notifications (read,
	// seen, archived), so that the user's open streams (on every node) can be told too.
	OnState func(herald.StateChange)
	// OnPreferences, when set, is told of every change of a user's preferences, so that the
	// user's open streams (on every node: API.PreferencesChanged) apply the new rules.
	OnPreferences func(user string)
	// MaxHeaderBytes bounds a request's headers; larger ones get a JSON 431. The server's own
	// limit must be above it (App sets twice), or Go answers first in plain text.
	MaxHeaderBytes int
	// NoPark keeps every stream on its handler's goroutine, as on systems without epoll. Parked
	// streams (park.go) need far less memory; this is for comparison and as a way out.
	NoPark bool
	// Hosts, when set (dev mode), limits the Host headers GuardHost lets through.
	Hosts *HostPolicy
	// MetricsOnAPI serves GET /metrics in Handler. Otherwise it answers 404 there, and only
	// OpsHandler (a listener of its own) serves the metrics: they show traffic and versions, which
	// are nobody's business who can merely reach the API.
	MetricsOnAPI bool

	Heartbeat    time.Duration // comment sent on an idle stream
	WriteTimeout time.Duration // deadline of each write to a stream
	Retry        time.Duration // reconnection delay hinted to clients
	ReplayPage   int           // notifications read from the store per replay step

	MaxBody       int64 // bytes of a publish request
	MaxBatchBody  int64 // bytes of a batch request
	MaxPayload    int64 // bytes of one notification's data
	MaxRecipients int   // users in one notification's "to"
	MaxBatch      int   // notifications in one batch
	MaxTypes      int   // types in one ?types= filter

	// MaxRequestRecipients bounds the users one request names, all its notifications together
	// (a broadcast counts one): what a request costs grows with it, not with the notifications.
	// A topic's subscribers count too, as the request is admitted.
	MaxRequestRecipients int
	// MaxPreferenceRules bounds the mute rules of one user, all channels together.
	MaxPreferenceRules int

	// TopicLimits bound subscriptions (zero fields: no limit).
	TopicLimits herald.TopicLimits
	// SelfSubscribe are the topic prefixes a subscriber may subscribe itself to; none when
	// empty. Leaving a topic is always allowed.
	SelfSubscribe []string
}

// Defaults are the limits used where Options leave zero.
var Defaults = Options{
	Heartbeat:     15 * time.Second,
	WriteTimeout:  10 * time.Second,
	Retry:         2 * time.Second,
	ReplayPage:    256,
	MaxBody:       1 << 20,
	MaxBatchBody:  16 << 20,
	MaxPayload:    64 << 10,
	MaxRecipients: 1000,
	MaxBatch:      1000,
	MaxTypes:      32,

	MaxRequestRecipients: 100_000,
	MaxPreferenceRules:   100,
}

// API holds the handlers' dependencies.
type API struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics.Metrics
	ids     *requestIDs
	// epoch is the store's (herald.Identity): every cursor and page position this node hands
	// out carries it, and one of another epoch is recognised.
	epoch string
	// published holds the publish counters by kind, resolved once.
	published [3]prometheus.Counter

	slowDisconnects atomic.Int64
	// disconnects counts the ends of streams by reason (herald_stream_disconnects_total).
	disconnects [hub.Closed]prometheus.Counter
	// catchUps bounds the streams reading the store at once (catchup.go).
	catchUps *slots

	parkOnce sync.Once
	parker   atomic.Pointer[parker]

	// bodies are publishBody values for reuse.
	bodies sync.Pool
	// afterPark, when set (by tests), runs on a stream's handler after the stream is parked and
	// before the handler returns.
	afterPark func(*conn)
	// prefs are the preferences of the users with streams open here (prefs.go).
	prefs *prefsCache
	// topicFrames are the shared frames of the last topic publish delivered, without and with
	// the event field (frame.go).
	topicFrames [2]atomic.Pointer[sharedFrame]
}

// New returns the API. Store and Hub are required.
func New(opts Options) *API {
	d := Defaults
	setDefault(&opts.Heartbeat, d.Heartbeat)
	setDefault(&opts.WriteTimeout, d.WriteTimeout)
	setDefault(&opts.Retry, d.Retry)
	setDefault(&opts.ReplayPage, d.ReplayPage)
	setDefault(&opts.MaxBody, d.MaxBody)
	setDefault(&opts.MaxBatchBody, d.MaxBatchBody)
	setDefault(&opts.MaxPayload, d.MaxPayload)
	setDefault(&opts.MaxRecipients, d.MaxRecipients)
	setDefault(&opts.MaxBatch, d.MaxBatch)
	setDefault(&opts.MaxTypes, d.MaxTypes)
	setDefault(&opts.MaxRequestRecipients, d.MaxRequestRecipients)
	setDefault(&opts.MaxPreferenceRules, d.MaxPreferenceRules)
	if opts.Auth == nil {
		opts.Auth = denyAll{} // fail closed
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	a := &API{opts: opts, log: opts.Logger, metrics: opts.Metrics, ids: newRequestIDs(), catchUps: newSlots(catchUpSlots)}
	if opts.Store != nil { // nil only in tests of routing
		a.epoch = opts.Store.Identity().Epoch
	}
	a.prefs = newPrefsCache(opts.Store, opts.Logger)
	a.prefs.onReload = a.preferencesReloaded
	if parkSupported && !opts.NoPark {
		a.startParker() // now, so that its goroutines are there from the start; Close stops them
	}
	for k, name := range []string{kindUnicast: metrics.KindUnicast, kindMulticast: metrics.KindMulticast, kindBroadcast: metrics.KindBroadcast} {
		a.published[k] = a.metrics.Published.WithLabelValues(name)
	}
	for _, d := range hub.Disconnects {
		a.disconnects[d] = a.metrics.StreamDisconnects.WithLabelValues(d.String())
	}
	return a
}

func setDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

// SlowDisconnects counts streams closed because their client did not keep up (reasons
// slow_consumer and write_timeout).
func (a *API) SlowDisconnects() int64 { return a.slowDisconnects.Load() }

// Routes lists every route the API serves, as "METHOD /pattern". The OpenAPI test checks the
// documentation against it.
func (a *API) Routes() []string {
	var rs []string
	for _, r := range a.routes() {
		rs = append(rs, r.pattern)
	}
	return rs
}

const (
	kindUnicast = iota
	kindMulticast
	kindBroadcast
)

// streamRoute is the pattern of the stream, which lasts as long as its client stays: it is not in
// the request-duration histogram.
const streamRoute = "GET /v1/stream"

type route struct {
	pattern string
	handler http.HandlerFunc
}

func (a *API) routes() []route {
	return []route{
		{"POST /v1/notifications", a.publish},
		{"POST /v1/notifications/batch", a.publishBatch},
		{streamRoute, a.stream},
		{"GET /v1/notifications", a.inbox},
		{"GET /v1/notifications/unread-count", a.unreadCount},
		{"POST /v1/notifications/read-all", a.readAll},
		{"POST /v1/notifications/seen", a.markSeen},
		{"POST /v1/notifications/archive-read", a.archiveRead},
		{"GET /v1/notifications/{id}", a.get},
		{"POST /v1/notifications/{id}/read", a.markRead},
		{"DELETE /v1/notifications/{id}/read", a.markUnread},
		{"POST /v1/notifications/{id}/archive", a.archive},
		{"DELETE /v1/notifications/{id}/archive", a.unarchive},
		{"GET /v1/topics", a.myTopics},
		{"DELETE /v1/topics/{topic}", a.deleteTopic},
		{"GET /v1/topics/{topic}/subscribers", a.subscribers},
		{"POST /v1/topics/{topic}/subscribers", a.subscribeMany},
		{"PUT /v1/topics/{topic}/subscribers/{user}", a.subscribe},
		{"DELETE /v1/topics/{topic}/subscribers/{user}", a.unsubscribe},
		{"GET /v1/preferences", a.myPreferences},
		{"PUT /v1/preferences", a.setMyPreferences},
		{"GET /v1/users/{user}/preferences", a.userPreferences},
		{"PUT /v1/users/{user}/preferences", a.setUserPreferences},
		{"PUT /v1/me/topics/{topic}", a.subscribeSelf},
		{"DELETE /v1/me/topics/{topic}", a.unsubscribeSelf},
		{"GET /v1/push/key", a.pushKey},
		{"GET /v1/push/subscriptions", a.pushSubscriptions},
		{"POST /v1/push/subscriptions", a.addPushSubscription},
		{"DELETE /v1/push/subscriptions", a.deletePushSubscription},
		{"GET /healthz", a.healthz},
		{"GET /readyz", a.readyz},
		{"GET /metrics", a.apiMetrics()},
	}
}

// apiMetrics is the API's GET /metrics: the metrics with MetricsOnAPI, else a JSON 404.
func (a *API) apiMetrics() http.HandlerFunc {
	if a.opts.MetricsOnAPI {
		return a.metrics.Handler().ServeHTTP
	}
	return func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, herald.Errorf(herald.ENOTFOUND, "metrics are not served on this port: scrape the --metrics-addr listener, or serve them here with --metrics-public"))
	}
}

// OpsHandler serves GET /metrics, /healthz and /readyz, for a listener of their own: there
// monitoring reaches them when the API's port is closed to it, or saturated with streams.
// Anything else gets a JSON 404 or 405.
func (a *API) OpsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.Handler())
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /readyz", a.readyz)
	return a.observe(a.routed(mux))
}

// Handler returns the API's http.Handler. Anything no route matches gets a JSON 404 or 405.
//
// Around the routes, from the outside in: panics become a JSON 500; headers over MaxHeaderBytes
// a JSON 431; CORS answers preflights for the allowed origins; and state-changing requests a
// browser sends from another origin (a cookie-authenticated CSRF) are refused unless that origin
// is allowed.
func (a *API) Handler() (http.Handler, error) {
	mux := http.NewServeMux()
	for _, r := range a.routes() {
		mux.HandleFunc(r.pattern, r.handler)
	}
	h := a.routed(mux)
	csrf := http.NewCrossOriginProtection()
	for _, o := range a.opts.CORSOrigins {
		if err := csrf.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("cors origin %q: %w", o, err)
		}
	}
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusForbidden, herald.EFORBIDDEN, "cross-origin request refused: this origin is not in the server's allowed origins")
	}))
	h = csrf.Handler(h)
	if len(a.opts.CORSOrigins) > 0 {
		allowed := map[string]bool{}
		for _, o := range a.opts.CORSOrigins {
			allowed[strings.ToLower(o)] = true
		}
		h = cors.New(cors.Options{
			// An exact match, not AllowedOrigins: that list reads "*" inside an entry as a wildcard.
			AllowOriginFunc:  func(origin string) bool { return allowed[strings.ToLower(origin)] },
			AllowCredentials: true,
			AllowedMethods:   []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete},
			AllowedHeaders:   []string{"Authorization", "Content-Type", "Last-Event-ID", "Idempotency-Key"},
			ExposedHeaders:   []string{"Idempotent-Replayed", "Retry-After"},
			MaxAge:           600,
		}).Handler(h)
	}
	inner := h
	return a.observe(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			// A bug in one handler must not take the process down or show a stack to a client.
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.logFor(r).Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", v)
				a.writeError(w, r, herald.Internal(nil, "panic"))
			}
		}()
		if max := a.opts.MaxHeaderBytes; max > 0 && headerSize(r) > max {
			writeJSONError(w, http.StatusRequestHeaderFieldsTooLarge, herald.ETOOLARGE, fmt.Sprintf("request headers are larger than %d bytes", max))
			return
		}
		inner.ServeHTTP(w, r)
	})), nil
}

// routed serves mux's routes, telling observe which one matched; what none matches gets
// unrouted's JSON answer.
func (a *API) routed(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		if pattern == "" {
			a.unrouted(mux, w, r)
			return
		}
		if ri := info(r); ri != nil {
			ri.route = pattern
		}
		mux.ServeHTTP(w, r)
	})
}

// headerSize approximates the bytes of the request line and headers as sent.
func headerSize(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n + len(r.Host) + 8
}

// unrouted answers what the mux would answer (404, or 405 with Allow) but in JSON.
func (a *API) unrouted(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{header: http.Header{}}
	mux.ServeHTTP(rec, r)
	if rec.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", rec.header.Get("Allow"))
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method "+r.Method+" is not allowed here")
		return
	}
	writeJSONError(w, http.StatusNotFound, herald.ENOTFOUND, "no such endpoint")
}

type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(code int)        { s.status = code }

// statusOf is the one mapping of error codes to HTTP statuses.
func statusOf(code string) int {
	switch code {
	case herald.EINVALID:
		return http.StatusBadRequest
	case herald.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case herald.EFORBIDDEN:
		return http.StatusForbidden
	case herald.ENOTFOUND:
		return http.StatusNotFound
	case herald.ECONFLICT:
		return http.StatusConflict
	case herald.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case herald.EUNSUPPORTED:
		return http.StatusUnsupportedMediaType
	case herald.ERATELIMITED:
		return http.StatusTooManyRequests
	case herald.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeError answers with err's status and JSON body. Only errors the client cannot be blamed
// for are logged; their detail never reaches the client.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := herald.ErrorCode(err)
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client left; nobody to answer
	}
	status := statusOf(code)
	var he *herald.Error
	deliberate := errors.As(err, &he) && he.Err == nil // a refusal by design, with no cause behind it
	switch {
	case status == http.StatusServiceUnavailable && deliberate:
		// Draining, shutting down, at the connection limit: expected, and counted in metrics.
		a.logFor(r).Debug("request refused", "method", r.Method, "path", r.URL.Path, "code", code, "reason", herald.ErrorMessage(err))
	case status == http.StatusServiceUnavailable:
		a.logFor(r).Warn("request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	case status >= 500:
		a.logFor(r).Error("request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		// The reason is the client's message, which never holds a credential; the query string,
		// which may, is not logged.
		a.logFor(r).Debug("request refused", "method", r.Method, "path", r.URL.Path, "code", code, "reason", herald.ErrorMessage(err))
	}
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	if c, ok := a.opts.Auth.(challenger); ok && status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", c.Challenge())
	}
	writeJSONError(w, status, code, herald.ErrorMessage(err))
}

func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // an API, not HTML: "<id>" stays readable
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internal","message":"internal error"}}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// Answers depend on who asks, and a cookie (unlike Authorization) does not keep a shared
	// cache from storing them.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	if a.opts.Hub.Draining() {
		a.writeError(w, r, herald.Errorf(herald.EUNAVAILABLE, "draining: this server is shutting down"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.opts.Store.Ping(ctx); err != nil {
		a.logFor(r).Warn("not ready", "err", err)
		a.writeError(w, r, herald.Errorf(herald.EUNAVAILABLE, "store unreachable"))
		return
	}
	if a.opts.Bus != nil {
		if err := a.opts.Bus.Ping(ctx); err != nil {
			a.logFor(r).Warn("not ready", "err", err)
			a.writeError(w, r, herald.Errorf(herald.EUNAVAILABLE, "bus unreachable"))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// splitList splits a comma-separated query value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
