package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/client"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/config"
)

// note is one notification frame as Herald writes it: id, event name and envelope.
func note(cursor, id string) string {
	return fmt.Sprintf("id: %s\nevent: n\ndata: {\"id\":%q,\"type\":\"n\",\"data\":null,\"created_at\":\"2026-11-23T00:00:00Z\",\"broadcast\":false}\n\n", cursor, id)
}

// attempt is what a scripted server does with one request.
type attempt func(w http.ResponseWriter, r *http.Request)

// streamThen opens an event stream, writes frames, flushes, and then ends (hold: false) or
// stays silent until the client goes away (hold: true).
func streamThen(frames string, hold bool) attempt {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, frames)
		w.(http.Flusher).Flush()
		if hold {
			<-r.Context().Done()
		}
	}
}

// status answers with an error status, headers and a body.
func status(code int, body string, header ...string) attempt {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}
}

// request is what a scripted server saw of one request.
type request struct {
	at          time.Time
	lastEventID string
	auth        string
}

// script is a server that answers its n-th request with attempts[n], and every later one with
// the last attempt.
type script struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
}

func newScript(t *testing.T, attempts ...attempt) *script {
	t.Helper()
	s := &script{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, request{time.Now(), r.Header.Get("Last-Event-ID"), r.Header.Get("Authorization")})
		n := len(s.reqs) - 1
		s.mu.Unlock()
		attempts[min(n, len(attempts)-1)](w, r)
	}))
	t.Cleanup(func() {
		s.CloseClientConnections()
		s.Close()
	})
	return s
}

func (s *script) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

func (s *script) cursors() []string {
	var c []string
	for _, r := range s.requests() {
		c = append(c, r.lastEventID)
	}
	return c
}

// fast are subscription options for tests: short waits.
func fast() client.SubscribeOptions {
	return client.SubscribeOptions{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, IdleTimeout: 5 * time.Second}
}

// TestSubscribeResumesAfterEveryFailure: whatever ends a connection — the server closing it, a
// cut in the middle of an event, an error status, a rate limit, a server that stops sending —
// the next request carries the cursor of the last event delivered, and nothing is delivered
// twice or skipped.
func TestSubscribeResumesAfterEveryFailure(t *testing.T) {
	first := note("1.0", "1")
	tests := []struct {
		name    string
		failure attempt
	}{
		{"end of stream", streamThen("", false)},
		{"cut inside an event", streamThen("id: 2.0\nevent: n\ndata: {\"id\":\"2\",", false)},
		{"cut after an id line", streamThen("id: 2.0\n", false)},
		{"500", status(500, `{"error":{"code":"internal","message":"boom"}}`, "Content-Type", "application/json")},
		{"502 from a proxy", status(502, "<html><body>Bad Gateway</body></html>", "Content-Type", "text/html")},
		{"503 with Retry-After", status(503, `{"error":{"code":"unavailable","message":"draining"}}`, "Retry-After", "0")},
		{"429", status(429, `{"error":{"code":"rate_limited","message":"too many streams"}}`, "Retry-After", "0")},
		{"silence", streamThen(": herald stream\n\n", true)},
		{"not answering", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScript(t, streamThen(first, false), tt.failure, streamThen(note("2.0", "2"), true))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			o := fast()
			o.IdleTimeout = 200 * time.Millisecond
			var got []string
			for ev, err := range newClient(t, s.URL).Subscribe(ctx, o) {
				if err != nil {
					t.Fatalf("yielded %v", err)
				}
				got = append(got, ev.Cursor+"="+ev.Notification.ID)
				if len(got) == 2 {
					break
				}
			}
			if want := []string{"1.0=1", "2.0=2"}; !slices.Equal(got, want) {
				t.Errorf("events %v, want %v", got, want)
			}
			if c := s.cursors(); !slices.Equal(c, []string{"", "1.0", "1.0"}) {
				t.Errorf("requests' Last-Event-ID %q, want \"\", then 1.0 twice", c)
			}
		})
	}
}

// TestSubscribeParsesTheWireFormat: the SSE details a server or proxy may use — a byte order
// mark, CRLF or CR line ends, comments, retry fields, data split over several lines, unknown
// fields, frames with only an id — are read as the SSE specification says.
func TestSubscribeParsesTheWireFormat(t *testing.T) {
	env := func(id string) string {
		return fmt.Sprintf(`{"id":%q,"type":"n","data":{"a":1},"created_at":"2026-11-23T00:00:00Z","broadcast":false}`, id)
	}
	tests := []struct {
		name  string
		wire  string
		want  []string // cursor=type:id for notifications, cursor=type for control events
		final string   // the cursor the next connection sends
	}{
		{"BOM and LF", "\ufeff: herald stream\n\nretry: 2000\n\nid: 1.0\nevent: n\ndata: " + env("1") + "\n\n", []string{"1.0=n:1"}, "1.0"},
		{"CRLF", ": hi\r\n\r\nretry: 10\r\n\r\nid: 1.0\r\nevent: n\r\ndata: " + env("1") + "\r\n\r\n", []string{"1.0=n:1"}, "1.0"},
		{"CR", "id: 1.0\revent: n\rdata: " + env("1") + "\r\r", []string{"1.0=n:1"}, "1.0"},
		{"data on several lines", "id: 1.0\nevent: n\ndata: {\"id\":\"1\",\ndata: \"type\":\"n\",\"data\":null,\ndata:\"created_at\":\"2026-11-23T00:00:00Z\",\"broadcast\":false}\n\n", []string{"1.0=n:1"}, "1.0"},
		{"comments and unknown fields inside an event", "id: 1.0\n: a comment\nfoo: bar\nevent: n\ndata: " + env("1") + "\n\n", []string{"1.0=n:1"}, "1.0"},
		{"id-only frame moves the cursor without an event", "id: 1.0\nevent: n\ndata: " + env("1") + "\n\nid: 3.0\n\n", []string{"1.0=n:1"}, "3.0"},
		{"unnamed event is a notification", "id: 1.0\ndata: " + env("1") + "\n\n", []string{"1.0=n:1"}, "1.0"},
		{"control events", "id: 0.0\nevent: herald.connected\ndata: {\"cursor\":\"0.0\"}\n\n" +
			"event: herald.read\ndata: {\"ids\":[\"1\"],\"all\":false,\"read\":true,\"unread\":0}\n\n" +
			"id: 4.0\nevent: herald.missed\ndata: {\"reason\":\"retention\",\"message\":\"m\",\"cursor\":\"4.0\"}\n\n" +
			"event: herald.future\ndata: {}\n\n", []string{"0.0=herald.read", "4.0=herald.missed", "4.0=herald.future"}, "4.0"},
		{"event without data is not dispatched", "id: 1.0\nevent: n\n\nid: 2.0\nevent: n\ndata: " + env("2") + "\n\n", []string{"2.0=n:2"}, "2.0"},
		{"id with a NUL is ignored", "id: 1.0\nevent: n\ndata: " + env("1") + "\n\nid: 9\x00\n\n", []string{"1.0=n:1"}, "1.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScript(t, streamThen(tt.wire, false), streamThen("", true))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var got []string
			reconnected := make(chan struct{})
			o := fast()
			o.OnState = func(st client.State, err error) {
				if st == client.Reconnecting {
					select {
					case <-reconnected:
					default:
						close(reconnected)
					}
				}
			}
			go func() {
				<-reconnected
				// Let the second request arrive, then stop.
				for deadline := time.Now().Add(5 * time.Second); len(s.requests()) < 2 && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
				cancel()
			}()
			for ev, err := range newClient(t, s.URL).Subscribe(ctx, o) {
				if err != nil {
					t.Fatalf("yielded %v", err)
				}
				if ev.Control() {
					got = append(got, ev.Cursor+"="+ev.Type)
					if string(ev.Data) == "" {
						t.Errorf("control event %s without data", ev.Type)
					}
				} else {
					got = append(got, ev.Cursor+"="+ev.Type+":"+ev.Notification.ID)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("events %q, want %q", got, tt.want)
			}
			if c := s.cursors(); len(c) < 2 || c[1] != tt.final {
				t.Errorf("requests' Last-Event-ID %q, want the second to be %q", c, tt.final)
			}
		})
	}
}

// TestSubscribeRefusesWhatCannotBeFixed: an event larger than MaxEventSize, a line that never
// ends, or a notification that is not one would come back identically on every reconnection.
// The subscription says so, once, and ends — it neither loops downloading the same bytes nor
// skips the event by moving its cursor past it.
func TestSubscribeRefusesWhatCannotBeFixed(t *testing.T) {
	big := note("2.0", "2")
	big = strings.Replace(big, `"data":null`, `"data":"`+strings.Repeat("x", 8<<10)+`"`, 1)
	tests := []struct {
		name string
		wire attempt
		want string
	}{
		{"event over MaxEventSize", streamThen(note("1.0", "1")+big, true), "MaxEventSize"},
		{"endless line", func(w http.ResponseWriter, r *http.Request) {
			streamThen(note("1.0", "1")+"data: ", false)(w, r)
			chunk := []byte(strings.Repeat("x", 1024))
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, "MaxEventSize"},
		{"notification that is not JSON", streamThen(note("1.0", "1")+"id: 2.0\nevent: n\ndata: not json\n\n", true), "not a notification"},
		{"notification that is not an envelope", streamThen(note("1.0", "1")+"id: 2.0\nevent: n\ndata: [1,2]\n\n", true), "not a notification"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScript(t, tt.wire)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			o := fast()
			o.MaxEventSize = 4 << 10
			var got []string
			var errs []error
			for ev, err := range newClient(t, s.URL).Subscribe(ctx, o) {
				if err != nil {
					errs = append(errs, err)
					continue
				}
				got = append(got, ev.Cursor)
			}
			if ctx.Err() != nil {
				t.Errorf("the subscription went on until its context ended")
			}
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.want) {
				t.Errorf("errors %v, want one that says %q", errs, tt.want)
			}
			if !slices.Equal(got, []string{"1.0"}) {
				t.Errorf("%d events %v..., want only 1.0", len(got), got[:min(len(got), 3)])
			}
			if c := s.cursors(); !slices.Equal(c, []string{""}) {
				t.Errorf("%d requests, with Last-Event-ID %q...; want one", len(c), c[:min(len(c), 3)])
			}
		})
	}
}

// TestSubscribeRefusesABadCursor: a cursor or token that cannot be sent in a header (read from
// a file with its newline) is refused at once instead of failing every reconnection forever.
func TestSubscribeRefusesABadCursor(t *testing.T) {
	s := newScript(t, streamThen("", true))
	for _, cursor := range []string{"1.0\n", "1.0\r\n", "1\x00.0", "1.0\x7f"} {
		t.Run(fmt.Sprintf("%q", cursor), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			o := fast()
			o.LastEventID = cursor
			var errs []error
			for _, err := range newClient(t, s.URL).Subscribe(ctx, o) {
				errs = append(errs, err)
			}
			if ctx.Err() != nil || len(errs) != 1 || errs[0] == nil || !strings.Contains(errs[0].Error(), "cursor") {
				t.Errorf("errors %v (ctx %v), want one about the cursor, at once", errs, ctx.Err())
			}
		})
	}
	t.Run("token with a newline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		c := newClient(t, s.URL, client.WithTokenSource(func(context.Context) (string, error) { return "tok\n", nil }))
		var errs []error
		for _, err := range c.Subscribe(ctx, fast()) {
			errs = append(errs, err)
		}
		if ctx.Err() != nil || len(errs) != 1 || errs[0] == nil || !strings.Contains(errs[0].Error(), "token") {
			t.Errorf("errors %v (ctx %v), want one about the token, at once", errs, ctx.Err())
		}
	})
	if n := len(s.requests()); n != 0 {
		t.Errorf("%d requests sent with a bad cursor or token", n)
	}
}

// TestSubscribeBackoff: the wait before a reconnection grows while connections fail, also
// when the server accepts a stream and closes it at once (a proxy in trouble, a crashing
// node): a fleet of clients must not hammer a server that is recovering. A connection that
// delivered an event starts the backoff afresh. Retry-After is honoured in both forms.
func TestSubscribeBackoff(t *testing.T) {
	const minB, maxB = 40 * time.Millisecond, 640 * time.Millisecond
	gaps := func(rs []request) []time.Duration {
		var g []time.Duration
		for i := 1; i < len(rs); i++ {
			g = append(g, rs[i].at.Sub(rs[i-1].at))
		}
		return g
	}
	t.Run("accepted then closed", func(t *testing.T) {
		var attempts []attempt
		for range 6 {
			attempts = append(attempts, streamThen(": herald stream\n\nretry: 2000\n\n", false))
		}
		attempts = append(attempts, streamThen(note("1.0", "1"), false), streamThen("", true))
		s := newScript(t, attempts...)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		go func() {
			for len(s.requests()) < 8 && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
		}()
		for _, err := range newClient(t, s.URL).Subscribe(ctx, client.SubscribeOptions{MinBackoff: minB, MaxBackoff: maxB}) {
			if err != nil {
				t.Fatal(err)
			}
		}
		g := gaps(s.requests())
		if len(g) < 7 {
			t.Fatalf("gaps %v", g)
		}
		// Waits are backoff ±50%: 40, 80, 160, 320, 640 ms; the 5th is at least 320 ms.
		if g[4] < 300*time.Millisecond || g[5] < 300*time.Millisecond {
			t.Errorf("gaps between attempts %v: the backoff did not grow while connections delivered nothing", g)
		}
		if g[6] > 250*time.Millisecond {
			t.Errorf("gaps between attempts %v: the backoff did not start afresh after an event", g)
		}
	})
	date := func() string { return time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat) }
	tests := []struct {
		name    string
		failure attempt
		atLeast time.Duration
	}{
		{"429 Retry-After seconds", status(429, `{"error":{"code":"rate_limited","message":"m"}}`, "Retry-After", "1"), 900 * time.Millisecond},
		{"503 Retry-After date", func(w http.ResponseWriter, r *http.Request) {
			status(503, "down", "Retry-After", date())(w, r)
		}, 1900 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScript(t, tt.failure, streamThen(note("1.0", "1"), true))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, err := range newClient(t, s.URL).Subscribe(ctx, client.SubscribeOptions{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}) {
				if err != nil {
					t.Fatal(err)
				}
				break
			}
			if g := gaps(s.requests()); len(g) != 1 || g[0] < tt.atLeast {
				t.Errorf("gaps %v, want one of at least %v", g, tt.atLeast)
			}
		})
	}
}

// TestSubscribeSlowConsumer: the idle timeout measures the server's silence, not the time the
// loop's body takes: a consumer that spends longer than IdleTimeout on an event does not make
// the subscription drop a healthy connection.
func TestSubscribeSlowConsumer(t *testing.T) {
	s := newScript(t, func(w http.ResponseWriter, r *http.Request) {
		streamThen(note("1.0", "1"), false)(w, r)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		second := time.After(700 * time.Millisecond)
		for {
			select {
			case <-r.Context().Done():
				return
			case <-second:
				fmt.Fprint(w, note("2.0", "2"))
			case <-tick.C:
				fmt.Fprint(w, ":\n\n")
			}
			w.(http.Flusher).Flush()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o := fast()
	o.IdleTimeout = 150 * time.Millisecond
	var states []string
	o.OnState = func(st client.State, err error) { states = append(states, fmt.Sprint(st, " ", err)) }
	var got []string
	for ev, err := range newClient(t, s.URL).Subscribe(ctx, o) {
		if err != nil {
			t.Fatal(err)
		}
		if got = append(got, ev.Cursor); len(got) == 1 {
			time.Sleep(500 * time.Millisecond) // a slow database write
			continue
		}
		break
	}
	if r := len(s.requests()); r != 1 || !slices.Equal(got, []string{"1.0", "2.0"}) {
		t.Errorf("%d connections, events %v; want 1 connection, 1.0 and 2.0; states %q", r, got, states)
	}
}

// TestSubscribeIdleReason: a server that accepts the connection but never answers is left
// after IdleTimeout, and OnState says why.
func TestSubscribeIdleReason(t *testing.T) {
	s := newScript(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o := fast()
	o.IdleTimeout = 50 * time.Millisecond
	var errs []error
	o.OnState = func(st client.State, err error) {
		if st == client.Reconnecting {
			errs = append(errs, err)
			cancel()
		}
	}
	for _, err := range newClient(t, s.URL).Subscribe(ctx, o) {
		t.Fatal(err)
	}
	if len(errs) != 1 || !strings.Contains(fmt.Sprint(errs[0]), "idle") {
		t.Errorf("reconnection causes %v, want the idle timeout", errs)
	}
}

// TestSubscribeEnds: breaking the loop or ending the context ends the subscription promptly —
// while reading, while waiting to reconnect — and releases its connection and goroutines.
func TestSubscribeEnds(t *testing.T) {
	var open atomic.Int32
	held := func(w http.ResponseWriter, r *http.Request) {
		open.Add(1)
		defer open.Add(-1)
		streamThen(note("1.0", "1"), true)(w, r)
	}
	tests := []struct {
		name    string
		attempt attempt
		stop    func(cancel context.CancelFunc) bool // true: break after the first event
	}{
		{"break", held, func(context.CancelFunc) bool { return true }},
		{"cancel while reading", held, func(cancel context.CancelFunc) bool { cancel(); return false }},
		{"cancel while waiting to reconnect", status(503, "", "Retry-After", "3600"), nil},
		{"cancel while connecting", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScript(t, tt.attempt)
			base := runtime.NumGoroutine()
			hc := &http.Client{Transport: &http.Transport{}}
			c := newClient(t, s.URL, client.WithHTTPClient(hc))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.stop == nil {
				time.AfterFunc(200*time.Millisecond, cancel)
			}
			start := time.Now()
			for _, err := range c.Subscribe(ctx, client.SubscribeOptions{MinBackoff: time.Hour, IdleTimeout: time.Hour}) {
				if err != nil {
					t.Fatalf("yielded %v", err)
				}
				if tt.stop(cancel) {
					break
				}
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("ended after %v", d)
			}
			hc.CloseIdleConnections()
			deadline := time.Now().Add(5 * time.Second)
			for (open.Load() != 0 || runtime.NumGoroutine() > base) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if open.Load() != 0 {
				t.Errorf("the server still has the stream open")
			}
			if n := runtime.NumGoroutine(); n > base {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
			}
		})
	}
}

// TestSubscribeTokenSource: with a token source, a subscription outlives its short-lived
// tokens: at herald.expired it reconnects with a fresh token from where it was, and sees every
// notification once, in order.
func TestSubscribeTokenSource(t *testing.T) {
	secret := strings.Repeat("s", 40)
	s := start(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "h.db"), func(c *config.Config) { c.JWTSecret, c.JWTLeeway = secret, 0 })
	var minted atomic.Int32
	source := func(ctx context.Context) (string, error) {
		minted.Add(1)
		return auth.Mint([]byte(secret), auth.Token{User: "alice", TTL: 2 * time.Second}, time.Now())
	}
	pubTok, err := auth.Mint([]byte(secret), auth.Token{Publish: true, TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pub := newClient(t, s.URL, client.WithToken(pubTok))
	alice := newClient(t, s.URL, client.WithTokenSource(source))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var want []string
	for i := range 3 {
		r, err := pub.Publish(ctx, client.Message{To: []string{"alice"}, Type: "n", Data: i})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, r[0].ID)
	}
	var got, control []string
	published := false
	for ev, err := range alice.Subscribe(ctx, client.SubscribeOptions{LastEventID: "0.0", MinBackoff: 10 * time.Millisecond}) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Control() {
			control = append(control, ev.Type)
			if ev.Type == "herald.expired" && !published {
				published = true
				for i := 3; i < 6; i++ {
					r, err := pub.Publish(ctx, client.Message{To: []string{"alice"}, Type: "n", Data: i})
					if err != nil {
						t.Fatal(err)
					}
					want = append(want, r[0].ID)
				}
			}
			continue
		}
		got = append(got, ev.Notification.ID)
		if len(got) == 6 {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if !slices.Contains(control, "herald.expired") || minted.Load() < 2 {
		t.Errorf("control events %v, %d tokens: want an expiry and a fresh token", control, minted.Load())
	}
}

// TestSubscribePermanentErrorIsLast: after an error that retrying cannot fix the sequence ends
// even if the loop's body ignores the error.
func TestSubscribePermanentErrorIsLast(t *testing.T) {
	s := newScript(t, status(403, `{"error":{"code":"forbidden","message":"no"}}`, "Content-Type", "application/json"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	n := 0
	for _, err := range newClient(t, s.URL).Subscribe(ctx, fast()) {
		n++
		var he *client.Error
		if !errors.As(err, &he) || he.Code != "forbidden" || he.Temporary() {
			t.Errorf("got %v", err)
		}
	}
	if n != 1 || len(s.requests()) != 1 {
		t.Errorf("%d yields, %d requests; want 1 and 1", n, len(s.requests()))
	}
}
