package app

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/testenv"
)

// TestPreferencesOnStreams: a change of preferences reaches the user's open streams on every
// node (herald.preferences, with the counts under the new rules), which from then on leave out
// the broadcasts the user muted, but critical ones; a publish by name leaves the user out and
// says so; a stream that resumes leaves the muted broadcasts out of its replay too, and the
// inbox and counts agree. Undoing the mute brings the broadcasts back.
func TestPreferencesOnStreams(t *testing.T) {
	t.Run("single node", func(t *testing.T) {
		streamModes(t, func(t *testing.T) {
			s := startServer(t, nil)
			testPreferencesOnStreams(t, []*server{s, s})
		})
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
		testPreferencesOnStreams(t, []*server{start(), start()})
	})
	t.Run("sqlite file survives", func(t *testing.T) {
		// Preferences are in the store: a restarted server applies them to a new stream.
		path := "sqlite:" + filepath.Join(t.TempDir(), "herald.db")
		s := startServer(t, func(c *config.Config) { c.Store = path })
		if status := s.send(t, "PUT", "/v1/preferences?user=alice", `{"mutes":{"in_app":{"types":["promo"]}}}`, nil); status != 200 {
			t.Fatalf("PUT: %d", status)
		}
		s.stop()
		s = startServer(t, func(c *config.Config) { c.Store = path })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, ch, err := s.openStream(ctx, "user=alice", "")
		if err != nil {
			t.Fatal(err)
		}
		next(t, ch, "alice") // herald.connected
		s.mustPublish(t, map[string]any{"broadcast": true, "type": "promo"})
		release := s.mustPublish(t, map[string]any{"broadcast": true, "type": "release"})[0].ID
		if ev := next(t, ch, "alice"); ev.Env.ID != release {
			t.Fatalf("alice got %+v, want the release (the promo muted)", ev)
		}
	})
}

func testPreferencesOnStreams(t *testing.T, nodes []*server) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first, last := nodes[0], nodes[len(nodes)-1]
	type tab struct {
		name string
		ch   <-chan received
	}
	open := func(s *server, user, lastID string) <-chan received {
		_, ch, err := s.openStream(ctx, "user="+user, lastID)
		if err != nil {
			t.Fatal(err)
		}
		if lastID == "" {
			next(t, ch, user) // herald.connected
		}
		return ch
	}
	alice := []tab{{"alice's first tab", open(first, "alice", "")}, {"alice's second tab", open(last, "alice", "")}}
	bob := open(first, "bob", "")
	before := first.mustPublish(t, map[string]any{"broadcast": true, "type": "promo.winter"})[0].ID
	var resume string // alice's cursor before the mute
	for _, tb := range alice {
		if ev := next(t, tb.ch, tb.name); ev.Env.ID != before {
			t.Fatalf("%s: got %+v, want the first promo", tb.name, ev)
		} else {
			resume = ev.Cursor
		}
	}
	next(t, bob, "bob")

	// Mute from the second node: both tabs hear of it, with the counts without the promo.
	setPrefs := func(body string, unread int64) {
		t.Helper()
		if status := last.send(t, "PUT", "/v1/preferences?user=alice", body, nil); status != 200 {
			t.Fatalf("PUT preferences: %d", status)
		}
		for _, tb := range alice {
			ev := next(t, tb.ch, tb.name)
			var c counts
			if err := json.Unmarshal([]byte(ev.Data), &c); ev.Type != "herald.preferences" || err != nil || c.Unread != unread {
				t.Fatalf("%s: got %+v (%v), want herald.preferences with %d unread", tb.name, ev, err, unread)
			}
		}
	}
	setPrefs(`{"mutes":{"in_app":{"prefixes":["promo."]},"push":{"types":["release"]}}}`, 0)

	promo := first.mustPublish(t, map[string]any{"broadcast": true, "type": "promo.spring"})[0].ID
	urgent := first.mustPublish(t, map[string]any{"broadcast": true, "type": "promo.recall", "critical": true})[0].ID
	release := last.mustPublish(t, map[string]any{"broadcast": true, "type": "release"})[0].ID
	status, ns, raw := first.publish(t, "/v1/notifications", map[string]any{"to": []string{"alice", "bob"}, "type": "promo.coupon"})
	if status != 201 || len(ns) != 1 || ns[0].User != "bob" || raw["muted"] != float64(1) {
		t.Fatalf("publish to alice and bob: %d %v", status, raw)
	}
	for _, tb := range alice {
		for _, want := range []string{urgent, release} {
			if ev := next(t, tb.ch, tb.name); ev.Env.ID != want {
				t.Fatalf("%s: got %+v, want %s (the muted promo left out)", tb.name, ev, want)
			}
		}
	}
	for _, want := range []string{promo, urgent, release, ns[0].ID} {
		if ev := next(t, bob, "bob"); ev.Env.ID != want {
			t.Fatalf("bob: got %+v, want %s", ev, want)
		}
	}

	// A stream resuming from before the mute replays without the muted broadcasts.
	resumed := open(last, "alice", resume)
	for _, want := range []string{urgent, release} {
		if ev := next(t, resumed, "alice resumed"); ev.Env.ID != want {
			t.Fatalf("alice resumed: got %+v, want %s", ev, want)
		}
	}
	var c counts
	first.getJSON(t, "/v1/notifications/unread-count?user=alice", &c)
	if c.Unread != 2 {
		t.Fatalf("alice's unread %d, want 2 (the critical promo and the release)", c.Unread)
	}

	// Unmuted: the promos are back in the counts, and a new one reaches her.
	setPrefs(`{"mutes":{}}`, 4)
	again := first.mustPublish(t, map[string]any{"broadcast": true, "type": "promo.summer"})[0].ID
	for _, tb := range alice {
		if ev := next(t, tb.ch, tb.name); ev.Env.ID != again {
			t.Fatalf("%s: got %+v, want the promo once unmuted", tb.name, ev)
		}
	}
}
