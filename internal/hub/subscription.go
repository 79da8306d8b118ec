package hub

import (
	"sync"
	"sync/atomic"

	"github.com/heraldhq/herald"
)

// Subscription is one open stream's view of the hub: a bounded queue of events of its user's
// stream and the broadcast stream, in each stream's order.
//
// The queue is bounded in events (Options.QueueSize) and in bytes (Options.BufferBytes). The
// bytes are those of the queue, of the events held back for it (hold), and of what its owner
// took from the queue that its client has not taken yet (Unwritten): everything a stream holds
// for a client, so that a client that stops reading pins at most BufferBytes, however its stream
// is served. An event that does not fit overflows the queue: the queue is dropped (its events
// are in the store) and the owner is told (Take, OnOverflow), to catch up from the store or, if
// its client has stopped reading, to end the stream as a slow consumer.
type Subscription struct {
	hub  *Hub
	User string

	// held are events kept back while the other stream waits for a gap; caught is set once the
	// owner reported its catch-up. Both are guarded by hub.mu.
	held   []*Event
	caught bool
	// own is the user's stream while subscribed, nil once closed; slot is the subscription's
	// index in the subs of its own stream and of the broadcast stream. Guarded by hub.mu.
	own  *stream
	slot [2]int32

	// heldBytes is the size of held; guarded by hub.mu.
	heldBytes int

	mu     sync.Mutex
	queue  []*Event
	queued int // bytes of queue (Event.Size)
	// unwritten is what the owner holds that its client has not taken (Unwritten).
	unwritten  int
	overflowed bool
	reason     Disconnect
	ended      atomic.Bool // reason is set; read without the lock on every delivery
	onOverflow func()
	notify     func()

	// Made on first use, as an owner with OnNotify needs neither. ready has a value when the
	// queue may be non-empty; done is closed when the hub ends the subscription (reason set).
	ready chan struct{}
	done  chan struct{}
}

// fits reports whether an event of size bytes fits in the buffer. s.mu and hub.mu are held.
// An event larger than the whole buffer fits when nothing else is held, or it could never be
// delivered live.
func (s *Subscription) fits(size int) bool {
	held := s.queued + s.unwritten + s.heldBytes
	return held+size <= s.hub.opts.BufferBytes || (held == 0 && len(s.queue) == 0)
}

// canHold reports whether an event of size bytes may be held back: held events count against
// the queue's bounds as queued ones do. hub.mu is held.
func (s *Subscription) canHold(size int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)+len(s.held) < s.hub.opts.QueueSize &&
		s.queued+s.unwritten+s.heldBytes+size <= s.hub.opts.BufferBytes
}

// push queues ev, or overflows the queue. hub.mu is held.
func (s *Subscription) push(ev *Event) {
	size := ev.Size()
	var overflow func()
	s.mu.Lock()
	switch {
	case s.overflowed:
		// The owner is to read the store: nothing queued until it takes the overflow is of use.
		overflow = s.onOverflow
	case len(s.queue) < s.hub.opts.QueueSize && s.fits(size):
		s.queue = append(s.queue, ev)
		s.queued += size
	default:
		s.overflowed = true
		s.hub.overflows.Add(1)
		clear(s.queue) // the events need not stay in memory for a client that does not read
		s.queue, s.queued = s.queue[:0], 0
		overflow = s.onOverflow
	}
	notify, ready := s.notify, s.ready
	s.mu.Unlock()
	if overflow != nil {
		overflow()
	}
	switch {
	case notify != nil:
		notify()
	case ready != nil:
		select {
		case ready <- struct{}{}:
		default:
		}
	}
}

// Unwritten tells the subscription how many bytes its owner holds that the client has not
// taken: events taken from the queue and not yet written, or the part of a write the socket has
// not accepted. They count against BufferBytes with the queue; 0 once all is written.
func (s *Subscription) Unwritten(n int) {
	s.mu.Lock()
	s.unwritten = n
	s.mu.Unlock()
}

// Caught tells the hub how far the owner caught up from the store: up to pos, in both of its
// streams. A stream the hub has had no event of yet takes that as the position to deliver from,
// so that Resync can notice what the bus never brought.
func (s *Subscription) Caught(pos herald.Cursor) {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || s.caught {
		return
	}
	if s.own == nil {
		return // closed already
	}
	s.caught = true
	for _, st := range []*stream{s.own, h.broadcast} {
		st.uncaught--
		if p := pos.Of(st.key); st.next == 0 && (st.lowCaught == 0 || p+1 < st.lowCaught) {
			st.lowCaught = p + 1 // kept one above, so that 0 means "none reported"
		}
		h.baseline(st)
	}
}

// baseline gives a stream that has had no event yet the position its subscriptions caught up
// to, once all of them have reported it. h.mu is held.
func (h *Hub) baseline(st *stream) {
	if st.next == 0 && st.uncaught == 0 && st.lowCaught > 0 && len(st.subs) > 0 {
		st.next = st.lowCaught
		st.lowCaught = 0
	}
}

// OnOverflow sets a function called (from the publishing goroutine, so it must not block) for
// every event dropped because the queue overflowed. If the owner is blocked writing to a client that
// stopped reading, this is its chance to unblock that write.
func (s *Subscription) OnOverflow(f func()) {
	s.mu.Lock()
	s.onOverflow = f
	s.mu.Unlock()
}

// OnNotify sets a function called, instead of signalling Ready, whenever events may be waiting
// and when the subscription ends: for an owner with no goroutine of its own waiting on the
// channels. It runs on the publishing goroutine, under the hub's lock, so it must not block nor
// call back into the hub. It is called once at once, for anything queued before it was set.
func (s *Subscription) OnNotify(f func()) {
	s.mu.Lock()
	s.notify = f
	s.mu.Unlock()
	f()
}

// Overflowing reports whether events were dropped since the last Take.
func (s *Subscription) Overflowing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overflowed
}

// Ready is signalled when events may be waiting.
func (s *Subscription) Ready() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready == nil {
		s.ready = make(chan struct{}, 1)
		if len(s.queue) > 0 || s.overflowed {
			s.ready <- struct{}{}
		}
	}
	return s.ready
}

// Done is closed when the hub ends the subscription; Reason says why.
func (s *Subscription) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		s.done = make(chan struct{})
		if s.reason != 0 {
			close(s.done)
		}
	}
	return s.done
}

// Ended reports whether the hub ended the subscription (Done is closed).
func (s *Subscription) Ended() bool { return s.ended.Load() }

// Reason says why Done was closed.
func (s *Subscription) Reason() Disconnect {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

// Take returns the queued events and whether the queue overflowed since the last Take (then
// the events are of no use: some were dropped). buf, the slice a previous Take returned, is
// reused. While the owner holds the events, it counts them with Unwritten.
func (s *Subscription) Take(buf []*Event) (events []*Event, overflowed bool) {
	clear(buf)
	s.mu.Lock()
	events, s.queue = s.queue, buf[:0]
	s.queued = 0
	overflowed, s.overflowed = s.overflowed, false
	s.mu.Unlock()
	return events, overflowed
}

func (s *Subscription) end(reason Disconnect) {
	s.mu.Lock()
	if s.reason != 0 {
		s.mu.Unlock()
		return
	}
	s.reason = reason
	s.ended.Store(true)
	if s.done != nil {
		close(s.done)
	}
	notify := s.notify
	s.mu.Unlock()
	if notify != nil {
		notify()
	}
}

// Close removes the subscription from the hub. It is safe to call more than once.
func (s *Subscription) Close() {
	s.hub.unsubscribe(s)
	s.end(Closed)
}
