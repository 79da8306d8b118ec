package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/storetest"
)

// Run with: go test -run '^$' -bench . -benchtime 3s ./internal/store/sqlite/

var benchSyncs = []Sync{SyncFull, SyncNormal}

var benchData = json.RawMessage(`{"title":"Your order has shipped","order":12345,"url":"https://example.com/o/12345"}`)

func benchStore(b *testing.B, sync Sync) *Store {
	b.Helper()
	return openAt(b, filepath.Join(b.TempDir(), "bench.db"), Options{Sync: sync})
}

// BenchmarkAppendSequential: one publisher, one unicast per Append; every op waits for its own
// commit, so this is the latency of one commit.
func BenchmarkAppendSequential(b *testing.B) {
	for _, sync := range benchSyncs {
		b.Run(string(sync), func(b *testing.B) {
			s := benchStore(b, sync)
			ctx := context.Background()
			users := benchUsers(1000)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				d := []herald.Draft{{To: users[i%len(users) : i%len(users)+1], Type: "order.shipped", Data: benchData}}
				if _, err := s.Append(ctx, "bench", d); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "acks/s")
		})
	}
}

// BenchmarkAppendParallel64: about 64 publishers, one unicast per Append, sharing commits
// through the group-commit loop.
func BenchmarkAppendParallel64(b *testing.B) {
	for _, sync := range benchSyncs {
		b.Run(string(sync), func(b *testing.B) {
			s := benchStore(b, sync)
			ctx := context.Background()
			users := benchUsers(1000)
			var next atomic.Int64
			b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(next.Add(1)) % len(users)
					d := []herald.Draft{{To: users[i : i+1], Type: "order.shipped", Data: benchData}}
					if _, err := s.Append(ctx, "bench", d); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "acks/s")
		})
	}
}

// BenchmarkAppendBatch1000: one Append of 1000 unicast drafts per op. The recipients matter: a
// batch to 1000 different users touches a leaf of each per-user index for every notification,
// while a batch to a few users writes a few pages, so both are measured.
func BenchmarkAppendBatch1000(b *testing.B) {
	const batch = 1000
	for _, sync := range benchSyncs {
		for _, recipients := range []int{batch, 10} {
			b.Run(fmt.Sprintf("%s/users=%d", sync, recipients), func(b *testing.B) {
				s := benchStore(b, sync)
				ctx := context.Background()
				users := benchUsers(recipients)
				drafts := make([]herald.Draft, batch)
				for i := range drafts {
					u := i % recipients
					drafts[i] = herald.Draft{To: users[u : u+1], Type: "order.shipped", Data: benchData}
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Append(ctx, "bench", drafts); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "notifications/s")
			})
		}
	}
}

func benchUsers(n int) []string {
	users := make([]string, n)
	for i := range users {
		users[i] = "user-" + strconv.Itoa(i)
	}
	return users
}

// BenchmarkPublishTopic: one topic publish per op to 1k, 10k and 100k subscribers (synchronous
// commits as --sqlite-sync normal).
func BenchmarkPublishTopic(b *testing.B) {
	storetest.BenchPublishTopic(b, func(b *testing.B) herald.Store { return benchStore(b, SyncNormal) })
}
