// Command herald-bench is Herald's load generator. It opens many SSE streams (spread over
// loopback source addresses, target nodes and worker processes, since one process may open only
// so many files), publishes through the API, and reports what a user choosing a notification
// server asks: memory per open stream, how fast a broadcast reaches everyone, unicast delivery
// latency under load, acknowledged publishes per second, and that nothing was lost or
// duplicated. Latency is measured from a timestamp in each event's payload.
//
// It speaks the part of Herald's API v1 that the reference server in bench/naive speaks too, so
// both are measured by the same code in the same run. See BENCHMARKS.md for how it is used.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const usage = `herald-bench: load generator for Herald (and the reference server in bench/naive)

Usage:
  herald-bench [flags] idle        open streams, hold them, report memory per stream
  herald-bench [flags] broadcast   open streams, publish -rounds broadcasts, report fan-out latency
  herald-bench [flags] topic       as broadcast, but to a topic every stream's user (and
                                   -topic-subscribers users in all) is subscribed to
  herald-bench [flags] unicast     open streams (one user each), publish -rate/s to random users
  herald-bench [flags] publish     publish as fast as acknowledged, single or -batch
  herald-bench [flags] stall       broadcasts while every -stall-every-th stream stops reading:
                                   memory, the others' delivery, the stalled ones cut and resumed
  herald-bench [flags] storm       streams go away, events are published (-restart: the server is
                                   killed and restarted), all resume at once: catch-up times
  herald-bench compare A.json B.json   a table of A against B (results written with -json)

Flags:
`

type options struct {
	targets    []string
	publishTo  string
	pids       []int
	name       string
	streams    int
	users      int
	sources    int
	perProcess int
	dials      int
	settle     time.Duration
	rounds     int
	interval   time.Duration
	rate       int
	duration   time.Duration
	publishers int
	batch      int
	token      string
	pubToken   string
	jsonOut    string
	stallEvery int
	payload    int
	storm      stormOptions

	// topicSubscribers is how many users the topic scenario subscribes (at least -users).
	topicSubscribers int
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		if err := runWorker(); err != nil {
			fmt.Fprintln(os.Stderr, "herald-bench worker:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "compare" {
		if err := compare(os.Stdout, os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "herald-bench:", err)
			os.Exit(2)
		}
		return
	}
	fs := flag.NewFlagSet("herald-bench", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	var o options
	var targets, pids string
	fs.StringVar(&targets, "target", "http://127.0.0.1:8080", "comma-separated base URLs of the nodes streams connect to (round-robin)")
	fs.StringVar(&o.publishTo, "publish-to", "", "base URL publishes go to (default: the first target)")
	fs.StringVar(&pids, "pid", "", "comma-separated pids of the server processes, for RSS and CPU (default: RSS from each target's /metrics, no CPU)")
	fs.StringVar(&o.name, "name", "herald", "what is measured, for the report")
	fs.IntVar(&o.streams, "streams", 18000, "streams to open")
	fs.IntVar(&o.users, "users", 0, "distinct users the streams belong to (default: one per stream)")
	fs.IntVar(&o.sources, "sources", 0, "loopback source addresses 127.0.0.2… to dial from (default: one per 15000 streams)")
	fs.IntVar(&o.perProcess, "per-process", 15000, "streams per worker process (the open-file limit bounds it)")
	fs.IntVar(&o.dials, "dials", 64, "connection attempts in flight per worker")
	fs.DurationVar(&o.settle, "settle", 3*time.Second, "wait after opening before measuring memory")
	fs.IntVar(&o.rounds, "rounds", 5, "broadcast: rounds")
	fs.DurationVar(&o.interval, "interval", time.Second, "broadcast: time between rounds")
	fs.IntVar(&o.topicSubscribers, "topic-subscribers", 0, "topic: users subscribed to the topic, u0 … (at least -users; the others hold no stream)")
	fs.IntVar(&o.rate, "rate", 2000, "unicast: publishes per second")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "unicast and publish: how long to publish")
	fs.IntVar(&o.publishers, "publishers", 64, "publish: concurrent publishers")
	fs.IntVar(&o.batch, "batch", 0, "publish: notifications per batch request (0: single publishes)")
	fs.StringVar(&o.token, "token", "", "bearer token for streams (default: dev mode, ?user=)")
	fs.StringVar(&o.pubToken, "publish-token", "", "API key or token for publishing")
	fs.StringVar(&o.jsonOut, "json", "", "also write the result as JSON to this file ('-' for stdout)")
	fs.IntVar(&o.stallEvery, "stall-every", 10, "stall: every this-many-th stream stops reading (10: 10 %)")
	fs.IntVar(&o.payload, "payload", 16<<10, "stall: bytes of padding in each broadcast")
	o.storm.register(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		os.Exit(2)
	}
	o.targets = strings.Split(targets, ",")
	if o.publishTo == "" {
		o.publishTo = o.targets[0]
	}
	for _, p := range strings.Split(pids, ",") {
		if p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "herald-bench: -pid:", err)
			os.Exit(2)
		}
		o.pids = append(o.pids, n)
	}
	if o.users <= 0 {
		o.users = o.streams
	}
	if o.sources <= 0 {
		o.sources = 1 + o.streams/15000
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, o, fs.Arg(0))
	if res != nil {
		res.print(os.Stdout)
		if o.jsonOut != "" {
			if werr := res.writeJSON(o.jsonOut); werr != nil && err == nil {
				err = werr
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "herald-bench:", err)
		os.Exit(1)
	}
	if res != nil && res.Missing+res.Duplicate+res.Failed+res.Closed+res.StalledMissing+res.StalledDuplicate > 0 {
		os.Exit(1) // a lossy run is not a result
	}
}

func run(ctx context.Context, o options, scenario string) (*result, error) {
	res := &result{Name: o.name, Scenario: scenario, Streams: o.streams, Targets: len(o.targets), When: time.Now().UTC().Format(time.RFC3339)}
	switch scenario {
	case "publish":
		res.Streams = 0
		return res, publish(ctx, o, res)
	case "idle", "broadcast", "unicast":
	case "topic":
		if err := subscribeTopic(ctx, newPublisher(o), max(o.users, o.topicSubscribers)); err != nil {
			return nil, err
		}
	case "stall":
		res.Streams = o.streams
	case "storm":
		return res, runStorm(ctx, o, res)
	default:
		return nil, fmt.Errorf("unknown scenario %q", scenario)
	}
	if scenario == "unicast" && o.users != o.streams {
		return nil, errors.New("unicast: every stream must be its own user (-users equal to -streams)")
	}
	rssBefore, err := o.rss()
	if err != nil {
		return nil, err
	}
	if scenario != "stall" {
		o.stallEvery = 0
	}
	f, err := startFleet(ctx, o)
	if err != nil {
		return nil, err
	}
	defer f.stop()
	start := time.Now()
	op := f.open(o)
	res.Open, res.Failed = op.Open, op.Failed
	res.ConnectSeconds = time.Since(start).Seconds()
	res.ConnectRate = float64(op.Open) / res.ConnectSeconds
	if op.Failed > 0 {
		return res, fmt.Errorf("%d streams failed to open; first: %s", op.Failed, op.Error)
	}
	if err := sleep(ctx, o.settle); err != nil {
		return res, err
	}
	rssAfter, err := o.rss()
	if err != nil {
		return res, err
	}
	res.RSSBeforeMB, res.RSSAfterMB = float64(rssBefore)/1024, float64(rssAfter)/1024
	res.KBPerStream = float64(rssAfter-rssBefore) / float64(res.Open)

	if scenario == "broadcast" || scenario == "topic" {
		// A CPU profile of the server over the rounds, and the time their deliveries take.
		stop := o.profileRounds()
		defer stop()
	}
	switch scenario {
	case "idle":
		return res, nil
	case "broadcast":
		return res, broadcast(ctx, o, f, res)
	case "stall":
		return res, stall(ctx, o, f, res)
	case "topic":
		return res, topicRounds(ctx, o, f, res)
	default:
		return res, unicast(ctx, o, f, res)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// broadcast publishes rounds of one broadcast each and measures how long each takes to reach
// every stream.
func broadcast(ctx context.Context, o options, f *fleet, res *result) error {
	return publishRounds(ctx, o, f, res, `"broadcast":true`, 30*time.Second)
}

// publishRounds publishes -rounds notifications addressed by address (the JSON members that
// say to whom, reaching every stream), -interval apart, and measures how long each takes to
// reach every stream; it waits at most wait for the last.
func publishRounds(ctx context.Context, o options, f *fleet, res *result, address string, wait time.Duration) error {
	pub := newPublisher(o)
	cpu0 := o.cpu()
	events0 := f.events()
	sent := map[int]int64{}
	var rounds []int
	for r := 1; r <= o.rounds; r++ {
		if r > 1 {
			if err := sleep(ctx, o.interval); err != nil {
				return err
			}
		}
		t := time.Now().UnixNano()
		body := fmt.Sprintf(`{%s,"type":"bench","data":{"bn":%d,"bt":%d}}`, address, r, t)
		if _, err := pub.post(ctx, "/v1/notifications", body); err != nil {
			return fmt.Errorf("round %d: %w", r, err)
		}
		res.AckMs = append(res.AckMs, float64(time.Now().UnixNano()-t)/1e6)
		sent[r] = t
		rounds = append(rounds, r)
	}
	f.await(ctx, events0+int64(o.rounds*res.Open), wait)
	res.CPUMicrosPerEvent = o.cpuPerEvent(cpu0, f.events()-events0)
	rep := f.report(reportCmd{Rounds: rounds})
	res.add(rep)
	res.rounds(rep, rounds, sent)
	res.Published = len(rounds)
	return nil
}

// unicast publishes to random users at a steady rate.
func unicast(ctx context.Context, o options, f *fleet, res *result) error {
	pub := newPublisher(o)
	cpu0 := o.cpu()
	events0 := f.events()
	var (
		mu     sync.Mutex
		expect = map[string][]int{}
		n      atomic.Int64
		errs   atomic.Int64
		wg     sync.WaitGroup
	)
	jobs := make(chan struct{}, o.rate)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				k := int(n.Add(1))
				user := fmt.Sprintf("u%d", rand.IntN(o.users))
				body := fmt.Sprintf(`{"to":[%q],"type":"bench","data":{"bn":%d,"bt":%d}}`, user, k, time.Now().UnixNano())
				if _, err := pub.post(ctx, "/v1/notifications", body); err != nil {
					errs.Add(1)
					continue
				}
				mu.Lock()
				expect[user] = append(expect[user], k)
				mu.Unlock()
			}
		}()
	}
	// Every millisecond, issue what the rate owes by now: a ticker alone drops ticks when the
	// machine is busy. If the publishers cannot keep up, the report shows the rate reached.
	tick := time.NewTicker(time.Millisecond)
	start := time.Now()
	issued := 0
loop:
	for ctx.Err() == nil {
		<-tick.C
		elapsed := time.Since(start)
		if elapsed >= o.duration {
			break
		}
		for due := int(elapsed.Seconds() * float64(o.rate)); issued < due; issued++ {
			select {
			case jobs <- struct{}{}:
			case <-ctx.Done():
				break loop
			}
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	published := int(n.Load() - errs.Load())
	f.await(ctx, events0+int64(published), 15*time.Second)
	res.CPUMicrosPerEvent = o.cpuPerEvent(cpu0, f.events()-events0)
	res.add(f.report(reportCmd{Expect: expect}))
	res.Published = published
	res.PublishErrors = int(errs.Load())
	res.PublishRate = float64(published) / o.duration.Seconds()
	if res.PublishErrors > 0 {
		return fmt.Errorf("%d publishes failed", res.PublishErrors)
	}
	return nil
}

// publish measures acknowledged publishes per second: each publisher sends its next request as
// soon as the previous one is answered.
func publish(ctx context.Context, o options, res *result) error {
	pub := newPublisher(o)
	ctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var (
		mu    sync.Mutex
		lat   []int32
		acked atomic.Int64
		errs  atomic.Int64
		first atomic.Value
		wg    sync.WaitGroup
		seq   atomic.Int64
	)
	path := "/v1/notifications"
	if o.batch > 0 {
		path += "/batch"
	}
	start := time.Now()
	for range o.publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []int32
			var b bytes.Buffer
			for ctx.Err() == nil {
				b.Reset()
				one := func() {
					k := seq.Add(1)
					fmt.Fprintf(&b, `{"to":["u%d"],"type":"bench","data":{"bn":%d,"bt":%d}}`, rand.IntN(o.users), k, time.Now().UnixNano())
				}
				count := 1
				if o.batch > 0 {
					count = o.batch
					b.WriteString(`{"notifications":[`)
					for i := range o.batch {
						if i > 0 {
							b.WriteByte(',')
						}
						one()
					}
					b.WriteString(`]}`)
				} else {
					one()
				}
				t := time.Now()
				if _, err := pub.post(ctx, path, b.String()); err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
						first.CompareAndSwap(nil, err.Error())
					}
					continue
				}
				mine = append(mine, int32(time.Since(t).Microseconds()))
				acked.Add(int64(count))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	res.Published = int(acked.Load())
	res.PublishErrors = int(errs.Load())
	res.PublishRate = float64(acked.Load()) / elapsed
	res.AckLatency = distOf(lat)
	if e, _ := first.Load().(string); e != "" {
		return fmt.Errorf("%d publishes failed; first: %s", res.PublishErrors, e)
	}
	return nil
}

type publisher struct {
	base  string
	token string
	hc    *http.Client
}

func newPublisher(o options) *publisher {
	tr := &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0, IdleConnTimeout: time.Minute}
	return &publisher{base: strings.TrimRight(o.publishTo, "/"), token: o.pubToken, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (p *publisher) post(ctx context.Context, path, body string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("publish: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

// fleet is the worker processes.
type fleet struct {
	workers []*workerProc
	done    chan struct{}
	wg      sync.WaitGroup
}

type workerProc struct {
	cmd   *exec.Cmd
	in    *json.Encoder
	msgs  chan workerMsg
	last  atomic.Pointer[progress]
	share int
}

func startFleet(ctx context.Context, o options) (*fleet, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	f := &fleet{done: make(chan struct{})}
	for from := 0; from < o.streams; from += o.perProcess {
		cmd := exec.CommandContext(ctx, exe, "worker")
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			f.stop()
			return nil, err
		}
		w := &workerProc{cmd: cmd, in: json.NewEncoder(stdin), msgs: make(chan workerMsg, 1), share: min(o.perProcess, o.streams-from)}
		w.last.Store(&progress{})
		f.workers = append(f.workers, w)
		go w.readLoop(stdout)
	}
	f.wg.Add(1)
	go f.progressLine(o)
	return f, nil
}

func (w *workerProc) readLoop(r io.Reader) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<16))
	for {
		var m workerMsg
		if err := dec.Decode(&m); err != nil {
			close(w.msgs)
			return
		}
		if m.Progress != nil {
			w.last.Store(m.Progress)
			continue
		}
		w.msgs <- m
	}
}

// progressLine prints the fleet's state to stderr every second, on one line when it is a
// terminal.
func (f *fleet) progressLine(o options) {
	defer f.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-f.done:
			fmt.Fprintln(os.Stderr)
			return
		case <-t.C:
			var p progress
			for _, w := range f.workers {
				l := w.last.Load()
				p.Open += l.Open
				p.Events += l.Events
				p.Failed += l.Failed
				p.Closed += l.Closed
			}
			fmt.Fprintf(os.Stderr, "\r%s: open %d/%d  events %d  failed %d  closed %d   ", o.name, p.Open, o.streams, p.Events, p.Failed, p.Closed)
		}
	}
}

func (f *fleet) events() int64 {
	var n int64
	for _, w := range f.workers {
		n += w.last.Load().Events
	}
	return n
}

// await waits until the workers have seen want events, or timeout.
func (f *fleet) await(ctx context.Context, want int64, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for f.events() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(600 * time.Millisecond) // a progress tick, and any duplicate still on its way
}

func (f *fleet) open(o options) opened {
	from := 0
	for _, w := range f.workers {
		_ = w.in.Encode(map[string]any{"open": openCmd{Targets: o.targets, From: from, To: from + w.share, Users: o.users, Sources: o.sources, Token: o.token, Dials: o.dials, StallEvery: o.stallEvery}})
		from += w.share
	}
	var sum opened
	for _, w := range f.workers {
		m, ok := <-w.msgs
		if !ok || m.Opened == nil {
			sum.Failed += w.share
			sum.Error = "a worker process ended"
			continue
		}
		sum.Open += m.Opened.Open
		sum.Failed += m.Opened.Failed
		if sum.Error == "" {
			sum.Error = m.Opened.Error
		}
	}
	return sum
}

func (f *fleet) report(c reportCmd) *report {
	for _, w := range f.workers {
		_ = w.in.Encode(map[string]any{"report": c})
	}
	sum := &report{LastRecv: map[int]int64{}, FirstRecv: map[int]int64{}}
	for _, w := range f.workers {
		m, ok := <-w.msgs
		if !ok || m.Report == nil {
			continue
		}
		r := m.Report
		sum.Latencies = append(sum.Latencies, r.Latencies...)
		sum.Missing += r.Missing
		sum.Duplicate += r.Duplicate
		sum.Unexpect += r.Unexpect
		sum.Closed += r.Closed
		for k, v := range r.LastRecv {
			sum.LastRecv[k] = max(sum.LastRecv[k], v)
		}
		for k, v := range r.FirstRecv {
			if first, ok := sum.FirstRecv[k]; !ok || v < first {
				sum.FirstRecv[k] = v
			}
		}
	}
	return sum
}

func (f *fleet) stop() {
	select {
	case <-f.done:
		return
	default:
	}
	close(f.done)
	f.wg.Wait()
	for _, w := range f.workers {
		if c, ok := w.cmd.Stdin.(io.Closer); ok {
			c.Close()
		}
		_ = w.cmd.Process.Signal(syscall.SIGTERM)
		_ = w.cmd.Wait()
	}
}

// rss is the servers' resident memory in KB: from /proc for the -pid processes, else from each
// target's process_resident_memory_bytes.
func (o options) rss() (int64, error) {
	var sum int64
	if len(o.pids) > 0 {
		for _, pid := range o.pids {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				return 0, err
			}
			for line := range strings.SplitSeq(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
					kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
					sum += kb
				}
			}
		}
		return sum, nil
	}
	for _, t := range o.targets {
		v, err := metric(t, "process_resident_memory_bytes")
		if err != nil {
			return 0, fmt.Errorf("server memory: give -pid, or expose /metrics: %w", err)
		}
		sum += int64(v / 1024)
	}
	return sum, nil
}

func metric(base, name string) (float64, error) {
	resp, err := http.Get(strings.TrimRight(base, "/") + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s/metrics has no %s", base, name)
}

// cpu is the servers' CPU time so far in clock ticks (1/100 s), or -1 without -pid.
func (o options) cpu() int64 {
	if len(o.pids) == 0 {
		return -1
	}
	var sum int64
	for _, pid := range o.pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return -1
		}
		// Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
		s := string(b[bytes.LastIndexByte(b, ')')+2:])
		f := strings.Fields(s)
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		sum += u + st
	}
	return sum
}

func (o options) cpuPerEvent(before, events int64) float64 {
	after := o.cpu()
	if before < 0 || after < 0 || events == 0 {
		return 0
	}
	return float64(after-before) * 1e4 / float64(events) // ticks are 10 ms = 1e4 µs
}

// dist is a latency distribution in milliseconds.
type dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func distOf(us []int32) *dist {
	if len(us) == 0 {
		return nil
	}
	slices.Sort(us)
	q := func(p float64) float64 { return float64(us[min(int(p*float64(len(us))), len(us)-1)]) / 1000 }
	return &dist{N: len(us), P50: q(0.5), P90: q(0.9), P99: q(0.99), Max: float64(us[len(us)-1]) / 1000}
}
