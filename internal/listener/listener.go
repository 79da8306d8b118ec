// Package listener admits a server's connections. It keeps them under a limit set below the
// process's open-file limit, closes those that deliver no request in time, and makes room at the
// limit by closing a connection that is not serving a request (one that never sent a request
// first, then the longest idle keep-alive), so that sockets that send nothing cannot hold the
// descriptors every request, health check and store connection needs.
//
// A plain net.Listener that stops accepting at a limit (netutil.LimitListener) is not enough:
// the kernel keeps completing handshakes into the accept backlog, and every new connection
// behind it, a health check's included, waits there until an idle one times out.
package listener

import (
	"container/list"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/internal/metrics"
)

// Reasons, the values of the reason label of herald_connections_refused_total and
// herald_connections_dropped_total.
const (
	ReasonCap          = "cap"                   // refused: the limit reached, every connection serving a request
	ReasonAcceptError  = "accept_error"          // refused: accept failed (EMFILE, ENFILE, ...)
	ReasonFirstRequest = "first_request_timeout" // dropped: no request header within FirstRequest
	ReasonEvicted      = "evicted"               // dropped: closed, unused or idle, to admit a new one at the limit
)

// Options configure a Listener.
type Options struct {
	// Name is the listener's label in metrics and logs ("api", "metrics").
	Name string
	// Max is how many connections may be open at once; 0: no limit.
	Max int
	// FirstRequest is how long a new connection has to deliver its first request's header (a
	// TLS handshake included); 0: no limit.
	FirstRequest time.Duration
	// Refusal is written to a connection refused at the limit before it is closed: a plain-HTTP
	// answer. Nil closes it without a word (TLS, where plain text would be garbage).
	Refusal []byte
	// WarnEvery is the least time between two warnings in the log; 0: 10 s.
	WarnEvery time.Duration
	Logger    *slog.Logger
	Metrics   *metrics.Metrics // nil: a registry of its own, unexposed
}

// Listener wraps a net.Listener. Its ConnState and ConnContext are the http.Server's hooks of the
// same names and Handler wraps its handler: they tell the Listener which connections are serving
// requests, so set all three.
type Listener struct {
	inner net.Listener
	opts  Options
	log   *slog.Logger
	warn  *warner

	open                          prometheus.Gauge
	refusedCap, refusedAccept     prometheus.Counter
	droppedFirstReq, droppedEvict prometheus.Counter

	mu     sync.Mutex
	count  int       // open connections (mu)
	fresh  list.List // *conn that have not delivered a request yet, oldest first (mu)
	idle   list.List // *conn between two requests, longest idle first (mu)
	closed atomic.Bool
}

// New wraps inner.
func New(inner net.Listener, opts Options) *Listener {
	if opts.WarnEvery <= 0 {
		opts.WarnEvery = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	m := opts.Metrics
	l := &Listener{
		inner:           inner,
		opts:            opts,
		log:             opts.Logger,
		open:            m.ConnectionsOpen.WithLabelValues(opts.Name),
		refusedCap:      m.ConnectionsRefused.WithLabelValues(opts.Name, ReasonCap),
		refusedAccept:   m.ConnectionsRefused.WithLabelValues(opts.Name, ReasonAcceptError),
		droppedFirstReq: m.ConnectionsDropped.WithLabelValues(opts.Name, ReasonFirstRequest),
		droppedEvict:    m.ConnectionsDropped.WithLabelValues(opts.Name, ReasonEvicted),
	}
	l.warn = &warner{every: opts.WarnEvery, emit: l.emitWarning}
	return l
}

// Accept waits for a connection and admits it: at the limit it first closes a connection that
// is not serving a request, or, when every one is, refuses the new one and waits for another.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.inner.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || l.closed.Load() {
				return nil, err
			}
			l.refusedAccept.Inc()
			l.warn.note(ReasonAcceptError, err)
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of descriptors although under the limit: something else holds more than
				// its reserve. Free one for the next accept (http.Server retries after a pause).
				if v := l.victim(); v != nil {
					l.evict(v)
				}
			}
			return nil, err
		}
		c, victim := l.admit(nc)
		if victim != nil {
			l.evict(victim)
		}
		if c == nil {
			l.refuse(nc)
			continue
		}
		return c, nil
	}
}

// admit registers nc, choosing a victim to close when the limit is reached; nil when nc must be
// refused.
func (l *Listener) admit(nc net.Conn) (c, victim *conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.opts.Max > 0 && l.count >= l.opts.Max {
		if victim = l.victimLocked(); victim == nil {
			return nil, nil
		}
	}
	c = &conn{Conn: nc, l: l}
	l.count++
	c.elem = l.fresh.PushBack(c)
	if l.opts.FirstRequest > 0 {
		c.timer = time.AfterFunc(l.opts.FirstRequest, c.expire)
	}
	l.open.Inc()
	return c, victim
}

// victim takes the connection to close first to make room, out of its list; nil if every
// connection is serving a request.
func (l *Listener) victim() *conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.victimLocked()
}

func (l *Listener) victimLocked() *conn {
	// One that never sent a request costs a client nothing to open; one idle between requests
	// was at least used, and its client reconnects if it needs it again.
	for _, q := range []*list.List{&l.fresh, &l.idle} {
		if e := q.Front(); e != nil {
			c := e.Value.(*conn)
			q.Remove(e)
			c.elem = nil
			c.state.Store(stateDropped)
			return c
		}
	}
	return nil
}

// evict closes c, chosen by victim. (Counted first, and the place given back before the socket
// closes, so that whoever sees the close sees the counts too.)
func (l *Listener) evict(c *conn) {
	l.droppedEvict.Inc()
	c.Close()
	l.warn.note(ReasonEvicted, nil)
}

// refuse answers a connection refused at the limit, if it can without waiting, and closes it.
func (l *Listener) refuse(nc net.Conn) {
	l.refusedCap.Inc()
	l.warn.note(ReasonCap, nil)
	if len(l.opts.Refusal) > 0 {
		// A new socket's send buffer is empty: the write does not wait. The deadline only
		// guarantees that the accept loop never does.
		_ = nc.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
		_, _ = nc.Write(l.opts.Refusal)
	}
	nc.Close()
}

// Close stops accepting; the connections already accepted stay open (the http.Server closes
// them), and a warning still held back is logged now.
func (l *Listener) Close() error {
	l.closed.Store(true)
	err := l.inner.Close()
	l.warn.close()
	return err
}

// Addr is the address listened on.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Open is the number of connections open.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count
}

// ConnState is the http.Server's ConnState hook: it sees HTTP/1 connections start requests,
// go idle between them and be hijacked (parked streams).
func (l *Listener) ConnState(nc net.Conn, s http.ConnState) {
	c := unwrap(nc)
	if c == nil || c.l != l {
		return
	}
	switch s {
	case http.StateActive, http.StateHijacked:
		l.active(c)
	case http.StateIdle:
		l.idled(c)
	}
}

type connKey struct{}

// ConnContext is the http.Server's ConnContext hook: it lets Handler find the connection of a
// request, which HTTP/2 does not report to ConnState.
func (l *Listener) ConnContext(ctx context.Context, nc net.Conn) context.Context {
	if c := unwrap(nc); c != nil && c.l == l {
		return context.WithValue(ctx, connKey{}, c)
	}
	return ctx
}

// Handler marks the connection of each request as serving one. HTTP/1 connections are already
// marked by ConnState; this catches HTTP/2's first request.
func (l *Listener) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(connKey{}).(*conn); ok && c.state.Load() == stateFresh {
			l.active(c)
		}
		h.ServeHTTP(w, r)
	})
}

func (l *Listener) active(c *conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch c.state.Load() {
	case stateFresh:
		if c.timer != nil {
			c.timer.Stop()
		}
		l.fresh.Remove(c.elem)
	case stateIdle:
		l.idle.Remove(c.elem)
	default:
		return
	}
	c.elem = nil
	c.state.Store(stateActive)
}

func (l *Listener) idled(c *conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.state.Load() != stateActive {
		return
	}
	c.state.Store(stateIdle)
	c.elem = l.idle.PushBack(c)
}

// release forgets c, on its Close.
func (l *Listener) release(c *conn) {
	l.mu.Lock()
	switch c.state.Load() {
	case stateFresh:
		l.fresh.Remove(c.elem)
	case stateIdle:
		l.idle.Remove(c.elem)
	}
	c.elem = nil
	c.state.Store(stateClosed)
	l.count--
	l.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
	}
	l.open.Dec()
}

// emitWarning logs what the warner counted since its last warning.
func (l *Listener) emitWarning(counts map[string]int, lastErr error, since time.Duration) {
	args := []any{"listener", l.opts.Name, "limit", l.opts.Max, "open", l.Open(),
		"refused", counts[ReasonCap], "evicted", counts[ReasonEvicted], "accept_errors", counts[ReasonAcceptError]}
	if lastErr != nil {
		args = append(args, "last_accept_error", lastErr.Error())
	}
	args = append(args, "during", since.Round(time.Millisecond))
	msg := "too many connections: new ones refused, or unused and idle ones closed to admit them (herald_connections_*)"
	if counts[ReasonAcceptError] > 0 {
		msg = "accepting connections failed: the process is short of file descriptors (or another accept error); " +
			"is the open-file limit too low for the connection limit and the reserve?"
	}
	l.log.Warn(msg, args...)
}

// Connection states.
const (
	stateFresh   int32 = iota // accepted, no request yet: in l.fresh
	stateActive               // serving a request, a stream, or hijacked
	stateIdle                 // between two requests: in l.idle
	stateDropped              // chosen to be closed
	stateClosed
)

// conn is an admitted connection; its Close gives its place back.
type conn struct {
	net.Conn
	l     *Listener
	timer *time.Timer   // the first request's deadline; nil without one
	state atomic.Int32  // written under l.mu; read without it by Handler
	elem  *list.Element // in l.fresh or l.idle (l.mu)
	once  sync.Once
	err   error
}

// expire closes c if it has still not delivered a request.
func (c *conn) expire() {
	l := c.l
	l.mu.Lock()
	if c.state.Load() != stateFresh {
		l.mu.Unlock()
		return
	}
	l.fresh.Remove(c.elem)
	c.elem = nil
	c.state.Store(stateDropped)
	l.mu.Unlock()
	l.droppedFirstReq.Inc()
	c.Close()
}

// Close gives the connection's place back and closes it, once.
func (c *conn) Close() error {
	c.once.Do(func() {
		c.l.release(c)
		c.err = c.Conn.Close()
	})
	return c.err
}

// SyscallConn exposes the socket, for parked streams' epoll (internal/httpapi).
func (c *conn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("listener: not a socket")
	}
	return sc.SyscallConn()
}

// CloseWrite half-closes the connection, as net/http does before closing one it answered
// with an error.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// unwrap finds the admitted connection under nc (a *tls.Conn for HTTPS).
func unwrap(nc net.Conn) *conn {
	for {
		switch v := nc.(type) {
		case *conn:
			return v
		case interface{ NetConn() net.Conn }:
			nc = v.NetConn()
		default:
			return nil
		}
	}
}

// Refusal503 is a plain-HTTP answer for Options.Refusal: 503 with the API's JSON error body.
func Refusal503() []byte {
	body := `{"error":{"code":"unavailable","message":"too many connections; retry later"}}`
	return []byte("HTTP/1.1 503 Service Unavailable\r\n" +
		"Content-Type: application/json\r\n" +
		"Retry-After: 1\r\n" +
		"Connection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// warner rate-limits a warning: the first event is logged at once, later ones at most once per
// every, summed; a timer logs what was held back when the window ends.
type warner struct {
	every time.Duration
	emit  func(counts map[string]int, lastErr error, since time.Duration)

	mu      sync.Mutex
	last    time.Time      // of the last warning
	first   time.Time      // of the first event counted
	counts  map[string]int // events since the last warning
	lastErr error
	timer   *time.Timer // pending flush; nil if none
	closed  bool
}

func (w *warner) note(reason string, err error) {
	w.mu.Lock()
	if w.counts == nil {
		w.counts, w.first = map[string]int{}, time.Now()
	}
	w.counts[reason]++
	if err != nil {
		w.lastErr = err
	}
	if w.timer != nil || w.closed {
		w.mu.Unlock()
		return
	}
	if wait := w.every - time.Since(w.last); wait > 0 {
		w.timer = time.AfterFunc(wait, w.flush)
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	w.flush()
}

// flush logs the counts held, if any.
func (w *warner) flush() {
	w.mu.Lock()
	w.timer = nil
	if len(w.counts) == 0 {
		w.mu.Unlock()
		return
	}
	counts, lastErr, since := w.counts, w.lastErr, time.Since(w.first)
	w.counts, w.lastErr, w.last = nil, nil, time.Now()
	w.mu.Unlock()
	w.emit(counts, lastErr, since)
}

// close logs at once what is held back, and stops the timer.
func (w *warner) close() {
	w.mu.Lock()
	w.closed = true
	t := w.timer
	w.mu.Unlock()
	if t != nil && t.Stop() {
		w.flush()
	}
}
