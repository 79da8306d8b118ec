package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
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

// BenchmarkPublishLargestBatch: the largest request the limits allow, and what it costs the
// server in memory at its peak. An op is one batch naming --max-request-recipients users, shaped
// wide (notifications of --max-recipients users each) or long (--max-batch notifications of
// fewer users), committed with --sqlite-sync normal. Before each op the heap is collected and
// returned to the OS, and the kernel's high-water mark of resident memory is reset; the op reports
// the most heap in use seen (sampled every 100 µs) and how far resident memory rose above where it
// started (VmHWM, Linux). The whole server is in this process (SQLite included), so both are the
// server's cost of the request, plus the client's few buffers.
//
// The sizes above the default limit show how the cost grows, to choose the limit by; run with
// -benchtime 3x (each op is seconds at the largest size).
func BenchmarkPublishLargestBatch(b *testing.B) {
	for _, recipients := range []int{10_000, config.Default().MaxRequestRecipients, 200_000} {
		for _, shape := range []string{"wide", "long"} {
			b.Run(fmt.Sprintf("recipients=%d/%s", recipients, shape), func(b *testing.B) {
				perItem, items := 1000, recipients/1000 // wide
				if shape == "long" {
					perItem, items = recipients/1000, 1000
				}
				s := startServer(b, func(c *config.Config) {
					c.SQLiteSync = "normal"
					c.LogLevel = "error"
					c.MaxRequestRecipients = max(recipients, c.MaxRequestRecipients)
					c.MaxPublishInflight = max(c.MaxPublishInflight, c.MaxRequestRecipients)
					c.MaxBatchBody = 64 << 20
				})
				benchLargest(b, s, items, perItem)
			})
		}
	}
}

func benchLargest(b *testing.B, s *server, items, perItem int) {
	var buf bytes.Buffer
	buf.WriteString(`{"notifications":[`)
	for i := 0; i < items; i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`{"type":"bulk","data":{"i":` + strconv.Itoa(i) + `},"to":[`)
		for j := 0; j < perItem; j++ {
			if j > 0 {
				buf.WriteByte(',')
			}
			// Distinct users throughout, as in the request: every row is a new stream.
			fmt.Fprintf(&buf, `"u-%d-%d"`, i, j)
		}
		buf.WriteString(`]}`)
	}
	buf.WriteString(`]}`)
	body := buf.Bytes()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	b.SetBytes(int64(len(body)))
	var peakHeap, peakRSS uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		debug.FreeOSMemory()
		os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // resets VmHWM to VmRSS
		startRSS := procStatus(b, "VmRSS")
		stop, heap := sampleHeap()
		b.StartTimer()
		postBench(b, client, s.url+"/v1/notifications/batch", body)
		b.StopTimer()
		peakHeap = max(peakHeap, heap(stop))
		if hwm := procStatus(b, "VmHWM"); hwm > startRSS {
			peakRSS = max(peakRSS, hwm-startRSS)
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(peakRSS)/(1<<20), "peak-rss-delta-MiB")
	b.ReportMetric(float64(items*perItem)*float64(b.N)/b.Elapsed().Seconds(), "notifications/s")
}

// sampleHeap samples the bytes of heap objects (live, or dead and not yet swept) until the
// returned stop is closed; the returned function then gives the most seen.
func sampleHeap() (chan struct{}, func(chan struct{}) uint64) {
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		t := time.NewTicker(100 * time.Microsecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-stop:
				done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return stop, func(stop chan struct{}) uint64 { close(stop); return <-done }
}

// procStatus reads a "kB" line of /proc/self/status, in bytes; 0 where there is none.
func procStatus(b *testing.B, name string) uint64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatalf("%s: %v", line, err)
			}
			return kb << 10
		}
	}
	return 0
}
