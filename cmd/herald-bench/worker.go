package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A worker process holds a share of the streams: one process cannot open more files than its
// limit, so the coordinator starts as many workers as the stream count needs and talks to each
// over its stdin and stdout, one JSON object per line.

// openCmd tells a worker which streams to open: indexes [From, To) of the run's streams.
type openCmd struct {
	Targets []string `json:"targets"` // base URLs; stream i goes to Targets[i%len]
	From    int      `json:"from"`
	To      int      `json:"to"`
	Users   int      `json:"users"`   // stream i is user "u<i%Users>"
	Sources int      `json:"sources"` // stream i dials from 127.0.0.<2+i%Sources>
	Token   string   `json:"token,omitempty"`
	Dials   int      `json:"dials"` // dials in flight at once
	// StallEvery makes every StallEvery-th stream (i%StallEvery == 0) one that will stop reading
	// (stall scenario); 0: none.
	StallEvery int `json:"stall_every,omitempty"`
}

// reportCmd asks a worker for what its streams received, judged against what was published.
type reportCmd struct {
	Rounds []int            `json:"rounds,omitempty"` // every stream expects each of these once
	Expect map[string][]int `json:"expect,omitempty"` // user → the numbers published to them
	// Only "stalling" or "steady" streams (stall scenario); empty: all.
	Only string `json:"only,omitempty"`
}

// resumeCmd tells a worker's stalled streams to read again: each reads what its socket holds,
// until the server's end of the stream (it was cut) or Wait; then reconnects with the last id it
// received and reads until it has every one of Rounds (or Wait again).
type resumeCmd struct {
	Targets []string      `json:"targets"`
	Token   string        `json:"token,omitempty"`
	Rounds  []int         `json:"rounds"`
	Wait    time.Duration `json:"wait"`
}

// resumed is what the stalled streams of a worker saw when they resumed.
type resumed struct {
	Stalled int    `json:"stalled"`
	Cut     int    `json:"cut"`     // ended by the server while stalled
	Resumed int    `json:"resumed"` // reconnected with Last-Event-ID and got every round
	Error   string `json:"error,omitempty"`
}

// workerMsg is a worker's line to the coordinator.
type workerMsg struct {
	Progress *progress    `json:"progress,omitempty"`
	Opened   *opened      `json:"opened,omitempty"`
	Report   *report      `json:"report,omitempty"`
	Stalled  *int         `json:"stalled,omitempty"`
	Resumed  *resumed     `json:"resumed,omitempty"`
	Storm    *stormReport `json:"storm,omitempty"`
}

type progress struct {
	Open   int64 `json:"open"`
	Events int64 `json:"events"`
	Failed int64 `json:"failed"`
	Closed int64 `json:"closed"`
}

type opened struct {
	Open   int    `json:"open"`
	Failed int    `json:"failed"`
	Error  string `json:"error,omitempty"` // the first failure
	Millis int64  `json:"millis"`
}

type report struct {
	Latencies []int32       `json:"latencies"`  // µs, one per delivered bench event
	LastRecv  map[int]int64 `json:"last_recv"`  // number → the latest arrival (unix ns)
	FirstRecv map[int]int64 `json:"first_recv"` // number → the earliest arrival (unix ns)
	Missing   int           `json:"missing"`
	Duplicate int           `json:"duplicate"`
	Unexpect  int           `json:"unexpected"`
	Closed    int           `json:"closed"` // streams the server ended during the run
}

// benchStream is one open stream. Its bytes are read by the worker's readers (readers_*.go).
type benchStream struct {
	index int
	user  string
	conn  net.Conn
	pre   []byte // body bytes read with the response head
	body  body
	fd    int // the socket, once a reader owns it directly (Linux)
	mu    sync.Mutex
	got   []recv
	// For the stall scenario: whether the stream is one that stops reading, and the ids of
	// the event being read and of the last one received whole (its Last-Event-ID).
	stalling bool
	eventID  string
	lastID   string
	// rmu is held by whoever reads the socket; paused, set under it, stops the readers (Linux).
	rmu    sync.Mutex
	paused bool
	epfd   int
}

type recv struct {
	n    int32
	at   int64 // unix ns
	sent int64 // unix ns, from the payload
}

type worker struct {
	streams  []*benchStream
	readers  sync.WaitGroup
	stopping atomic.Bool
	events   atomic.Int64
	closed   atomic.Int64
	failed   atomic.Int64
	open     atomic.Int64
	out      *json.Encoder
	outMu    sync.Mutex
	opened   openCmd // the last open command, for reconnecting
}

func (w *worker) send(m workerMsg) {
	w.outMu.Lock()
	defer w.outMu.Unlock()
	_ = w.out.Encode(m)
}

// runWorker serves the coordinator's commands until its stdin closes.
func runWorker() error {
	w := &worker{out: json.NewEncoder(os.Stdout)}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				w.send(workerMsg{Progress: &progress{Open: w.open.Load(), Events: w.events.Load(), Failed: w.failed.Load(), Closed: w.closed.Load()}})
			}
		}
	}()
	dec := json.NewDecoder(os.Stdin)
	for {
		var cmd struct {
			Open   *openCmd   `json:"open"`
			Report *reportCmd `json:"report"`
			Stall  bool       `json:"stall"`
			Resume *resumeCmd `json:"resume"`
			Storm  *stormCmd  `json:"storm"`
		}
		if err := dec.Decode(&cmd); err != nil {
			w.closeAll()
			if err == io.EOF {
				return nil
			}
			return err
		}
		switch {
		case cmd.Open != nil:
			w.send(workerMsg{Opened: w.openAll(*cmd.Open)})
		case cmd.Report != nil:
			w.send(workerMsg{Report: w.report(*cmd.Report)})
		case cmd.Stall:
			n := w.stall()
			w.send(workerMsg{Stalled: &n})
		case cmd.Resume != nil:
			w.send(workerMsg{Resumed: w.resume(*cmd.Resume)})
		case cmd.Storm != nil:
			w.send(workerMsg{Storm: w.storm(*cmd.Storm)})
		}
	}
}

func (w *worker) closeAll() {
	w.stopReading()
	for _, s := range w.streams {
		s.conn.Close()
	}
}

func (w *worker) openAll(c openCmd) *opened {
	w.opened = c
	start := time.Now()
	var (
		mu       sync.Mutex
		firstErr string
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, max(c.Dials, 1))
	streams := make([]*benchStream, c.To-c.From)
	for i := c.From; i < c.To; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := dialStream(c, i)
			<-sem
			if err != nil {
				w.failed.Add(1)
				mu.Lock()
				if firstErr == "" {
					firstErr = err.Error()
				}
				mu.Unlock()
				return
			}
			streams[i-c.From] = s
			w.open.Add(1)
		}(i)
	}
	wg.Wait()
	var good []*benchStream
	for _, s := range streams {
		if s != nil {
			good = append(good, s)
		}
	}
	w.streams = append(w.streams, good...)
	if err := w.startReading(good); err != nil && firstErr == "" {
		firstErr = err.Error()
	}
	return &opened{Open: int(w.open.Load()), Failed: int(w.failed.Load()), Error: firstErr, Millis: time.Since(start).Milliseconds()}
}

func dialStream(c openCmd, i int) (*benchStream, error) {
	return dialStreamFrom(c, i, "")
}

// dialStreamFrom opens stream i, resuming after lastID when it is not empty.
func dialStreamFrom(c openCmd, i int, lastID string) (*benchStream, error) {
	target := c.Targets[i%len(c.Targets)]
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	var controls []func(string, string, syscall.RawConn) error
	if c.Sources > 1 {
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%c.Sources))}
		// Choose the port at connect, per destination, not at bind: else each source address
		// is limited to one ephemeral range for all targets, and bind slows down as it fills.
		controls = append(controls, bindNoPort)
	}
	stalling := c.StallEvery > 0 && i%c.StallEvery == 0
	if stalling {
		controls = append(controls, likeARemoteClient)
	}
	if len(controls) > 0 {
		d.Control = func(network, address string, rc syscall.RawConn) error {
			for _, f := range controls {
				if err := f(network, address, rc); err != nil {
					return err
				}
			}
			return nil
		}
	}
	conn, err := d.Dial("tcp", u.Host)
	if err != nil {
		return nil, err
	}
	user := fmt.Sprintf("u%d", i%c.Users)
	auth := ""
	if c.Token != "" {
		auth = "Authorization: Bearer " + c.Token + "\r\n"
	}
	if lastID != "" {
		auth += "Last-Event-ID: " + lastID + "\r\n"
	}
	fmt.Fprintf(conn, "GET /v1/stream?user=%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n%s\r\n", user, u.Host, auth)
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	br := bufio.NewReaderSize(conn, 2048)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("stream %d: %w", i, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		conn.Close()
		return nil, fmt.Errorf("stream %d: %s %s", i, resp.Status, bytes.TrimSpace(b))
	}
	conn.SetReadDeadline(time.Time{})
	s := &benchStream{index: i, user: user, conn: conn, fd: -1, stalling: stalling}
	s.pre, _ = br.Peek(br.Buffered())
	s.pre = bytes.Clone(s.pre)
	s.body.chunked = len(resp.TransferEncoding) > 0 && resp.TransferEncoding[0] == "chunked"
	return s, nil
}

// received takes what a reader read from s. It reports false once the stream cannot go on.
func (w *worker) received(s *benchStream, b []byte) bool {
	return s.body.feed(b, func(line []byte) { w.line(s, line) })
}

// line records a bench event, whose data holds "bn" (its number) and "bt" (when it was
// published, unix ns), and the id of the last event received whole.
func (w *worker) line(s *benchStream, line []byte) {
	if len(line) == 0 { // the end of an event: its id is the stream's position
		if s.eventID != "" {
			s.mu.Lock()
			s.lastID = s.eventID
			s.mu.Unlock()
		}
		return
	}
	if id, ok := bytes.CutPrefix(line, []byte("id:")); ok {
		s.eventID = string(bytes.TrimPrefix(id, []byte(" ")))
		return
	}
	if !bytes.HasPrefix(line, []byte("data:")) {
		return
	}
	n, ok1 := field(line, `"bn":`)
	t, ok2 := field(line, `"bt":`)
	if !ok1 || !ok2 {
		return
	}
	now := time.Now().UnixNano()
	s.mu.Lock()
	s.got = append(s.got, recv{n: int32(n), at: now, sent: t})
	s.mu.Unlock()
	w.events.Add(1)
}

// field finds key in b and parses the integer after it.
func field(b []byte, key string) (int64, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	var v int64
	j := 0
	for ; j < len(b) && b[j] >= '0' && b[j] <= '9'; j++ {
		v = v*10 + int64(b[j]-'0')
	}
	return v, j > 0
}

func (w *worker) report(c reportCmd) *report {
	r := &report{LastRecv: map[int]int64{}, FirstRecv: map[int]int64{}, Closed: int(w.closed.Load())}
	for _, s := range w.streams {
		if (c.Only == "stalling" && !s.stalling) || (c.Only == "steady" && s.stalling) {
			continue
		}
		s.mu.Lock()
		got := s.got
		s.got = nil
		s.mu.Unlock()
		expect := c.Rounds
		if c.Expect != nil {
			expect = c.Expect[s.user]
		}
		want := make(map[int32]int, len(expect))
		for _, n := range expect {
			want[int32(n)] = 0
		}
		for _, g := range got {
			seen, ok := want[g.n]
			switch {
			case !ok:
				r.Unexpect++
				continue
			case seen > 0:
				r.Duplicate++
			}
			want[g.n] = seen + 1
			r.Latencies = append(r.Latencies, int32(min((g.at-g.sent)/1000, 1<<31-1)))
			if g.at > r.LastRecv[int(g.n)] {
				r.LastRecv[int(g.n)] = g.at
			}
			if first, ok := r.FirstRecv[int(g.n)]; !ok || g.at < first {
				r.FirstRecv[int(g.n)] = g.at
			}
		}
		for _, seen := range want {
			if seen == 0 {
				r.Missing++
			}
		}
	}
	return r
}

// resume makes the stalled streams read again (stall scenario): see resumeCmd.
func (w *worker) resume(c resumeCmd) *resumed {
	r := &resumed{}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, 64)
	)
	for _, s := range w.streams {
		if !s.stalling || !s.paused {
			continue
		}
		r.Stalled++
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cut, err := w.resumeOne(s, c)
			mu.Lock()
			defer mu.Unlock()
			if cut {
				r.Cut++
			}
			if err == nil {
				r.Resumed++
			} else if r.Error == "" {
				r.Error = err.Error()
			}
		}()
	}
	wg.Wait()
	return r
}

// resumeOne drains a stalled stream, then reconnects it with its last id and reads until it
// has every round.
func (w *worker) resumeOne(s *benchStream, c resumeCmd) (cut bool, err error) {
	cut = w.drain(s, c.Wait)
	s.mu.Lock()
	last := s.lastID
	s.mu.Unlock()
	oc := w.opened
	oc.Targets, oc.Token, oc.StallEvery = c.Targets, c.Token, 0
	ns, err := dialStreamFrom(oc, s.index, last)
	if err != nil {
		return cut, err
	}
	defer ns.conn.Close()
	s.body, s.eventID = ns.body, ""
	deadline := time.Now().Add(c.Wait)
	ns.conn.SetReadDeadline(deadline)
	if len(ns.pre) > 0 && !w.received(s, ns.pre) {
		return cut, fmt.Errorf("stream %d: malformed response body", s.index)
	}
	buf := make([]byte, 32<<10)
	for !s.hasAll(c.Rounds) {
		n, err := ns.conn.Read(buf)
		if n > 0 && !w.received(s, buf[:n]) {
			return cut, fmt.Errorf("stream %d: malformed response body", s.index)
		}
		if err != nil {
			return cut, fmt.Errorf("stream %d resumed after %q: %w", s.index, last, err)
		}
	}
	return cut, nil
}

// hasAll reports whether s received every one of rounds.
func (s *benchStream) hasAll(rounds []int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := make(map[int32]bool, len(s.got))
	for _, g := range s.got {
		seen[g.n] = true
	}
	for _, r := range rounds {
		if !seen[int32(r)] {
			return false
		}
	}
	return true
}
