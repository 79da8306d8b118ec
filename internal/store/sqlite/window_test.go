package sqlite

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

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
		{"a restart (the window is warmed from the file)", func(t *testing.T, s *Store, path string) *Store {
			s.Close()
			return openAt(t, path, Options{SoleWriter: true})
		}, herald.Cursor{User: 1, Broadcast: 2}, true, 3, 6},
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

// After a restart the windows are filled from the file (warm.go): a resume inside what was
// read is answered from memory with exactly what the store holds, and one that needs a row
// retention removed, before the restart or after it, is answered by the store, which tells the
// client (herald.missed) — as is one whose stream lost its newest rows or has a hole.
func TestWarmWindowAcrossARestart(t *testing.T) {
	ctx := context.Background()
	bcast := herald.Draft{Broadcast: true, Type: "b", Data: json.RawMessage(`{"b":1}`)}
	alice := herald.Draft{To: []string{"alice"}, Type: "u", Data: json.RawMessage(`{"u":1}`),
		Content: &herald.Content{Title: "hello"}}
	prune := func(r herald.Retention) func(t *testing.T, s *Store) {
		return func(t *testing.T, s *Store) {
			if n, err := s.Prune(ctx, r); err != nil || n == 0 {
				t.Fatalf("pruned %d: %v", n, err)
			}
		}
	}
	raw := func(q string) func(t *testing.T, s *Store) {
		return func(t *testing.T, s *Store) {
			if _, err := s.writer.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	}
	type resume struct {
		user       string // alice when empty
		after      herald.Cursor
		fromMemory bool
		// The first notification of each stream Feed must return (0: none), and the heads.
		wantUser, wantBroadcast uint64
		wantHeads               herald.Cursor
	}
	tests := []struct {
		name string
		// before runs on the store before it is closed (6 broadcasts and 3 notifications to
		// alice committed), between on the file opened by another process while it is down,
		// after on the store opened again.
		before, between, after func(t *testing.T, s *Store)
		resumes                []resume
	}{
		{name: "nothing removed", resumes: []resume{
			{"bob", herald.Cursor{Broadcast: 2}, false, 0, 3, herald.Cursor{Broadcast: 6}}, // no stream of bob's: the store answers
			{"", herald.Cursor{User: 1, Broadcast: 2}, true, 2, 3, herald.Cursor{User: 3, Broadcast: 6}},
			{"", herald.Cursor{User: 0, Broadcast: 0}, true, 1, 1, herald.Cursor{User: 3, Broadcast: 6}},
			{"", herald.Cursor{User: 3, Broadcast: 6}, true, 0, 0, herald.Cursor{User: 3, Broadcast: 6}},
		}},
		{name: "retention before the restart", before: prune(herald.Retention{MaxPerStream: 2}), resumes: []resume{
			{"", herald.Cursor{User: 0, Broadcast: 2}, false, 2, 5, herald.Cursor{User: 3, Broadcast: 6}}, // the hole: herald.missed
			{"", herald.Cursor{User: 1, Broadcast: 4}, true, 2, 5, herald.Cursor{User: 3, Broadcast: 6}},
			{"", herald.Cursor{User: 2, Broadcast: 5}, true, 3, 6, herald.Cursor{User: 3, Broadcast: 6}},
		}},
		{name: "retention while down", between: prune(herald.Retention{MaxPerStream: 2}), resumes: []resume{
			{"", herald.Cursor{User: 1, Broadcast: 2}, false, 2, 5, herald.Cursor{User: 3, Broadcast: 6}},
			{"", herald.Cursor{User: 1, Broadcast: 4}, true, 2, 5, herald.Cursor{User: 3, Broadcast: 6}},
		}},
		{name: "retention after the restart", after: prune(herald.Retention{MaxPerStream: 2}), resumes: []resume{
			{"", herald.Cursor{User: 1, Broadcast: 2}, false, 2, 5, herald.Cursor{User: 3, Broadcast: 6}},
			{"", herald.Cursor{User: 1, Broadcast: 4}, false, 2, 5, herald.Cursor{User: 3, Broadcast: 6}},
		}},
		{name: "retention removed everything while down", between: prune(herald.Retention{MaxAge: time.Nanosecond}), resumes: []resume{
			{"", herald.Cursor{User: 1, Broadcast: 2}, false, 0, 0, herald.Cursor{User: 3, Broadcast: 6}},
		}},
		{name: "new commits after the restart", after: func(t *testing.T, s *Store) {
			appendN(t, s, bcast, 2)
			appendN(t, s, alice, 1)
		}, resumes: []resume{
			{"", herald.Cursor{User: 1, Broadcast: 2}, true, 2, 3, herald.Cursor{User: 4, Broadcast: 8}},
		}},
		{name: "the newest rows gone while down", between: raw(`DELETE FROM notifications WHERE stream = '' AND seq = 6`), resumes: []resume{
			{"", herald.Cursor{User: 1, Broadcast: 2}, false, 2, 3, herald.Cursor{User: 3, Broadcast: 6}},
		}},
		{name: "a hole while down", between: raw(`DELETE FROM notifications WHERE stream = '' AND seq = 4`), resumes: []resume{
			{"", herald.Cursor{User: 1, Broadcast: 2}, false, 2, 3, herald.Cursor{User: 3, Broadcast: 6}}, // 3, then the hole
			{"", herald.Cursor{User: 1, Broadcast: 4}, true, 2, 5, herald.Cursor{User: 3, Broadcast: 6}},
		}},
		{name: "more than a window", before: func(t *testing.T, s *Store) { appendN(t, s, bcast, windowPerStream) }, resumes: []resume{
			{"", herald.Cursor{User: 1, Broadcast: 5}, false, 2, 6, herald.Cursor{User: 3, Broadcast: 6 + windowPerStream}},
			{"", herald.Cursor{User: 1, Broadcast: 7}, true, 2, 8, herald.Cursor{User: 3, Broadcast: 6 + windowPerStream}},
		}},
		{name: "a new epoch while down", between: func(t *testing.T, s *Store) {
			if _, err := s.NewEpoch(ctx); err != nil {
				t.Fatal(err)
			}
		}, resumes: []resume{
			{"", herald.Cursor{User: 1, Broadcast: 2}, true, 2, 3, herald.Cursor{User: 3, Broadcast: 6}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "warm.db")
			s := openAt(t, path, Options{SoleWriter: true})
			appendN(t, s, bcast, 6)
			appendN(t, s, alice, 3)
			if tt.before != nil {
				tt.before(t, s)
			}
			s.Close()
			if tt.between != nil {
				other := openAt(t, path, Options{})
				tt.between(t, other)
				other.Close()
			}
			s = openAt(t, path, Options{SoleWriter: true})
			if tt.after != nil {
				tt.after(t, s)
			}
			for i, r := range tt.resumes {
				if r.user == "" {
					r.user = "alice"
				}
				_, fromMemory := s.read.window.feed(r.user, r.after, 100)
				if fromMemory != r.fromMemory {
					t.Errorf("resume %d from %v: answered from memory: %v, want %v", i, r.after, fromMemory, r.fromMemory)
				}
				got := feedBoth(t, s, r.user, r.after, 100) // exactly what the store holds
				var firstUser, firstBroadcast uint64
				if len(got.User) > 0 {
					firstUser = got.User[0].Seq
				}
				if len(got.Broadcast) > 0 {
					firstBroadcast = got.Broadcast[0].Seq
				}
				if firstUser != r.wantUser || firstBroadcast != r.wantBroadcast || got.Heads != r.wantHeads {
					t.Errorf("resume %d from %v: first %d and %d, heads %v; want %d and %d, heads %v", i, r.after,
						firstUser, firstBroadcast, got.Heads, r.wantUser, r.wantBroadcast, r.wantHeads)
				}
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
