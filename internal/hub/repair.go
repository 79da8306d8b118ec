package hub

import (
	"context"
	"time"

	"github.com/heraldhq/herald"
)

// Gap repair: reading from the store what the bus lost or reordered too far.
//
// Repairs of a gap wait in one queue, served by at most repairReads goroutines: thousands of
// streams must not become thousands of goroutines (each blocked on a semaphore) nor crowd
// publishes out of the store's connections. A goroutine is started only when a repair is
// queued and fewer than repairReads are running (the bound is taken before the go statement);
// it serves the queue until it is empty. A resync, which may find every stream behind after a
// bus outage, reads with at most repairReads goroutines of its own, all ended before it
// delivers (catchUp): what it read of every stream, merged in id order; a stream further behind
// than one read goes on in the repair queue.

// repairReads bounds the store reads repairs make at once, and the goroutines making them.
const repairReads = 4

// repairLimit bounds one repair's read. A stream further behind than this skips ahead: its
// subscriptions see the jump and catch up from the store themselves, page by page.
const repairLimit = 1024

// repairTimeout bounds one repair's read.
const repairTimeout = 10 * time.Second

// repairJob is a queued repair: read st after its position, up to upto.
type repairJob struct {
	st   *stream
	upto uint64
	gen  uint64 // st.gen when queued: a reset since makes the job moot
}

func (h *Hub) gapExpired(st *stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.streams[st.key] != st || len(st.pending) == 0 {
		return
	}
	h.startRepair(st)
}

// startRepair reads the predecessors of the oldest pending event from the store. h.mu is held.
func (h *Hub) startRepair(st *stream) {
	h.repair(st, st.pending[0].Seq-1)
}

// repair queues a read of the stream from the store after st.next-1 up to upto, to emit it in
// order. h.mu is held.
func (h *Hub) repair(st *stream, upto uint64) {
	if h.closed || st.next == 0 || upto < st.next {
		return
	}
	if st.repairing {
		st.wanted = max(st.wanted, upto)
		return
	}
	st.repairing = true
	h.repairs.Add(1)
	h.repairQueue = append(h.repairQueue, repairJob{st: st, upto: upto, gen: st.gen})
	if h.repairers < repairReads {
		h.repairers++
		h.wg.Add(1)
		go h.repairLoop()
	}
}

// repairLoop serves queued repairs until none is left, then ends.
func (h *Hub) repairLoop() {
	defer h.wg.Done()
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.repairQueue) > 0 && !h.closed {
		job := h.repairQueue[0]
		h.repairQueue[0] = repairJob{}
		h.repairQueue = h.repairQueue[1:]
		st := job.st
		if st.gen != job.gen || h.streams[st.key] != st {
			continue // reset or forgotten while queued; a reset stream repairs afresh
		}
		if len(st.subs) == 0 || job.upto < st.next {
			// Nobody to deliver to, or live events filled the gap while the job waited.
			st.repairing = false
			h.repairWanted(st)
			continue
		}
		after := st.next - 1
		limit := int(min(job.upto-after, repairLimit))
		h.mu.Unlock()
		ns, err := h.read(st.key, after, limit)
		h.mu.Lock()
		if st.gen != job.gen {
			continue // the stream was reset meanwhile; it may be repairing afresh
		}
		st.repairing = false
		if h.closed || h.streams[st.key] != st || len(st.subs) == 0 {
			continue // nobody left to deliver to (the broadcast stream is reset then)
		}
		h.repaired(st, job.upto, limit, ns, err)
	}
	h.repairers--
	if h.closed {
		clear(h.repairQueue)
		h.repairQueue = nil
	}
}

// read reads a stream from the store for a repair; a failure is logged, and the subscribers
// then catch up themselves when they see the jump.
func (h *Hub) read(key string, after uint64, limit int) ([]herald.Notification, error) {
	if h.opts.Source == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(h.ctx, repairTimeout)
	defer cancel()
	ns, err := h.opts.Source.Stream(ctx, key, after, limit)
	if err != nil && h.ctx.Err() == nil {
		h.log.Warn("hub: gap repair failed; subscribers will catch up themselves", "err", err)
	}
	return ns, err
}

// repaired emits what a repair read, up to upto, and moves past what the store no longer has.
// h.mu is held.
func (h *Hub) repaired(st *stream, upto uint64, limit int, ns []herald.Notification, err error) {
	for i := range ns {
		if ns[i].Seq <= upto {
			h.sequence(st, &Event{Notification: ns[i]})
		}
	}
	// Whatever is still missing below a pending event is gone from the store (retention) or
	// unreadable now: move past it, emitting the pending events in order. Each subscription
	// sees the jump and asks the store itself, which tells the client of any hole. Only this
	// repair's range may be skipped: a further hole among the pending events gets its own
	// wait, or its events, possibly still on their way, would be dropped as late.
	if err == nil && len(ns) == limit && ns[len(ns)-1].Seq < upto && st.next <= upto {
		// More than one read's worth: go on. Nothing may be skipped yet: what lies between this
		// read and the first pending event is still to be read, not missing. (A read that
		// reached past upto has covered the range: what it lacks there is gone.)
		h.repair(st, upto)
	} else {
		for len(st.pending) > 0 && st.next <= upto {
			st.next = min(st.pending[0].Seq, upto+1)
			h.flush(st)
		}
		if err == nil && st.next <= upto {
			st.next = upto + 1 // the rest was pruned
		}
		// On an error the next resync tries again.
	}
	if len(st.pending) > 0 {
		h.arm(st)
	}
	h.repairWanted(st)
}

// repairWanted starts the repair a resync asked for while another ran. h.mu is held.
func (h *Hub) repairWanted(st *stream) {
	if w := st.wanted; w > 0 {
		st.wanted = 0
		h.repair(st, w)
	}
}

// resyncChunk bounds the streams one StreamHeads call asks about.
const resyncChunk = 1000

// Resync compares every stream with subscriptions here to its head in the store, and delivers
// what the hub has not seen: lost by the bus (an outage), or never published (a node died
// between its commit and its publish). Subscriptions still catching up at subscription time
// (the hub knows no position for their stream yet) are left to that catch-up.
//
// With lost set (the bus reported a loss, or is down), it reads up to the heads it reads.
// Otherwise (the periodic check) only up to the heads the previous periodic check read: what
// was committed since may still be on the bus, and reading it ahead of the bus could deliver
// a user's two streams out of their publish order.
//
// What it reads of all the streams is delivered merged in id order (catchUp), never stream by
// stream: a stream repaired before the other would let a user's notification overtake the
// broadcast its publisher sent before it, both lost by the bus.
func (h *Hub) Resync(ctx context.Context, lost bool) error {
	if h.opts.Source == nil {
		h.mu.Lock()
		h.lift()
		h.mu.Unlock()
		return nil
	}
	h.mu.Lock()
	var keys []string
	for key, st := range h.streams {
		if st.next > 0 && len(st.subs) > 0 {
			keys = append(keys, key)
		}
	}
	held, gen, barred := h.barrier.on, h.barrier.gen, len(h.barrier.events)
	h.mu.Unlock()
	seen := make(map[string]uint64, len(keys))
	for len(keys) > 0 {
		n := min(len(keys), resyncChunk)
		heads, err := h.opts.Source.StreamHeads(ctx, keys[:n])
		if err != nil {
			return err
		}
		for key, head := range heads {
			seen[key] = head
		}
		keys = keys[n:]
	}
	if held {
		// The bus lost messages: read what every stream missed, and deliver it merged with
		// what waited behind the barrier (barrier.go).
		return h.catchUp(ctx, seen, true, gen, barred)
	}
	upto := seen
	if !lost {
		h.mu.Lock()
		upto = make(map[string]uint64, len(seen))
		for key, head := range seen {
			upto[key] = min(head, h.seenHeads[key])
		}
		h.seenHeads = seen
		h.mu.Unlock()
	}
	return h.catchUp(ctx, upto, false, gen, barred)
}
