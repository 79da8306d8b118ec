package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/storetest"
)

// openAt opens the store at path and closes it when the test ends.
func openAt(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	for _, sync := range []Sync{SyncFull, SyncNormal} {
		t.Run(string(sync), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) herald.Store {
				return openAt(t, filepath.Join(t.TempDir(), "herald.db"), Options{Sync: sync})
			})
		})
	}
	// As a node without a bus opens it: the only writer of its file, so resumes may be answered
	// from memory and rules skipped while nobody has any (window.go, Store.mayMute).
	t.Run("sole-writer", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) herald.Store {
			return openAt(t, filepath.Join(t.TempDir(), "herald.db"), Options{Sync: SyncNormal, SoleWriter: true})
		})
	})
}

// TestConformanceSmallGroups runs the suite with groups of at most one notification, so every
// request commits on its own and a batch exceeds the bound by itself.
func TestConformanceSmallGroups(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	storetest.Run(t, func(t *testing.T) herald.Store {
		return openAt(t, filepath.Join(t.TempDir(), "herald.db"), Options{Sync: SyncNormal, MaxGroup: 1, Readers: 1})
	})
}

func draft(data string, to ...string) herald.Draft {
	return herald.Draft{To: to, Type: "t", Data: json.RawMessage(data)}
}

func mustAppend(t testing.TB, s *Store, drafts ...herald.Draft) []herald.Receipt {
	t.Helper()
	rs, err := s.Append(context.Background(), "scope", drafts)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return rs
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	ctx := context.Background()

	s := openAt(t, path, Options{})
	keyedDraft := draft(`{"k":1}`, "alice")
	keyedDraft.Key = "k1"
	first := mustAppend(t, s,
		draft(`{"i":1}`, "alice"), draft(`{"i":2}`, "alice", "bob"),
		herald.Draft{Broadcast: true, Type: "news", Data: json.RawMessage(`{"i":3}`)}, keyedDraft)
	aliceFirst := first[0].Notifications[0]
	news := first[2].Notifications[0]
	if err := s.SetRead(ctx, "alice", aliceFirst.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRead(ctx, "bob", news.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openAt(t, path, Options{Sync: SyncNormal})
	h, err := s.Heads(ctx, "alice")
	if err != nil || h != (herald.Cursor{User: 3, Broadcast: 1}) {
		t.Fatalf("Heads after reopen = %+v, %v; want {3 1}", h, err)
	}
	p, err := s.Feed(ctx, "alice", herald.Cursor{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(p.User) + len(p.Broadcast); got != 4 {
		t.Fatalf("feed after reopen holds %d, want 4", got)
	}
	if p.User[0].ID != aliceFirst.ID || !p.User[0].CreatedAt.Equal(aliceFirst.CreatedAt) || string(p.User[0].Data) != `{"i":1}` {
		t.Fatalf("after reopen: %+v, want %+v", p.User[0], aliceFirst)
	}
	// Read state survives, per user.
	if n, err := s.Get(ctx, "alice", aliceFirst.ID); err != nil || n.ReadAt.IsZero() {
		t.Fatalf("alice's read mark lost: %+v, %v", n, err)
	}
	if n, err := s.Get(ctx, "bob", news.ID); err != nil || n.ReadAt.IsZero() {
		t.Fatalf("bob's broadcast read mark lost: %+v, %v", n, err)
	}
	if n, err := s.Get(ctx, "alice", news.ID); err != nil || !n.ReadAt.IsZero() {
		t.Fatalf("alice's broadcast: %+v, %v; want unread", n, err)
	}
	// Idempotency keys survive.
	rs := mustAppend(t, s, keyedDraft)
	if !rs[0].Replayed || rs[0].Notifications[0].ID != first[3].Notifications[0].ID {
		t.Fatalf("keyed draft after reopen: %+v, want a replay of %d", rs[0], first[3].Notifications[0].ID)
	}
	// Sequences and ids continue.
	rs = mustAppend(t, s, draft(`{}`, "alice"), draft(`{}`, "bob"), herald.Draft{Broadcast: true, Type: "t", Data: json.RawMessage(`{}`)})
	for i, want := range []uint64{4, 2, 2} {
		n := rs[i].Notifications[0]
		if n.Seq != want || n.ID <= first[3].Notifications[0].ID {
			t.Fatalf("after reopen: %+v, want seq %d and an id above the old ones", n, want)
		}
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	s := openAt(t, path, Options{})
	mustAppend(t, s, draft(`{}`, "alice"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(fmt.Sprintf("PRAGMA user_version = %d", schemaVersion+1)); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(context.Background(), path, Options{})
	if err == nil {
		s2.Close()
		t.Fatal("Open accepted a database from a newer Herald")
	}
	if herald.ErrorCode(err) != herald.EINVALID || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open: %v; want an %q error saying the schema is newer", err, herald.EINVALID)
	}
	// The refused database is left as it was.
	var v int
	if err := raw.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != schemaVersion+1 {
		t.Fatalf("user_version = %d, %v; want it untouched at %d", v, err, schemaVersion+1)
	}
}

func TestOpenOptions(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		path     string
		opts     Options
		wantCode string // "" for success
	}{
		{"default sync", filepath.Join(dir, "a.db"), Options{}, ""},
		{"full", filepath.Join(dir, "b.db"), Options{Sync: SyncFull}, ""},
		{"normal", filepath.Join(dir, "c.db"), Options{Sync: SyncNormal, MaxGroup: 10, Readers: 2}, ""},
		{"path with spaces and ?", filepath.Join(dir, "we ird?#.db"), Options{}, ""},
		{"unknown sync", filepath.Join(dir, "d.db"), Options{Sync: "off"}, herald.EINVALID},
		{"upper-case sync", filepath.Join(dir, "e.db"), Options{Sync: "FULL"}, herald.EINVALID},
		{"empty path", "", Options{}, herald.EINVALID},
		{"missing directory", filepath.Join(dir, "no", "such", "dir", "f.db"), Options{}, herald.EINTERNAL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(context.Background(), tc.path, tc.opts)
			if tc.wantCode != "" {
				if err == nil {
					s.Close()
					t.Fatalf("Open(%q, %+v) succeeded, want a %q error", tc.path, tc.opts, tc.wantCode)
				}
				if got := herald.ErrorCode(err); got != tc.wantCode {
					t.Fatalf("Open: %v (code %q), want code %q", err, got, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			mustAppend(t, s, draft(`{}`, "alice"))
			var mode, sync string
			if err := s.writer.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
				t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
			}
			if err := s.writer.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil {
				t.Fatal(err)
			}
			want := map[Sync]string{"": "2", SyncFull: "2", SyncNormal: "1"}[tc.opts.Sync]
			if sync != want {
				t.Fatalf("synchronous = %s, want %s", sync, want)
			}
		})
	}
}

// TestGroupCommit shows that concurrent publishers share commits, that a group never exceeds
// MaxGroup notifications unless one request does alone, and that everything acknowledged is on
// disk after Close. Every notification of one group carries the group's commit time, so the
// distinct CreatedAt values count the groups.
func TestGroupCommit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxGroup int
	}{
		{"default", 0},
		{"bounded", 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "herald.db")
			s := openAt(t, path, Options{Sync: SyncFull, MaxGroup: tc.maxGroup})
			const publishers, perPublisher = 64, 20
			var mu sync.Mutex
			var all []herald.Notification
			var wg sync.WaitGroup
			start := make(chan struct{})
			for p := range publishers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					for i := range perPublisher {
						rs, err := s.Append(context.Background(), "scope", []herald.Draft{draft(fmt.Sprintf(`{"p":%d,"i":%d}`, p, i), fmt.Sprintf("u%d", p%8))})
						if err != nil {
							t.Errorf("append: %v", err)
							return
						}
						mu.Lock()
						all = append(all, rs[0].Notifications...)
						mu.Unlock()
					}
				}()
			}
			close(start)
			wg.Wait()
			if t.Failed() {
				return
			}
			groups := map[int64]int{}
			for _, n := range all {
				groups[n.CreatedAt.UnixMicro()]++
			}
			total := publishers * perPublisher
			t.Logf("%d appends in %d commits (%.1f per commit)", total, len(groups), float64(total)/float64(len(groups)))
			if len(groups) > total/4 {
				t.Fatalf("%d appends took %d commits: concurrent appends are not grouped", total, len(groups))
			}
			if tc.maxGroup > 0 {
				for at, n := range groups {
					if n > tc.maxGroup {
						t.Fatalf("commit at %d wrote %d notifications, more than MaxGroup %d", at, n, tc.maxGroup)
					}
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			s = openAt(t, path, Options{})
			byStream := map[string][]herald.Notification{}
			for _, n := range all {
				byStream[n.User] = append(byStream[n.User], n)
			}
			for stream, ns := range byStream {
				slices.SortFunc(ns, func(a, b herald.Notification) int { return int(a.Seq) - int(b.Seq) })
				stored, err := s.Stream(context.Background(), stream, 0, total+1)
				if err != nil {
					t.Fatal(err)
				}
				if len(stored) != len(ns) {
					t.Fatalf("stream %q: %d acknowledged, %d on disk", stream, len(ns), len(stored))
				}
				for i := range ns {
					if stored[i].ID != ns[i].ID || stored[i].Seq != uint64(i+1) || string(stored[i].Data) != string(ns[i].Data) {
						t.Fatalf("stream %q at %d: on disk %+v, acknowledged %+v", stream, i, stored[i], ns[i])
					}
				}
			}
		})
	}
}

// TestBatchBeyondMaxGroup: a single request larger than MaxGroup still commits, whole.
func TestBatchBeyondMaxGroup(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "herald.db"), Options{Sync: SyncNormal, MaxGroup: 4})
	drafts := make([]herald.Draft, 50)
	for i := range drafts {
		drafts[i] = draft(fmt.Sprintf(`{"i":%d}`, i), "alice", "bob")
	}
	rs := mustAppend(t, s, drafts...)
	if got := rs[49].Notifications[1].Seq; got != 50 {
		t.Fatalf("last seq %d, want 50", got)
	}
	at := rs[0].Notifications[0].CreatedAt
	for _, r := range rs {
		for _, n := range r.Notifications {
			if !n.CreatedAt.Equal(at) {
				t.Fatal("one request was split across commits")
			}
		}
	}
}

// TestCloseDuringAppends: Close while publishers are appending never hangs or panics; every
// Append either succeeds, and is then on disk, or fails as unavailable.
func TestCloseDuringAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	s, err := Open(context.Background(), path, Options{Sync: SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[int64]bool{}
	var wg sync.WaitGroup
	var closeReturned atomic.Bool
	for p := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				afterClose := closeReturned.Load()
				rs, err := s.Append(context.Background(), "scope", []herald.Draft{draft(`{}`, fmt.Sprintf("u%d", p%4))})
				if err != nil {
					if herald.ErrorCode(err) != herald.EUNAVAILABLE {
						t.Errorf("append during Close: %v, want %q", err, herald.EUNAVAILABLE)
					}
					return
				}
				if afterClose {
					t.Errorf("Append that started after Close returned succeeded")
					return
				}
				mu.Lock()
				acked[rs[0].Notifications[0].ID] = true
				mu.Unlock()
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	closed := make(chan error)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		closeReturned.Store(true)
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close hangs while publishers append")
	}
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("Appends after Close hang")
	}
	if t.Failed() {
		return
	}

	s = openAt(t, path, Options{})
	var n int
	for u := range 4 {
		ns, err := s.Stream(context.Background(), fmt.Sprintf("u%d", u), 0, 1_000_000)
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range ns {
			if x.Seq != uint64(i+1) {
				t.Fatalf("u%d: seq %d at %d", u, x.Seq, i)
			}
			if !acked[x.ID] {
				t.Fatalf("u%d: %d on disk but never acknowledged", u, x.ID)
			}
		}
		n += len(ns)
	}
	if n != len(acked) {
		t.Fatalf("%d acknowledged, %d on disk", len(acked), n)
	}
	t.Logf("%d appends acknowledged before Close", n)
}

// TestPruneRemovesReadMarks looks under the interface: pruned broadcasts leave no read or
// archive marks, and a seen mark below everything kept is removed.
func TestPruneRemovesReadMarks(t *testing.T) {
	ctx := context.Background()
	s := openAt(t, filepath.Join(t.TempDir(), "herald.db"), Options{Sync: SyncNormal})
	var ids []int64
	for range 5 {
		ids = append(ids, mustAppend(t, s, herald.Draft{Broadcast: true, Type: "t", Data: json.RawMessage(`{}`)})[0].Notifications[0].ID)
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		if _, err := s.ReadAll(ctx, u); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ArchiveRead(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	for u, upTo := range map[string]int64{"alice": ids[0], "bob": ids[3]} {
		if _, _, err := s.MarkSeen(ctx, u, upTo); err != nil {
			t.Fatal(err)
		}
	}
	count := func(table string) (n int) {
		t.Helper()
		if err := s.writer.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	check := func(when string, reads, archives, marks int) {
		t.Helper()
		if r, a, m := count("broadcast_reads"), count("broadcast_archives"), count("user_marks"); r != reads || a != archives || m != marks {
			t.Fatalf("%s: %d read marks, %d archive marks, %d seen marks; want %d, %d, %d", when, r, a, m, reads, archives, marks)
		}
	}
	check("before pruning", 15, 15, 2)
	if _, err := s.Prune(ctx, herald.Retention{MaxPerStream: 2}); err != nil {
		t.Fatal(err)
	}
	// alice's seen mark is below the kept broadcasts; bob's covers one of them.
	check("after keeping 2 broadcasts", 6, 6, 1)
	if _, err := s.Prune(ctx, herald.Retention{MaxAge: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	check("after pruning every broadcast", 0, 0, 0)
}

// TestPruneLargeBacklog crosses the chunk size of both prune loops.
func TestPruneLargeBacklog(t *testing.T) {
	ctx := context.Background()
	s := openAt(t, filepath.Join(t.TempDir(), "herald.db"), Options{Sync: SyncNormal})
	drafts := make([]herald.Draft, 2*pruneChunk+500)
	for i := range drafts {
		drafts[i] = draft(`{}`, fmt.Sprintf("u%d", i%2))
	}
	mustAppend(t, s, drafts...)
	n, err := s.Prune(ctx, herald.Retention{MaxPerStream: 10})
	if err != nil || n != int64(len(drafts)-20) {
		t.Fatalf("Prune by count = %d, %v; want %d", n, err, len(drafts)-20)
	}
	mustAppend(t, s, drafts...)
	time.Sleep(2 * time.Millisecond)
	n, err = s.Prune(ctx, herald.Retention{MaxAge: time.Microsecond})
	if err != nil || n != int64(len(drafts)+20) {
		t.Fatalf("Prune by age = %d, %v; want %d", n, err, len(drafts)+20)
	}
}

func TestInboxLimit(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "herald.db"), Options{Sync: SyncNormal})
	mustAppend(t, s, draft(`{}`, "alice"))
	for _, limit := range []int{0, -1} {
		_, err := s.Inbox(context.Background(), "alice", herald.InboxQuery{Limit: limit})
		if herald.ErrorCode(err) != herald.EINVALID {
			t.Fatalf("Inbox with limit %d: %v, want %q", limit, err, herald.EINVALID)
		}
	}
}

// TestMigrateFromEveryVersion opens databases left at each older schema version, with data in
// them, and checks that Open brings them to the newest with the data intact.
func TestMigrateFromEveryVersion(t *testing.T) {
	ms := mustMigrations()
	for from := 1; from < len(ms); from++ {
		t.Run(fmt.Sprintf("from %d", from), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "herald.db")
			raw, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			for _, m := range ms[:from] {
				if err := apply(context.Background(), raw, m); err != nil {
					t.Fatalf("apply %s: %v", m.name, err)
				}
			}
			if _, err := raw.Exec(`INSERT INTO streams VALUES ('alice', 1);
				INSERT INTO notifications (stream, seq, type, data, created_at) VALUES ('alice', 1, 't', '{}', 0)`); err != nil {
				t.Fatal(err)
			}
			s := openAt(t, path, Options{Sync: SyncNormal})
			var v int
			if err := raw.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != schemaVersion {
				t.Fatalf("user_version = %d, %v; want %d", v, err, schemaVersion)
			}
			var indexes int
			if err := raw.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index'
				AND name = 'broadcast_reads_notification'`).Scan(&indexes); err != nil || indexes != 1 {
				t.Fatalf("index from migration 2: %d, %v", indexes, err)
			}
			if h, err := s.Heads(context.Background(), "alice"); err != nil || h.User != 1 {
				t.Fatalf("Heads = %+v, %v; want the old data", h, err)
			}
			rs := mustAppend(t, s, draft(`{}`, "alice"))
			if rs[0].Notifications[0].Seq != 2 {
				t.Fatalf("after migration the next seq is %d, want 2", rs[0].Notifications[0].Seq)
			}
		})
	}
}

func TestMigrationFilesNumbered(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.version != i+1 || len(m.stmts) == 0 {
			t.Errorf("migration %d: %+v", i, m)
		}
	}
}

// TestBackup copies a database that is being written to, and the copy opens with everything
// that was committed before the backup began.
func TestBackup(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "herald.db")
	s := openAt(t, path, Options{Sync: SyncNormal})
	first := mustAppend(t, s, draft(`{"i":1}`, "alice"), herald.Draft{Broadcast: true, Type: "t", Data: json.RawMessage(`{}`)})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the server keeps publishing during the backup
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				if _, err := s.Append(context.Background(), "w", []herald.Draft{draft(`{}`, "bob")}); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	out := filepath.Join(dir, "copy.db")
	err := Backup(context.Background(), path, out)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if err := Backup(context.Background(), path, out); err == nil {
		t.Fatal("Backup overwrote an existing file")
	}
	if err := Backup(context.Background(), filepath.Join(dir, "missing.db"), filepath.Join(dir, "x.db")); err == nil {
		t.Fatal("Backup of a missing database succeeded")
	}
	c := openAt(t, out, Options{Sync: SyncNormal})
	n, err := c.Get(context.Background(), "alice", first[0].Notifications[0].ID)
	if err != nil || string(n.Data) != `{"i":1}` {
		t.Fatalf("the copy lacks alice's notification: %+v, %v", n, err)
	}
	if h, _ := c.Heads(context.Background(), "alice"); h != (herald.Cursor{User: 1, Broadcast: 1}) {
		t.Fatalf("heads in the copy: %+v", h)
	}
	// The copy is the same store in a new epoch, which begins after everything it holds: once
	// restored, cursors of the original history are recognised, however far its heads go.
	orig, cp := s.Identity(), c.Identity()
	if cp.ID != orig.ID || cp.Epoch == orig.Epoch || cp.Since < first[0].Notifications[0].ID+1 {
		t.Fatalf("the copy's identity is %+v, the original's %+v; want the same id, another epoch, Since past the copied ids", cp, orig)
	}
	if st, err := c.EpochStart(context.Background(), "alice"); err != nil || st != (herald.Cursor{User: 1, Broadcast: 1}) {
		t.Fatalf("EpochStart(alice) in the copy = %+v, %v; want 1.1, past the copied notifications", st, err)
	}
}
