package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The storm scenario: what every client of a server lives through after a deploy or a crash.
// Every stream is open and has its position (the id of the last event it received); then every
// stream goes away, -rounds broadcasts and one notification per user are published while they
// are away, the server is optionally killed (SIGKILL) and started again, and every stream comes
// back at once with its Last-Event-ID, at most -handshakes connection attempts in flight. It
// reports when the last stream got its response head (reconnect-all), when the last one had
// received everything published while it was away (all caught up), the distribution of each
// stream's catch-up, the server's CPU over the resume, and whether any stream missed, repeated
// or reordered an event.

// stormOptions are the storm scenario's flags.
type stormOptions struct {
	handshakes int
	restart    bool
	quiet      bool
	serve      string
	serveLog   string
	pprof      string
	profile    string
	wait       time.Duration
}

func (s *stormOptions) register(fs *flag.FlagSet) {
	fs.IntVar(&s.handshakes, "handshakes", 200, "storm: connection attempts in flight at once, over all workers")
	fs.BoolVar(&s.restart, "restart", false, "storm: SIGKILL the server while the streams are away and start it again (needs -serve)")
	fs.BoolVar(&s.quiet, "quiet", false, "storm: publish nothing while the streams are away: the time to reconnect only, for reference")
	fs.StringVar(&s.serve, "serve", "", "storm: shell command starting the server; the generator starts it, uses its pid for CPU, and kills it at the end")
	fs.StringVar(&s.serveLog, "serve-log", "", "storm: file the -serve server's output is appended to (default: discarded)")
	fs.StringVar(&s.pprof, "pprof", "", "storm, broadcast, topic: the server's pprof base URL (its --pprof-addr), for -profile")
	fs.StringVar(&s.profile, "profile", "", "storm, broadcast, topic: write a CPU profile of the server during the resume, or the rounds, to this file (needs -pprof)")
	fs.DurationVar(&s.wait, "storm-wait", 60*time.Second, "storm: how long the resume may take before the run fails")
}

// stormCmd tells a worker what to do with its streams in a storm: close them all (Away), or
// reconnect them all with their last id (Resume, with the count of bench events each expects).
type stormCmd struct {
	Away   bool  `json:"away,omitempty"`
	Resume bool  `json:"resume,omitempty"`
	Start  int64 `json:"start,omitempty"` // unix ns: the resume's time zero
	Dials  int   `json:"dials,omitempty"`
	// Report: each stream's timings, and its events checked against Want (the numbers 1…Want,
	// in this order: broadcasts and notifications are numbered in publish order).
	Report bool `json:"report,omitempty"`
	Want   int  `json:"want,omitempty"`
}

// stormReport is a worker's answer to a storm command.
type stormReport struct {
	Closed    int     `json:"closed,omitempty"`
	Resumed   int     `json:"resumed,omitempty"`
	Failed    int     `json:"failed,omitempty"`
	Error     string  `json:"error,omitempty"`
	Connected []int32 `json:"connected,omitempty"` // µs after Start, per resumed stream
	Caught    []int32 `json:"caught,omitempty"`    // µs after Start, per stream that got all
	Missing   int     `json:"missing,omitempty"`
	Duplicate int     `json:"duplicate,omitempty"`
	Reordered int     `json:"reordered,omitempty"`
	NoCursor  int     `json:"no_cursor,omitempty"` // streams that had no id to resume from
}

// stormResult is what the storm adds to a result.
type stormResult struct {
	Restarted       bool    `json:"restarted"`
	AwayEvents      int     `json:"away_events"` // bench events each stream must catch up
	ReconnectAllSec float64 `json:"reconnect_all_seconds"`
	CaughtUpAllSec  float64 `json:"caught_up_all_seconds"`
	Ratio           float64 `json:"caught_up_over_reconnect"`
	Connected       *dist   `json:"connected,omitempty"` // per stream, from the resume's start
	CaughtUp        *dist   `json:"caught_up,omitempty"`
	CPUSeconds      float64 `json:"server_cpu_seconds"`
	CPUMicrosStream float64 `json:"server_cpu_us_per_stream"`
	ResumeFailed    int     `json:"resume_failed"`
	Reordered       int     `json:"reordered"`
	NotCaughtUp     int     `json:"not_caught_up"`
}

// server is the server process the storm started (-serve).
type server struct {
	cmd  *exec.Cmd
	line string
	log  io.Writer
	base string
}

func startServer(ctx context.Context, line, logPath, base string) (*server, error) {
	s := &server{line: line, log: io.Discard, base: strings.TrimRight(base, "/")}
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		s.log = f
	}
	return s, s.start(ctx)
}

func (s *server) start(ctx context.Context) error {
	// exec: the shell becomes the server, so the pid is the server's (CPU, SIGKILL).
	s.cmd = exec.Command("sh", "-c", "exec "+s.line)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("the server (%s) did not answer %s/healthz", s.line, s.base)
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// kill ends the server at once, as a crash would.
func (s *server) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.kill()
	}
	if c, ok := s.log.(io.Closer); ok {
		c.Close()
	}
}

// runStorm is run() for the storm scenario: the server may be started here, so memory is not
// measured before the streams open.
func runStorm(ctx context.Context, o options, res *result) error {
	if runtime.GOOS != "linux" {
		return errors.New("the storm scenario needs Linux (epoll readers)")
	}
	so := o.storm
	if so.restart && so.serve == "" {
		return errors.New("storm: -restart needs -serve (the generator must own the server to kill it)")
	}
	if so.profile != "" && so.pprof == "" {
		return errors.New("storm: -profile needs -pprof")
	}
	var srv *server
	if so.serve != "" {
		var err error
		if srv, err = startServer(ctx, so.serve, so.serveLog, o.targets[0]); err != nil {
			return err
		}
		defer func() { srv.stop() }()
		o.pids = []int{srv.pid()}
	}
	rssBefore, rssErr := o.rss()
	f, err := startFleet(ctx, o)
	if err != nil {
		return err
	}
	defer f.stop()
	start := time.Now()
	op := f.open(o)
	res.Open, res.Failed = op.Open, op.Failed
	res.ConnectSeconds = time.Since(start).Seconds()
	res.ConnectRate = float64(op.Open) / res.ConnectSeconds
	if op.Failed > 0 {
		return fmt.Errorf("%d streams failed to open; first: %s", op.Failed, op.Error)
	}
	// Every stream holds its position once it got its first id (herald.connected).
	if err := sleep(ctx, o.settle); err != nil {
		return err
	}
	if kb, err := o.rss(); err == nil && rssErr == nil {
		res.RSSBeforeMB, res.RSSAfterMB = float64(rssBefore)/1024, float64(kb)/1024
		res.KBPerStream = float64(kb-rssBefore) / float64(res.Open)
	}

	// 1. Away: every stream closes, and the events it will have to catch up are published.
	if _, err := f.storm(stormCmd{Away: true}); err != nil {
		return err
	}
	want := 0
	if !so.quiet {
		var err error
		if want, err = publishAway(ctx, o, newPublisher(o)); err != nil {
			return err
		}
		res.Published = o.rounds + o.users
	}
	st := &stormResult{AwayEvents: want}
	res.Storm = st
	if so.restart {
		srv.kill()
		if err := srv.start(ctx); err != nil {
			return err
		}
		o.pids = []int{srv.pid()}
		st.Restarted = true
	}

	// 2. Everyone comes back at once.
	var prof sync.WaitGroup
	var profErr error
	if so.profile != "" {
		prof.Add(1)
		go func() {
			defer prof.Done()
			profErr = fetchProfile(strings.TrimRight(so.pprof, "/"), so.profile, 5)
		}()
		time.Sleep(100 * time.Millisecond) // the profile starts before the storm
	}
	cpu0 := o.cpu()
	t0 := time.Now()
	dials := max(1, so.handshakes/len(f.workers))
	rs, err := f.storm(stormCmd{Resume: true, Start: t0.UnixNano(), Dials: dials})
	if err != nil {
		return err
	}
	st.ResumeFailed = rs.Failed
	// Wait until every stream has what it missed (or the deadline), then judge.
	events0 := int64(0) // the workers reset their counts at Away
	f.await(ctx, events0+int64(want*rs.Resumed), so.wait)
	if cpu1 := o.cpu(); cpu0 >= 0 && cpu1 >= 0 {
		st.CPUSeconds = float64(cpu1-cpu0) / 100
	}
	prof.Wait()
	if profErr != nil {
		fmt.Fprintln(os.Stderr, "herald-bench: profile:", profErr)
	}
	rep, err := f.storm(stormCmd{Report: true, Start: t0.UnixNano(), Want: want})
	if err != nil {
		return err
	}
	res.Missing, res.Duplicate, st.Reordered = rep.Missing, rep.Duplicate, rep.Reordered
	res.Delivered = len(rep.Caught) * want
	if want == 0 {
		rep.Caught = rs.Connected // nothing to catch up: a stream is caught up once connected
	}
	st.NotCaughtUp = rs.Resumed - len(rep.Caught)
	st.Connected, st.CaughtUp = distOf(rs.Connected), distOf(rep.Caught)
	if d := st.Connected; d != nil {
		st.ReconnectAllSec = d.Max / 1000
	}
	if d := st.CaughtUp; d != nil {
		st.CaughtUpAllSec = d.Max / 1000
	}
	if st.ReconnectAllSec > 0 {
		st.Ratio = st.CaughtUpAllSec / st.ReconnectAllSec
	}
	if rs.Resumed > 0 && st.CPUSeconds > 0 {
		st.CPUMicrosStream = st.CPUSeconds * 1e6 / float64(rs.Resumed)
	}
	switch {
	case rs.Failed > 0:
		return fmt.Errorf("%d streams failed to resume; first: %s", rs.Failed, rs.Error)
	case rep.NoCursor > 0:
		return fmt.Errorf("%d streams had no id to resume from (raise -settle)", rep.NoCursor)
	case st.NotCaughtUp > 0 || st.Reordered > 0:
		return fmt.Errorf("%d streams did not catch up within %s, %d got events out of order", st.NotCaughtUp, so.wait, st.Reordered)
	}
	return nil
}

// publishAway publishes what the streams miss while away, numbered in publish order: half the
// broadcasts, one notification to every user (in batches of 1000), the other broadcasts. Every
// stream then expects the numbers 1…rounds+1, in order; it returns how many that is.
func publishAway(ctx context.Context, o options, pub *publisher) (int, error) {
	now := func() int64 { return time.Now().UnixNano() }
	first := (o.rounds + 1) / 2
	n := 0
	bcast := func(count int) error {
		for range count {
			n++
			body := fmt.Sprintf(`{"broadcast":true,"type":"bench","data":{"bn":%d,"bt":%d}}`, n, now())
			if _, err := pub.post(ctx, "/v1/notifications", body); err != nil {
				return fmt.Errorf("broadcast %d: %w", n, err)
			}
		}
		return nil
	}
	if err := bcast(first); err != nil {
		return 0, err
	}
	n++
	var b strings.Builder
	for from := 0; from < o.users; from += 1000 {
		b.Reset()
		b.WriteString(`{"notifications":[`)
		for u := from; u < min(from+1000, o.users); u++ {
			if u > from {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"to":["u%d"],"type":"bench","data":{"bn":%d,"bt":%d}}`, u, n, now())
		}
		b.WriteString(`]}`)
		if _, err := pub.post(ctx, "/v1/notifications/batch", b.String()); err != nil {
			return 0, fmt.Errorf("notifications to users %d…: %w", from, err)
		}
	}
	if err := bcast(o.rounds - first); err != nil {
		return 0, err
	}
	return n, nil
}

// profileRounds starts a CPU profile of the server for the rounds of broadcast or topic (their
// intervals and a few seconds for the last deliveries), when -profile asks for one; the function
// returned waits for it.
func (o options) profileRounds() func() {
	so := o.storm
	if so.profile == "" || so.pprof == "" {
		return func() {}
	}
	seconds := int((time.Duration(o.rounds) * o.interval).Seconds()) + 3
	done := make(chan error, 1)
	go func() { done <- fetchProfile(strings.TrimRight(so.pprof, "/"), so.profile, seconds) }()
	time.Sleep(100 * time.Millisecond) // the profile starts before the first round
	return func() {
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "herald-bench: profile:", err)
		}
	}
}

func fetchProfile(base, path string, seconds int) error {
	resp, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, seconds))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", base, resp.Status)
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// storm sends c to every worker and sums their answers.
func (f *fleet) storm(c stormCmd) (*stormReport, error) {
	for _, w := range f.workers {
		_ = w.in.Encode(map[string]any{"storm": c})
	}
	sum := &stormReport{}
	for _, w := range f.workers {
		m, ok := <-w.msgs
		if !ok || m.Storm == nil {
			return nil, errors.New("a worker process ended")
		}
		r := m.Storm
		sum.Closed += r.Closed
		sum.Resumed += r.Resumed
		sum.Failed += r.Failed
		if sum.Error == "" {
			sum.Error = r.Error
		}
		sum.Connected = append(sum.Connected, r.Connected...)
		sum.Caught = append(sum.Caught, r.Caught...)
		sum.Missing += r.Missing
		sum.Duplicate += r.Duplicate
		sum.Reordered += r.Reordered
		sum.NoCursor += r.NoCursor
	}
	return sum, nil
}

// The worker's side.

func (w *worker) storm(c stormCmd) *stormReport {
	switch {
	case c.Away:
		return w.stormAway()
	case c.Resume:
		return w.stormResume(c)
	default:
		return w.stormReport(c)
	}
}

// stormAway closes every stream, keeping the id each last received whole.
func (w *worker) stormAway() *stormReport {
	w.stopReading()
	w.stopping.Store(false)
	for _, s := range w.streams {
		s.mu.Lock()
		s.got = nil
		s.mu.Unlock()
	}
	w.events.Store(0)
	w.closed.Store(0)
	return &stormReport{Closed: len(w.streams)}
}

// stormResume reconnects every stream with its last id, c.Dials at a time. Each stream is read
// from the moment its response head arrives, so its catch-up is timed as its client sees it.
func (w *worker) stormResume(c stormCmd) *stormReport {
	r := &stormReport{}
	n := max(1, runtime.GOMAXPROCS(0))
	loops := make([]*readLoop, n)
	for i := range loops {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			r.Error, r.Failed = err.Error(), len(w.streams)
			return r
		}
		loops[i] = &readLoop{epfd: epfd}
	}
	// Each stream's place in its loop is fixed before the loops start, so that a loop reads its
	// slice while streams are added to epoll.
	for i, s := range w.streams {
		l := loops[i%n]
		s.epfd = l.epfd
		l.streams = append(l.streams, s)
	}
	for _, l := range loops {
		w.readers.Add(1)
		go w.runLoop(l)
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, max(c.Dials, 1))
	)
	oc := w.opened
	oc.StallEvery = 0
	connected := make([]int32, 0, len(w.streams))
	for i, s := range w.streams {
		slot := int32(i / n) // its index in its loop
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := w.resumeStream(oc, s, slot)
			at := time.Now().UnixNano()
			<-sem
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				r.Failed++
				if r.Error == "" {
					r.Error = err.Error()
				}
				return
			}
			r.Resumed++
			connected = append(connected, int32(min((at-c.Start)/1000, 1<<31-1)))
		}()
	}
	wg.Wait()
	r.Connected = connected
	return r
}

// resumeStream reconnects s after its last id and hands it to its read loop.
func (w *worker) resumeStream(oc openCmd, s *benchStream, slot int32) error {
	s.mu.Lock()
	last := s.lastID
	s.mu.Unlock()
	ns, err := dialStreamFrom(oc, s.index, last)
	if err != nil {
		return err
	}
	fd, err := takeFD(ns.conn)
	if err != nil {
		ns.conn.Close()
		return err
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.conn, s.fd, s.body, s.eventID = ns.conn, fd, ns.body, ""
	if len(ns.pre) > 0 && !w.received(s, ns.pre) {
		return fmt.Errorf("stream %d: malformed response body", s.index)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: slot}
	return unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
}

// stormReport judges what each stream received since it resumed: the numbers 1…c.Want, each
// once, in order; and when it had them all.
func (w *worker) stormReport(c stormCmd) *stormReport {
	r := &stormReport{}
	for _, s := range w.streams {
		s.mu.Lock()
		got, last := s.got, s.lastID
		s.mu.Unlock()
		if last == "" {
			r.NoCursor++
		}
		seen := make([]int, c.Want+1)
		prev := int32(0)
		have := 0
		var caught int64
		for _, g := range got {
			if g.n < 1 || int(g.n) > c.Want {
				continue
			}
			if seen[g.n]++; seen[g.n] > 1 {
				r.Duplicate++
				continue
			}
			if g.n < prev {
				r.Reordered++
			}
			prev = g.n
			if have++; have == c.Want {
				caught = g.at
			}
		}
		for _, k := range seen[1:] {
			if k == 0 {
				r.Missing++
			}
		}
		if caught > 0 {
			r.Caught = append(r.Caught, int32(min((caught-c.Start)/1000, 1<<31-1)))
		}
	}
	slices.Sort(r.Caught)
	return r
}

func (r *result) printStorm(w io.Writer) {
	st := r.Storm
	if st == nil {
		return
	}
	restart := "no restart"
	if st.Restarted {
		restart = "server SIGKILLed and restarted while away"
	}
	fmt.Fprintf(w, "  storm: %d events missed per stream, %s\n", st.AwayEvents, restart)
	fmt.Fprintf(w, "  reconnect-all %.2f s, all caught up %.2f s: ratio %.2f\n", st.ReconnectAllSec, st.CaughtUpAllSec, st.Ratio)
	if d := st.Connected; d != nil {
		fmt.Fprintf(w, "  connected per stream: p50 %.0f ms  p99 %.0f  max %.0f\n", d.P50, d.P99, d.Max)
	}
	if d := st.CaughtUp; d != nil {
		fmt.Fprintf(w, "  caught up per stream: p50 %.0f ms  p99 %.0f  max %.0f\n", d.P50, d.P99, d.Max)
	}
	if st.CPUSeconds > 0 {
		fmt.Fprintf(w, "  server CPU during the resume: %.2f s, %.0f µs per stream\n", st.CPUSeconds, st.CPUMicrosStream)
	}
	fmt.Fprintf(w, "  resume failed %d  not caught up %d  reordered %d\n", st.ResumeFailed, st.NotCaughtUp, st.Reordered)
}
