package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/heraldhq/herald"
)

// BenchmarkFeedResume is one stream's resume in a reconnect storm: users away while 5 broadcasts
// and one notification each were published, each reading its feed after the cursor it had.
func BenchmarkFeedResume(b *testing.B) { benchmarkFeedResume(b, nil) }

// benchmarkFeedResume runs the resumes after prepare(s), when given.
func benchmarkFeedResume(b *testing.B, prepare func(*Store)) {
	s := openAt(b, filepath.Join(b.TempDir(), "bench.db"), Options{Sync: SyncNormal, SoleWriter: true})
	ctx := context.Background()
	users := benchUsers(2000)
	var drafts []herald.Draft
	for i := range users {
		drafts = append(drafts, herald.Draft{To: users[i : i+1], Type: "order.shipped", Data: benchData})
	}
	if _, err := s.Append(ctx, "bench", drafts); err != nil {
		b.Fatal(err)
	}
	before, err := s.Heads(ctx, users[0])
	if err != nil {
		b.Fatal(err)
	}
	drafts = drafts[:0]
	for range 5 {
		drafts = append(drafts, herald.Draft{Broadcast: true, Type: "news", Data: benchData})
	}
	for i := range users {
		drafts = append(drafts, herald.Draft{To: users[i : i+1], Type: "order.shipped", Data: benchData})
	}
	if _, err := s.Append(ctx, "bench", drafts); err != nil {
		b.Fatal(err)
	}
	if prepare != nil {
		prepare(s)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		u := users[i%len(users)]
		p, err := s.Feed(ctx, u, herald.Cursor{User: 1, Broadcast: before.Broadcast}, 256)
		if err != nil {
			b.Fatal(err)
		}
		if len(p.User) != 1 || len(p.Broadcast) != 5 {
			b.Fatalf("read %d and %d", len(p.User), len(p.Broadcast))
		}
	}
}

// BenchmarkOpenWarm is the start of a node after a reconnect storm's publishes (18,000 users,
// two notifications each, 5 broadcasts): opening the file, warming the recent windows from it
// included (warm.go). It reports how many notifications the windows hold.
func BenchmarkOpenWarm(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.db")
	s := openAt(b, path, Options{Sync: SyncNormal, SoleWriter: true})
	ctx := context.Background()
	users := benchUsers(18000)
	var drafts []herald.Draft
	for round := range 2 {
		drafts = drafts[:0]
		for i := range users {
			drafts = append(drafts, herald.Draft{To: users[i : i+1], Type: "order.shipped", Data: benchData})
		}
		if round == 1 {
			for range 5 {
				drafts = append(drafts, herald.Draft{Broadcast: true, Type: "news", Data: benchData})
			}
		}
		for len(drafts) > 0 {
			n := min(len(drafts), 1000)
			if _, err := s.Append(ctx, "bench", drafts[:n]); err != nil {
				b.Fatal(err)
			}
			drafts = drafts[n:]
		}
	}
	s.Close()
	// "shared" opens the file as a node with a bus does, without the window: the difference
	// is the warming.
	for _, sole := range []bool{true, false} {
		b.Run(map[bool]string{true: "sole-writer", false: "shared"}[sole], func(b *testing.B) {
			held := 0
			for b.Loop() {
				s, err := Open(ctx, path, Options{Sync: SyncNormal, SoleWriter: sole})
				if err != nil {
					b.Fatal(err)
				}
				held = s.read.window.entries
				s.Close()
			}
			b.ReportMetric(float64(held), "held")
		})
	}
}
