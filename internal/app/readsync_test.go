package app

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// readEvent is the data of a herald.read event.
type readEvent struct {
	IDs    []string `json:"ids"`
	All    bool     `json:"all"`
	Read   bool     `json:"read"`
	Unread int64    `json:"unread"`
}

// next returns the next event on ch, failing the test after a few seconds.
func next(t *testing.T, ch <-chan received, who string) received {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("%s: stream ended", who)
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no event within 5s", who)
	}
	panic("unreachable")
}

// TestReadStateReachesEveryStream: marking read (or unread, or all read) through the API tells
// every open stream of that user, and no one else's, with the new unread count, so that every
// tab shows the same badge. In a cluster, on every node.
func TestReadStateReachesEveryStream(t *testing.T) {
	t.Run("single node", func(t *testing.T) {
		s := startServer(t, nil)
		testReadSync(t, []*server{s, s})
	})
	for _, bus := range buses {
		t.Run("cluster/"+bus, func(t *testing.T) {
			testReadSync(t, startCluster(t, bus, 2, nil))
		})
	}
}

func testReadSync(t *testing.T, nodes []*server) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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

	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, first.mustPublish(t, map[string]any{"to": []string{"alice"}, "type": "comment", "data": i})[0].ID)
	}
	for name, ch := range tabs {
		for i := range ids {
			if ev := next(t, ch, name); ev.Env.ID != ids[i] {
				t.Fatalf("%s: got %+v, want notification %s", name, ev, ids[i])
			}
		}
	}

	steps := []struct {
		name   string
		method string
		path   string
		want   readEvent
	}{
		{"mark one read", "POST", "/v1/notifications/" + ids[1] + "/read?user=alice", readEvent{IDs: []string{ids[1]}, Read: true, Unread: 2}},
		{"mark it unread", "DELETE", "/v1/notifications/" + ids[1] + "/read?user=alice", readEvent{IDs: []string{ids[1]}, Read: false, Unread: 3}},
		{"mark all read", "POST", "/v1/notifications/read-all?user=alice", readEvent{IDs: []string{}, All: true, Read: true, Unread: 0}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if status := last.do(t, st.method, st.path); status/100 != 2 {
				t.Fatalf("%s %s: status %d", st.method, st.path, status)
			}
			for name, ch := range tabs {
				ev := next(t, ch, name)
				var got readEvent
				if err := json.Unmarshal([]byte(ev.Data), &got); ev.Type != "herald.read" || err != nil {
					t.Fatalf("%s: got %+v (%v), want a herald.read event", name, ev, err)
				}
				if !slices.Equal(got.IDs, st.want.IDs) || got.All != st.want.All || got.Read != st.want.Read || got.Unread != st.want.Unread {
					t.Errorf("%s: got %+v, want %+v", name, got, st.want)
				}
			}
		})
	}

	// Nothing to change, or nothing found: the streams hear nothing. The next thing each sees is
	// the next notification; bob saw only his own.
	if status := last.do(t, "POST", "/v1/notifications/read-all?user=alice"); status != 200 {
		t.Fatalf("read-all again: %d", status)
	}
	if status := last.do(t, "POST", "/v1/notifications/99999999/read?user=alice"); status != 404 {
		t.Fatalf("mark an unknown id read: %d", status)
	}
	marker := first.mustPublish(t, map[string]any{"to": []string{"alice", "bob"}, "type": "marker"})
	for name, ch := range tabs {
		if ev := next(t, ch, name); ev.Type != "marker" {
			t.Errorf("%s: got %+v, want the marker (nothing from a no-op or a 404)", name, ev)
		}
	}
	if ev := next(t, bob, "bob"); ev.Type != "marker" || ev.Env.ID != marker[1].ID {
		t.Errorf("bob: got %+v, want only his marker (alice's read state is hers)", ev)
	}
}

// TestUnnamedEvents: with named=false notifications carry no SSE event name, so that a browser's
// EventSource hands every type to onmessage; control events keep theirs.
func TestUnnamedEvents(t *testing.T) {
	s := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tests := []struct {
		query    string
		status   int
		wantType string
	}{
		{"user=alice", 200, "comment"},
		{"user=alice&named=true", 200, "comment"},
		{"user=alice&named=false", 200, ""},
		{"user=alice&named=0", 200, ""},
		{"user=alice&named=maybe", 400, ""},
	}
	id := s.mustPublish(t, map[string]any{"to": []string{"alice"}, "type": "comment", "data": map[string]string{"text": "hi"}})[0].ID
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			status, ch, err := s.openStream(ctx, tt.query, "0.0") // from the beginning
			if err != nil || status != tt.status {
				t.Fatalf("status %d (%v), want %d", status, err, tt.status)
			}
			if status != 200 {
				return
			}
			ev := next(t, ch, "replay")
			if ev.Type != tt.wantType || ev.Env.ID != id || ev.Env.Type != "comment" || string(ev.Env.Data) != `{"text":"hi"}` {
				t.Errorf("got %+v, want event name %q and the comment", ev, tt.wantType)
			}
		})
	}
}
