package app

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/config"
)

// TestStreamOpening checks what a client sees first: headers that defeat proxy buffering, an
// opening comment and a retry hint flushed at once, then the cursor of the present.
func TestStreamOpening(t *testing.T) {
	s := startServer(t, func(c *config.Config) { c.Heartbeat = 50 * time.Millisecond })
	s.mustPublish(t, map[string]any{"to": []string{"alice"}})
	s.mustPublish(t, map[string]any{"broadcast": true})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/v1/stream?user=alice", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for header, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-store",
		"X-Accel-Buffering": "no",
	} {
		if got := resp.Header.Get(header); got != want {
			t.Errorf("%s = %q, want %q", header, got, want)
		}
	}
	// Nothing is published now, so everything read here was flushed without waiting for an event.
	r := bufio.NewReader(resp.Body)
	var lines []string
	for len(lines) < 7 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", lines, err)
		}
		lines = append(lines, strings.TrimRight(line, "\n"))
	}
	e := s.Store.Identity().Epoch
	want := []string{": herald stream", "", "retry: 10", "", "id: 1.1." + e, "event: herald.connected", `data: {"cursor":"1.1.` + e + `"}`}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("opening:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// Heartbeats keep an idle stream alive through proxies.
	heartbeats := 0
	for heartbeats < 2 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("waiting for heartbeats: %v", err)
		}
		if line == ":\n" {
			heartbeats++
		}
	}
}

// TestStreamLongerThanReadTimeout: the server's ReadTimeout guards request reading, but must not
// end a stream that stays open longer.
func TestStreamLongerThanReadTimeout(t *testing.T) { streamModes(t, testStreamLongerThanReadTimeout) }

func testStreamLongerThanReadTimeout(t *testing.T) {
	s := startServer(t, func(c *config.Config) {
		c.ReadTimeout = 200 * time.Millisecond
		c.Heartbeat = 50 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, ch, err := s.openStream(ctx, "user=alice", "")
	if err != nil {
		t.Fatal(err)
	}
	<-ch // connected
	time.Sleep(600 * time.Millisecond)
	s.mustPublish(t, map[string]any{"to": []string{"alice"}, "type": "late"})
	for ev := range ch {
		if ev.Type == "late" {
			return
		}
	}
	t.Fatal("stream ended before the notification arrived")
}

// TestSlowConsumerIsolation proves invariant 3: a client that stops reading never delays the
// others; its queue overflows, it is disconnected, and it catches up on reconnect.
func TestSlowConsumerIsolation(t *testing.T) { streamModes(t, testSlowConsumerIsolation) }

func testSlowConsumerIsolation(t *testing.T) {
	// The write timeout is long, so that only the overflow, not the timeout, can free the stalled
	// stream within the test's bounds, and normal clients finishing first cannot be luck.
	s := startServer(t, func(c *config.Config) {
		c.QueueSize = 16
		c.WriteTimeout = time.Minute
	})
	s.mustPublish(t, map[string]any{"broadcast": true, "type": "start"})
	startCursor := "0.1"

	// The stalled client: a raw connection with a tiny receive buffer that never reads.
	stalled, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	stalled.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(stalled, "GET /v1/stream?user=stalled HTTP/1.1\r\nHost: localhost\r\nLast-Event-ID: %s\r\n\r\n", startCursor)
	waitFor(t, 5*time.Second, "stalled stream to open", func() bool { return s.Hub.Stats().Subscriptions == 1 })

	// Normal clients.
	const normal = 3
	const batches, perBatch = 6, 100
	total := batches * perBatch
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	results := make([]int, normal)
	for i := 0; i < normal; i++ {
		_, ch, err := s.openStream(ctx, fmt.Sprintf("user=n%d", i), startCursor)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range ch {
				if ev.Type == "burst" {
					if results[i]++; results[i] == total {
						return
					}
				}
			}
		}()
	}
	waitFor(t, 5*time.Second, "normal streams to open", func() bool { return s.Hub.Stats().Subscriptions == 1+normal })

	// A burst of large broadcasts: far more than the stalled socket's buffers hold.
	payload := strings.Repeat("x", 16<<10)
	began := time.Now()
	for b := 0; b < batches; b++ {
		var ns []map[string]any
		for i := 0; i < perBatch; i++ {
			ns = append(ns, map[string]any{"broadcast": true, "type": "burst", "data": payload})
		}
		if status, _, raw := s.publish(t, "/v1/notifications/batch", map[string]any{"notifications": ns}); status != http.StatusCreated {
			t.Fatalf("batch: %d %v", status, raw)
		}
	}
	waitOrFail(t, &wg, 20*time.Second, "normal clients to receive the burst")
	t.Logf("normal clients received %d broadcasts each in %s", total, time.Since(began).Round(time.Millisecond))
	for i, n := range results {
		if n != total {
			t.Errorf("normal client %d got %d of %d", i, n, total)
		}
	}
	waitFor(t, 10*time.Second, "the stalled stream to be dropped", func() bool { return s.API.SlowDisconnects() >= 1 })
	waitFor(t, 5*time.Second, "the stalled subscription to close", func() bool { return s.Hub.Stats().Subscriptions == normal })

	// The stalled client comes back (its old connection is closed server-side; draining megabytes
	// through its tiny window would only slow the test) and catches up from its cursor.
	stalled.Close()
	_, ch, err := s.openStream(ctx, "user=stalled", startCursor)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for ev := range ch {
		if ev.Type == "burst" {
			if got++; got == total {
				break
			}
		}
	}
	if got != total {
		t.Fatalf("after reconnecting the slow client got %d of %d", got, total)
	}
	if !strings.Contains(s.logBuf.String(), "slow_consumer") {
		t.Error("the slow-consumer disconnect was not logged with its reason")
	}
}

// TestStreamsDoNotLeak opens and closes many streams, by the client and by shutdown, and checks
// that every goroutine the server started is gone.
func TestStreamsDoNotLeak(t *testing.T) { streamModes(t, testStreamsDoNotLeak) }

func testStreamsDoNotLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	s := startServer(t, func(c *config.Config) { c.MaxConnectionsPerUser = 0 })
	baseline := runtime.NumGoroutine()

	open := func(n int) (cancel func()) {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, ch, err := s.openStream(ctx, fmt.Sprintf("user=u%d", i%10), "")
				if err != nil {
					t.Error(err)
					return
				}
				<-ch // connected
				go func() {
					for range ch {
					}
				}()
			}()
		}
		wg.Wait()
		return cancel
	}
	const n = 200
	cancel := open(n)
	if got := s.Hub.Stats().Subscriptions; got != n {
		t.Fatalf("%d subscriptions open, want %d", got, n)
	}
	s.mustPublish(t, map[string]any{"broadcast": true})
	cancel()
	waitFor(t, 10*time.Second, "subscriptions to close", func() bool { return s.Hub.Stats().Subscriptions == 0 })
	http.DefaultClient.CloseIdleConnections()
	waitGoroutines(t, baseline+2, 10*time.Second)

	// Streams still open at shutdown end with it, and the server leaves nothing running.
	cancel = open(50)
	defer cancel()
	s.stop()
	http.DefaultClient.CloseIdleConnections()
	waitGoroutines(t, before+2, 10*time.Second)
}

// TestConnectionLimitPerUser: beyond the limit a user's next stream is refused with 429.
func TestConnectionLimitPerUser(t *testing.T) {
	s := startServer(t, func(c *config.Config) { c.MaxConnectionsPerUser = 2 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 0; i < 2; i++ {
		status, ch, err := s.openStream(ctx, "user=alice", "")
		if err != nil || status != http.StatusOK {
			t.Fatalf("stream %d: %d %v", i, status, err)
		}
		<-ch
	}
	status, _, err := s.openStream(ctx, "user=alice", "")
	if err != nil || status != http.StatusTooManyRequests {
		t.Fatalf("third stream: status %d, err %v; want 429", status, err)
	}
	if status, _, _ := s.openStream(ctx, "user=bob", ""); status != http.StatusOK {
		t.Fatalf("another user's stream: %d", status)
	}
}

// TestRetentionGap: a cursor older than retention gets an explicit herald.missed event that
// moves it past the hole, then the kept notifications.
func TestRetentionGap(t *testing.T) {
	s := startServer(t, func(c *config.Config) {
		c.RetentionMax = 3
		c.PruneInterval = 20 * time.Millisecond
	})
	for i := 0; i < 10; i++ {
		s.mustPublish(t, map[string]any{"to": []string{"alice"}, "data": i})
	}
	waitFor(t, 5*time.Second, "retention to prune", func() bool {
		var page struct{ Notifications []any }
		s.getJSON(t, "/v1/notifications?user=alice", &page)
		return len(page.Notifications) == 3
	})
	tests := []struct {
		name, cursor string
		wantMissed   string // the herald.missed cursor, "" for none
		wantFirst    string // the first notification's data
	}{
		{"cursor before the hole", "2.0", "7.0", "7"},
		{"cursor at the edge", "7.0", "", "7"},
		{"cursor from the future", "50.3", "10.0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, ch, err := s.openStream(ctx, "user=alice", tt.cursor)
			if err != nil {
				t.Fatal(err)
			}
			var missed, first string
			timeout := time.After(time.Second)
		read:
			for {
				select {
				case ev := <-ch:
					switch {
					case ev.Type == herald.ControlPrefix+"missed":
						missed = bare(ev.Cursor)
					case ev.Type == "notification":
						first = string(ev.Env.Data)
						break read
					}
				case <-timeout:
					break read
				}
			}
			if missed != tt.wantMissed || first != tt.wantFirst {
				t.Errorf("missed at %q then first %q; want missed at %q then %q", missed, first, tt.wantMissed, tt.wantFirst)
			}
		})
	}
}

func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHoleInsideKeptHistory: retention only removes the oldest of a stream, but if notifications
// vanish from the middle (a clock stepped back, an operator's DELETE), replay still says so with
// herald.missed at the hole instead of skipping it silently.
func TestHoleInsideKeptHistory(t *testing.T) {
	s := startServer(t, nil)
	for i := 1; i <= 5; i++ {
		s.mustPublish(t, map[string]any{"to": []string{"alice"}, "data": i})
	}
	path, _ := s.cfg.SQLitePath()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM notifications WHERE stream = 'alice' AND seq = 3`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, ch, err := s.openStream(ctx, "user=alice", "0.0")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for ev := range ch {
		item := bare(ev.Cursor) + " " + ev.Type
		if ev.Type == "notification" {
			item += " " + string(ev.Env.Data)
		}
		got = append(got, item)
		if bare(ev.Cursor) == "5.0" {
			break
		}
	}
	want := []string{"1.0 notification 1", "2.0 notification 2", "3.0 herald.missed", "4.0 notification 4", "5.0 notification 5"}
	if !slices.Equal(got, want) {
		t.Errorf("replay over a hole:\n got  %q\n want %q", got, want)
	}
}

// TestStreamBufferBoundsAStalledClient: what a stream holds for its client is bounded in bytes
// (--stream-buffer), the same whether the stream is parked or has its goroutine. A client that
// stops reading is cut as a slow consumer once what its stream holds exceeds the bound, not
// before (and here nothing else can cut it: the queue's event bound and the write timeout are
// out of reach); the other clients keep receiving everything, and the stalled one, back with
// its last id, replays everything.
func TestStreamBufferBoundsAStalledClient(t *testing.T) {
	streamModes(t, testStreamBufferBoundsAStalledClient)
}

func testStreamBufferBoundsAStalledClient(t *testing.T) {
	const budget, payload = 64 << 10, 8 << 10
	s := startServer(t, func(c *config.Config) {
		c.StreamBuffer = budget
		c.MaxPayload = 16 << 10
		c.QueueSize = 1 << 20
		c.WriteTimeout = time.Hour
	})
	s.mustPublish(t, map[string]any{"broadcast": true, "type": "start"})
	const startCursor = "0.1"

	stalled, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	stalled.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(stalled, "GET /v1/stream?user=stalled HTTP/1.1\r\nHost: localhost\r\nLast-Event-ID: %s\r\n\r\n", startCursor)
	waitFor(t, 5*time.Second, "the stalled stream to open", func() bool { return s.Hub.Stats().Subscriptions == 1 })

	const normal = 3
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var got [normal]atomic.Int64
	for i := range normal {
		_, ch, err := s.openStream(ctx, fmt.Sprintf("user=n%d", i), startCursor)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for ev := range ch {
				if ev.Type == "burst" {
					got[i].Add(1)
				}
			}
		}()
	}
	waitFor(t, 5*time.Second, "the normal streams to open", func() bool { return s.Hub.Stats().Subscriptions == 1+normal })

	data := strings.Repeat("x", payload)
	published := 0
	publish := func() {
		s.mustPublish(t, map[string]any{"broadcast": true, "type": "burst", "data": data})
		published++
	}
	// Less than the bound, even if no stream had taken any of it yet: nobody overflows.
	for range budget/payload - 2 {
		publish()
	}
	if o := s.Hub.Stats().Overflows; o != 0 {
		t.Fatalf("%d overflows within the bound", o)
	}
	// Then more than the stalled client's socket buffers hold: its stream fills its bound, and
	// the next event that does not fit ends it.
	for s.API.SlowDisconnects() == 0 {
		if published > 4000 { // 32 MB: far more than any socket buffers
			t.Fatalf("the stalled stream was not cut after %d events", published)
		}
		publish()
	}
	t.Logf("the stalled stream was cut after %d events of %d KiB", published, payload>>10)
	waitFor(t, 5*time.Second, "the stalled subscription to close", func() bool { return s.Hub.Stats().Subscriptions == normal })
	for range 10 {
		publish() // the others go on receiving
	}
	waitFor(t, 20*time.Second, "the normal clients to receive everything", func() bool {
		for i := range got {
			if got[i].Load() != int64(published) {
				return false
			}
		}
		return true
	})
	fams, _ := s.scrape(t)
	if v := value(t, fams, "herald_stream_disconnects_total", "reason=slow_consumer"); v != 1 {
		t.Errorf("herald_stream_disconnects_total{reason=slow_consumer} = %v, want 1", v)
	}
	if !strings.Contains(s.logBuf.String(), "reason=slow_consumer") {
		t.Error("the slow-consumer disconnect was not logged with its reason")
	}

	stalled.Close()
	_, ch, err := s.openStream(ctx, "user=stalled", startCursor)
	if err != nil {
		t.Fatal(err)
	}
	replayed := 0
	for ev := range ch {
		if ev.Type == "burst" {
			if replayed++; replayed == published {
				break
			}
		}
	}
	if replayed != published {
		t.Fatalf("back with its last id the stalled client replayed %d of %d", replayed, published)
	}
}

// TestRetentionGapAcrossARestart: a node without a bus fills its recent windows from the file
// when it starts (internal/store/sqlite/warm.go). What retention removed before the restart is
// still told (herald.missed, then the kept notifications), and a cursor inside what was kept
// gets exactly what followed it, once each.
func TestRetentionGapAcrossARestart(t *testing.T) {
	store := "sqlite:" + filepath.Join(t.TempDir(), "herald.db")
	s := startServer(t, func(c *config.Config) {
		c.Store = store
		c.RetentionMax = 3
		c.PruneInterval = 20 * time.Millisecond
	})
	for i := 1; i <= 10; i++ {
		s.mustPublish(t, map[string]any{"to": []string{"alice"}, "data": i})
	}
	waitFor(t, 5*time.Second, "retention to prune", func() bool {
		var page struct{ Notifications []any }
		s.getJSON(t, "/v1/notifications?user=alice", &page)
		return len(page.Notifications) == 3
	})
	s.stop()
	s = startServer(t, func(c *config.Config) { c.Store = store })
	tests := []struct {
		cursor string
		want   []string
	}{
		{"2.0", []string{"7.0 herald.missed", "8.0 notification 8", "9.0 notification 9", "10.0 notification 10"}},
		{"7.0", []string{"8.0 notification 8", "9.0 notification 9", "10.0 notification 10"}},
		{"8.0", []string{"9.0 notification 9", "10.0 notification 10"}},
	}
	for _, tt := range tests {
		t.Run(tt.cursor, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, ch, err := s.openStream(ctx, "user=alice", tt.cursor)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for ev := range ch {
				if ev.Type == idOnly {
					continue
				}
				item := bare(ev.Cursor) + " " + ev.Type
				if ev.Type == "notification" {
					item += " " + string(ev.Env.Data)
				}
				got = append(got, item)
				if bare(ev.Cursor) == "10.0" {
					break
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("resume from %s after a restart:\n got  %q\n want %q", tt.cursor, got, tt.want)
			}
		})
	}
}
