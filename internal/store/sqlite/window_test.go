package sqlite

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/heraldhq/herald"
)

// The recent window must answer a resume only when it provably holds everything after the
// cursor, and never once the store may have removed some of it: each case builds a store (whose
// commits fill the window), changes it, and checks both whether the window answered and that
// Feed returned exactly what the transactional read of the store returns, holes included.
func TestRecentWindowNeverServesAGap(t *testing.T) {
	ctx := context.Background()
	bcast := herald.Draft{Broadcast: true, Type: "b", Data: json.RawMessage(`{}`)}
	alice := herald.Draft{To: []string{"alice"}, Type: "u", Data: json.RawMessage(`{}`)}
	tests := []struct {
		name string
		// setup runs after 6 broadcasts and 3 notifications to alice were committed; it may
		// return another store (a restart).
		setup      func(t *testing.T, s *Store, path string) *Store
		after      herald.Cursor
		fromMemory bool
		// The first broadcast Feed must return (0: none) and the broadcast head.
		wantFirst, wantHead uint64
	}{
		{"inside the window", nil, herald.Cursor{User: 1, Broadcast: 2}, true, 3, 6},
		{"at the heads", nil, herald.Cursor{User: 3, Broadcast: 6}, true, 0, 6},
		{"a cursor ahead of the heads", nil, herald.Cursor{User: 9, Broadcast: 9}, true, 0, 6},
		{"retention removed what the cursor needs", func(t *testing.T, s *Store, _ string) *Store {
			if _, err := s.Prune(ctx, herald.Retention{MaxPerStream: 2}); err != nil {
				t.Fatal(err)
			}
			return s
		}, herald.Cursor{User: 0, Broadcast: 2}, false, 5, 6},
		{"retention removed something, then new commits", func(t *testing.T, s *Store, _ string) *Store {
			if _, err := s.Prune(ctx, herald.Retention{MaxPerStream: 2}); err != nil {
				t.Fatal(err)
			}
			appendN(t, s, bcast, 1)
			appendN(t, s, alice, 1)
			return s
		}, herald.Cursor{User: 0, Broadcast: 2}, false, 5, 7}, // the window begins after the hole
		{"after retention, a cursor inside the new window", func(t *testing.T, s *Store, _ string) *Store {
			if _, err := s.Prune(ctx, herald.Retention{MaxPerStream: 2}); err != nil {
				t.Fatal(err)
			}
			appendN(t, s, bcast, 2)
			appendN(t, s, alice, 1)
			return s
		}, herald.Cursor{User: 3, Broadcast: 7}, true, 8, 8},
		{"retention that removed nothing", func(t *testing.T, s *Store, _ string) *Store {
			if n, err := s.Prune(ctx, herald.Retention{MaxPerStream: 100}); err != nil || n != 0 {
				t.Fatalf("pruned %d: %v", n, err)
			}
			return s
		}, herald.Cursor{User: 0, Broadcast: 0}, true, 1, 6},
		{"during a prune", func(t *testing.T, s *Store, _ string) *Store {
			s.read.window.beginPrune()
			t.Cleanup(func() { s.read.window.endPrune(false) })
			return s
		}, herald.Cursor{User: 1, Broadcast: 2}, false, 3, 6},
		{"a commit the window did not see", func(t *testing.T, s *Store, _ string) *Store {
			// As if broadcast 7 had committed without reaching the window: 8 is not contiguous.
			s.read.window.commit([]herald.Notification{{ID: 100, User: herald.BroadcastStream, Seq: 8, Type: "b"}})
			return s
		}, herald.Cursor{User: 1, Broadcast: 2}, false, 3, 6},
		{"a restart", func(t *testing.T, s *Store, path string) *Store {
			s.Close()
			return openAt(t, path, Options{SoleWriter: true})
		}, herald.Cursor{User: 1, Broadcast: 2}, false, 3, 6},
		{"a new epoch", func(t *testing.T, s *Store, _ string) *Store {
			if _, err := s.NewEpoch(ctx); err != nil {
				t.Fatal(err)
			}
			return s
		}, herald.Cursor{User: 1, Broadcast: 2}, false, 3, 6},
		{"a cursor before the window", func(t *testing.T, s *Store, _ string) *Store {
			appendN(t, s, bcast, windowPerStream) // the window holds the newest 16 of 22
			return s
		}, herald.Cursor{User: 1, Broadcast: 2}, false, 3, 6 + windowPerStream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "window.db")
			s := openAt(t, path, Options{SoleWriter: true})
			appendN(t, s, bcast, 6)
			appendN(t, s, alice, 3)
			if tt.setup != nil {
				s = tt.setup(t, s, path)
			}
			_, fromMemory := s.read.window.feed("alice", tt.after, 100)
			if fromMemory != tt.fromMemory {
				t.Errorf("answered from memory: %v, want %v", fromMemory, tt.fromMemory)
			}
			got := feedBoth(t, s, "alice", tt.after, 100)
			first := uint64(0)
			if len(got.Broadcast) > 0 {
				first = got.Broadcast[0].Seq
			}
			if first != tt.wantFirst || got.Heads.Broadcast != tt.wantHead {
				t.Errorf("first broadcast %d, head %d; want %d, %d", first, got.Heads.Broadcast, tt.wantFirst, tt.wantHead)
			}
		})
	}
}

// A file other processes may write (a bus links them) is always read: their commits never
// reach this window.
func TestRecentWindowOffWithoutSoleWriter(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "shared.db"), Options{})
	appendN(t, s, herald.Draft{Broadcast: true, Type: "b", Data: json.RawMessage(`{}`)}, 3)
	appendN(t, s, herald.Draft{To: []string{"alice"}, Type: "u", Data: json.RawMessage(`{}`)}, 3)
	if _, ok := s.read.window.feed("alice", herald.Cursor{User: 1, Broadcast: 1}, 100); ok {
		t.Error("answered from memory for a store that is not its file's only writer")
	}
	feedBoth(t, s, "alice", herald.Cursor{User: 1, Broadcast: 1}, 100)
}

func TestRecentWindowBounded(t *testing.T) {
	var w recentWindow
	big := json.RawMessage(make([]byte, 64<<10))
	for i := range 2 * windowBytes / len(big) {
		w.commit([]herald.Notification{{ID: int64(i + 1), User: "u" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)), Seq: uint64(i/676 + 1), Data: big}})
		if w.entries > windowEntries || w.bytes > windowBytes {
			t.Fatalf("after %d: %d entries, %d bytes", i, w.entries, w.bytes)
		}
	}
	w.clear()
	for seq := uint64(1); seq <= 3*windowPerStream; seq++ {
		w.commit([]herald.Notification{{ID: int64(seq), User: "alice", Seq: seq}})
	}
	if n := len(w.streams["alice"]); n != windowPerStream || w.entries != windowPerStream {
		t.Errorf("alice's window holds %d (%d counted), want %d", n, w.entries, windowPerStream)
	}
}

// BenchmarkFeedResume (feed_bench_test.go) resumes from the window; this is the same resume
// with the window dropped: the statement and the broadcast cache.
func BenchmarkFeedResumeStore(b *testing.B) {
	benchmarkFeedResume(b, func(s *Store) { s.read.window.clear() })
}
