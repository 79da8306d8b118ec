package listener

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/heraldhq/herald/internal/metrics"
)

// testServer is an http.Server behind a Listener, wired as internal/app wires the API's.
type testServer struct {
	l    *Listener
	m    *metrics.Metrics
	addr string
	logs *logBuffer
	// hold is closed to release the handlers of /hold, which answer their headers and then wait.
	hold chan struct{}
}

func serve(t *testing.T, opts Options, inner net.Listener) *testServer {
	t.Helper()
	if inner == nil {
		var err error
		if inner, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	s := &testServer{m: metrics.New(), logs: &logBuffer{}, hold: make(chan struct{})}
	opts.Name, opts.Metrics, opts.Refusal = "test", s.m, Refusal503()
	opts.Logger = slog.New(slog.NewTextHandler(s.logs, nil))
	s.l = New(inner, opts)
	s.addr = s.l.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		http.NewResponseController(w).Flush()
		select {
		case <-s.hold:
		case <-r.Context().Done():
		}
	})
	srv := &http.Server{Handler: s.l.Handler(mux), ConnState: s.l.ConnState, ConnContext: s.l.ConnContext,
		ReadHeaderTimeout: time.Minute, ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(s.l)
	}()
	t.Cleanup(func() {
		select {
		case <-s.hold:
		default:
			close(s.hold)
		}
		srv.Close()
		<-done
	})
	return s
}

func (s *testServer) dropped(reason string) float64 {
	return value(s.m.ConnectionsDropped.WithLabelValues("test", reason))
}

func (s *testServer) refused(reason string) float64 {
	return value(s.m.ConnectionsRefused.WithLabelValues("test", reason))
}

// dial opens a connection that sends nothing, and waits until the listener has admitted it
// (or refused it) so that the order of connections is the order of the calls.
func (s *testServer) dial(t *testing.T) net.Conn {
	t.Helper()
	before := s.l.Open() + int(s.dropped(ReasonEvicted)) + int(s.refused(ReasonCap))
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	waitFor(t, "the connection to be accepted", func() bool {
		return s.l.Open()+int(s.dropped(ReasonEvicted))+int(s.refused(ReasonCap)) > before
	})
	return c
}

// get sends GET path on c and reads the response head.
func get(t *testing.T, c net.Conn, br *bufio.Reader, path string) *http.Response {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp
}

// getOK sends GET / on c and reads the whole answer, leaving c idle (keep-alive).
func getOK(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	resp := get(t, c, br, "/")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("GET /: %d %q", resp.StatusCode, body)
	}
}

// closed waits until the server has closed c.
func closed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection not closed by the server: %v", err)
	}
}

// TestAdmission: at the limit the listener makes room by closing a connection that is not
// serving a request, never-used ones first, and refuses the new one (503) only when every
// connection serves a request.
func TestAdmission(t *testing.T) {
	tests := []struct {
		name string
		// setup fills the listener (Max 3) and returns the connection expected to be closed to
		// admit the next, or nil when the next must be refused.
		setup func(t *testing.T, s *testServer) (victim net.Conn)
	}{
		{"the oldest unused connection goes first", func(t *testing.T, s *testServer) net.Conn {
			used := s.dial(t)
			getOK(t, used, bufio.NewReader(used)) // idle, but used: kept while an unused one remains
			oldest := s.dial(t)
			s.dial(t)
			return oldest
		}},
		{"then the longest idle connection", func(t *testing.T, s *testServer) net.Conn {
			var conns []net.Conn
			for range 3 {
				c := s.dial(t)
				getOK(t, c, bufio.NewReader(c))
				conns = append(conns, c)
			}
			return conns[0]
		}},
		{"a stream or request in progress is never closed: the new connection is refused", func(t *testing.T, s *testServer) net.Conn {
			for range 3 {
				c := s.dial(t)
				if resp := get(t, c, bufio.NewReader(c), "/hold"); resp.StatusCode != 200 {
					t.Fatalf("/hold: %d", resp.StatusCode)
				}
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := serve(t, Options{Max: 3}, nil)
			victim := tt.setup(t, s)
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			if victim == nil {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("refused connection: %v", err)
				}
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"unavailable"`) {
					t.Fatalf("refused connection: %d %v %s", resp.StatusCode, resp.Header, body)
				}
				if n := s.refused(ReasonCap); n != 1 {
					t.Fatalf("refused{cap} = %v", n)
				}
				close(s.hold) // a request ends: its connection, idle, can be displaced
				c2 := s.dial(t)
				getOK(t, c2, bufio.NewReader(c2))
				return
			}
			getOK(t, c, br)
			closed(t, victim)
			if n := s.dropped(ReasonEvicted); n != 1 {
				t.Fatalf("dropped{evicted} = %v, want 1", n)
			}
			if n := s.l.Open(); n != 3 {
				t.Fatalf("%d connections open, want 3", n)
			}
			waitFor(t, "the warning", func() bool { return strings.Contains(s.logs.String(), "evicted=1") })
		})
	}
}

// TestFirstRequestTimeout: a connection that has not delivered a whole request header within
// FirstRequest is closed; one that has is left to the server's own timeouts.
func TestFirstRequestTimeout(t *testing.T) {
	tests := []struct {
		name string
		sent string
	}{
		{"nothing sent", ""},
		{"a header never finished", "GET / HTTP/1.1\r\nHost: x\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Long enough that the used connection's request, sent at once, is read in time on a
			// busy machine; the test waits on the silent connection's close, not on a clock.
			s := serve(t, Options{FirstRequest: 2 * time.Second}, nil)
			used := s.dial(t)
			br := bufio.NewReader(used)
			getOK(t, used, br)
			silent := s.dial(t)
			io.WriteString(silent, tt.sent)
			closed(t, silent)
			if n := s.dropped(ReasonFirstRequest); n != 1 {
				t.Fatalf("dropped{first_request_timeout} = %v", n)
			}
			// Accepted earlier than the silent one, the used connection outlived its deadline.
			getOK(t, used, br)
			if n := s.l.Open(); n != 1 {
				t.Fatalf("%d connections open, want 1", n)
			}
		})
	}
}

// TestHTTP2: HTTP/2 connections, which net/http does not report to ConnState, count as serving
// requests from their first one: neither the first-request timeout nor eviction closes them.
func TestHTTP2(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	l := New(inner, Options{Name: "test", Max: 2, FirstRequest: 2 * time.Second, Metrics: m})
	ts := httptest.NewUnstartedServer(l.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	})))
	ts.Listener = l
	ts.Config.ConnState, ts.Config.ConnContext = l.ConnState, l.ConnContext
	ts.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()
	client := ts.Client()
	reused := func() bool {
		t.Helper()
		var again bool
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { again = i.Reused }})
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "HTTP/2.0" {
			t.Fatalf("protocol %q", body)
		}
		return again
	}
	reused()
	s := &testServer{l: l, m: m, addr: inner.Addr().String()}
	silent := s.dial(t)
	closed(t, silent) // its deadline came after the HTTP/2 connection's
	unused := s.dial(t)
	s.dial(t) // at the limit: the unused one makes room, not the HTTP/2 connection
	closed(t, unused)
	if !reused() {
		t.Fatal("the HTTP/2 connection was closed")
	}
	if n := s.dropped(ReasonFirstRequest); n != 1 {
		t.Fatalf("dropped{first_request_timeout} = %v", n)
	}
}

// TestAcceptError: an accept that fails for lack of descriptors is counted and logged, and an
// unused connection is closed to free one.
func TestAcceptError(t *testing.T) {
	real, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &failingListener{Listener: real, fail: make(chan error, 1)}
	s := serve(t, Options{WarnEvery: time.Hour}, fl)
	unused := s.dial(t)
	fl.fail <- &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	c := s.dial(t) // accepted after the failure: http.Server retries
	getOK(t, c, bufio.NewReader(c))
	closed(t, unused)
	if n := s.refused(ReasonAcceptError); n != 1 {
		t.Fatalf("refused{accept_error} = %v", n)
	}
	if n := s.dropped(ReasonEvicted); n != 1 {
		t.Fatalf("dropped{evicted} = %v", n)
	}
	waitFor(t, "the warning", func() bool { return strings.Contains(s.logs.String(), "too many open files") })
}

// failingListener fails an Accept with the error sent on fail.
type failingListener struct {
	net.Listener
	fail chan error
}

func (l *failingListener) Accept() (net.Conn, error) {
	select {
	case err := <-l.fail:
		return nil, err
	default:
		return l.Listener.Accept()
	}
}

// TestWarnerRateLimit: the first event is logged at once; the others of the window are summed
// into one later warning.
func TestWarnerRateLimit(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]int
	w := &warner{every: time.Hour, emit: func(counts map[string]int, _ error, _ time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, counts)
	}}
	for range 100 {
		w.note(ReasonEvicted, nil)
	}
	w.note(ReasonCap, nil)
	mu.Lock()
	if len(got) != 1 || got[0][ReasonEvicted] != 1 {
		t.Fatalf("warnings after 101 events in a window: %v", got)
	}
	mu.Unlock()
	w.close() // logs what the window held
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[1][ReasonEvicted] != 99 || got[1][ReasonCap] != 1 {
		t.Fatalf("warnings: %v", got)
	}
}

// TestGoroutinesEnd: timers and the listener leave no goroutine behind once closed.
func TestGoroutinesEnd(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		inner, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l := New(inner, Options{Max: 2, FirstRequest: time.Hour, WarnEvery: time.Hour})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		for range 4 { // two evicted: a warning now, one held in a timer
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
		}
		waitFor(t, "two evictions", func() bool {
			return value(l.droppedEvict) == 2
		})
		l.Close()
		<-done
	}()
	waitFor(t, "the goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
}

// value reads a counter or gauge.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
