package hub

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
)

// BenchmarkBroadcastFanOut measures one broadcast reaching every subscriber: Publish queues it on
// each subscription, and each subscriber's goroutine wakes, takes it, and reports. ns/op is the
// time until the last subscriber has it.
func BenchmarkBroadcastFanOut(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			h := New(Options{QueueSize: 256})
			defer h.Close()
			var got sync.WaitGroup
			var ready sync.WaitGroup
			for i := 0; i < n; i++ {
				s, err := h.Subscribe(fmt.Sprintf("user%d", i))
				if err != nil {
					b.Fatal(err)
				}
				ready.Add(1)
				go func() {
					defer s.Close()
					var buf []*Event
					ready.Done()
					for {
						select {
						case <-s.Done():
							return
						case <-s.Ready():
							buf, _ = s.Take(buf)
							for range buf {
								got.Done()
							}
						}
					}
				}()
			}
			ready.Wait()
			now := time.Now()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				got.Add(n)
				h.Publish([]herald.Notification{{ID: int64(i + 1), Seq: uint64(i + 1), Type: "t", CreatedAt: now}})
				got.Wait()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
		})
	}
}

// BenchmarkBroadcastFanOutNotify is the fan-out as parked streams see it: no goroutine per
// subscriber, OnNotify marks a subscriber ready (as a shard's writer is told) and one loop then
// takes each one's events. ns/op is one broadcast reaching every subscriber's hands.
func BenchmarkBroadcastFanOutNotify(b *testing.B) {
	for _, n := range []int{1000, 18000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			h := New(Options{QueueSize: 256})
			defer h.Close()
			subs := make([]*Subscription, n)
			var mu sync.Mutex
			var ready []*Subscription
			for i := range subs {
				s, err := h.Subscribe(fmt.Sprintf("user%d", i))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				s.OnNotify(func() {
					mu.Lock()
					ready = append(ready, s)
					mu.Unlock()
				})
				subs[i] = s
			}
			ready = ready[:0]
			now := time.Now()
			var buf []*Event
			var batch []*Subscription
			var took int
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h.Publish([]herald.Notification{{ID: int64(i + 1), Seq: uint64(i + 1), Type: "t", CreatedAt: now}})
				mu.Lock()
				batch, ready = ready, batch[:0]
				mu.Unlock()
				for _, s := range batch {
					buf, _ = s.Take(buf)
					took += len(buf)
				}
			}
			b.StopTimer()
			if took != b.N*n {
				b.Fatalf("took %d events, want %d", took, b.N*n)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
		})
	}
}
