package sqlite

import (
	"sync"

	"github.com/heraldhq/herald"
)

// The recent window: the newest notifications of each stream, as this store committed them, so
// that most resumes of a reconnect storm read no SQL at all.
//
// A SQLite store written by this process alone (Options.SoleWriter: the app says so when there
// is no bus, the only way several processes share a file) sees every commit: each reaches the window from
// the commit loop, stream by stream in sequence order, before the hub has it (wrap): a stream
// subscribed after the hub had a notification finds it in the window. A stream's window holds
// only contiguous sequence numbers ending at the stream's head, so it answers "everything after
// the cursor, and the head" exactly when its first number is at most cursor + 1; otherwise, or
// for a stream it does not hold, Feed reads the store. Both streams of a feed are read under
// one lock, between two commits: a snapshot, as the statement's is.
//
// What would make a window lie is a notification it holds that the store no longer does:
// retention. While Prune runs, no window is served, and if it removed any notification every
// window is dropped (beginPrune, endPrune); a new epoch drops them too. A window only ever
// starts again from commits made after that, which retention has not touched, so a cursor
// before what retention removed is never served from memory and gets its herald.missed from
// the store. After a restart the windows are filled from the file before the commit loop
// starts (warm.go), under the same rule: a window holds only rows the store holds, contiguous
// and ending at the head.

// The window's bounds: per stream, enough for a client away during a few broadcasts and
// notifications; in all, a few tens of megabytes at most.
const (
	windowPerStream = 16
	windowEntries   = 1 << 17
	windowBytes     = 32 << 20
)

type recentWindow struct {
	mu      sync.Mutex
	streams map[string][]herald.Notification // contiguous, ascending; the last is the head
	order   []string                         // the streams held, oldest first, for eviction
	entries int
	bytes   int
	pruning int  // Prunes running: nothing is served
	off     bool // another process may write the file (Options.SoleWriter): nothing is served
}

// wrap returns a commit function that keeps each commit in the window, then calls next.
func (w *recentWindow) wrap(next herald.CommitFunc) herald.CommitFunc {
	return func(ns []herald.Notification) {
		w.commit(ns)
		if next != nil {
			next(ns)
		}
	}
}

// commit adds committed notifications, in commit order.
func (w *recentWindow) commit(ns []herald.Notification) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.streams == nil {
		w.streams = map[string][]herald.Notification{}
	}
	for i := range ns {
		n := ns[i]
		win, held := w.streams[n.User]
		if !held {
			w.order = append(w.order, n.User)
		}
		if len(win) > 0 && win[len(win)-1].Seq+1 != n.Seq {
			// Not the next one (a commit this window never saw): what it holds is not contiguous
			// with the head any more.
			w.drop(win)
			win = win[:0]
		}
		if len(win) == windowPerStream {
			w.drop(win[:1])
			win = append(win[:0], win[1:]...)
		}
		win = append(win, n)
		w.entries++
		w.bytes += entrySize(&n)
		w.streams[n.User] = win
	}
	for (w.entries > windowEntries || w.bytes > windowBytes) && len(w.order) > 0 {
		key := w.order[0]
		w.order[0] = ""
		w.order = w.order[1:]
		w.drop(w.streams[key])
		delete(w.streams, key)
	}
}

// drop uncounts ns. w.mu is held.
func (w *recentWindow) drop(ns []herald.Notification) {
	for i := range ns {
		w.entries--
		w.bytes -= entrySize(&ns[i])
	}
}

// feed answers Feed from the windows if both streams' are held and cover everything after the
// cursor.
func (w *recentWindow) feed(user string, after herald.Cursor, limit int) (herald.FeedPage, bool) {
	var page herald.FeedPage
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pruning > 0 || w.off {
		return herald.FeedPage{}, false
	}
	var ok bool
	if page.User, page.Heads.User, ok = w.after(user, after.User, limit); !ok {
		return herald.FeedPage{}, false
	}
	if page.Broadcast, page.Heads.Broadcast, ok = w.after(herald.BroadcastStream, after.Broadcast, limit); !ok {
		return herald.FeedPage{}, false
	}
	return page, true
}

// after returns the stream's notifications after seq, at most limit, and its head. w.mu is held.
func (w *recentWindow) after(stream string, seq uint64, limit int) ([]herald.Notification, uint64, bool) {
	win := w.streams[stream]
	if len(win) == 0 {
		return nil, 0, false
	}
	head := win[len(win)-1].Seq
	if seq >= head {
		return nil, head, true // nothing after it (or a cursor ahead of the head: Feed's caller says so)
	}
	first := win[0].Seq
	if first > seq+1 {
		return nil, 0, false // the window begins after what the cursor needs next
	}
	from := int(seq + 1 - first)
	to := min(len(win), from+limit)
	out := make([]herald.Notification, to-from)
	copy(out, win[from:to]) // shares Data and Content, which nobody writes to
	return out, head, true
}

// beginPrune stops serving windows until endPrune.
func (w *recentWindow) beginPrune() {
	w.mu.Lock()
	w.pruning++
	w.mu.Unlock()
}

// endPrune serves windows again; if the prune removed notifications (or may have), every window
// is dropped first.
func (w *recentWindow) endPrune(removed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pruning--
	if removed {
		w.clearLocked()
	}
}

// clear drops every window (a new epoch).
func (w *recentWindow) clear() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.clearLocked()
}

func (w *recentWindow) clearLocked() {
	w.streams, w.order, w.entries, w.bytes = nil, nil, 0, 0
}
