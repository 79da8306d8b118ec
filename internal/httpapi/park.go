package httpapi

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/sse"
)

// Parking: most streams are idle most of the time, and an idle stream served the usual way costs
// a goroutine (with its stack grown by the request's handling), net/http's read and write
// buffers, a ticker and a write buffer: about 35 KB. A stream over plain HTTP/1 is instead
// hijacked from net/http before its headers are written, caught up from the store by its
// handler as before, and then parked: the handler returns, and the stream is left as a small
// struct in a shard. Each shard has
//
//   - a poller goroutine, blocked in epoll_wait on the shard's connections, which notices a
//     client that hangs up (or, after a write that did not fit, room to write again);
//   - a writer goroutine, which the hub wakes when events are queued for one of the shard's
//     streams. It writes them without blocking: what the socket does not take waits for the
//     poller to report room, and meanwhile new events wait in the subscription's bounded queue.
//     Once a second it sends heartbeats, ends streams whose credentials expired, and ends those
//     whose writes stayed blocked too long (the slow-consumer rule of the goroutine path).
//
// A stream that must read the store (its queue overflowed, or the hub skipped ahead past a gap)
// gets a goroutine for as long as that takes, then is parked again. Streams over TLS or HTTP/2,
// and all streams on systems without epoll, keep their handler goroutine (conn.run).

// parkState is a parked stream's place in its shard. Fields marked (mu) are guarded by the
// shard's mutex; the others belong to whoever services the stream: the shard's writer, or the
// catch-up goroutine while busy.
type parkState struct {
	shard *shard
	raw   syscall.RawConn
	fd    int
	idx   int // in shard.all (mu)

	scheduled bool // in shard.ready (mu)
	busy      bool // a catch-up goroutine has the stream (mu)
	gone      bool // closed (mu)
	readable  bool // the poller saw input or a hang-up (mu)
	writable  bool // the poller saw room to write since the last write began (mu)
	blocked   bool // pending is not empty (mu)

	pending   []byte // the part of the last write the socket did not take
	since     int64  // when pending began (unix ns)
	lastWrite int64  // unix ns

	// The stream's request, for the log line at its end, and when its credentials expire.
	reqID   string
	start   time.Time
	remote  string
	expires time.Time
}

// hijack takes a plain HTTP/1 connection from net/http, for the stream to be parked once caught
// up, and appends the response head (status, and the headers set so far) to c.buf. It returns
// nil where parking does not apply; the stream is then served through w.
func (a *API) hijack(w http.ResponseWriter, r *http.Request) net.Conn {
	if !parkSupported || a.opts.NoPark || r.ProtoMajor != 1 || r.TLS != nil {
		return nil
	}
	nc, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil
	}
	if _, ok := nc.(syscall.Conn); !ok {
		// Not a socket we can poll (a wrapped listener): serve it on its own goroutine.
		nc.Close()
		return nil
	}
	// Deadlines net/http set (ReadTimeout) must not outlive it; the bytes a client sent after
	// its request (none, for an SSE client) are dropped with net/http's reader.
	_ = nc.SetDeadline(time.Time{})
	return nc
}

// appendHead appends the response head of a hijacked stream. The body is delimited by the
// connection's end (Connection: close), so events are written as they are, without chunking.
func appendHead(dst []byte, h http.Header) []byte {
	dst = append(dst, "HTTP/1.1 200 OK\r\n"...)
	var b bytes.Buffer
	_ = h.Write(&b) // sanitises values: no header injection
	dst = append(dst, b.Bytes()...)
	dst = append(dst, "Date: "...)
	dst = time.Now().UTC().AppendFormat(dst, http.TimeFormat)
	return append(dst, "\r\nConnection: close\r\n\r\n"...)
}

// parker holds the shards. It starts with the first parked stream and stops with API.Close.
type parker struct {
	api    *API
	shards []*shard
	ctx    context.Context // cancelled by close: ends catch-ups' store reads
	cancel context.CancelFunc
	done   chan struct{}
	loops  sync.WaitGroup // writers and pollers
	jobs   sync.WaitGroup // catch-ups

	mu     sync.Mutex
	closed bool
}

func (a *API) startParker() *parker {
	a.parkOnce.Do(func() {
		p := &parker{api: a, done: make(chan struct{})}
		p.ctx, p.cancel = context.WithCancel(context.Background())
		n := max(2, runtime.GOMAXPROCS(0))
		for range n {
			s, err := newShard(p)
			if err != nil {
				a.log.Warn("streams cannot be parked; each keeps a goroutine", "err", err)
				p.stop()
				return
			}
			p.shards = append(p.shards, s)
		}
		for _, s := range p.shards {
			p.loops.Add(2)
			go s.write()
			go s.poll()
		}
		a.parker.Store(p)
	})
	return a.parker.Load()
}

// park hands a caught-up, hijacked stream to a shard. On false the caller still owns it.
func (a *API) park(c *conn) bool {
	p := a.startParker()
	if p == nil {
		return false
	}
	raw, err := c.nc.(syscall.Conn).SyscallConn()
	if err != nil {
		return false
	}
	fd := -1
	if raw.Control(func(f uintptr) { fd = int(f) }) != nil || fd < 0 {
		return false
	}
	if err := c.nc.SetWriteDeadline(time.Time{}); err != nil {
		return false
	}
	s := p.shards[fd%len(p.shards)]
	// What the handler held for net/http and its writes is not needed any more.
	c.w, c.rc, c.buf, c.live = nil, nil, nil, nil
	st := &c.park
	st.shard, st.raw, st.fd, st.lastWrite = s, raw, fd, time.Now().UnixNano()
	// Before the shard has it: from then on, a catch-up may set its own.
	c.sub.OnOverflow(nil)
	if !s.add(c) {
		c.park.shard = nil
		c.sub.OnOverflow(c.overflowed)
		return false
	}
	c.sub.OnNotify(func() { s.schedule(c) })
	return true
}

// Close stops the parker: parked streams are closed, and its goroutines end; and the reloader
// of preferences (prefs.go).
func (a *API) Close() {
	if p := a.parker.Load(); p != nil {
		p.stop()
	}
	a.prefs.stop()
}

// sweepEvery is how often the writers sweep: twice per heartbeat, at most once a second.
func (p *parker) sweepEvery() time.Duration {
	return min(time.Second, p.api.opts.Heartbeat/2)
}

func (p *parker) stop() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	close(p.done)
	p.cancel()
	for _, s := range p.shards {
		s.poller.wake()
	}
	p.loops.Wait()
	for _, s := range p.shards {
		s.mu.Lock()
		all := slices.Clone(s.all)
		s.mu.Unlock()
		for _, c := range all {
			s.close(c, hub.Shutdown, nil)
		}
	}
	p.jobs.Wait()
	for _, s := range p.shards {
		s.poller.close()
	}
}

type shard struct {
	p      *parker
	poller *poller

	mu    sync.Mutex
	byFD  map[int]*conn
	all   []*conn
	ready []*conn
	wake  chan struct{}

	// The writer's scratch, reused for every stream it services.
	raw    *rawWriter
	buf    []byte
	events []*hub.Event
	live   []time.Time
	input  []byte
}

func newShard(p *parker) (*shard, error) {
	pl, err := newPoller()
	if err != nil {
		return nil, err
	}
	return &shard{p: p, poller: pl, byFD: map[int]*conn{}, wake: make(chan struct{}, 1), input: make([]byte, 512), raw: newRawWriter()}, nil
}

func (s *shard) add(c *conn) bool {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if s.p.closed {
		return false
	}
	s.mu.Lock()
	c.park.idx = len(s.all)
	s.all = append(s.all, c)
	s.byFD[c.park.fd] = c // before the poller can report on it
	s.mu.Unlock()
	if err := s.poller.add(c.park.raw); err != nil {
		s.mu.Lock()
		s.remove(c)
		s.mu.Unlock()
		return false
	}
	return true
}

// remove takes c out of the shard's tables. s.mu is held.
func (s *shard) remove(c *conn) {
	st := &c.park
	if s.byFD[st.fd] == c {
		delete(s.byFD, st.fd)
	}
	last := len(s.all) - 1
	if i := st.idx; i <= last && s.all[i] == c {
		s.all[i] = s.all[last]
		s.all[i].park.idx = i
		s.all[last] = nil
		s.all = s.all[:last]
	}
}

// schedule queues c for the writer; called by the hub (under its lock) and by the poller.
func (s *shard) schedule(c *conn) {
	s.mu.Lock()
	s.scheduleLocked(c)
	s.mu.Unlock()
}

func (s *shard) scheduleLocked(c *conn) {
	st := &c.park
	if st.scheduled || st.gone {
		return
	}
	st.scheduled = true
	s.ready = append(s.ready, c)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// onPoll records what the poller saw of fd. s.mu is held.
func (s *shard) onPoll(fd int, input, output bool) {
	c := s.byFD[fd]
	if c == nil {
		return // closed since
	}
	st := &c.park
	if input {
		st.readable = true
	}
	if output {
		st.writable = true
	}
	if input || (output && st.blocked) {
		s.scheduleLocked(c)
	}
}

// write is the shard's writer goroutine.
func (s *shard) write() {
	defer s.p.loops.Done()
	tick := time.NewTicker(s.p.sweepEvery())
	defer tick.Stop()
	var batch []*conn
	for {
		select {
		case <-s.p.done:
			return
		case now := <-tick.C:
			s.sweep(now)
		case <-s.wake:
		}
		s.mu.Lock()
		batch, s.ready = s.ready, batch[:0]
		s.mu.Unlock()
		for i, c := range batch {
			s.service(c)
			batch[i] = nil
		}
	}
}

// service writes what is queued for c.
func (s *shard) service(c *conn) {
	st := &c.park
	s.mu.Lock()
	st.scheduled = false
	if st.busy || st.gone {
		s.mu.Unlock()
		return
	}
	readable := st.readable
	st.readable = false
	s.mu.Unlock()
	if readable {
		if err := s.drainInput(c); err != nil {
			s.close(c, hub.ClientGone, nil)
			return
		}
	}
	if c.sub.Ended() {
		s.close(c, c.sub.Reason(), nil)
		return
	}
	if len(st.pending) > 0 {
		if !s.send(c, st.pending) {
			return
		}
		if len(st.pending) > 0 {
			// Still waiting for room: events wait in the queue, within the stream's buffer.
			s.judge(c, time.Now().UnixNano())
			return
		}
	}
	events, overflowed := c.sub.Take(s.events)
	s.events = events
	if overflowed {
		s.catchUp(c, nil) // the queue missed events; the store has them
		return
	}
	if len(events) == 0 {
		return
	}
	c.buf, c.live = s.buf[:0], s.live[:0]
	gap, _ := c.deliver(events) // parked: deliver never writes
	out, live := c.buf, c.live
	c.buf, c.live = nil, nil
	s.live = live[:0]
	if cap(out) <= 1<<20 {
		s.buf = out[:0]
	}
	if gap {
		s.catchUp(c, out)
		return
	}
	if len(out) > 0 && s.send(c, out) {
		c.live = live
		c.written()
		c.live = nil
	}
}

// send writes b without blocking; what the socket does not take becomes st.pending. It reports
// false if the stream was closed.
func (s *shard) send(c *conn, b []byte) bool {
	st := &c.park
	s.mu.Lock()
	st.writable = false
	s.mu.Unlock()
	n, err := s.raw.rawWrite(st.raw, b)
	if err != nil {
		s.close(c, hub.ClientGone, err)
		return false
	}
	now := time.Now().UnixNano()
	st.lastWrite = now
	before := len(st.pending)
	switch {
	case n == len(b):
		st.pending = nil
	case len(st.pending) > 0 && &b[0] == &st.pending[0]:
		st.pending = b[n:]
	default:
		st.pending = bytes.Clone(b[n:])
		st.since = now
	}
	if len(st.pending) != before {
		// What the socket has not taken counts against the stream's buffer.
		c.sub.Unwritten(len(st.pending))
	}
	s.mu.Lock()
	st.blocked = len(st.pending) > 0
	again := st.blocked && st.writable // room came while writing: the poller's report was seen
	s.mu.Unlock()
	if again {
		s.schedule(c)
	}
	return true
}

// drainInput reads what the client sent (an SSE client sends nothing after its request) and
// reports an error once it has hung up.
func (s *shard) drainInput(c *conn) error {
	for range 64 {
		n, err := rawRead(c.park.raw, s.input)
		switch {
		case err != nil:
			return err
		case n == 0:
			return errClientGone
		case n < 0:
			return nil // nothing more for now
		}
	}
	return errors.New("client keeps sending")
}

var errClientGone = errors.New("client closed the connection")

// heartbeatFrame is the comment that keeps proxies from timing out an idle stream.
var heartbeatFrame = sse.AppendComment(nil, "")

// expiredFrame tells the client its credentials expired.
var expiredFrame, _ = sse.AppendEvent(nil, "", ExpiredType, []byte(`{"message":"your credentials expired; reconnect with fresh ones"}`))

// judge applies the slow-consumer policy to a parked stream whose socket has not taken all it
// was given (slow.go), and ends the stream if the policy says so. It reports whether it did.
func (s *shard) judge(c *conn, now int64) bool {
	d, _ := s.p.api.verdict(now, c.park.since, c.sub.Overflowing())
	if d == 0 {
		return false
	}
	s.close(c, d, errSlow)
	return true
}

// sweep runs once a second on the writer: heartbeats, expired credentials, slow clients.
func (s *shard) sweep(now time.Time) {
	s.mu.Lock()
	all := slices.Clone(s.all)
	s.mu.Unlock()
	nowNs := now.UnixNano()
	heartbeat := int64(s.p.api.opts.Heartbeat)
	for _, c := range all {
		st := &c.park
		s.mu.Lock()
		skip := st.busy || st.gone
		s.mu.Unlock()
		switch {
		case skip:
		case !st.expires.IsZero() && now.After(st.expires):
			if len(st.pending) == 0 {
				_, _ = s.raw.rawWrite(st.raw, c.appendControl(nil, expiredFrame))
			}
			s.close(c, hub.CredentialsExpired, nil)
		case len(st.pending) > 0:
			// A write the client has not taken: the policy says for how long it may not.
			if !s.judge(c, nowNs) {
				s.send(c, st.pending)
			}
		case nowNs-st.lastWrite >= heartbeat-int64(s.p.sweepEvery()):
			// The next sweep would be late: a proxy times out an idle stream at its read timeout,
			// which operators set just above the heartbeat.
			s.send(c, heartbeatFrame)
		}
	}
}

// catchUp gives c a goroutine that writes out (and what was pending) and then reads the store
// from the stream's cursor, as the handler did; then parks it again. The goroutine is started
// only with one of the server's catch-up slots (catchup.go); until one is free the stream waits,
// busy, its new events in its bounded queue.
func (s *shard) catchUp(c *conn, out []byte) {
	st := &c.park
	s.mu.Lock()
	if st.gone {
		s.mu.Unlock()
		return
	}
	st.busy = true
	s.mu.Unlock()
	first := slices.Concat(st.pending, out)
	st.pending = nil
	c.sub.Unwritten(len(first))
	// While it writes blocking, a client that stops reading is ended as on the goroutine path:
	// by the write deadline, or sooner when its queue overflows meanwhile (the cut-off).
	c.arm()
	c.sub.OnOverflow(c.overflowed)
	slots := s.p.api.catchUps
	slots.start(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if st.gone {
			slots.release() // closed while it waited (the parker stopping, or the client gone)
			return
		}
		s.p.jobs.Add(1) // under s.mu: either before the parker's stop closes c, or not at all
		go s.runCatchUp(c, first)
	})
}

// runCatchUp is a parked stream's catch-up goroutine; it holds a catch-up slot.
func (s *shard) runCatchUp(c *conn, first []byte) {
	st := &c.park
	defer s.p.jobs.Done()
	defer s.p.api.catchUps.release()
	defer func() {
		c.sub.OnOverflow(nil)
		c.disarm()
	}()
	c.buf = first
	err := c.flush()
	if err == nil {
		err = c.catchUp(s.p.ctx)
	}
	if err == nil {
		c.sub.Caught(c.pos)
		err = c.nc.SetWriteDeadline(time.Time{})
	}
	c.buf, c.live = nil, nil
	if err != nil {
		d := c.reason(s.p.ctx, err)
		if s.p.ctx.Err() != nil {
			d = hub.Shutdown
		}
		s.close(c, d, err)
		return
	}
	st.lastWrite = time.Now().UnixNano()
	s.mu.Lock()
	st.busy = false
	s.mu.Unlock()
	s.schedule(c) // events queued meanwhile
}

// close ends a parked stream: the connection, the subscription, and its request's log line.
func (s *shard) close(c *conn, why hub.Disconnect, err error) {
	st := &c.park
	s.mu.Lock()
	if st.gone {
		s.mu.Unlock()
		return
	}
	st.gone = true
	st.pending = nil
	s.remove(c)
	s.mu.Unlock()
	s.poller.remove(st.raw)
	c.nc.Close()
	c.sub.Close()
	a := s.p.api
	a.prefs.release(c.prefs)
	a.metrics.StreamsOpen.Dec()
	a.metrics.Requests.WithLabelValues(streamRoute, "200").Inc()
	log := a.log.With("request_id", st.reqID)
	a.ended(log, why, err)
	log.Info("request", "method", http.MethodGet, "path", "/v1/stream", "route", streamRoute,
		"status", http.StatusOK, "duration", time.Since(st.start).Round(time.Microsecond), "remote", st.remote, "end", why.String())
}

// poll is the shard's poller goroutine.
func (s *shard) poll() {
	defer s.p.loops.Done()
	s.poller.run(s.p.done, func(fd int, input, output bool) {
		s.mu.Lock()
		s.onPoll(fd, input, output)
		s.mu.Unlock()
	})
}
