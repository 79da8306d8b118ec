package app

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/testenv"
)

// stateEvent is the data of herald.read, herald.seen and herald.archived.
type stateEvent struct {
	IDs      []string `json:"ids"`
	All      bool     `json:"all"`
	Read     bool     `json:"read"`
	Archived bool     `json:"archived"`
	UpTo     string   `json:"up_to"`
	Unread   int64    `json:"unread"`
	Unseen   *int64   `json:"unseen"`
}

// send sends method path with an optional JSON body and decodes a JSON answer into out (when
// not nil); it returns the status.
func (s *server) send(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	var req *http.Request
	if body == "" {
		req, _ = http.NewRequest(method, s.url+path, nil)
	} else {
		req, _ = http.NewRequest(method, s.url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(buf.Bytes(), out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, buf.Bytes(), err)
		}
	}
	return resp.StatusCode
}

// counts is the answer of GET /v1/notifications/unread-count.
type counts struct {
	Unread int64 `json:"unread"`
	Unseen int64 `json:"unseen"`
}

// inboxState is what a user's inbox says of each notification, and the counts: what a restart
// must keep.
func inboxState(t *testing.T, s *server, user string) string {
	t.Helper()
	var out []string
	for _, archived := range []bool{false, true} {
		var page struct {
			Notifications []struct {
				ID       string `json:"id"`
				Read     bool   `json:"read"`
				Seen     bool   `json:"seen"`
				Archived bool   `json:"archived"`
			} `json:"notifications"`
		}
		q := "/v1/notifications?limit=100&user=" + user
		if archived {
			q += "&archived=true"
		}
		if status := s.getJSON(t, q, &page); status != 200 {
			t.Fatalf("GET %s: %d", q, status)
		}
		for _, n := range page.Notifications {
			if n.Archived != archived {
				t.Fatalf("%s: %+v listed with archived=%v", user, n, archived)
			}
			b, _ := json.Marshal(n)
			out = append(out, string(b))
		}
	}
	var c counts
	s.getJSON(t, "/v1/notifications/unread-count?user="+user, &c)
	b, _ := json.Marshal(c)
	return strings.Join(append(out, string(b)), "\n")
}

// TestStatesReachEveryStream: marking seen, reading and archiving, from one tab, reach every
// open stream of that user, on every node, with the counts after the change, and no one else's;
// a restart of every node keeps all of it.
func TestStatesReachEveryStream(t *testing.T) {
	t.Run("single node", func(t *testing.T) {
		store := "sqlite:" + filepath.Join(t.TempDir(), "herald.db")
		start := func() *server { return startServer(t, func(c *config.Config) { c.Store = store }) }
		s := start()
		testStates(t, []*server{s, s}, func() *server { s.stop(); return start() })
	})
	t.Run("cluster/redis", func(t *testing.T) {
		store, bus, channel := testenv.Postgres(t), testenv.Redis(t), testenv.Name("herald")
		start := func() *server {
			s := startServer(t, func(c *config.Config) {
				c.Store, c.Bus, c.BusChannel = store, bus, channel
				c.ResyncInterval = time.Second
			})
			waitFor(t, 10*time.Second, "the bus subscription", func() bool { return busReady(s) })
			return s
		}
		nodes := []*server{start(), start()}
		testStates(t, nodes, func() *server {
			for _, n := range nodes {
				n.stop()
			}
			return start()
		})
	})
}

func testStates(t *testing.T, nodes []*server, restart func() *server) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first, last := nodes[0], nodes[len(nodes)-1]
	open := func(s *server, user string) <-chan received {
		_, ch, err := s.openStream(ctx, "user="+user, "")
		if err != nil {
			t.Fatal(err)
		}
		next(t, ch, user) // herald.connected
		return ch
	}
	tabs := map[string]<-chan received{"alice's first tab": open(first, "alice"), "alice's second tab": open(last, "alice")}
	bob := open(first, "bob")

	// alice: three of her own and a broadcast.
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, first.mustPublish(t, map[string]any{"to": []string{"alice"}, "type": "comment", "data": i})[0].ID)
	}
	ids = append(ids, first.mustPublish(t, map[string]any{"broadcast": true, "type": "news"})[0].ID)
	for name, ch := range tabs {
		for i := range ids {
			if ev := next(t, ch, name); ev.Env.ID != ids[i] {
				t.Fatalf("%s: got %+v, want notification %s", name, ev, ids[i])
			}
		}
	}
	if ev := next(t, bob, "bob"); ev.Env.ID != ids[3] {
		t.Fatalf("bob: got %+v, want the broadcast", ev)
	}

	unseen := func(n int64) *int64 { return &n }
	steps := []struct {
		name, method, path, body string
		event                    string
		want                     stateEvent
	}{
		{"open the list up to the second", "POST", "/v1/notifications/seen?user=alice", `{"up_to":"` + ids[1] + `"}`,
			"herald.seen", stateEvent{UpTo: ids[1], Unread: 4, Unseen: unseen(2)}},
		{"read the third (unseen)", "POST", "/v1/notifications/" + ids[2] + "/read?user=alice", "",
			"herald.read", stateEvent{IDs: []string{ids[2]}, Read: true, Unread: 3, Unseen: unseen(1)}},
		{"open the list: everything", "POST", "/v1/notifications/seen?user=alice", "",
			"herald.seen", stateEvent{UpTo: ids[3], Unread: 3, Unseen: unseen(0)}},
		{"archive the first", "POST", "/v1/notifications/" + ids[0] + "/archive?user=alice", "",
			"herald.archived", stateEvent{IDs: []string{ids[0]}, Archived: true, Unread: 2, Unseen: unseen(0)}},
		{"archive the broadcast", "POST", "/v1/notifications/" + ids[3] + "/archive?user=alice", "",
			"herald.archived", stateEvent{IDs: []string{ids[3]}, Archived: true, Unread: 1, Unseen: unseen(0)}},
		{"bring the first back", "DELETE", "/v1/notifications/" + ids[0] + "/archive?user=alice", "",
			"herald.archived", stateEvent{IDs: []string{ids[0]}, Archived: false, Unread: 2, Unseen: unseen(0)}},
		{"archive the read ones", "POST", "/v1/notifications/archive-read?user=alice", "",
			"herald.archived", stateEvent{IDs: []string{}, All: true, Archived: true, Unread: 2, Unseen: unseen(0)}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if status := last.send(t, st.method, st.path, st.body, nil); status/100 != 2 {
				t.Fatalf("%s %s: status %d", st.method, st.path, status)
			}
			for name, ch := range tabs {
				ev := next(t, ch, name)
				var got stateEvent
				if err := json.Unmarshal([]byte(ev.Data), &got); ev.Type != st.event || err != nil {
					t.Fatalf("%s: got %+v (%v), want %s", name, ev, err, st.event)
				}
				if !slices.Equal(got.IDs, st.want.IDs) || got.All != st.want.All || got.Read != st.want.Read ||
					got.Archived != st.want.Archived || got.UpTo != st.want.UpTo || got.Unread != st.want.Unread ||
					got.Unseen == nil || *got.Unseen != *st.want.Unseen {
					t.Errorf("%s: got %s %s, want %+v (unseen %d)", name, ev.Type, ev.Data, st.want, *st.want.Unseen)
				}
			}
		})
	}

	// Changes that change nothing, another user's notification, and nothing at all: the streams
	// hear nothing, and the next thing each sees is the next notification. bob saw only his own.
	var seen struct {
		UpTo string `json:"seen_up_to"`
		counts
	}
	if status := last.send(t, "POST", "/v1/notifications/seen?user=alice", `{"up_to":"`+ids[0]+`"}`, &seen); status != 200 || seen.UpTo != ids[3] || seen.Unseen != 0 {
		t.Fatalf("seen below the mark: %d %+v; want the mark %s kept", status, seen, ids[3])
	}
	if status := last.send(t, "POST", "/v1/notifications/archive-read?user=alice", "", nil); status != 200 {
		t.Fatalf("archive-read again: %d", status)
	}
	bobs := first.mustPublish(t, map[string]any{"to": []string{"bob"}, "type": "dm"})[0].ID
	if status := last.send(t, "POST", "/v1/notifications/"+bobs+"/archive?user=alice", "", nil); status != 404 {
		t.Fatalf("alice archiving bob's notification: %d, want 404", status)
	}
	if ev := next(t, bob, "bob"); ev.Env.ID != bobs {
		t.Fatalf("bob: got %+v, want his dm", ev)
	}
	marker := first.mustPublish(t, map[string]any{"to": []string{"alice", "bob"}, "type": "marker"})
	for name, ch := range tabs {
		if ev := next(t, ch, name); ev.Type != "marker" {
			t.Errorf("%s: got %+v, want the marker (nothing from a no-op or a 404)", name, ev)
		}
	}
	if ev := next(t, bob, "bob"); ev.Type != "marker" || ev.Env.ID != marker[1].ID {
		t.Errorf("bob: got %+v, want only his marker (alice's state is hers)", ev)
	}
	if status := first.send(t, "POST", "/v1/notifications/seen?user=bob", "", nil); status != 200 {
		t.Fatal(status)
	}
	var bobCounts counts
	first.getJSON(t, "/v1/notifications/unread-count?user=bob", &bobCounts)
	// bob: the broadcast, the dm and the marker; alice's archive of the broadcast is hers.
	if bobCounts != (counts{Unread: 3, Unseen: 0}) {
		t.Errorf("bob's counts %+v, want 3 unread, none unseen", bobCounts)
	}

	// Every node stops and a new one starts on the same store: nothing of it is lost.
	before := inboxState(t, last, "alice")
	if !strings.Contains(before, `"archived":true`) || !strings.Contains(before, `{"unread":3,"unseen":1}`) {
		t.Fatalf("alice before the restart:\n%s\nwant archived ones, and the marker unseen", before)
	}
	cancel()
	s := restart()
	if after := inboxState(t, s, "alice"); after != before {
		t.Fatalf("after a restart alice's inbox is\n%s\nwas\n%s", after, before)
	}
}
