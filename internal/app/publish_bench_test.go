package app

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/config"
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
				s := benchServer(b, durability)
				transport := &http.Transport{MaxIdleConnsPerHost: publishers}
				defer transport.CloseIdleConnections()
				client := &http.Client{Transport: transport}
				body := []byte(`{"to":["alice"],"type":"comment","data":{"text":"Bob commented on your post"}}`)
				lat := make([]time.Duration, b.N)
				var next sync.Mutex
				i := 0
				b.ResetTimer()
				var wg sync.WaitGroup
				for p := 0; p < publishers; p++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							next.Lock()
							n := i
							i++
							next.Unlock()
							if n >= b.N {
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
			})
		}
	}
}

// BenchmarkPublishBatch: batches of 1000 notifications to 100 users, each one durable commit,
// from one publisher (each batch waits for the previous ack) and from four at once (decoding one
// batch overlaps committing another, as with a fleet of publishers).
func BenchmarkPublishBatch(b *testing.B) {
	for _, durability := range []string{"full", "normal"} {
		for _, publishers := range []int{1, 4} {
			b.Run(fmt.Sprintf("sync=%s/size=1000/publishers=%d", durability, publishers), func(b *testing.B) {
				s := benchServer(b, durability)
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
			})
		}
	}
}
