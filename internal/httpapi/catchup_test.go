package httpapi

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/hub"
)

// TestSlots: the catch-up semaphore serves its waiters in order, hands a slot given up by a
// waiter that stopped waiting to the next one, and starts a waiting function only with a slot.
func TestSlots(t *testing.T) {
	s := newSlots(1)
	ctx := context.Background()
	if err := s.acquire(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var started atomic.Int32
	s.start(func() { started.Add(1) })
	if started.Load() != 0 {
		t.Fatal("a function started without a slot")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.acquire(cancelled, nil); err == nil {
		t.Fatal("acquire with a cancelled context succeeded without a free slot")
	}
	s.release() // to the waiting function, first in line
	if started.Load() != 1 {
		t.Fatal("the waiting function did not start with the released slot")
	}
	got := make(chan error, 1)
	done := make(chan struct{})
	go func() { got <- s.acquire(ctx, done) }()
	waitUntil(t, 5*time.Second, "the acquire to wait", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.waiting) == 1
	})
	s.release() // the function's slot, to the blocked acquire
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	s.release()
	if s.free != 1 || len(s.waiting) != 0 {
		t.Fatalf("%d free, %d waiting; want 1 and 0", s.free, len(s.waiting))
	}
}

// feedGate holds every Feed (a stream's catch-up read) until open is closed.
type feedGate struct {
	herald.Store
	open    chan struct{}
	reading atomic.Int32
}

func (g *feedGate) Feed(ctx context.Context, user string, after herald.Cursor, limit int) (herald.FeedPage, error) {
	g.reading.Add(1)
	defer g.reading.Add(-1)
	select {
	case <-g.open:
	case <-ctx.Done():
		return herald.FeedPage{}, ctx.Err()
	}
	return g.Store.Feed(ctx, user, after, limit)
}

// TestParkedCatchUpsStartWithinTheirBound: a burst that overflows every parked stream's buffer at
// once sends them all to the store, but at most catchUpSlots at a time, each with a goroutine
// started only with its slot; the others wait, and all catch up.
func TestParkedCatchUpsStartWithinTheirBound(t *testing.T) {
	if !parkSupported {
		t.Skip("streams are parked only on Linux")
	}
	const streams = 3 * catchUpSlots
	s := startStreamServer(t, hub.Options{BufferBytes: 8 << 10}, Options{})
	gate := &feedGate{Store: s.store, open: make(chan struct{})}
	s.api.opts.Store = gate
	counts := make([]func() int, streams)
	for i := range counts {
		counts[i] = s.readingClient(t, fmt.Sprintf("u%d", i), "big")
	}
	waitUntil(t, 10*time.Second, "every stream to be parked", func() bool { return s.parked() == streams })
	// Every client has yet to take a buffer's worth (as if its socket were slow): the next event
	// overflows every stream, however quickly the writers take it.
	for _, c := range s.parkedConns() {
		c.sub.Unwritten(8 << 10)
	}
	before := runtime.NumGoroutine()
	s.broadcast(t, 1, 1<<10)
	waitUntil(t, 10*time.Second, "every stream to want a catch-up", func() bool {
		return int(gate.reading.Load())+s.waitingCatchUps() == streams
	})
	if n := gate.reading.Load(); n != catchUpSlots {
		t.Fatalf("%d catch-ups read the store at once, want %d", n, catchUpSlots)
	}
	if started := runtime.NumGoroutine() - before; started > catchUpSlots {
		t.Fatalf("%d goroutines started for %d catch-ups, want at most %d", started, streams, catchUpSlots)
	}
	close(gate.open)
	for _, n := range counts {
		waitUntil(t, 10*time.Second, "every stream to catch up", func() bool { return n() == 1 })
	}
}

// parked counts the streams in the parker's shards.
func (s *streamServer) parked() int { return len(s.parkedConns()) }

// parkedConns are the streams in the parker's shards.
func (s *streamServer) parkedConns() []*conn {
	var all []*conn
	for _, sh := range s.api.parker.Load().shards {
		sh.mu.Lock()
		all = append(all, sh.all...)
		sh.mu.Unlock()
	}
	return all
}

// waitingCatchUps counts the catch-ups waiting for a slot.
func (s *streamServer) waitingCatchUps() int {
	s.api.catchUps.mu.Lock()
	defer s.api.catchUps.mu.Unlock()
	return len(s.api.catchUps.waiting)
}
