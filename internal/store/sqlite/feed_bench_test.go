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
