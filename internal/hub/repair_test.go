package hub

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/heraldhq/herald"
)

// gatedSource is a Source whose reads wait until the test answers them, so that a test decides
// exactly what happens while a repair is in flight.
type gatedSource struct {
	reads chan gatedRead
}

type gatedRead struct {
	stream string
	after  uint64
	limit  int
	answer chan []herald.Notification
}

func newGatedSource() *gatedSource { return &gatedSource{reads: make(chan gatedRead, 1024)} }

func (g *gatedSource) Stream(ctx context.Context, stream string, after uint64, limit int) ([]herald.Notification, error) {
	r := gatedRead{stream: stream, after: after, limit: limit, answer: make(chan []herald.Notification, 1)}
	g.reads <- r
	select {
	case ns := <-r.answer:
		return ns, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (g *gatedSource) StreamHeads(context.Context, []string) (map[string]uint64, error) {
	return nil, nil
}

// next returns the next read the hub makes, or fails the test after within.
func (g *gatedSource) next(t *testing.T, within time.Duration) gatedRead {
	t.Helper()
	select {
	case r := <-g.reads:
		return r
	case <-time.After(within):
		t.Fatalf("no store read within %v", within)
		return gatedRead{}
	}
}

// fakes are the notifications of stream from seq from to to.
func fakes(stream string, from, to uint64) []herald.Notification {
	var ns []herald.Notification
	for s := from; s <= to; s++ {
		ns = append(ns, fake(stream, s))
	}
	return ns
}

// broadcastRepairInFlight returns a hub whose broadcast stream has a repair waiting for the store
// (read returned), and whose last subscription has just left.
func broadcastRepairInFlight(t *testing.T) (*Hub, *gatedSource, gatedRead) {
	t.Helper()
	src := newGatedSource()
	h := newHub(t, Options{Source: src, GapTimeout: time.Millisecond})
	first := subscribe(t, h, "alice")
	first.Caught(herald.Cursor{}) // the broadcast stream is delivered from #1
	h.Publish(fakes(herald.BroadcastStream, 1, 1))
	h.Publish(fakes(herald.BroadcastStream, 3, 3)) // #2 is missing: the hub reads it
	read := src.next(t, waitFor)
	if read.stream != herald.BroadcastStream || read.after != 1 {
		t.Fatalf("repair read %q after %d, want the broadcast stream after 1", read.stream, read.after)
	}
	first.Close() // nobody listens to broadcasts here now: the stream starts afresh
	return h, src, read
}

// TestRepairOutlivingItsSubscribers: a repair still reading when the last subscription of its
// stream leaves must not act on the stream the next subscription finds. Its answer, about a
// position nobody holds any more, must not move the stream's position (back, below what the next
// subscription caught up to), and the stream must not stay marked as repairing: the next
// subscription's gaps are repaired at once, not after the stale read ends.
func TestRepairOutlivingItsSubscribers(t *testing.T) {
	t.Run("stale answer", func(t *testing.T) {
		h, _, stale := broadcastRepairInFlight(t)
		bob := subscribe(t, h, "bob")
		// The stale read answers while bob is still catching up from the store.
		stale.answer <- fakes(herald.BroadcastStream, 2, 2)
		h.wg.Wait() // the stale repair has done whatever it does
		bob.Caught(herald.Cursor{}.With(herald.BroadcastStream, 10))
		h.Publish(fakes(herald.BroadcastStream, 11, 11))
		if got := describe(take(bob)); !slices.Equal(got, []string{`""#11`}) {
			t.Fatalf("after catching up to #10 bob got %v, want #11 at once", got)
		}
	})
	t.Run("new gap while the stale read waits", func(t *testing.T) {
		h, src, stale := broadcastRepairInFlight(t)
		bob := subscribe(t, h, "bob")
		bob.Caught(herald.Cursor{}.With(herald.BroadcastStream, 10))
		h.Publish(fakes(herald.BroadcastStream, 13, 13)) // #11 and #12 are missing
		// The stale read can take up to its own timeout; this repair must not wait for it.
		read := src.next(t, 5*time.Second)
		if read.stream != herald.BroadcastStream || read.after != 10 {
			t.Fatalf("repair read %q after %d, want the broadcast stream after 10", read.stream, read.after)
		}
		read.answer <- fakes(herald.BroadcastStream, 11, 12)
		if got := seqs(collect(t, bob, 3), herald.BroadcastStream); !slices.Equal(got, []uint64{11, 12, 13}) {
			t.Fatalf("bob got %v, want [11 12 13]", got)
		}
		stale.answer <- fakes(herald.BroadcastStream, 2, 2)
		h.wg.Wait()
		h.Publish(fakes(herald.BroadcastStream, 14, 14))
		if got := describe(take(bob)); !slices.Equal(got, []string{`""#14`}) {
			t.Fatalf("after the stale read answered bob got %v, want #14 at once", got)
		}
	})
}

// headsSource is a gatedSource with stream heads to report.
type headsSource struct {
	*gatedSource
	heads map[string]uint64
}

func (s headsSource) StreamHeads(_ context.Context, streams []string) (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, k := range streams {
		if h, ok := s.heads[k]; ok {
			out[k] = h
		}
	}
	return out, nil
}

// TestRepairsStartWithinTheirBound: a resync that finds every stream behind (after a bus outage)
// reads the store a few streams at a time, and starts no more goroutines than it reads with:
// the rest wait in a queue, not as thousands of goroutines blocked on a semaphore.
func TestRepairsStartWithinTheirBound(t *testing.T) {
	const users, behind = 200, 3
	src := headsSource{newGatedSource(), map[string]uint64{}}
	h := newHub(t, Options{Source: src, GapTimeout: never})
	subs := make(map[string]*Subscription)
	for i := range users {
		user := "u" + strconv.Itoa(i)
		s := subscribe(t, h, user)
		s.Caught(herald.Cursor{})
		subs[user] = s
		src.heads[user] = behind
	}
	before := runtime.NumGoroutine()
	// The resync reads what every stream missed before it delivers any of it, merged in id
	// order: it returns once the reads are answered.
	resynced := make(chan error, 1)
	go func() { resynced <- h.Resync(context.Background(), true) }()
	for i := range users {
		r := src.next(t, waitFor)
		if i == 0 {
			// The reads started so far are blocked on their answers: the resync's own goroutine
			// and its readers are all there are.
			if started := runtime.NumGoroutine() - before - 1; started > repairReads {
				t.Fatalf("a resync of %d streams started %d goroutines, want at most %d", users, started, repairReads)
			}
		}
		if r.after != 0 || r.limit != behind {
			t.Fatalf("read %q after %d (limit %d), want after 0, limit %d", r.stream, r.after, r.limit, behind)
		}
		r.answer <- fakes(r.stream, 1, behind)
	}
	if err := <-resynced; err != nil {
		t.Fatal(err)
	}
	for user, s := range subs {
		if got := seqs(collect(t, s, behind), user); !slices.Equal(got, seqRange(1, behind)) {
			t.Fatalf("%s got %v, want %v", user, got, seqRange(1, behind))
		}
	}
}

// TestResyncMergesTheStreams: a resync without the barrier (the periodic one, or one after a
// failed publish) that finds both of a user's streams behind delivers what it read merged in id
// order, whichever read is answered first. Repaired stream by stream, the broadcast read first
// overtook the user's notification its publisher had sent before it.
func TestResyncMergesTheStreams(t *testing.T) {
	for _, lost := range []bool{true, false} {
		t.Run(fmt.Sprintf("lost=%v", lost), func(t *testing.T) {
			src := headsSource{newGatedSource(), map[string]uint64{"alice": 1, herald.BroadcastStream: 1}}
			h := newHub(t, Options{Source: src, GapTimeout: never})
			alice := subscribe(t, h, "alice")
			alice.Caught(herald.Cursor{})
			if !lost {
				// The periodic resync reads up to the heads the previous one saw.
				if err := h.Resync(context.Background(), false); err != nil {
					t.Fatal(err)
				}
			}
			resynced := make(chan error, 1)
			go func() { resynced <- h.Resync(context.Background(), lost) }()
			reads := map[string]gatedRead{}
			for range 2 {
				r := src.next(t, waitFor)
				reads[r.stream] = r
			}
			// alice's notification (id 1) was published before the broadcast (id 2).
			b := fake(herald.BroadcastStream, 1)
			b.ID = 2
			reads[herald.BroadcastStream].answer <- []herald.Notification{b}
			a := fake("alice", 1)
			a.ID = 1
			reads["alice"].answer <- []herald.Notification{a}
			if err := <-resynced; err != nil {
				t.Fatal(err)
			}
			if got := describe(collect(t, alice, 2)); !slices.Equal(got, []string{`"alice"#1`, `""#1`}) {
				t.Fatalf("alice got %v, want her notification, then the broadcast", got)
			}
		})
	}
}
