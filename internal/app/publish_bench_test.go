package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/testenv"
)

// Publish benchmarks go through the real HTTP API on loopback and the real SQLite store, so an
// op is what a publisher waits for: request, validation, durable commit, fan-out, 201.
func benchServer(b *testing.B, durability string) *server {
	return startServer(b, func(c *config.Config) {
		c.SQLiteSync = durability
		c.LogLevel = "error"
	})
}

func postBench(b *testing.B, client *http.Client, url string, body []byte) {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	// Read to EOF, or the transport closes the connection and the next request pays for a dial.
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// BenchmarkPublish: single notifications, sequentially and from 64 concurrent publishers.
func BenchmarkPublish(b *testing.B) {
	for _, durability := range []string{"full", "normal"} {
		for _, publishers := range []int{1, 64} {
			b.Run(fmt.Sprintf("sync=%s/publishers=%d", durability, publishers), func(b *testing.B) {
				benchPublish(b, benchServer(b, durability), publishers)
			})
		}
	}
}

// BenchmarkPublishPostgres: the same on the PostgreSQL store (a cluster node with its bus).
func BenchmarkPublishPostgres(b *testing.B) {
	for _, publishers := range []int{1, 64} {
		b.Run(fmt.Sprintf("publishers=%d", publishers), func(b *testing.B) {
			benchPublish(b, benchClusterNode(b), publishers)
		})
	}
}

func benchClusterNode(b *testing.B) *server {
	store, bus := testenv.Postgres(b), testenv.Redis(b)
	return startServer(b, func(c *config.Config) {
		c.Store, c.Bus, c.BusChannel = store, bus, testenv.Name("bench")
		c.LogLevel = "error"
	})
}

func benchPublish(b *testing.B, s *server, publishers int) {
	transport := &http.Transport{MaxIdleConnsPerHost: publishers}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	body := []byte(`{"to":["alice"],"type":"comment","data":{"text":"Bob commented on your post"}}`)
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1) - 1
				if n >= int64(b.N) {
					return
				}
				start := time.Now()
				postBench(b, client, s.url+"/v1/notifications", body)
				lat[n] = time.Since(start)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "acks/s")
	reportLatency(b, lat)
}

// BenchmarkPublishBatch: batches of 1000 notifications to 100 users, each one durable commit,
// from one publisher (each batch waits for the previous ack) and from four at once (decoding one
// batch overlaps committing another, as with a fleet of publishers).
func BenchmarkPublishBatch(b *testing.B) {
	for _, durability := range []string{"full", "normal"} {
		for _, publishers := range []int{1, 4} {
			b.Run(fmt.Sprintf("sync=%s/size=1000/publishers=%d", durability, publishers), func(b *testing.B) {
				benchBatch(b, benchServer(b, durability), publishers)
			})
		}
	}
}

// BenchmarkPublishBatchPostgres: the same on the PostgreSQL store.
func BenchmarkPublishBatchPostgres(b *testing.B) {
	for _, publishers := range []int{1, 4} {
		b.Run(fmt.Sprintf("size=1000/publishers=%d", publishers), func(b *testing.B) {
			benchBatch(b, benchClusterNode(b), publishers)
		})
	}
}

func benchBatch(b *testing.B, s *server, publishers int) {
	var buf bytes.Buffer
	buf.WriteString(`{"notifications":[`)
	for i := 0; i < 1000; i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"to":["user%d"],"type":"comment","data":{"n":%d}}`, i%100, i)
	}
	buf.WriteString(`]}`)
	body := buf.Bytes()
	transport := &http.Transport{MaxIdleConnsPerHost: publishers}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	b.SetBytes(int64(len(body)))
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				postBench(b, client, s.url+"/v1/notifications/batch", body)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "notifications/s")
}

// BenchmarkCrossNodeDelivery, on each bus: publish on node A at a steady 500 a second, subscribe
// on node B; an op is one notification, and the latency is from the publish request to the event
// reaching the subscriber over SSE (the timestamp travels in the data). Run with -benchtime 2000x.
func BenchmarkCrossNodeDelivery(b *testing.B) {
	for _, bus := range buses {
		b.Run("bus="+bus, func(b *testing.B) { benchCrossNode(b, bus) })
	}
}

func benchCrossNode(b *testing.B, busKind string) {
	store, bus, channel := testenv.Postgres(b), busURL(b, busKind), testenv.Name("bench")
	node := func() *server {
		return startServer(b, func(c *config.Config) {
			c.Store, c.Bus, c.BusChannel = store, bus, channel
			c.LogLevel = "error"
		})
	}
	a, bnode := node(), node()
	for _, s := range []*server{a, bnode} {
		waitFor(b, 10*time.Second, "the bus subscription", func() bool { return busReady(s) })
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, ch, err := bnode.openStream(ctx, "user=alice", "")
	if err != nil {
		b.Fatal(err)
	}
	<-ch // connected
	lat := make([]time.Duration, 0, b.N)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range ch {
			var d struct{ T int64 }
			if json.Unmarshal(ev.Env.Data, &d) == nil && d.T > 0 {
				lat = append(lat, time.Since(time.Unix(0, d.T)))
				if len(lat) == b.N {
					return
				}
			}
		}
	}()
	client := &http.Client{Transport: &http.Transport{}}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		<-tick.C
		postBench(b, client, a.url+"/v1/notifications", []byte(fmt.Sprintf(`{"to":["alice"],"type":"t","data":{"t":%d}}`, time.Now().UnixNano())))
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		b.Fatalf("%d of %d notifications reached node B", len(lat), b.N)
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
}
