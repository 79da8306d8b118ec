// Package bustest is the conformance suite every herald.Bus passes: the in-process bus and the
// real brokers are held to the same behaviour.
package bustest

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/bus"
)

// Cluster is what a bus under test gives the suite.
type Cluster struct {
	// A and B are two nodes of one cluster (one channel); Other is a node of another cluster
	// on the same broker. All are closed by the suite.
	A, B, Other herald.Bus
	// Cut breaks the connections of A and B to the broker, as an outage would; the buses must
	// reconnect by themselves.
	Cut func()
}

// Run runs the suite; open returns a fresh cluster for each subtest.
func Run(t *testing.T, open func(t *testing.T) Cluster) {
	tests := []struct {
		name string
		fn   func(t *testing.T, c Cluster)
	}{
		{"DeliversToEveryNode", testDelivers},
		{"SplitsLargeCommits", testLarge},
		{"LostBeforeFirstDelivery", testLostFirst},
		{"ClustersAreIsolated", testIsolated},
		{"RecoversFromOutage", testOutage},
		{"ListenStopsWithContext", testStops},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := open(t)
			t.Cleanup(func() {
				for _, b := range []herald.Bus{c.A, c.B, c.Other} {
					b.Close()
				}
			})
			tc.fn(t, c)
		})
	}
}

// recorder listens on a bus and keeps what arrives.
type recorder struct {
	mu     sync.Mutex
	got    map[int64]herald.Notification
	events []string // "lost" and "deliver", in order
	lost   chan struct{}
	stop   context.CancelFunc
	done   chan struct{}
}

func listen(t *testing.T, b herald.Bus) *recorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{got: map[int64]herald.Notification{}, lost: make(chan struct{}, 100), stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		b.Listen(ctx, func(msg []byte) {
			m, err := bus.Decode(msg)
			if err != nil {
				t.Errorf("a message that does not decode: %v", err)
				return
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			for _, n := range m.Notifications {
				r.got[n.ID] = n
			}
			r.events = append(r.events, "deliver")
		}, func() {
			r.mu.Lock()
			r.events = append(r.events, "lost")
			r.mu.Unlock()
			select {
			case r.lost <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("Listen did not return after its context ended")
		}
	})
	return r
}

// ready waits until the listener is subscribed (its first lost call).
func (r *recorder) ready(t *testing.T) {
	t.Helper()
	select {
	case <-r.lost:
	case <-time.After(10 * time.Second):
		t.Fatal("the listener did not report its subscription (a first call to lost)")
	}
}

func (r *recorder) has(ids ...int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if _, ok := r.got[id]; !ok {
			return false
		}
	}
	return true
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

var nextID = time.Now().UnixNano() / 1000 // ids no earlier test run used

func batch(n, size int) []herald.Notification {
	ns := make([]herald.Notification, n)
	for i := range ns {
		nextID++
		user := fmt.Sprintf("user-%d", i%5)
		if i%4 == 0 {
			user = herald.BroadcastStream
		}
		data := fmt.Sprintf(`{"i":%d,"pad":%q}`, i, strings.Repeat("x", size))
		ns[i] = herald.Notification{ID: nextID, User: user, Seq: uint64(i + 1), Type: "t.x",
			Data: json.RawMessage(data), CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
		if i%3 == 1 {
			ns[i].Content = &herald.Content{Title: fmt.Sprintf("n°%d <b>", i), Body: "a\nb", URL: "/n", Group: "g:1"}
		}
	}
	return ns
}

func ids(ns []herald.Notification) []int64 {
	out := make([]int64, len(ns))
	for i := range ns {
		out[i] = ns[i].ID
	}
	return out
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Origin is the store origin the suite's messages carry.
const Origin = "0123456789abcdef0123456789abcdef.5a3c01d2"

// publish sends ns as Herald does: in as many messages as bus.EncodeNotifications makes.
func publish(t *testing.T, b herald.Bus, ns []herald.Notification) {
	t.Helper()
	if err := publishErr(b, ns); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

func publishErr(b herald.Bus, ns []herald.Notification) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, m := range bus.EncodeNotifications(Origin, ns) {
		if err := b.Publish(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func testDelivers(t *testing.T, c Cluster) {
	ra, rb := listen(t, c.A), listen(t, c.B)
	ra.ready(t)
	rb.ready(t)
	var all []herald.Notification
	for i := 0; i < 20; i++ {
		ns := batch(1+i%3, 0)
		all = append(all, ns...)
		if i%2 == 0 {
			publish(t, c.A, ns)
		} else {
			publish(t, c.B, ns)
		}
	}
	for name, r := range map[string]*recorder{"A": ra, "B": rb} {
		eventually(t, 10*time.Second, name+" to receive every batch, its own included", func() bool { return r.has(ids(all)...) })
		for _, want := range all {
			got := r.got[want.ID]
			if got.User != want.User || got.Seq != want.Seq || got.Type != want.Type || string(got.Data) != string(want.Data) || !got.CreatedAt.Equal(want.CreatedAt) ||
				string(got.Content.AppendJSON(nil)) != string(want.Content.AppendJSON(nil)) {
				t.Fatalf("%s received %+v, want %+v", name, got, want)
			}
		}
	}
}

func testLarge(t *testing.T, c Cluster) {
	rb := listen(t, c.B)
	rb.ready(t)
	ns := batch(1000, 2000) // about 2 MB, in messages of bus.MaxMessage
	publish(t, c.A, ns)
	eventually(t, 20*time.Second, "all of a 2 MB commit", func() bool { return rb.has(ids(ns)...) })
	one := batch(1, bus.MaxMessage+1000) // a single message larger than that
	publish(t, c.A, one)
	eventually(t, 20*time.Second, "a message larger than bus.MaxMessage", func() bool { return rb.has(ids(one)...) })
}

func testLostFirst(t *testing.T, c Cluster) {
	rb := listen(t, c.B)
	rb.ready(t)
	publish(t, c.A, batch(2, 0))
	eventually(t, 10*time.Second, "a delivery", func() bool { return rb.count() == 2 })
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if rb.events[0] != "lost" {
		t.Fatalf("first events %v: lost must come before the first delivery", rb.events)
	}
}

func testIsolated(t *testing.T, c Cluster) {
	ro, rb := listen(t, c.Other), listen(t, c.B)
	ro.ready(t)
	rb.ready(t)
	ns := batch(3, 0)
	publish(t, c.A, ns)
	eventually(t, 10*time.Second, "B to receive", func() bool { return rb.has(ids(ns)...) })
	time.Sleep(100 * time.Millisecond)
	if ro.count() != 0 {
		t.Fatalf("a node of another cluster received %d notifications", ro.count())
	}
	publish(t, c.Other, batch(1, 0))
	eventually(t, 10*time.Second, "the other cluster's own message", func() bool { return ro.count() == 1 })
}

func testOutage(t *testing.T, c Cluster) {
	ra, rb := listen(t, c.A), listen(t, c.B)
	ra.ready(t)
	rb.ready(t)
	c.Cut()
	// Both report the possible loss once they are back.
	for name, r := range map[string]*recorder{"A": ra, "B": rb} {
		select {
		case <-r.lost:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s did not report lost messages after the outage", name)
		}
	}
	// And deliver again: publishes during the recovery may fail or be lost, so keep trying.
	var want []int64
	eventually(t, 20*time.Second, "delivery after the outage", func() bool {
		ns := batch(1, 0)
		if publishErr(c.A, ns) == nil {
			want = append(want, ns[0].ID)
		}
		time.Sleep(50 * time.Millisecond)
		return len(want) > 0 && rb.has(want[len(want)-1]) && ra.has(want[len(want)-1])
	})
}

func testStops(t *testing.T, c Cluster) {
	before := runtime.NumGoroutine()
	for i := 0; i < 5; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		lost := make(chan struct{}, 1)
		go func() {
			defer close(done)
			c.B.Listen(ctx, func([]byte) {}, func() {
				select {
				case lost <- struct{}{}:
				default:
				}
			})
		}()
		select {
		case <-lost:
		case <-time.After(10 * time.Second):
			t.Fatal("no subscription")
		}
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Listen did not return after its context ended")
		}
	}
	eventually(t, 10*time.Second, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= before+2 })
}

func testClose(t *testing.T, c Cluster) {
	ctx := context.Background()
	if err := c.A.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := c.A.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.A.Ping(ctx); herald.ErrorCode(err) != herald.EUNAVAILABLE {
		t.Fatalf("Ping after Close: %v, want %s", err, herald.EUNAVAILABLE)
	}
	if err := c.A.Publish(ctx, bus.EncodeNotifications(Origin, batch(1, 0))[0]); herald.ErrorCode(err) != herald.EUNAVAILABLE {
		t.Fatalf("Publish after Close: %v, want %s", err, herald.EUNAVAILABLE)
	}
	c.A.Close() // twice is harmless
}
