package postgres

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/storetest"
	"github.com/heraldhq/herald/internal/testenv"
)

func open(t *testing.T, url string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) herald.Store {
		return open(t, testenv.Postgres(t), Options{})
	})
}

// TestTwoNodes: two stores on one database, as two nodes, appending to the same streams at once:
// sequences stay gap-free, and each node's OnCommit sees exactly its own commits.
func TestTwoNodes(t *testing.T) {
	url := testenv.Postgres(t)
	var mu sync.Mutex
	seen := map[string]int{}
	onCommit := func(node string) herald.CommitFunc {
		return func(ns []herald.Notification) {
			mu.Lock()
			seen[node] += len(ns)
			mu.Unlock()
		}
	}
	a, b := open(t, url, Options{OnCommit: onCommit("a")}), open(t, url, Options{OnCommit: onCommit("b")})
	var wg sync.WaitGroup
	for i, s := range []*Store{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				d := herald.Draft{To: []string{"alice", "bob"}, Type: "t", Data: json.RawMessage(`{}`)}
				if j%5 == 0 {
					d = herald.Draft{Broadcast: true, Type: "t", Data: json.RawMessage(`{}`)}
				}
				if _, err := s.Append(context.Background(), "p", []herald.Draft{d}); err != nil {
					t.Errorf("writer %d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	h, err := a.StreamHeads(context.Background(), []string{"alice", "bob", herald.BroadcastStream})
	if err != nil || h["alice"] != 160 || h["bob"] != 160 || h[herald.BroadcastStream] != 40 {
		t.Fatalf("heads %v, %v; want alice and bob 160, broadcasts 40", h, err)
	}
	ns, err := b.Stream(context.Background(), "alice", 0, 1000)
	if err != nil || len(ns) != 160 {
		t.Fatalf("alice's stream: %d, %v", len(ns), err)
	}
	for i, n := range ns {
		if n.Seq != uint64(i+1) || (i > 0 && n.ID <= ns[i-1].ID) {
			t.Fatalf("alice's stream at %d: seq %d id %d after id %d", i, n.Seq, n.ID, ns[max(0, i-1)].ID)
		}
	}
	if seen["a"] != 180 || seen["b"] != 180 {
		t.Fatalf("OnCommit saw %v, want 180 each", seen)
	}
}

// TestMigrationsOnce: nodes starting together migrate once; a database from a newer Herald is
// refused.
func TestMigrationsOnce(t *testing.T) {
	url := testenv.Postgres(t)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			open(t, url, Options{})
		}()
	}
	wg.Wait()
	s := open(t, url, Options{})
	if _, err := s.pool.Exec(context.Background(), `UPDATE herald_schema_version SET version = 99`); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), url, Options{})
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer database: %v", err)
	}
}

// TestPruneRemovesStateMarks looks under the interface: pruned broadcasts leave no read or
// archive marks, and a seen mark below everything kept is removed.
func TestPruneRemovesStateMarks(t *testing.T) {
	ctx := context.Background()
	s := open(t, testenv.Postgres(t), Options{})
	var ids []int64
	for range 5 {
		rs, err := s.Append(ctx, "p", []herald.Draft{{Broadcast: true, Type: "t", Data: json.RawMessage(`{}`)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rs[0].Notifications[0].ID)
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
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	check := func(when string, reads, archives, marks int) {
		t.Helper()
		if r, a, m := count("herald_broadcast_reads"), count("herald_broadcast_archives"), count("herald_user_marks"); r != reads || a != archives || m != marks {
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

func TestOpenRefusesBadURL(t *testing.T) {
	_, err := Open(context.Background(), "postgres://user:s3cret@[bad", Options{})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Open: %v", err)
	}
}

// BenchmarkPublishTopic: one topic publish per op to 1k, 10k and 100k subscribers.
func BenchmarkPublishTopic(b *testing.B) {
	storetest.BenchPublishTopic(b, func(b *testing.B) herald.Store {
		s, err := Open(context.Background(), testenv.Postgres(b), Options{})
		if err != nil {
			b.Fatalf("Open: %v", err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	})
}
