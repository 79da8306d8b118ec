package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/heraldhq/herald"
)

// The broadcast cache must never change what Feed returns: what the store holds after the
// cursor, holes (retention) included, and heads of the same snapshot. Each case warms the cache,
// changes the store behind it, and compares Feed with the transactional read it replaced.
func TestFeedCacheNeverHidesAHole(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// change runs after the cache was warmed by a Feed after cursor {0, 0}.
		change func(t *testing.T, s *Store)
		after  herald.Cursor
		// wantFirst is the first broadcast sequence number Feed must return (0: none), and
		// wantHead the broadcast head it must report: a first one above after+1, or none below
		// the head, is the hole the client is told of.
		wantFirst, wantHead uint64
	}{
		{"nothing changed", nil, herald.Cursor{User: 0, Broadcast: 2}, 3, 6},
		{"retention keeps the newest 2", func(t *testing.T, s *Store) {
			if _, err := s.Prune(ctx, herald.Retention{MaxPerStream: 2}); err != nil {
				t.Fatal(err)
			}
		}, herald.Cursor{User: 0, Broadcast: 2}, 5, 6},
		{"retention removed every one after the cursor", func(t *testing.T, s *Store) {
			exec(t, s, `DELETE FROM notifications WHERE stream = '' AND seq > 2`)
		}, herald.Cursor{User: 0, Broadcast: 2}, 0, 6},
		{"a hole in the middle (a clock step)", func(t *testing.T, s *Store) {
			exec(t, s, `DELETE FROM notifications WHERE stream = '' AND seq = 4`)
		}, herald.Cursor{User: 0, Broadcast: 2}, 3, 6},
		{"published since", func(t *testing.T, s *Store) {
			appendN(t, s, herald.Draft{Broadcast: true, Type: "later", Data: json.RawMessage(`{}`)}, 2)
		}, herald.Cursor{User: 0, Broadcast: 5}, 6, 8},
		{"another history under the same numbers", func(t *testing.T, s *Store) {
			// A store restored from a backup gives numbers again, with other ids: a cached
			// broadcast of the old history must not stand in for the new one's.
			exec(t, s, `DELETE FROM notifications WHERE stream = '' AND seq > 3`)
			exec(t, s, `UPDATE streams SET seq = 3 WHERE stream = ''`)
			appendN(t, s, herald.Draft{Broadcast: true, Type: "restored", Data: json.RawMessage(`{"new":true}`)}, 3)
		}, herald.Cursor{User: 0, Broadcast: 3}, 4, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openAt(t, filepath.Join(t.TempDir(), "feed.db"), Options{})
			appendN(t, s, herald.Draft{Broadcast: true, Type: "b", Data: json.RawMessage(`{"n":1}`)}, 6)
			appendN(t, s, herald.Draft{To: []string{"alice"}, Type: "u", Data: json.RawMessage(`{}`)}, 2)
			if _, err := s.Feed(ctx, "alice", herald.Cursor{}, 100); err != nil { // warms the cache
				t.Fatal(err)
			}
			if tt.change != nil {
				tt.change(t, s)
			}
			got := feedBoth(t, s, "alice", tt.after, 100)
			first := uint64(0)
			if len(got.Broadcast) > 0 {
				first = got.Broadcast[0].Seq
			}
			if first != tt.wantFirst || got.Heads.Broadcast != tt.wantHead {
				t.Errorf("first broadcast %d, head %d; want %d, %d", first, got.Heads.Broadcast, tt.wantFirst, tt.wantHead)
			}
			for _, n := range got.Broadcast {
				if tt.name == "another history under the same numbers" && n.Seq > 3 && n.Type != "restored" {
					t.Errorf("broadcast %d is the old history's %q", n.Seq, n.Type)
				}
			}
		})
	}
}

// TestFeedCacheRandom runs random publishes, prunes, deletes and resumes, comparing every Feed
// with the transactional read.
func TestFeedCacheRandom(t *testing.T) {
	ctx := context.Background()
	s := openAt(t, filepath.Join(t.TempDir(), "feed.db"), Options{SoleWriter: true}) // the window too
	r := rand.New(rand.NewPCG(1, 2))
	users := []string{"alice", "bob"}
	for i := range 400 {
		switch k := r.IntN(10); {
		case k < 4:
			appendN(t, s, herald.Draft{Broadcast: true, Type: "b", Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}, 1+r.IntN(3))
		case k < 6:
			appendN(t, s, herald.Draft{To: users[r.IntN(2):][:1], Type: "u", Data: json.RawMessage(`{}`)}, 1)
		case k == 6:
			if _, err := s.Prune(ctx, herald.Retention{MaxPerStream: 5 + r.IntN(20)}); err != nil {
				t.Fatal(err)
			}
		case k == 7:
			exec(t, s, fmt.Sprintf(`DELETE FROM notifications WHERE stream = '' AND seq = %d`, r.IntN(i+1)))
		default:
			heads, err := s.Heads(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			after := herald.Cursor{User: uint64(r.IntN(int(heads.User) + 1)), Broadcast: uint64(r.IntN(int(heads.Broadcast) + 1))}
			feedBoth(t, s, users[r.IntN(2)], after, 1+r.IntN(8))
		}
	}
	if n := len(s.read.broadcasts.bySeq); n > broadcastCacheLen {
		t.Errorf("the cache holds %d broadcasts, more than its bound %d", n, broadcastCacheLen)
	}
}

func TestFeedCacheBounded(t *testing.T) {
	var c broadcastCache
	big := json.RawMessage(make([]byte, 64<<10))
	for seq := uint64(1); seq <= 3*broadcastCacheLen; seq++ {
		c.put([]herald.Notification{{ID: int64(seq), Seq: seq, Data: big}})
		if len(c.bySeq) > broadcastCacheLen || c.bytes > broadcastCacheBytes+len(big)+128 {
			t.Fatalf("after %d: %d entries, %d bytes", seq, len(c.bySeq), c.bytes)
		}
	}
	if _, ok := c.get([]posID{{3 * broadcastCacheLen, 3 * broadcastCacheLen}}); !ok {
		t.Error("the newest broadcast was dropped")
	}
	if _, ok := c.get([]posID{{1, 1}}); ok {
		t.Error("the oldest broadcast was kept")
	}
}

// feedBoth reads with Feed and with the transactional read and fails unless they agree.
func feedBoth(t *testing.T, s *Store, user string, after herald.Cursor, limit int) herald.FeedPage {
	t.Helper()
	ctx := context.Background()
	got, err := s.Feed(ctx, user, after, limit)
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.feedTx(ctx, user, after, limit)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(norm(got), norm(want)) {
		t.Fatalf("Feed(%s, %v, %d):\n got %+v\nwant %+v", user, after, limit, norm(got), norm(want))
	}
	return got
}

// norm makes pages comparable: empty and nil slices alike, times by instant.
func norm(p herald.FeedPage) herald.FeedPage {
	fix := func(ns []herald.Notification) []herald.Notification {
		out := make([]herald.Notification, len(ns))
		for i, n := range ns {
			n.CreatedAt = n.CreatedAt.UTC()
			out[i] = n
		}
		return out
	}
	p.User, p.Broadcast = fix(p.User), fix(p.Broadcast)
	return p
}

func appendN(t *testing.T, s *Store, d herald.Draft, n int) {
	t.Helper()
	drafts := make([]herald.Draft, n)
	for i := range drafts {
		drafts[i] = d
	}
	if _, err := s.Append(context.Background(), "test", drafts); err != nil {
		t.Fatal(err)
	}
}

// exec runs q on the writer as Prune would: notifications are only ever removed by Prune,
// which stops and drops the recent windows (window.go) around its deletes.
func exec(t *testing.T, s *Store, q string) {
	t.Helper()
	s.read.window.beginPrune()
	defer s.read.window.endPrune(true)
	if _, err := s.writer.ExecContext(context.Background(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
