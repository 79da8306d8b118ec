package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/heraldhq/herald/internal/config"
)

// server is a whole Herald running in-process on a real loopback listener.
type server struct {
	*App
	url        string
	stop       func()
	logBuf     *syncBuffer
	httpClient *http.Client // nil: http.DefaultClient
}

// startServer starts Herald on 127.0.0.1:0 with a fresh SQLite file, applying mutate to the
// config first. It is stopped (and its shutdown checked) when the test ends.
// Streams are served two ways: parked (hijacked, epoll-driven, the default on Linux) and each on
// its own goroutine (TLS, HTTP/2, --park-streams=false). streamModes runs a test both ways; the
// subtest's name tells startServer which.
const modeGoroutine = "goroutine"

func streamModes(t *testing.T, test func(t *testing.T)) {
	t.Run("parked", test)
	t.Run(modeGoroutine, test)
}

func startServer(t testing.TB, mutate func(*config.Config)) *server {
	t.Helper()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.Store = "sqlite:" + filepath.Join(t.TempDir(), "herald.db")
	cfg.SQLiteSync = "normal" // tests do not need power-loss durability
	cfg.Heartbeat = time.Second
	cfg.Retry = 10 * time.Millisecond
	cfg.DrainWindow = 0 // tests that stop a server with streams open do not wait for a spread
	cfg.ParkStreams = !strings.Contains(t.Name(), "/"+modeGoroutine)
	if mutate != nil {
		mutate(&cfg)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	s := &server{App: a, url: a.URL(), logBuf: logs}
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server stopped with error: %v", err)
			}
		case <-time.After(cfg.ShutdownTimeout + 5*time.Second):
			t.Errorf("server did not stop")
		}
	}
	t.Cleanup(s.stop)
	return s
}

type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.lock()
	defer b.unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.lock()
	defer b.unlock()
	return b.buf.String()
}

func (b *syncBuffer) lock() {
	if b.mu == nil {
		b.mu = make(chan struct{}, 1)
	}
	b.mu <- struct{}{}
}
func (b *syncBuffer) unlock() { <-b.mu }

// published is one acknowledged notification of a publish response.
type published struct {
	ID   string `json:"id"`
	User string `json:"user"`
}

// publish posts body to path and returns the status and the decoded response.
func (s *server) publish(t testing.TB, path string, body any) (int, []published, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(s.url+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		Notifications []published `json:"notifications"`
	}
	var generic map[string]any
	_ = json.Unmarshal(raw, &generic)
	if resp.StatusCode == http.StatusCreated {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("POST %s: decode %q: %v", path, raw, err)
		}
	}
	return resp.StatusCode, out.Notifications, generic
}

// mustPublish publishes one notification and fails the test unless it is acknowledged.
func (s *server) mustPublish(t testing.TB, body any) []published {
	t.Helper()
	status, ns, raw := s.publish(t, "/v1/notifications", body)
	if status != http.StatusCreated {
		t.Fatalf("publish %v: status %d %v", body, status, raw)
	}
	return ns
}

// getJSON GETs path into v and returns the status.
func (s *server) getJSON(t testing.TB, path string, v any) int {
	t.Helper()
	resp, err := http.Get(s.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("GET %s: decode: %v", path, err)
	}
	return resp.StatusCode
}

// envelope is the JSON data of a notification event.
type envelope struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Data      json.RawMessage `json:"data"`
	CreatedAt time.Time       `json:"created_at"`
	Broadcast bool            `json:"broadcast"`
}

// bare is a cursor without its epoch: "<user>.<broadcast>".
func bare(cursor string) string {
	if i := strings.LastIndexByte(cursor, '.'); strings.Count(cursor, ".") == 2 {
		return cursor[:i]
	}
	return cursor
}

// received is one event a test client got.
type received struct {
	Cursor string // the SSE id in effect
	Type   string
	Env    envelope
	Data   string // a control event's data, as sent
}

// idOnly is the Type the test client gives a frame that only moves the cursor.
const idOnly = "(id only)"

// openStream opens GET /v1/stream with the real go-sse parser and sends every event on the
// returned channel until ctx ends or the server closes the stream, then closes the channel.
// status is the HTTP status; for anything but 200 no channel is returned.
func (s *server) openStream(ctx context.Context, query, lastID string) (status int, events <-chan received, err error) {
	h := http.Header{}
	if lastID != "" {
		h.Set("Last-Event-ID", lastID)
	}
	return s.openStreamWith(ctx, query, h)
}

// openStreamWith is openStream with any request headers (credentials, cursor).
func (s *server) openStreamWith(ctx context.Context, query string, header http.Header) (status int, events <-chan received, err error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/v1/stream?"+query, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.client().Do(req)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil, nil
	}
	ch := make(chan received, 64)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		for ev, err := range sse.Read(resp.Body, &sse.ReadConfig{MaxEventSize: 1 << 20}) {
			if err != nil {
				return
			}
			r := received{Cursor: ev.LastEventID, Type: ev.Type, Data: ev.Data}
			if ev.Type == "" && ev.Data == "" {
				// An id-only frame: browsers dispatch nothing but remember the id.
				r.Type = idOnly
			} else if ev.Type == "" || !strings.HasPrefix(ev.Type, "herald.") {
				if err := json.Unmarshal([]byte(ev.Data), &r.Env); err != nil {
					r.Type = "decode-error: " + err.Error()
				}
			}
			select {
			case ch <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	return resp.StatusCode, ch, nil
}

// client is the HTTP client for this server: the default one, or one that trusts its TLS
// certificate.
func (s *server) client() *http.Client {
	if s.httpClient != nil {
		return s.httpClient
	}
	return http.DefaultClient
}

// waitGoroutines waits until the number of goroutines is at most want.
func waitGoroutines(t testing.TB, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		n := runtime.NumGoroutine()
		if n <= want {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, want at most %d; stacks:\n%s", n, want, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("unexpected error: %v", err))
	}
	return v
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
