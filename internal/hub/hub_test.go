package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/sqlite"
)

// never is a GapTimeout no test outlives: with it, any delivery that needed a repair would not
// happen, so a test that passes proves the hub did not touch the store.
const never = time.Hour

// waitFor bounds every wait; tests poll or block on channels, never sleep a fixed time.
const waitFor = 10 * time.Second

func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "herald.db"), sqlite.Options{Sync: sqlite.SyncNormal})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return st
}

func newHub(t testing.TB, opts Options) *Hub {
	t.Helper()
	h := New(opts)
	t.Cleanup(h.Close)
	return h
}

// appendTo stores n notifications on stream (a user, or the broadcast stream) and returns them
// with the ids and sequence numbers the store gave them.
func appendTo(t testing.TB, st herald.Store, stream string, n int) []herald.Notification {
	t.Helper()
	drafts := make([]herald.Draft, n)
	for i := range drafts {
		drafts[i] = herald.Draft{Type: "test", Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}
		if stream == herald.BroadcastStream {
			drafts[i].Broadcast = true
		} else {
			drafts[i].To = []string{stream}
		}
	}
	receipts, err := st.Append(context.Background(), "test", drafts)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	var ns []herald.Notification
	for _, r := range receipts {
		ns = append(ns, r.Notifications...)
	}
	return ns
}

// fake is a notification the store never saw: a repair cannot produce it.
func fake(stream string, seq uint64) herald.Notification {
	return herald.Notification{ID: int64(seq), User: stream, Seq: seq, Type: "fake"}
}

func subscribe(t testing.TB, h *Hub, user string) *Subscription {
	t.Helper()
	s, err := h.Subscribe(user)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", user, err)
	}
	t.Cleanup(s.Close)
	return s
}

// take returns what is queued now, without waiting.
func take(s *Subscription) []*Event {
	evs, _ := s.Take(nil)
	return evs
}

// collect takes events until it holds at least n of them, or fails the test after waitFor.
func collect(t testing.TB, s *Subscription, n int) []*Event {
	t.Helper()
	var all []*Event
	deadline := time.NewTimer(waitFor)
	defer deadline.Stop()
	for {
		all = append(all, take(s)...)
		if len(all) >= n {
			return all
		}
		select {
		case <-s.Ready():
		case <-deadline.C:
			t.Fatalf("got %d events after %v, want %d: %v", len(all), waitFor, n, describe(all))
		}
	}
}

// seqs lists the sequence numbers of stream's events, in delivery order.
func seqs(evs []*Event, stream string) []uint64 {
	var out []uint64
	for _, ev := range evs {
		if ev.User == stream {
			out = append(out, ev.Seq)
		}
	}
	return out
}

func describe(evs []*Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = fmt.Sprintf("%q#%d", ev.User, ev.Seq)
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func pendingOf(h *Hub, stream string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st := h.streams[stream]; st != nil {
		return len(st.pending)
	}
	return -1
}

func TestRouting(t *testing.T) {
	store := openStore(t)
	h := newHub(t, Options{Source: store, GapTimeout: never})
	alice1, alice2 := subscribe(t, h, "alice"), subscribe(t, h, "alice")
	bob := subscribe(t, h, "bob")

	toAlice := appendTo(t, store, "alice", 1)
	toBob := appendTo(t, store, "bob", 1)
	toCarol := appendTo(t, store, "carol", 1) // nobody here listens to carol
	toAll := appendTo(t, store, herald.BroadcastStream, 1)
	h.Publish(slices.Concat(toAlice, toBob, toCarol, toAll))

	tests := []struct {
		name string
		sub  *Subscription
		want []int64 // notification ids, in order
	}{
		{"alice first", alice1, []int64{toAlice[0].ID, toAll[0].ID}},
		{"alice second", alice2, []int64{toAlice[0].ID, toAll[0].ID}},
		{"bob", bob, []int64{toBob[0].ID, toAll[0].ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Publish queues synchronously: no wait is needed for in-order events.
			evs := take(tt.sub)
			var ids []int64
			for _, ev := range evs {
				ids = append(ids, ev.ID)
				if ev.User != tt.sub.User && ev.User != herald.BroadcastStream {
					t.Errorf("%s received %q's notification", tt.sub.User, ev.User)
				}
			}
			if !slices.Equal(ids, tt.want) {
				t.Fatalf("ids %v, want %v", ids, tt.want)
			}
		})
	}
	t.Run("shared event", func(t *testing.T) {
		h.Publish(appendTo(t, store, herald.BroadcastStream, 1))
		a, b := take(alice1), take(bob)
		if len(a) != 1 || len(b) != 1 || a[0] != b[0] {
			t.Fatalf("a broadcast should be one *Event shared by all: %v %v", describe(a), describe(b))
		}
		calls := 0
		enc := func(n *herald.Notification, named bool) []byte {
			calls++
			return []byte(n.Type + strconv.FormatBool(named))
		}
		if string(a[0].Frame(true, enc)) != "testtrue" || string(b[0].Frame(true, enc)) != "testtrue" || calls != 1 {
			t.Fatalf("Frame encoded %d times, want once", calls)
		}
		if string(a[0].Frame(false, enc)) != "testfalse" || string(b[0].Frame(false, enc)) != "testfalse" || calls != 2 {
			t.Fatalf("unnamed Frame encoded %d times in all, want twice", calls)
		}
	})
	t.Run("no stream for users without subscriptions", func(t *testing.T) {
		h.mu.Lock()
		_, ok := h.streams["carol"]
		h.mu.Unlock()
		if ok {
			t.Fatal("publishing to carol created a stream")
		}
	})
}

func TestOrderWithoutStore(t *testing.T) {
	tests := []struct {
		name    string
		publish [][]uint64 // one Publish call per element
		want    []uint64
	}{
		{"in order", [][]uint64{{1}, {2}, {3}}, []uint64{1, 2, 3}},
		{"two then one after baseline", [][]uint64{{1}, {3}, {2}}, []uint64{1, 2, 3}},
		{"reversed in one call", [][]uint64{{1}, {5, 4, 3, 2}}, []uint64{1, 2, 3, 4, 5}},
		{"reversed in separate calls", [][]uint64{{10}, {14}, {13}, {12}, {11}}, []uint64{10, 11, 12, 13, 14}},
		{"interleaved holes", [][]uint64{{1}, {4}, {2}, {6}, {3}, {5}}, seqRange(1, 6)},
		{"duplicates", [][]uint64{{1}, {1}, {2, 2}, {1}, {2}, {3}}, []uint64{1, 2, 3}},
		{"duplicate while pending", [][]uint64{{1}, {3}, {3}, {4}, {3}, {2}, {4}}, []uint64{1, 2, 3, 4}},
		// The first event a stream sees is its baseline: the hub cannot know whether earlier
		// numbers are still coming or were committed before anyone subscribed. The subscriber
		// compares with its own cursor and reads the store for what it lacks.
		{"baseline is the first event", [][]uint64{{2}, {1}, {3}}, []uint64{2, 3}},
	}
	for _, stream := range []string{"alice", herald.BroadcastStream} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%q/%s", stream, tt.name), func(t *testing.T) {
				// The store is empty: had the hub repaired instead of waiting, events would be lost.
				h := newHub(t, Options{Source: openStore(t), GapTimeout: never})
				sub := subscribe(t, h, "alice")
				for _, call := range tt.publish {
					var ns []herald.Notification
					for _, seq := range call {
						ns = append(ns, fake(stream, seq))
					}
					h.Publish(ns)
				}
				if got := seqs(take(sub), stream); !slices.Equal(got, tt.want) {
					t.Fatalf("delivered %v, want %v", got, tt.want)
				}
				if r := h.Stats().Repairs; r != 0 {
					t.Fatalf("%d repairs, want none", r)
				}
				if p := pendingOf(h, stream); p != 0 {
					t.Fatalf("%d events still pending", p)
				}
			})
		}
	}
}

func TestGapRepairedFromStore(t *testing.T) {
	tests := []struct {
		name    string
		stored  int
		publish []int // indexes into the stored notifications (seq-1), one Publish each
		want    []uint64
	}{
		{"one missing", 3, []int{0, 2}, []uint64{1, 2, 3}},
		{"several missing", 6, []int{0, 5}, seqRange(1, 6)},
		{"two holes", 5, []int{0, 2, 4}, seqRange(1, 5)},
		{"holes and late arrivals", 8, []int{0, 3, 7, 5}, seqRange(1, 8)},
		{"hole after a repaired hole", 7, []int{0, 4, 6}, seqRange(1, 7)},
	}
	for _, stream := range []string{"alice", herald.BroadcastStream} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%q/%s", stream, tt.name), func(t *testing.T) {
				store := openStore(t)
				h := newHub(t, Options{Source: store, GapTimeout: 20 * time.Millisecond})
				sub := subscribe(t, h, "alice")
				stored := appendTo(t, store, stream, tt.stored)
				for _, i := range tt.publish {
					h.Publish(stored[i : i+1])
				}
				evs := collect(t, sub, len(tt.want))
				h.Close() // waits for repairs: nothing more can arrive
				evs = append(evs, take(sub)...)
				if got := seqs(evs, stream); !slices.Equal(got, tt.want) {
					t.Fatalf("delivered %v, want %v", got, tt.want)
				}
				for _, ev := range evs {
					n := stored[ev.Seq-1]
					if ev.ID != n.ID || ev.Type != n.Type || string(ev.Data) != string(n.Data) {
						t.Fatalf("event #%d is %+v, want the stored %+v", ev.Seq, ev.Notification, n)
					}
				}
				if h.Stats().Repairs == 0 {
					t.Fatal("no repair counted")
				}
			})
		}
	}
}

func TestGapGoneFromStoreIsSkipped(t *testing.T) {
	tests := []struct {
		name    string
		stored  int
		keep    int   // retention: newest notifications kept per stream
		publish []int // indexes into the stored notifications, one Publish each
		want    []uint64
	}{
		{"whole gap pruned", 5, 2, []int{0, 3, 4}, []uint64{1, 4, 5}},
		{"gap partly pruned", 6, 4, []int{0, 4, 5}, []uint64{1, 3, 4, 5, 6}},
	}
	for _, stream := range []string{"alice", herald.BroadcastStream} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%q/%s", stream, tt.name), func(t *testing.T) {
				store := openStore(t)
				h := newHub(t, Options{Source: store, GapTimeout: 20 * time.Millisecond})
				sub := subscribe(t, h, "alice")
				stored := appendTo(t, store, stream, tt.stored)
				if _, err := store.Prune(context.Background(), herald.Retention{MaxPerStream: tt.keep}); err != nil {
					t.Fatalf("prune: %v", err)
				}
				for _, i := range tt.publish {
					h.Publish(stored[i : i+1])
				}
				evs := collect(t, sub, len(tt.want))
				h.Close()
				evs = append(evs, take(sub)...)
				if got := seqs(evs, stream); !slices.Equal(got, tt.want) {
					t.Fatalf("delivered %v, want %v", got, tt.want)
				}
			})
		}
	}
}

func TestTooManyPendingRepairsAtOnce(t *testing.T) {
	store := openStore(t)
	h := newHub(t, Options{Source: store, GapTimeout: never, QueueSize: 2 * maxPending})
	sub := subscribe(t, h, "alice")
	stored := appendTo(t, store, "alice", maxPending+4)
	h.Publish(stored[:1])
	// seq 2 never comes; one more pending event than the hub holds makes it repair without
	// waiting out GapTimeout.
	h.Publish(stored[2 : maxPending+3])
	want := seqRange(1, maxPending+3)
	evs := collect(t, sub, len(want))
	if got := seqs(evs, "alice"); !slices.Equal(got, want) {
		t.Fatalf("delivered %d events, want %d in order", len(got), len(want))
	}
	// One for the gap, and one for the event that did not fit among the pending ones.
	if r := h.Stats().Repairs; r < 1 || r > 2 {
		t.Fatalf("%d repairs, want 1 or 2", r)
	}
}

// TestOverflow: a queue bounded in events drops what it holds when one more comes (the owner
// reads the store then, and a client that stopped reading pins nothing), and goes on afresh
// once the owner has taken the overflow.
func TestOverflow(t *testing.T) {
	tests := []struct {
		name     string
		queue    int
		publish  int
		overflow bool
	}{
		{"fits", 4, 4, false},
		{"one too many", 4, 5, true},
		{"ten into four", 4, 10, true},
		{"queue of one", 1, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHub(t, Options{Source: openStore(t), GapTimeout: never, QueueSize: tt.queue})
			sub := subscribe(t, h, "alice")
			calm := subscribe(t, h, "bob") // another user's subscription is not affected
			var dropped atomic.Int64
			sub.OnOverflow(func() { dropped.Add(1) })
			for seq := uint64(1); seq <= uint64(tt.publish); seq++ {
				h.Publish([]herald.Notification{fake("alice", seq)})
			}
			evs, overflowed := sub.Take(nil)
			var want []uint64
			if !tt.overflow {
				want = seqRange(1, uint64(tt.publish))
			}
			if got := seqs(evs, "alice"); !slices.Equal(got, want) {
				t.Fatalf("took %v, want %v", got, want)
			}
			if overflowed != tt.overflow {
				t.Fatalf("overflowed = %v, want %v", overflowed, tt.overflow)
			}
			if d := dropped.Load(); d != int64(max(tt.publish-tt.queue, 0)) {
				t.Fatalf("OnOverflow called %d times, want %d", d, tt.publish-tt.queue)
			}
			wantOverflows := int64(0)
			if tt.overflow {
				wantOverflows = 1
			}
			if o := h.Stats().Overflows; o != wantOverflows {
				t.Fatalf("Stats().Overflows = %d, want %d", o, wantOverflows)
			}
			evs, overflowed = sub.Take(evs)
			if len(evs) != 0 || overflowed {
				t.Fatalf("second Take = %v, %v; want nothing, false", describe(evs), overflowed)
			}
			// The stream goes on after the overflow.
			next := uint64(tt.publish + 1)
			h.Publish([]herald.Notification{fake("alice", next)})
			evs, overflowed = sub.Take(evs)
			if got := seqs(evs, "alice"); !slices.Equal(got, []uint64{next}) || overflowed {
				t.Fatalf("after overflow took %v, %v; want [%d], false", got, overflowed, next)
			}
			if evs, overflowed := calm.Take(nil); len(evs) != 0 || overflowed {
				t.Fatalf("bob's subscription got %v, %v", describe(evs), overflowed)
			}
		})
	}
}

func TestStats(t *testing.T) {
	store := openStore(t)
	h := newHub(t, Options{Source: store, GapTimeout: 10 * time.Millisecond, QueueSize: 2})
	if s := h.Stats(); s != (Stats{}) {
		t.Fatalf("new hub Stats() = %+v", s)
	}
	a := subscribe(t, h, "alice")
	b := subscribe(t, h, "bob")
	subscribe(t, h, "bob")
	if n := h.Stats().Subscriptions; n != 3 {
		t.Fatalf("Subscriptions = %d, want 3", n)
	}
	b.Close()
	b.Close() // idempotent
	if n := h.Stats().Subscriptions; n != 2 {
		t.Fatalf("Subscriptions after Close = %d, want 2", n)
	}

	stored := appendTo(t, store, "alice", 3)
	h.Publish(stored[0:1])
	h.Publish(stored[2:3])
	// Nobody takes: the queue holds #1, then the repaired #2, and #3 overflows it.
	deadline := time.Now().Add(waitFor)
	for h.Stats().Overflows == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no overflow after %v: %+v", waitFor, h.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if s := h.Stats(); s.Repairs != 1 || s.Overflows != 1 {
		t.Fatalf("Stats() = %+v, want 1 repair and 1 overflow", s)
	}
	evs, overflowed := a.Take(nil)
	if len(evs) != 0 || !overflowed {
		t.Fatalf("Take = %v, %v; want nothing (dropped), true", describe(evs), overflowed)
	}
}

func TestMaxPerUser(t *testing.T) {
	h := newHub(t, Options{Source: openStore(t), MaxPerUser: 2})
	a1 := subscribe(t, h, "alice")
	subscribe(t, h, "alice")

	steps := []struct {
		name     string
		before   func()
		user     string
		wantCode string
	}{
		{"third is refused", nil, "alice", herald.ERATELIMITED},
		{"other user is not limited", nil, "bob", ""},
		{"a closed one frees its slot", a1.Close, "alice", ""},
		{"closing twice frees nothing more", a1.Close, "alice", herald.ERATELIMITED},
	}
	parent := t
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			if step.before != nil {
				step.before()
			}
			s, err := h.Subscribe(step.user)
			if got := herald.ErrorCode(err); got != step.wantCode {
				t.Fatalf("Subscribe(%q): code %q (%v), want %q", step.user, got, err, step.wantCode)
			}
			if err == nil {
				parent.Cleanup(s.Close) // open for the later steps
			} else if s != nil {
				t.Fatal("refused Subscribe returned a subscription")
			}
		})
	}
	if n := h.Stats().Subscriptions; n != 3 {
		t.Fatalf("Subscriptions = %d, want 3 (alice 2, bob 1)", n)
	}
}

func TestSubscribeRejectsBroadcastKey(t *testing.T) {
	h := newHub(t, Options{Source: openStore(t), GapTimeout: never})
	if s, err := h.Subscribe(herald.BroadcastStream); err == nil {
		s.Close()
		t.Errorf("Subscribe(%q) succeeded", herald.BroadcastStream)
	} else if code := herald.ErrorCode(err); code != herald.EINVALID {
		t.Errorf("code %q, want %q", code, herald.EINVALID)
	}
	// Whatever happened, broadcasts must still reach everyone.
	sub := subscribe(t, h, "alice")
	h.Publish([]herald.Notification{fake(herald.BroadcastStream, 1)})
	if got := seqs(take(sub), herald.BroadcastStream); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("broadcast delivered %v, want [1]", got)
	}
}

func TestSubscriptionClose(t *testing.T) {
	h := newHub(t, Options{Source: openStore(t), GapTimeout: never})
	sub := subscribe(t, h, "alice")
	other := subscribe(t, h, "alice")
	sub.Close()
	select {
	case <-sub.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if r := sub.Reason(); r != Closed {
		t.Fatalf("Reason() = %v, want closed", r)
	}
	h.Publish([]herald.Notification{fake("alice", 1), fake(herald.BroadcastStream, 1)})
	if evs := take(sub); len(evs) != 0 {
		t.Fatalf("closed subscription received %v", describe(evs))
	}
	if evs := take(other); len(evs) != 2 {
		t.Fatalf("open subscription received %v, want 2 events", describe(evs))
	}
	select {
	case <-other.Done():
		t.Fatal("closing one subscription ended another")
	default:
	}
}

func TestHubClose(t *testing.T) {
	store := openStore(t)
	h := New(Options{Source: store, GapTimeout: never})
	subs := []*Subscription{subscribe(t, h, "alice"), subscribe(t, h, "alice"), subscribe(t, h, "bob")}
	// A stream waiting for a gap when the hub closes.
	h.Publish([]herald.Notification{fake("alice", 1), fake("alice", 3)})
	h.Close()

	for i, s := range subs {
		t.Run(fmt.Sprintf("subscription %d", i), func(t *testing.T) {
			select {
			case <-s.Done():
			case <-time.After(waitFor):
				t.Fatal("Done not closed by hub Close")
			}
			if r := s.Reason(); r != Shutdown {
				t.Fatalf("Reason() = %v, want %v", r, Shutdown)
			}
			s.Close() // after the hub closed: fine, and the reason stays
			if r := s.Reason(); r != Shutdown {
				t.Fatalf("Reason() after Close = %v, want %v", r, Shutdown)
			}
		})
	}
	t.Run("subscribe refused", func(t *testing.T) {
		s, err := h.Subscribe("carol")
		if code := herald.ErrorCode(err); code != herald.EUNAVAILABLE || s != nil {
			t.Fatalf("Subscribe after Close = %v, %v; want %s", s, err, herald.EUNAVAILABLE)
		}
	})
	t.Run("publish ignored", func(t *testing.T) {
		take(subs[2])
		h.Publish([]herald.Notification{fake("bob", 1), fake(herald.BroadcastStream, 1)})
		if evs := take(subs[2]); len(evs) != 0 {
			t.Fatalf("delivered after Close: %v", describe(evs))
		}
	})
	t.Run("close twice", func(t *testing.T) {
		h.Close()
	})
	if h.Stats().Repairs != 0 {
		t.Fatal("a repair ran despite GapTimeout never")
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	store := openStore(t)
	appendTo(t, store, "warmup", 1)
	if _, err := store.Stream(context.Background(), "warmup", 0, 1); err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()

	h := New(Options{Source: store, GapTimeout: 5 * time.Millisecond})
	var subs []*Subscription
	for i := range 20 {
		s, err := h.Subscribe(fmt.Sprintf("user%d", i%5))
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	// Gaps on every stream, so repairs run.
	for i := range 5 {
		stored := appendTo(t, store, fmt.Sprintf("user%d", i), 3)
		h.Publish([]herald.Notification{stored[0], stored[2]})
	}
	bstored := appendTo(t, store, herald.BroadcastStream, 3)
	h.Publish([]herald.Notification{bstored[0], bstored[2]})
	for _, s := range subs {
		collect(t, s, 6)
	}
	// A gap still waiting (its timer armed) when everything closes.
	h.Publish([]herald.Notification{fake("user0", 10)})
	for _, s := range subs[:10] {
		s.Close()
	}
	h.Close()
	for _, s := range subs[10:] {
		s.Close()
	}

	deadline := time.Now().Add(waitFor)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before the hub:\n%s", n, base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStreamForgottenAfterLastSubscription(t *testing.T) {
	h := newHub(t, Options{Source: openStore(t), GapTimeout: never})
	s1, s2 := subscribe(t, h, "alice"), subscribe(t, h, "alice")
	h.Publish([]herald.Notification{fake("alice", 1), fake("alice", 2), fake("alice", 4)}) // #4 waits for #3
	h.Publish([]herald.Notification{fake(herald.BroadcastStream, 1)})

	s1.Close()
	if p := pendingOf(h, "alice"); p != 1 {
		t.Fatalf("stream state dropped while a subscription remains (pending %d)", p)
	}
	s2.Close()
	if p := pendingOf(h, "alice"); p != -1 {
		t.Fatalf("alice's stream is still known after its last subscription closed (pending %d)", p)
	}
	if p := pendingOf(h, herald.BroadcastStream); p != 0 {
		t.Fatal("the broadcast stream must outlive its subscriptions")
	}

	s3 := subscribe(t, h, "alice")
	// A fresh stream takes #7 as its baseline instead of waiting for #3.
	h.Publish([]herald.Notification{fake("alice", 7), fake(herald.BroadcastStream, 2)})
	evs := take(s3)
	if got := seqs(evs, "alice"); !slices.Equal(got, []uint64{7}) {
		t.Fatalf("re-subscribed stream delivered %v, want [7]", got)
	}
	if got := seqs(evs, herald.BroadcastStream); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("broadcast delivered %v, want [2]", got)
	}
}

func TestConcurrentPublish(t *testing.T) {
	tests := []struct {
		name string
		// shuffled: every notification is appended first, then all are published in random order
		// by many goroutines. Otherwise each appender publishes its receipt as soon as Append
		// returns, racing the others.
		shuffled bool
		// trickle: the shuffled publishers pause up to this long between calls, so gaps time out
		// and repairs run while the events they wait for are still on their way.
		trickle time.Duration
	}{
		{"shuffled after append", true, 0},
		{"shuffled and trickled", true, 3 * time.Millisecond},
		{"published on return", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const (
				users       = 4
				subsPerUser = 3
				writers     = 8
				perWriter   = 40
			)
			store := openStore(t)
			h := newHub(t, Options{Source: store, GapTimeout: 2 * time.Millisecond, QueueSize: 1 << 14})
			name := func(i int) string { return fmt.Sprintf("user%d", i) }
			var subs []*Subscription
			for i := range users * subsPerUser {
				subs = append(subs, subscribe(t, h, name(i%users)))
			}
			// Seq 1 of every stream goes first: it is each stream's baseline in the hub.
			h.Publish(appendTo(t, store, herald.BroadcastStream, 1))
			for i := range users {
				h.Publish(appendTo(t, store, name(i), 1))
			}

			var (
				mu  sync.Mutex
				all []herald.Notification
				wg  sync.WaitGroup
			)
			for w := range writers {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 1))
					for range perWriter {
						var d herald.Draft
						switch k := rng.IntN(users + 2); {
						case k == users:
							d = herald.Draft{Broadcast: true, Type: "b"}
						case k == users+1:
							d = herald.Draft{To: []string{name(rng.IntN(users)), name(rng.IntN(users))}, Type: "m"}
							if d.To[0] == d.To[1] {
								d.To = d.To[:1]
							}
						default:
							d = herald.Draft{To: []string{name(k)}, Type: "u"}
						}
						d.Data = json.RawMessage(`{}`)
						receipts, err := store.Append(context.Background(), "test", []herald.Draft{d})
						if err != nil {
							t.Errorf("append: %v", err)
							return
						}
						ns := receipts[0].Notifications
						if !tt.shuffled {
							h.Publish(ns)
						}
						mu.Lock()
						all = append(all, ns...)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if tt.shuffled {
				rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
				var next atomic.Int64
				for range writers {
					wg.Go(func() {
						for {
							i := int(next.Add(3)) - 3
							if i >= len(all) {
								return
							}
							h.Publish(all[i:min(i+3, len(all))])
							if tt.trickle > 0 {
								time.Sleep(rand.N(tt.trickle))
							}
						}
					})
				}
				wg.Wait()
			}

			// What each stream holds, from the store itself.
			heads := map[string]uint64{}
			ids := map[string]map[uint64]int64{}
			for _, stream := range append([]string{herald.BroadcastStream}, name(0), name(1), name(2), name(3)) {
				ns, err := store.Stream(context.Background(), stream, 0, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				heads[stream] = uint64(len(ns))
				ids[stream] = map[uint64]int64{}
				for _, n := range ns {
					ids[stream][n.Seq] = n.ID
				}
			}

			for i, sub := range subs {
				if t.Failed() {
					break // one subscription's report is enough; each would wait out waitFor
				}
				t.Run(fmt.Sprintf("sub%d", i), func(t *testing.T) {
					want := int(heads[sub.User] + heads[herald.BroadcastStream])
					evs := collect(t, sub, want)
					if len(evs) != want {
						t.Fatalf("got %d events, want %d", len(evs), want)
					}
					for _, stream := range []string{sub.User, herald.BroadcastStream} {
						got := seqs(evs, stream)
						if !slices.Equal(got, seqRange(1, heads[stream])) {
							t.Fatalf("stream %q delivered %v, want 1..%d exactly once in order", stream, got, heads[stream])
						}
					}
					for _, ev := range evs {
						if ev.ID != ids[ev.User][ev.Seq] {
							t.Fatalf("%q#%d has id %d, the store says %d", ev.User, ev.Seq, ev.ID, ids[ev.User][ev.Seq])
						}
					}
				})
			}
			h.Close() // no repair in flight can add anything now
			for _, sub := range subs {
				if evs := take(sub); len(evs) != 0 {
					t.Fatalf("late events: %v", describe(evs))
				}
			}
		})
	}
}

func TestMaxTotal(t *testing.T) {
	h := newHub(t, Options{Source: openStore(t), MaxTotal: 2})
	a := subscribe(t, h, "alice")
	subscribe(t, h, "bob")
	if s, err := h.Subscribe("carol"); herald.ErrorCode(err) != herald.EUNAVAILABLE || s != nil {
		t.Fatalf("third subscription: %v, %v; want %q", s, err, herald.EUNAVAILABLE)
	}
	a.Close()
	c, err := h.Subscribe("carol")
	if err != nil {
		t.Fatalf("after a close: %v", err)
	}
	c.Close()
}

// TestDrain: new subscriptions are refused at once; open ones end one by one at moments spread
// over the window, keep receiving events until then, and the drain is done when the last closes.
func TestDrain(t *testing.T) {
	st := openStore(t)
	h := newHub(t, Options{Source: st})
	const n = 200
	// Long enough that a busy machine's stalls (a few hundred ms under -race and load) do not
	// bunch the closes or push the last one far past it: the bounds below are a fraction of it.
	window := 2 * time.Second
	subs := make([]*Subscription, n)
	for i := range subs {
		subs[i] = subscribe(t, h, fmt.Sprintf("u%d", i))
	}
	start := time.Now()
	done := h.Drain(window)
	if !h.Draining() {
		t.Fatal("Draining() is false")
	}
	if _, err := h.Subscribe("late"); herald.ErrorCode(err) != herald.EUNAVAILABLE {
		t.Fatalf("Subscribe while draining: %v", err)
	}
	// Still live until its moment: a broadcast reaches the subscriptions not yet ended.
	h.Publish(appendTo(t, st, herald.BroadcastStream, 1))
	live := 0
	for _, s := range subs {
		if len(take(s)) == 1 {
			live++
		}
	}
	if live < n/2 {
		t.Errorf("only %d of %d subscriptions got an event right after Drain began", live, n)
	}
	ends := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-s.Done()
			ends[i] = time.Since(start)
			if s.Reason() != Drain {
				t.Errorf("reason %v", s.Reason())
			}
			s.Close()
		}()
	}
	wg.Wait()
	slices.Sort(ends)
	// Spread, not all at once: the middle half spans at least a third of the window.
	if spread := ends[3*n/4] - ends[n/4]; spread < window/3 {
		t.Errorf("the middle half of the closes spans %s of a %s window", spread, window)
	}
	if last := ends[n-1]; last > 2*window {
		t.Errorf("the last close came %s after Drain, window %s", last, window)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not report done after every subscription closed")
	}
	if again := h.Drain(window); again == nil {
		t.Fatal("second Drain returned nil")
	} else {
		<-again
	}
}

func TestDrainEmptyAndClose(t *testing.T) {
	h := newHub(t, Options{})
	select {
	case <-h.Drain(time.Hour):
	case <-time.After(time.Second):
		t.Fatal("draining an empty hub is not done at once")
	}
	h2 := newHub(t, Options{})
	s := subscribe(t, h2, "alice")
	h2.Drain(time.Hour)
	h2.Close() // stops the drain's timers; the subscription ends as a shutdown
	<-s.Done()
	if s.Reason() != Shutdown {
		t.Fatalf("reason %v", s.Reason())
	}
}

// TestResync: what the store holds beyond what the hub has seen (a message the bus lost, a node
// killed between its commit and its publish) is delivered, in order, by Resync.
func TestResync(t *testing.T) {
	tests := []struct {
		name   string
		seen   int // published to the hub
		behind int // stored but never published
	}{
		{"lost tail", 3, 2},
		{"nothing seen, caught up at subscription", 0, 3},
		{"far behind: several reads", 1, repairLimit*2 + 5},
		{"nothing lost", 4, 0},
	}
	for _, stream := range []string{"alice", herald.BroadcastStream} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%q/%s", stream, tt.name), func(t *testing.T) {
				store := openStore(t)
				h := newHub(t, Options{Source: store, QueueSize: 4 * repairLimit})
				sub := subscribe(t, h, "alice")
				seen := appendTo(t, store, stream, tt.seen)
				if tt.seen > 0 {
					h.Publish(seen)
					collect(t, sub, tt.seen)
				} else {
					sub.Caught(herald.Cursor{}) // the owner caught up to nothing
				}
				appendTo(t, store, stream, tt.behind)
				if err := h.Resync(context.Background(), true); err != nil {
					t.Fatal(err)
				}
				if tt.behind == 0 {
					time.Sleep(50 * time.Millisecond)
					if evs := take(sub); len(evs) != 0 {
						t.Fatalf("Resync delivered %v with nothing lost", describe(evs))
					}
					return
				}
				evs := collect(t, sub, tt.behind)
				var want []uint64
				for i := tt.seen + 1; i <= tt.seen+tt.behind; i++ {
					want = append(want, uint64(i))
				}
				if got := seqs(evs, stream); !slices.Equal(got, want) {
					t.Fatalf("resync delivered %d events %v…, want %d from %d", len(got), got[:min(len(got), 5)], len(want), tt.seen+1)
				}
			})
		}
	}
}

// TestResyncSkipsStreamsStillCatchingUp: a subscription that has neither received an event nor
// reported its catch-up gives the hub no position to compare with; Resync leaves it alone.
func TestResyncSkipsStreamsStillCatchingUp(t *testing.T) {
	store := openStore(t)
	h := newHub(t, Options{Source: store})
	sub := subscribe(t, h, "alice")
	appendTo(t, store, "alice", 2)
	if err := h.Resync(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if evs := take(sub); len(evs) != 0 {
		t.Fatalf("Resync delivered %v to a stream with no known position", describe(evs))
	}
}

// TestOrderAcrossStreams: while a user's stream waits for a missing event, broadcasts committed
// after the waiting events are held back for that user (and only for that user), so that a
// publisher's unicast and its later broadcast reach the client in that order.
func TestOrderAcrossStreams(t *testing.T) {
	store := openStore(t)
	h := newHub(t, Options{Source: store, GapTimeout: time.Minute})
	alice, bob := subscribe(t, h, "alice"), subscribe(t, h, "bob")
	a := appendTo(t, store, "alice", 3)
	older := appendTo(t, store, herald.BroadcastStream, 1) // both broadcasts come after alice's #3
	b := appendTo(t, store, herald.BroadcastStream, 1)

	h.Publish(a[0:1]) // alice #1
	h.Publish(a[2:3]) // alice #3 arrives before #2: a gap
	h.Publish(older)  // broadcast #1, committed after alice #3: held for alice
	h.Publish(b)      // broadcast #2: held behind it
	if got := describe(take(bob)); len(got) != 2 {
		t.Fatalf("bob, who waits for nothing, got %v; want both broadcasts at once", got)
	}
	if got := describe(take(alice)); len(got) != 1 {
		t.Fatalf("alice got %v before her gap closed; want only #1", got)
	}
	h.Publish(a[1:2]) // alice #2: the gap closes
	got := take(alice)
	var order []string
	for _, ev := range got {
		order = append(order, fmt.Sprintf("%q#%d", ev.User, ev.Seq))
	}
	want := []string{`"alice"#2`, `"alice"#3`, `""#1`, `""#2`}
	if !slices.Equal(order, want) {
		t.Fatalf("alice got %v, want %v", order, want)
	}
}

// TestOlderEventsAreNotHeld: an event of the other stream committed before the waiting ones
// goes at once.
func TestOlderEventsAreNotHeld(t *testing.T) {
	store := openStore(t)
	h := newHub(t, Options{Source: store, GapTimeout: time.Minute})
	alice := subscribe(t, h, "alice")
	early := appendTo(t, store, herald.BroadcastStream, 1)
	a := appendTo(t, store, "alice", 3)
	h.Publish(a[0:1])
	h.Publish(a[2:3]) // gap at #2
	h.Publish(early)  // committed before alice's #3: not held
	got := take(alice)
	if len(got) != 2 || got[1].User != herald.BroadcastStream {
		t.Fatalf("alice got %v; want #1 and the earlier broadcast", describe(got))
	}
}

// TestBaselineWaitsForEverySubscription: one subscription caught up further than another must
// not make the hub drop events the other still needs.
func TestBaselineWaitsForEverySubscription(t *testing.T) {
	store := openStore(t)
	h := newHub(t, Options{Source: store})
	fast, slow := subscribe(t, h, "alice"), subscribe(t, h, "alice")
	a := appendTo(t, store, "alice", 4)
	fast.Caught(herald.Cursor{User: 4}) // its catch-up read all four
	h.Publish(a[2:4])                   // #3 and #4 arrive by the bus only now
	if got := seqs(take(slow), "alice"); !slices.Equal(got, []uint64{3, 4}) {
		t.Fatalf("the slower subscription got %v, want [3 4]", got)
	}
	take(fast)
	// Once every subscription has reported, Resync knows where the stream stands.
	slow.Caught(herald.Cursor{User: 2})
	b := appendTo(t, store, "alice", 1) // #5, never published: a lost message
	if err := h.Resync(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if got := seqs(collect(t, slow, 1), "alice"); !slices.Equal(got, []uint64{b[0].Seq}) {
		t.Fatalf("resync delivered %v, want [%d]", got, b[0].Seq)
	}
}

// TestPeriodicResyncLetsTheBusDeliverFirst: the periodic resync repairs only up to the heads the
// previous one read, so that what is still on the bus arrives by the bus, in its order.
func TestPeriodicResyncLetsTheBusDeliverFirst(t *testing.T) {
	store := openStore(t)
	h := newHub(t, Options{Source: store})
	sub := subscribe(t, h, "alice")
	h.Publish(appendTo(t, store, "alice", 1))
	collect(t, sub, 1)
	appendTo(t, store, "alice", 1) // #2: committed, its message still on the bus
	if err := h.Resync(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if evs := take(sub); len(evs) != 0 {
		t.Fatalf("the first periodic resync delivered %v ahead of the bus", describe(evs))
	}
	// An interval later the bus has still not brought it: lost. The next periodic resync repairs.
	if err := h.Resync(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if got := seqs(collect(t, sub, 1), "alice"); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("second periodic resync delivered %v, want [2]", got)
	}
}

// TestPendingIsBounded: a stream far ahead of a missing event keeps at most maxPending events in
// memory, and delivers all of them, from the store, once the repair runs.
func TestPendingIsBounded(t *testing.T) {
	store := openStore(t)
	h := newHub(t, Options{Source: store, GapTimeout: time.Minute, QueueSize: 4 * maxPending, BufferBytes: 1 << 30})
	sub := subscribe(t, h, "alice")
	ns := appendTo(t, store, "alice", 2*maxPending+10)
	h.Publish(ns[:1])
	for i := 2; i < len(ns); i++ { // #2 never comes by the bus
		h.Publish(ns[i : i+1])
	}
	h.mu.Lock()
	pending := len(h.streams["alice"].pending)
	h.mu.Unlock()
	if pending > maxPending {
		t.Fatalf("%d events pending, bound %d", pending, maxPending)
	}
	if got := seqs(collect(t, sub, len(ns)), "alice"); len(got) != len(ns) || got[len(got)-1] != uint64(len(ns)) {
		t.Fatalf("delivered %d events ending at %d, want all %d", len(got), got[len(got)-1], len(ns))
	}
}

func TestNotify(t *testing.T) {
	h := newHub(t, Options{Source: openStore(t), GapTimeout: never})
	alice1, alice2, bob := subscribe(t, h, "alice"), subscribe(t, h, "alice"), subscribe(t, h, "bob")
	ev := NewControl([]byte("event: herald.read\ndata: {}\n\n"))
	h.Notify("alice", ev)
	h.Notify("carol", ev)                // nobody: a no-op
	h.Notify(herald.BroadcastStream, ev) // not a user
	for name, s := range map[string]*Subscription{"alice1": alice1, "alice2": alice2} {
		got := take(s)
		if len(got) != 1 || got[0] != ev || string(got[0].Control()) != "event: herald.read\ndata: {}\n\n" {
			t.Errorf("%s got %v, want the control event", name, describe(got))
		}
	}
	if got := take(bob); len(got) != 0 {
		t.Errorf("bob got %v, want nothing", describe(got))
	}
	h.mu.Lock()
	_, ok := h.streams["carol"]
	h.mu.Unlock()
	if ok {
		t.Error("notifying carol created a stream")
	}
	h.Close()
	h.Notify("alice", ev) // after Close: a no-op, not a panic
}

// TestRepairLongerThanOneRead: a gap wider than one repair read is read in several, and the
// events between the first read and the pending one are read too, not skipped as if pruned.
func TestRepairLongerThanOneRead(t *testing.T) {
	store := openStore(t)
	h := newHub(t, Options{Source: store, GapTimeout: 10 * time.Millisecond, QueueSize: 4 * repairLimit, BufferBytes: 1 << 30})
	sub := subscribe(t, h, "alice")
	ns := appendTo(t, store, "alice", 2*repairLimit+5)
	h.Publish(ns[:1])
	h.Publish(ns[len(ns)-1:]) // everything between comes from the store
	got := seqs(collect(t, sub, len(ns)), "alice")
	for i, s := range got {
		if s != uint64(i+1) {
			t.Fatalf("event %d has seq %d: a repair skipped %d..%d", i, s, i+1, s-1)
		}
	}
}

// TestNotifyAmidHeldEvents: control events told while a subscription's events wait (for a gap
// in the other stream, or behind the barrier until a resync) go at once, and cost the
// notifications nothing: every one is delivered, once, in publish (id) order.
func TestNotifyAmidHeldEvents(t *testing.T) {
	store := openStore(t)
	h := newHub(t, Options{Source: store, GapTimeout: never})
	alice := subscribe(t, h, "alice")
	a := appendTo(t, store, "alice", 4)
	b := appendTo(t, store, herald.BroadcastStream, 3) // all after alice's first four
	c := appendTo(t, store, "alice", 1)                // alice #5, after the broadcasts
	control := NewControl([]byte("event: herald.preferences\ndata: {}\n\n"))

	h.Publish(a[0:1]) // alice #1
	h.Publish(a[2:3]) // alice #3 before #2: a gap
	h.Notify("alice", control)
	h.Publish(b[0:1]) // broadcast #1: held for alice behind her gap
	h.Notify("alice", control)
	h.Publish(a[1:2]) // the gap closes: alice #2, #3, then broadcast #1

	h.Hold()          // the bus lost messages: alice #4 is only in the store
	h.Publish(b[1:3]) // broadcasts #2 and #3 wait behind the barrier
	h.Notify("alice", control)
	h.Publish(c) // alice #5 too
	h.Notify("alice", control)
	if err := h.Resync(context.Background(), true); err != nil {
		t.Fatal(err)
	}

	want := []int64{a[0].ID, a[1].ID, a[2].ID, b[0].ID, a[3].ID, b[1].ID, b[2].ID, c[0].ID}
	evs := collect(t, alice, len(want)+4)
	var got []int64
	controls := 0
	for _, ev := range evs {
		if ev.Control() != nil {
			controls++
			continue
		}
		got = append(got, ev.ID)
	}
	if !slices.Equal(got, want) || controls != 4 {
		t.Fatalf("alice got notifications %v and %d control events; want %v and 4", got, controls, want)
	}
}
