package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/internal/hub"
)

// The slow-consumer policy: one rule for every stream, parked or on its own goroutine.
//
// A stream holds at most --stream-buffer bytes for its client (hub.Options.BufferBytes): the
// events queued for it, and what it took from the queue that the client's socket has not
// accepted yet (reported with Subscription.Unwritten). An event that does not fit overflows the
// queue, which is dropped. Then:
//
//   - if the stream's write is not blocked, the client is reading, and the stream was only
//     behind a burst larger than its buffer: it catches up from the store (a read, not a
//     disconnect);
//   - if its write has been blocked for slowWriteGrace, the client's socket buffers (often
//     megabytes) are full and it is not reading: the stream ends as hub.SlowConsumer, and the
//     client catches up from the store when it reconnects.
//
// A write blocked for the write timeout ends the stream as hub.WriteTimeout, overflow or not.
// verdict is the rule; the goroutine path applies it to its blocking writes (cutoff), the
// parked path to the bytes its socket has not taken (shard.judge). Every stream's end is logged
// and counted by reason in one place (API.ended).

// slowWriteGrace is how long a write may stay blocked while events for the stream are being
// dropped before the client counts as slow. A blocked write means the socket's buffers are full:
// such a client is far behind, not briefly busy.
const slowWriteGrace = 250 * time.Millisecond

// verdict applies the policy to a stream whose write has been blocked since since (unix ns; 0:
// it is not), now. It returns why the stream must end, or 0 and how long until the verdict could
// change without another overflow.
func (a *API) verdict(now, since int64, overflowing bool) (hub.Disconnect, time.Duration) {
	if since == 0 {
		return 0, 0
	}
	stuck := time.Duration(now - since)
	switch {
	case stuck >= a.opts.WriteTimeout:
		return hub.WriteTimeout, 0
	case overflowing && stuck >= slowWriteGrace:
		return hub.SlowConsumer, 0
	case overflowing:
		return 0, slowWriteGrace - stuck
	}
	return 0, a.opts.WriteTimeout - stuck
}

// errSlow is the error of a write the cut-off ended.
var errSlow = errors.New("client too slow: its buffer overflowed while its write was blocked")

// errStore marks a catch-up's failure to read the store.
var errStore = errors.New("catch-up could not read the store")

// cutoff applies the policy to the blocking writes of a stream's handler, or of a parked
// stream's catch-up: when it says so, the write's deadline is moved to now, and the write fails.
// The write timeout itself is each write's deadline.
type cutoff struct {
	writing atomic.Int64 // when the write in progress began (unix ns); 0 between writes
	kicked  atomic.Bool  // the cut-off ended the stream

	mu    sync.Mutex
	timer *time.Timer // a check due when the grace of a blocked write is over
	armed bool        // a blocking writer has the stream (the connection is this stream's)
}

// arm lets the cut-off act, for a writer that starts to write blocking.
func (c *conn) arm() {
	c.cut.mu.Lock()
	c.cut.armed = true
	c.cut.mu.Unlock()
}

// disarm stops any pending check: after it the writer may give the connection away (to a
// shard, or, after the handler returns, to net/http).
func (c *conn) disarm() {
	c.cut.mu.Lock()
	defer c.cut.mu.Unlock()
	c.cut.armed = false
	if c.cut.timer != nil {
		c.cut.timer.Stop()
		c.cut.timer = nil
	}
}

// overflowed runs on the publisher's goroutine for each event dropped from this stream's
// overflowing queue while a blocking writer has it.
func (c *conn) overflowed() {
	start := c.cut.writing.Load()
	if start == 0 {
		return
	}
	d, wait := c.api.verdict(time.Now().UnixNano(), start, true)
	switch {
	case d == hub.SlowConsumer:
		c.kickIfStuck(start)
	case d == 0 && wait > 0:
		// Not yet: check when the grace is over, if the same write is still blocked then (no
		// further event need arrive to notice).
		c.cut.mu.Lock()
		if c.cut.timer == nil && c.cut.armed {
			c.cut.timer = time.AfterFunc(wait, func() { c.kickIfStuck(start) })
		}
		c.cut.mu.Unlock()
	}
}

// kickIfStuck ends the stream if the write that began at start is still in progress.
func (c *conn) kickIfStuck(start int64) {
	c.cut.mu.Lock()
	defer c.cut.mu.Unlock()
	c.cut.timer = nil
	// Once disarmed, the connection may serve another request or another writer: never touch it.
	if !c.cut.armed || c.cut.writing.Load() != start {
		return
	}
	if c.cut.kicked.CompareAndSwap(false, true) {
		_ = c.setWriteDeadline(time.Now())
	}
}

// reason says why a stream's blocking writer (its handler, or a catch-up) ended it with err.
func (c *conn) reason(ctx context.Context, err error) hub.Disconnect {
	switch {
	case c.cut.kicked.Load() || errors.Is(err, errSlow):
		return hub.SlowConsumer
	case isTimeout(err):
		return hub.WriteTimeout
	case ctx.Err() != nil:
		return hub.ClientGone // the request's context: the client left
	case errors.Is(err, errStore):
		return hub.StoreFailed
	}
	return hub.ClientGone // a failed write: the connection broke
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ended logs and counts the end of a stream, by reason: every stream ends here once, whatever
// served it.
func (a *API) ended(log *slog.Logger, d hub.Disconnect, err error) {
	if int(d) < len(a.disconnects) && a.disconnects[d] != nil {
		a.disconnects[d].Inc()
	}
	switch {
	case d.Slow():
		a.slowDisconnects.Add(1)
		a.metrics.SlowDisconnects.Inc()
		log.Info("stream closed: client too slow", "reason", d.String(), "hub", a.opts.Hub.Stats())
	case err != nil:
		log.Debug("stream closed", "reason", d.String(), "err", err)
	}
}
