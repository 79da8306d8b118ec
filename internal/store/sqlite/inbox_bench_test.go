package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/heraldhq/herald"
)

// BenchmarkInboxPage reads one page of 20 at a given depth of an inbox holding 20,000 of the
// user's own notifications interleaved with 20,000 broadcasts and 20,000 for another user.
// Pages are found by walking a stream's index back from its newest entry, so the cost grows with
// depth; retention (1000 per stream by default) bounds it.
func BenchmarkInboxPage(b *testing.B) {
	ctx := context.Background()
	s := openAt(b, filepath.Join(b.TempDir(), "herald.db"), Options{Sync: SyncNormal})
	const perStream = 20000
	var ids []int64 // alice's own notifications, oldest first
	for i := 0; i < perStream/1000; i++ {
		drafts := make([]herald.Draft, 0, 3000)
		for j := 0; j < 1000; j++ {
			drafts = append(drafts,
				herald.Draft{To: []string{"alice"}, Type: "t", Data: json.RawMessage(`{}`)},
				herald.Draft{Broadcast: true, Type: "t", Data: json.RawMessage(`{}`)},
				herald.Draft{To: []string{"bob"}, Type: "t", Data: json.RawMessage(`{}`)})
		}
		rs, err := s.Append(ctx, "bench", drafts)
		if err != nil {
			b.Fatal(err)
		}
		for k := 0; k < len(rs); k += 3 {
			ids = append(ids, rs[k].Notifications[0].ID)
		}
	}
	for _, depth := range []int{0, 1000, 19000} {
		for _, unread := range []bool{false, true} {
			b.Run(fmt.Sprintf("depth=%d/unread=%t", depth, unread), func(b *testing.B) {
				var before int64
				if depth > 0 {
					before = ids[len(ids)-depth/2]
				}
				for b.Loop() {
					p, err := s.Inbox(ctx, "alice", herald.InboxQuery{Limit: 20, Before: before, UnreadOnly: unread})
					if err != nil || len(p.Notifications) != 20 {
						b.Fatalf("%d notifications, %v", len(p.Notifications), err)
					}
				}
			})
		}
	}
}
