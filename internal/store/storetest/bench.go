package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
)

// BenchPublishTopic measures topic publishes to topics of 1,000, 10,000 and 100,000 subscribers:
// recipient rows committed per second, and the heap's peak above its level before the publish
// (sampled every millisecond, so a lower bound), as b.ReportMetric, and rows per second of the
// process's CPU time, which a shared machine's load changes less. open returns a fresh store.
func BenchPublishTopic(b *testing.B, open func(b *testing.B) herald.Store) {
	for _, size := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("subscribers=%d", size), func(b *testing.B) {
			s := open(b)
			ctx := context.Background()
			users := make([]string, size)
			for i := range users {
				users[i] = fmt.Sprintf("user-%06d", i)
			}
			for i := 0; i < size; i += 10_000 {
				if _, err := s.Subscribe(ctx, "bench", users[i:min(i+10_000, size)], herald.TopicLimits{}); err != nil {
					b.Fatal(err)
				}
			}
			d := []herald.Draft{{Topic: "bench", Type: "comment", Data: json.RawMessage(`{"text":"a new comment on issue 42"}`)}}
			runtime.GC()
			var base runtime.MemStats
			runtime.ReadMemStats(&base)
			peak := sampleHeap(b)
			rows := 0
			cpu := cpuTime()
			for b.Loop() {
				rs, err := s.Append(ctx, "bench", d)
				if err != nil {
					b.Fatal(err)
				}
				rows += rs[0].Recipients
			}
			// The process's CPU time (the heap sampler's, a few percent, included; on PostgreSQL
			// the server's excluded): the cost of a row however loaded the machine is.
			if cpu = cpuTime() - cpu; cpu > 0 {
				b.ReportMetric(float64(rows)/cpu.Seconds(), "rows/cpu-s")
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(peak()-base.HeapAlloc)/(1<<20), "peak-MiB")
		})
	}
}

// sampleHeap samples HeapAlloc until the returned function is called, which returns the peak.
func sampleHeap(b *testing.B) func() uint64 {
	var mu sync.Mutex
	var peak uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			mu.Lock()
			peak = max(peak, m.HeapAlloc)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	b.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-done
	})
	return func() uint64 {
		close(stop)
		<-done
		return peak
	}
}
