package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/store/sqlite"
	"github.com/heraldhq/herald/internal/testenv"
)

// counter returns the value of a counter s registers (0 when absent).
func counter(s *server, name string) float64 {
	fams, err := s.Metrics.Registry.Gather()
	if err != nil {
		return 0
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.Metric) > 0 {
			return f.Metric[0].GetCounter().GetValue()
		}
	}
	return 0
}

// TestTwoDeploymentsOneChannel: two deployments with stores of their own share a Redis server
// and a bus channel (staging and production on one Redis, both left on the default channel).
// Each deployment's users see exactly their own deployment's notifications, although both
// number alice's stream 1, 2, 3, …; the other deployment's messages are dropped and counted.
func TestTwoDeploymentsOneChannel(t *testing.T) {
	bus, channel := testenv.Redis(t), testenv.Name("herald")
	names := []string{"staging", "production"}
	var deps []*server
	for range names {
		s := startServer(t, func(c *config.Config) {
			c.Bus, c.BusChannel = bus, channel
			c.ResyncInterval = time.Second
		})
		waitFor(t, 10*time.Second, "the bus subscription", func() bool { return busReady(s) })
		deps = append(deps, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const each = 20
	streams := make([]<-chan received, len(deps))
	for i, s := range deps {
		_, ch, err := s.openStream(ctx, "user=alice", "0.0")
		if err != nil {
			t.Fatal(err)
		}
		streams[i] = ch
	}
	// Both publish at once, so that each deployment's commits meet the other's on the channel.
	var wg sync.WaitGroup
	for i, s := range deps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 1; n <= each; n++ {
				data := map[string]any{"from": names[i], "n": n}
				body := map[string]any{"to": []string{"alice"}, "type": "t", "data": data}
				if n%5 == 0 {
					body = map[string]any{"broadcast": true, "type": "t", "data": data}
				}
				if status, _, raw := s.publish(t, "/v1/notifications", body); status != http.StatusCreated {
					t.Errorf("%s: publish: %d %v", names[i], status, raw)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, ch := range streams {
		var got []string
		for len(got) < each {
			select {
			case ev, ok := <-ch:
				if !ok {
					t.Fatalf("%s: the stream ended after %v", names[i], got)
				}
				if strings.HasPrefix(ev.Type, herald.ControlPrefix) || ev.Type == idOnly {
					continue
				}
				var d struct {
					From string
					N    int
				}
				json.Unmarshal(ev.Env.Data, &d)
				got = append(got, fmt.Sprintf("%s/%d", d.From, d.N))
				if d.From != names[i] || d.N != len(got) {
					t.Fatalf("%s's alice received %v: another deployment's notification, or one out of order", names[i], got)
				}
			case <-ctx.Done():
				t.Fatalf("%s's alice received %d of %d: %v", names[i], len(got), each, got)
			}
		}
	}
	// Every node hears the other's commits: each deployment dropped the other's messages.
	for i, s := range deps {
		waitFor(t, 10*time.Second, names[i]+" counting foreign messages", func() bool {
			return counter(s, "herald_bus_foreign_messages_total") > 0
		})
		if !strings.Contains(s.logBuf.String(), "dropped messages from another store") {
			t.Errorf("%s logged no warning about the other deployment", names[i])
		}
	}
	// And the inbox agrees: each holds its own 20.
	for i, s := range deps {
		var page struct {
			Notifications []struct{ Data json.RawMessage }
		}
		s.getJSON(t, "/v1/notifications?user=alice&limit=100", &page)
		if len(page.Notifications) != each {
			t.Fatalf("%s's inbox holds %d, want %d", names[i], len(page.Notifications), each)
		}
	}
}

// TestRestoreFromBackup: a store restored from a backup numbers its streams again from where the
// backup left them. A client whose cursor is from the history the restore replaced, even one
// that the restored store's heads have passed, is told (herald.missed, store_changed) and then
// gets exactly what the restored store committed since: nothing silently skipped.
func TestRestoreFromBackup(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "herald.db")
	withPath := func(c *config.Config) { c.Store = "sqlite:" + path }
	s := startServer(t, withPath)
	pub := func(s *server, text string) {
		t.Helper()
		s.mustPublish(t, map[string]any{"to": []string{"alice"}, "type": "t", "data": map[string]string{"text": text}})
	}
	for _, text := range []string{"a1", "a2", "a3"} {
		pub(s, text)
	}
	backup := filepath.Join(dir, "backup.db")
	if err := sqlite.Backup(context.Background(), path, backup); err != nil {
		t.Fatal(err)
	}
	pub(s, "b4") // lost by the restore
	pub(s, "b5")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var page struct {
		NextBefore string `json:"next_before"`
	}
	s.getJSON(t, "/v1/notifications?user=alice&limit=2", &page)

	// The client reads everything, then the server goes away.
	sctx, scancel := context.WithCancel(ctx)
	_, ch, err := s.openStream(sctx, "user=alice", "0.0")
	if err != nil {
		t.Fatal(err)
	}
	var cursor string
	for n := 0; n < 5; {
		ev := <-ch
		if ev.Type == "t" {
			n++
			cursor = ev.Cursor
		}
	}
	scancel()
	s.stop()
	if !strings.HasPrefix(cursor, "5.0.") {
		t.Fatalf("the client's cursor is %q, want 5.0.<epoch>", cursor)
	}

	// The operator restores the backup (as docs/operations.md says) and starts the server.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s = startServer(t, withPath)
	for _, text := range []string{"c4", "c5", "c6", "c7"} { // past the client's cursor
		pub(s, text)
	}
	_, ch, err = s.openStream(ctx, "user=alice", cursor)
	if err != nil {
		t.Fatal(err)
	}
	ev := <-ch
	if ev.Type != "herald.missed" || !strings.Contains(ev.Data, `"reason":"store_changed"`) {
		t.Fatalf("first event after the restore: %+v; want herald.missed with reason store_changed", ev)
	}
	epoch := s.Store.Identity().Epoch
	if want := "3.0." + epoch; ev.Cursor != want || !strings.Contains(ev.Data, `"cursor":"`+want+`"`) {
		t.Fatalf("herald.missed moves the cursor to %q (data %s), want %q: where the restored history begins", ev.Cursor, ev.Data, want)
	}
	for i, want := range []string{"c4", "c5", "c6", "c7"} {
		select {
		case ev := <-ch:
			var d struct{ Text string }
			json.Unmarshal(ev.Env.Data, &d)
			if d.Text != want || ev.Cursor != fmt.Sprintf("%d.0.%s", i+4, epoch) {
				t.Fatalf("after the restore: %+v (text %q), want %q at %d.0.%s", ev, d.Text, want, i+4, epoch)
			}
		case <-ctx.Done():
			t.Fatalf("after the restore: waiting for %q", want)
		}
	}

	// A page position of the replaced history is refused, not read against this one.
	resp, err := http.Get(s.url + "/v1/notifications?user=alice&before=" + page.NextBefore)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), `"conflict"`) {
		t.Fatalf("before=%s after the restore: %d %s; want 409 conflict", page.NextBefore, resp.StatusCode, body)
	}
	// A cursor of the current epoch, or one without an epoch, resumes as always.
	for _, c := range []string{"6.0." + epoch, "6.0"} {
		cctx, ccancel := context.WithCancel(ctx)
		_, ch, err := s.openStream(cctx, "user=alice", c)
		if err != nil {
			t.Fatal(err)
		}
		if ev := <-ch; ev.Type != "t" || ev.Cursor != "7.0."+epoch {
			t.Fatalf("resuming from %s: %+v; want c7 at 7.0.%s", c, ev, epoch)
		}
		ccancel()
	}
}
