// Package hub fans committed notifications out to the subscriptions open on this node.
//
// Each stream (a user's, and the broadcast stream) is delivered in sequence order: an event that
// arrives ahead of its predecessors (two publishers committing back to back, or a bus delivering
// out of order) waits briefly for them, and if they do not come the hub reads them from the
// store. A subscription never blocks the hub: its queue is bounded, and when it overflows the
// subscription is marked and left to its owner, which catches up from the store or disconnects.
package hub

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald"
)

// Source is where the hub repairs a gap in a stream: the store.
type Source interface {
	Stream(ctx context.Context, stream string, after uint64, limit int) ([]herald.Notification, error)
	StreamHeads(ctx context.Context, streams []string) (map[string]uint64, error)
}

// Options configure a Hub.
type Options struct {
	// QueueSize bounds the events waiting for one subscription; 256 when zero.
	QueueSize int
	// BufferBytes bounds the bytes one subscription holds for its client: its queue, the events
	// held back for it, and what its owner reports as Unwritten (see Subscription). 256 KiB when
	// zero.
	BufferBytes int
	// MaxPerUser bounds one user's open subscriptions on this node; 0 for no bound.
	MaxPerUser int
	// MaxTotal bounds all open subscriptions on this node; 0 for no bound.
	MaxTotal int
	// GapTimeout is how long an out-of-order event waits for its predecessors before the hub
	// reads them from Source; 200ms when zero.
	GapTimeout time.Duration
	Source     Source
	Logger     *slog.Logger
	// Presence, when set, is told of every subscription opened (true) and closed (false) for a
	// user, under the hub's lock: it must only record it (Web Push's presence, push.Presence).
	Presence func(user string, opened bool)
}

// maxPending bounds the out-of-order events one stream holds; beyond it the hub repairs at once.
const maxPending = 1024

// Hub is the local fan-out. The zero value is not usable; call New.
type Hub struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	closed    bool
	draining  bool
	drains    []*time.Timer      // one per subscription open when Drain began
	drained   chan struct{}      // closed when draining and the last subscription has closed
	streams   map[string]*stream // user id → stream; BroadcastStream is always present
	broadcast *stream

	holding map[*Subscription]struct{} // subscriptions with held events

	barrier barrier // while the bus may have lost messages (barrier.go)

	// repairQueue are the repairs waiting for one of the repairers (at most repairReads)
	// goroutines serving it (repair.go).
	repairQueue []repairJob
	repairers   int
	// seenHeads are the store heads the previous periodic resync read: the next one repairs only
	// up to them, so that the bus has had an interval to deliver what was in flight.
	seenHeads map[string]uint64

	ctx    context.Context // cancelled by Close; parent of gap repairs
	cancel context.CancelFunc
	wg     sync.WaitGroup

	subscriptions atomic.Int64
	overflows     atomic.Int64
	repairs       atomic.Int64
}

type stream struct {
	key string
	// next is the sequence number to emit next; 0 until the first event sets the baseline.
	next      uint64
	pending   []*Event // sorted, all > next
	timer     *time.Timer
	repairing bool
	// gen counts the times the stream was reset (the broadcast stream, when its last
	// subscription left): a repair begun before a reset finds another gen and leaves the stream
	// alone, its answer being about a position nobody here holds any more.
	gen uint64
	// wanted is the highest sequence number a resync found in the store while a repair was
	// running; the repair then goes on up to it.
	wanted uint64
	// While next is 0: how many subscriptions have not reported their catch-up (Caught), and
	// the lowest position those that have reported. The stream takes its position from them
	// only once all have: one subscription caught up further than another must not make the
	// hub drop what the other still needs.
	uncaught  int
	lowCaught uint64
	// subs are the stream's subscriptions, in a slice: most users have one or two, and the
	// broadcast stream's are walked on every broadcast. A subscription keeps its index in each
	// of its two streams (Subscription.slot; slotOwn or slotBroadcast), so removal is O(1).
	subs []*Subscription
}

// The index of a subscription's place in its two streams' subs.
const (
	slotOwn       = 0
	slotBroadcast = 1
)

func (st *stream) add(s *Subscription, k int) {
	s.slot[k] = int32(len(st.subs))
	st.subs = append(st.subs, s)
}

func (st *stream) remove(s *Subscription, k int) {
	i, last := int(s.slot[k]), len(st.subs)-1
	moved := st.subs[last]
	st.subs[i] = moved
	moved.slot[k] = int32(i)
	st.subs[last] = nil
	st.subs = st.subs[:last]
	if len(st.subs) == 0 {
		st.subs = nil // a broadcast stream emptied of 18,000 keeps no array
	}
}

// Event is a committed notification as the hub hands it to subscriptions. One Event is shared by
// every subscription it reaches, so its wire encoding is computed once.
type Event struct {
	herald.Notification
	control []byte // a control event's frame; nil for a notification
	once    [2]sync.Once
	frames  [2][]byte // the encodings, with and without the event field
}

// Frame returns the event's encoding, named (with its type as the SSE event field) or not,
// computing each with encode on first use.
func (e *Event) Frame(named bool, encode func(n *herald.Notification, named bool) []byte) []byte {
	i := 0
	if named {
		i = 1
	}
	e.once[i].Do(func() { e.frames[i] = encode(&e.Notification, named) })
	return e.frames[i]
}

// eventOverhead is what the encoding of a notification adds to its data and type: the id line
// with a cursor and epoch, the SSE field names, the envelope's fixed text, id and time.
const eventOverhead = 192

// Size is about the bytes of the event's encoding, content fields included: what it costs a
// subscription's buffer.
func (e *Event) Size() int {
	if e.control != nil {
		return len(e.control)
	}
	return len(e.Data) + len(e.Type) + e.Content.Size() + eventOverhead
}

// NewControl returns an event that is not a notification but a message from Herald: its frame
// is written as it is, without an id (it does not move the cursor), whatever the stream's
// filter, and it is not sequenced.
func NewControl(frame []byte) *Event { return &Event{control: frame} }

// Control returns a control event's frame, or nil for a notification.
func (e *Event) Control() []byte { return e.control }

// New returns a running hub. Close stops it.
func New(opts Options) *Hub {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 256
	}
	if opts.BufferBytes <= 0 {
		opts.BufferBytes = 256 << 10
	}
	if opts.GapTimeout <= 0 {
		opts.GapTimeout = 200 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &stream{key: herald.BroadcastStream}
	return &Hub{
		opts:      opts,
		log:       opts.Logger,
		streams:   map[string]*stream{herald.BroadcastStream: b},
		broadcast: b,
		holding:   map[*Subscription]struct{}{},

		seenHeads: map[string]uint64{},
		ctx:       ctx,
		cancel:    cancel,
	}
}

// Stats are the hub's counters since it started.
type Stats struct {
	Subscriptions int64 // open now
	Overflows     int64 // subscriptions whose queue overflowed
	Repairs       int64 // gaps read back from the store
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	return Stats{Subscriptions: h.subscriptions.Load(), Overflows: h.overflows.Load(), Repairs: h.repairs.Load()}
}

// Subscribe opens a subscription to user's stream and the broadcast stream. Events committed from
// now on are queued on it; the caller replays what came before from the store.
func (h *Hub) Subscribe(user string) (*Subscription, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, herald.Errorf(herald.EUNAVAILABLE, "server is shutting down")
	}
	if h.draining {
		return nil, herald.Errorf(herald.EUNAVAILABLE, "server is draining; connect to another one")
	}
	if user == herald.BroadcastStream {
		// The broadcast stream's key: subscribing it as a user would let its last Close delete
		// the broadcast stream, after which no broadcast reached anyone.
		return nil, herald.Errorf(herald.EINVALID, "user id must not be empty")
	}
	if h.opts.MaxTotal > 0 && h.subscriptions.Load() >= int64(h.opts.MaxTotal) {
		return nil, herald.Errorf(herald.EUNAVAILABLE, "this server holds its maximum of %d open streams; try again later or another node", h.opts.MaxTotal)
	}
	st := h.streams[user]
	if st == nil {
		st = &stream{key: user}
		h.streams[user] = st
	}
	if h.opts.MaxPerUser > 0 && len(st.subs) >= h.opts.MaxPerUser {
		return nil, herald.Errorf(herald.ERATELIMITED, "too many open streams for this user (limit %d)", h.opts.MaxPerUser)
	}
	s := &Subscription{hub: h, User: user, own: st}
	st.add(s, slotOwn)
	h.broadcast.add(s, slotBroadcast)
	st.uncaught++
	h.broadcast.uncaught++
	h.subscriptions.Add(1)
	if h.opts.Presence != nil {
		h.opts.Presence(user, true)
	}
	return s, nil
}

func (h *Hub) unsubscribe(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := s.own
	if st == nil {
		return // unsubscribed already
	}
	s.own = nil
	if h.opts.Presence != nil {
		h.opts.Presence(s.User, false)
	}
	st.remove(s, slotOwn)
	h.broadcast.remove(s, slotBroadcast)
	delete(h.holding, s)
	s.held, s.heldBytes = nil, 0
	if !s.caught {
		for _, x := range []*stream{st, h.broadcast} {
			x.uncaught--
			h.baseline(x)
		}
	}
	if h.subscriptions.Add(-1) == 0 && h.drained != nil {
		close(h.drained)
		h.drained = nil
	}
	if len(st.subs) == 0 {
		// Nobody here listens to this user: forget the stream, and with it any wait for a gap.
		if st.timer != nil {
			st.timer.Stop()
		}
		delete(h.streams, s.User)
	}
	if b := h.broadcast; len(b.subs) == 0 {
		// Nor to anyone: the broadcast stream starts afresh with the next subscription, rather
		// than from a position broadcasts may have passed since.
		if b.timer != nil {
			b.timer.Stop()
		}
		clear(b.pending)
		b.pending, b.next, b.wanted, b.uncaught, b.lowCaught = nil, 0, 0, 0, 0
		b.repairing = false // a repair in flight is about the old position: see gen
		b.gen++
	}
}

// Notify queues a control event on every subscription of user here. Control events are at most
// once: a subscription that is catching up may miss one.
func (h *Hub) Notify(user string, ev *Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if st := h.streams[user]; st != nil && user != herald.BroadcastStream {
		for _, s := range st.subs {
			s.push(ev)
		}
	}
}

// Publish hands committed notifications to the hub. Notifications of users with no subscription
// here are dropped at once; the store has them.
func (h *Hub) Publish(ns []herald.Notification) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if h.barrier.on {
		h.bar(ns)
		return
	}
	for i := range ns {
		st := h.streams[ns[i].User]
		if st == nil {
			continue
		}
		h.sequence(st, &Event{Notification: ns[i]})
	}
}

// sequence emits ev in order within its stream, holding it if its predecessors have not come.
// h.mu is held.
func (h *Hub) sequence(st *stream, ev *Event) {
	seq := ev.Seq
	switch {
	case st.next == 0 || seq == st.next:
		h.emit(st, ev)
		st.next = seq + 1
		h.flush(st)
	case seq < st.next:
		// Already emitted (a duplicate from the bus, or a late arrival a repair delivered).
	default:
		i, found := slices.BinarySearchFunc(st.pending, seq, func(e *Event, s uint64) int {
			return cmpSeq(e.Seq, s)
		})
		if found {
			return
		}
		if len(st.pending) >= maxPending {
			// Too far ahead to keep in memory: the store has it. The repair reads up to it.
			st.wanted = max(st.wanted, seq)
			h.startRepair(st)
			return
		}
		st.pending = slices.Insert(st.pending, i, ev)
		if len(st.pending) == 1 {
			h.arm(st)
		}
	}
}

// arm starts the wait for the predecessors of the oldest pending event. h.mu is held.
func (h *Hub) arm(st *stream) {
	if st.timer == nil {
		st.timer = time.AfterFunc(h.opts.GapTimeout, func() { h.gapExpired(st) })
		return
	}
	st.timer.Reset(h.opts.GapTimeout)
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// flush emits the pending events that have become next in line. h.mu is held.
func (h *Hub) flush(st *stream) {
	n := 0
	for n < len(st.pending) && st.pending[n].Seq <= st.next {
		if ev := st.pending[n]; ev.Seq == st.next {
			h.emit(st, ev)
			st.next++
		}
		n++
	}
	if n > 0 {
		clear(st.pending[:n])
		st.pending = st.pending[n:]
	}
	if len(st.pending) == 0 && st.timer != nil {
		st.timer.Stop()
	}
	if len(h.holding) > 0 {
		for s := range h.holding {
			h.release(s)
		}
	}
}

// emit queues ev on every subscription of the stream. h.mu is held.
//
// A subscription sees two streams, and each is delivered in sequence order; between them, the
// order is the bus's, in which a publisher's notification always comes after the one it
// published before (the bus has it before the publisher is answered). That order survives the
// wait for a gap: while one of a subscription's streams waits for a missing event, the other
// stream's events that came after the waiting ones are held back for that subscription, and all
// are released in id order (within a stream ids grow with sequence numbers) once the gap closes.
func (h *Hub) emit(st *stream, ev *Event) {
	for _, s := range st.subs {
		if len(s.held) > 0 || h.blocked(s, ev) {
			h.hold(s, ev)
			continue
		}
		s.push(ev)
	}
}

// blocked reports whether ev must wait for subscription s: the other stream of s waits for a
// gap below an event older than ev. h.mu is held.
func (h *Hub) blocked(s *Subscription, ev *Event) bool {
	other := h.broadcast
	if ev.User == herald.BroadcastStream {
		other = s.own
	}
	return other != nil && len(other.pending) > 0 && ev.ID > other.pending[0].ID
}

// hold keeps ev back for s, in id order. Held events count against the queue's bound. h.mu is
// held.
func (h *Hub) hold(s *Subscription, ev *Event) {
	size := ev.Size()
	if !s.canHold(size) {
		// No room to hold more: give the event to the queue now (or have it overflow there).
		// The order between the two streams may then break for this subscription, never the
		// order within each, and a full queue makes the owner catch up from the store.
		s.push(ev)
		return
	}
	i, _ := slices.BinarySearchFunc(s.held, ev.ID, func(e *Event, id int64) int { return cmpSeq(uint64(e.ID), uint64(id)) })
	s.held = slices.Insert(s.held, i, ev)
	s.heldBytes += size
	h.holding[s] = struct{}{}
}

// release queues the held events of s that no longer wait, oldest first. h.mu is held.
func (h *Hub) release(s *Subscription) {
	n := 0
	for n < len(s.held) && !h.blocked(s, s.held[n]) {
		s.heldBytes -= s.held[n].Size()
		s.push(s.held[n])
		n++
	}
	if n > 0 {
		clear(s.held[:n])
		s.held = s.held[n:]
	}
	if len(s.held) == 0 {
		s.held = nil
		delete(h.holding, s)
	}
}

// Drain refuses new subscriptions and ends each open one at a random moment within window, so
// that the clients of a node being stopped do not all reconnect elsewhere in the same instant.
// Subscriptions keep receiving events until their moment comes. The channel returned is closed
// once every subscription has been closed by its owner (Subscription.Close).
func (h *Hub) Drain(window time.Duration) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	done := make(chan struct{})
	if h.closed || h.draining {
		close(done)
		return done
	}
	h.draining = true
	h.drained = done
	for _, s := range h.broadcast.subs {
		d := time.Duration(0)
		if window > 0 {
			d = rand.N(window)
		}
		h.drains = append(h.drains, time.AfterFunc(d, func() { s.end(Drain) }))
	}
	if len(h.broadcast.subs) == 0 {
		close(done)
		h.drained = nil
	}
	return done
}

// Draining reports whether Drain was called.
func (h *Hub) Draining() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.draining
}

// Close ends every subscription, refuses new ones and stops the gap repairs.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	for _, t := range h.drains {
		t.Stop()
	}
	for _, st := range h.streams {
		if st.timer != nil {
			st.timer.Stop()
		}
	}
	for _, s := range h.broadcast.subs {
		s.end(Shutdown)
	}
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
}
