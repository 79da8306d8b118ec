package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"
)

// requestInfo travels with a request: its id, the logger that names it, and the route the mux
// matched (filled in by the innermost handler, read by the outermost).
type requestInfo struct {
	id    string
	base  *slog.Logger
	log   *slog.Logger // base with the request id, made on first use (logger)
	route string
	start time.Time
	// parked is set when the stream handler hands its connection to the parker, which logs and
	// counts the request when the stream ends.
	parked bool
}

type infoKey struct{}

// logger returns the request's logger. It is made on first use: a logger With an attribute
// formats it at once, and most requests (every stream of a reconnect storm) log nothing.
func (ri *requestInfo) logger() *slog.Logger {
	if ri.log == nil {
		ri.log = ri.base.With("request_id", ri.id)
	}
	return ri.log
}

func info(r *http.Request) *requestInfo {
	if ri, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
		return ri
	}
	return nil
}

// logFor returns the logger of r: the API's, with the request id.
func (a *API) logFor(r *http.Request) *slog.Logger {
	if ri := info(r); ri != nil {
		return ri.logger()
	}
	return a.log
}

// requestIDs are a random per-process prefix and a counter: unique without a syscall each.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	b := make([]byte, 4)
	rand.Read(b)
	return &requestIDs{prefix: hex.EncodeToString(b)}
}

func (g *requestIDs) next() string {
	return g.prefix + "-" + strconv.FormatUint(g.n.Add(1), 36)
}

// A request id from a proxy (X-Request-ID) is kept if it is short and plain, so one id follows
// a request through every log; anything else is replaced.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// recorder notes the status and size of a response. Unwrap lets http.ResponseController reach
// the connection underneath (flushes and write deadlines of streams).
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// quietRoutes are logged at debug level: probes and scrapes arrive every few seconds.
var quietRoutes = map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /metrics": true}

// observe gives every request an id (the X-Request-ID response header and every log line about
// it), logs one line when it ends, and counts it. The stream route is counted but not timed.
func (a *API) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-ID")
		if !requestIDPattern.MatchString(id) {
			id = a.ids.next()
		}
		ri := &requestInfo{id: id, base: a.log, route: "other", start: start}
		w.Header().Set("X-Request-ID", id)
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), infoKey{}, ri)))
		if ri.parked {
			return
		}

		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		elapsed := time.Since(start)
		a.metrics.Requests.WithLabelValues(ri.route, strconv.Itoa(status)).Inc()
		if ri.route != streamRoute {
			a.metrics.RequestDuration.WithLabelValues(ri.route).Observe(elapsed.Seconds())
		}
		level := slog.LevelInfo
		if quietRoutes[ri.route] {
			level = slog.LevelDebug
		}
		// The path, never the query string: it may hold a token (?access_token=).
		if !a.log.Enabled(r.Context(), level) {
			return
		}
		ri.logger().Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path, "route", ri.route,
			"status", status, "bytes", rec.bytes, "duration", elapsed.Round(time.Microsecond), "remote", r.RemoteAddr)
	})
}
