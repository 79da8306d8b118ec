package hub

import (
	"context"
	"slices"
	"sync"

	"github.com/heraldhq/herald"
)

// The barrier: publish order across a user's two streams when the bus has lost messages.
//
// A lost message is only found by a resync, and a resync repairs each stream on its own: while
// it reads what one stream missed, the other stream's live events would flow past it, so a
// broadcast could overtake a user's notification its publisher sent just before. So after the
// bus (re)subscribes, and while it is down, the node Holds: what Publish brings waits, the
// next Resync reads what every stream missed, and both are delivered merged in id order
// (publish order: a publisher's next notification takes its id after the previous one
// committed; within a stream ids grow with sequence numbers).

// maxBarred bounds the events waiting behind the barrier. Beyond it they are dropped: they are
// committed, and the resync that lifts the barrier reads them from the store.
const maxBarred = 1 << 16

// barrier is the hub's state while it holds. Its fields are guarded by Hub.mu.
type barrier struct {
	on     bool
	gen    uint64   // counts Holds: a resync lifts the barrier only if none came during it
	events []*Event // what Publish brought while on, in arrival order
}

// Hold makes the hub keep what Publish brings until the next Resync has read from the store
// what the streams missed. Call it when the bus may have lost messages (it (re)subscribed) and
// for every commit delivered while the bus is down.
func (h *Hub) Hold() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.barrier.on = true
	h.barrier.gen++
}

// bar keeps ns behind the barrier. h.mu is held.
func (h *Hub) bar(ns []herald.Notification) {
	for i := range ns {
		if h.streams[ns[i].User] == nil || len(h.barrier.events) >= maxBarred {
			continue
		}
		h.barrier.events = append(h.barrier.events, &Event{Notification: ns[i]})
	}
}

// catchUp reads, for each stream in heads, what the hub has not emitted up to its head, and
// emits it merged in id order.
//
// With held (the barrier was on when the heads were read), what waited behind the barrier is
// merged in too: all of it if no Hold came meanwhile (the barrier is lifted then), else what
// arrived before the heads were read (barred of them: what came later may follow a commit the
// heads do not show yet). Without, the barrier is left alone; if a Hold came meanwhile, what
// was read is dropped: the resync that Hold asks for reads it again, to merge it with what the
// barrier holds.
func (h *Hub) catchUp(ctx context.Context, heads map[string]uint64, held bool, gen uint64, barred int) error {
	type read struct {
		key  string
		upto uint64
		ns   []herald.Notification
		full bool // the read hit repairLimit: the repair queue goes on from there
	}
	var reads []*read
	h.mu.Lock()
	for key, head := range heads {
		if st := h.streams[key]; st != nil && st.next > 0 && head >= st.next {
			reads = append(reads, &read{key: key, upto: head})
		}
	}
	h.mu.Unlock()
	// Read with at most repairReads goroutines, all ended before catchUp returns.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     = make(chan *read)
	)
	for range min(repairReads, len(reads)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range next {
				h.mu.Lock()
				st := h.streams[r.key]
				after := uint64(0)
				if st != nil {
					after = st.next - 1
				}
				h.mu.Unlock()
				if st == nil || after >= r.upto || st.next == 0 {
					continue
				}
				limit := int(min(r.upto-after, repairLimit))
				ns, err := h.opts.Source.Stream(ctx, r.key, after, limit)
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					continue
				}
				r.ns, r.full = ns, len(ns) == limit
			}
		}()
	}
	for _, r := range reads {
		next <- r
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr // the barrier stays; the next resync tries again
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	var evs []*Event
	for _, r := range reads {
		for i := range r.ns {
			if r.ns[i].Seq <= r.upto {
				evs = append(evs, &Event{Notification: r.ns[i]})
			}
		}
	}
	switch {
	case held:
		lift := h.barrier.gen == gen
		if lift {
			barred = len(h.barrier.events)
		}
		evs = append(evs, h.barrier.events[:barred]...)
		rest := slices.Clone(h.barrier.events[barred:])
		clear(h.barrier.events)
		h.barrier.events = rest
		h.barrier.on = !lift
	case h.barrier.on:
		return nil // read again by the resync the Hold asks for
	}
	slices.SortStableFunc(evs, func(a, b *Event) int { return cmpSeq(uint64(a.ID), uint64(b.ID)) })
	for _, ev := range evs {
		if st := h.streams[ev.User]; st != nil {
			h.sequence(st, ev)
		}
	}
	for _, r := range reads {
		if st := h.streams[r.key]; st != nil && r.full {
			h.repair(st, r.upto) // far behind: the rest by the repair queue, stream by stream
		}
	}
	return nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// lift ends the barrier, emitting what waited behind it in id order: with no store to read,
// there is nothing to merge it with. h.mu is held.
func (h *Hub) lift() {
	evs := h.barrier.events
	h.barrier = barrier{gen: h.barrier.gen}
	slices.SortStableFunc(evs, func(a, b *Event) int { return cmpSeq(uint64(a.ID), uint64(b.ID)) })
	for _, ev := range evs {
		if st := h.streams[ev.User]; st != nil {
			h.sequence(st, ev)
		}
	}
}
