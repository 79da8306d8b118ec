package httpapi

import (
	"context"
	"sync"
)

// catchUpSlots bounds the streams reading the store at once to catch up, server-wide: a resume
// with Last-Event-ID, or a catch-up after a stream's buffer overflowed. A large broadcast can
// overflow every stream's buffer at once, and thousands of streams reading the store together
// would crowd publishes out of its connections and hold thousands of replay pages in memory. A
// slot is held for a whole catch-up (a page at a time, written as it is read), so at most this
// many pages are in memory.
const catchUpSlots = 16

// slots is a counting semaphore whose waiters are served in order. A waiter either blocks (a
// stream's handler, which has a goroutine anyway) or is a function started when its slot comes
// (a parked stream's catch-up: its goroutine is started only inside the bound).
type slots struct {
	mu      sync.Mutex
	free    int
	waiting []*slotWaiter
}

type slotWaiter struct {
	ready chan struct{} // closed when a blocked waiter has its slot
	start func()        // run with its slot by release, for a waiter that does not block
}

func newSlots(n int) *slots { return &slots{free: n} }

// acquire waits for a slot until ctx ends or done is closed (nil: never).
func (s *slots) acquire(ctx context.Context, done <-chan struct{}) error {
	s.mu.Lock()
	if s.free > 0 {
		s.free--
		s.mu.Unlock()
		return nil
	}
	w := &slotWaiter{ready: make(chan struct{})}
	s.waiting = append(s.waiting, w)
	s.mu.Unlock()
	var err error
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-done:
		err = context.Canceled
	}
	s.mu.Lock()
	for i, x := range s.waiting {
		if x == w {
			s.waiting = append(s.waiting[:i], s.waiting[i+1:]...)
			s.mu.Unlock()
			return err
		}
	}
	s.mu.Unlock()
	s.release() // granted meanwhile: pass it on
	return err
}

// start runs f with a slot: now if one is free, else when one is released (on the releasing
// goroutine; f must not block). f must release the slot when done.
func (s *slots) start(f func()) {
	s.mu.Lock()
	if s.free > 0 {
		s.free--
		s.mu.Unlock()
		f()
		return
	}
	s.waiting = append(s.waiting, &slotWaiter{start: f})
	s.mu.Unlock()
}

// release gives a slot back, to the first waiter if there is one.
func (s *slots) release() {
	s.mu.Lock()
	if len(s.waiting) == 0 {
		s.free++
		s.mu.Unlock()
		return
	}
	w := s.waiting[0]
	s.waiting[0] = nil
	s.waiting = s.waiting[1:]
	s.mu.Unlock()
	if w.start != nil {
		w.start()
	} else {
		close(w.ready)
	}
}
