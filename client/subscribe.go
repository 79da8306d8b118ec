package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	sse "github.com/tmaxmax/go-sse"
)

// Event is what a subscription yields: a notification, or a message from Herald.
type Event struct {
	// Cursor is the feed position after this event: pass it as SubscribeOptions.LastEventID to
	// resume after it. Control events without an id carry the cursor in effect.
	Cursor string
	// Type is the notification's type, or a control event's name: herald.missed (notifications
	// after the cursor are no longer kept: reload from the inbox), herald.read, herald.seen and
	// herald.archived (the subscriber's state of notifications changed, here or elsewhere; the
	// data has the counts after it), herald.expired (the token expired; the subscription renews
	// it if it has a token source, and reconnects).
	Type string
	// Notification is set for notifications, nil for control events.
	Notification *Notification
	// Data is a control event's data (see docs/api.md); for a notification, its envelope.
	Data json.RawMessage
}

// Control reports whether the event comes from Herald rather than a publisher.
func (e Event) Control() bool { return e.Notification == nil }

// State is the state of a subscription's connection.
type State int

const (
	Connecting   State = iota // opening the first connection
	Live                      // connected: events arrive as they are published
	Reconnecting              // the connection failed or ended; waiting, then resuming
)

func (s State) String() string {
	return [...]string{"connecting", "live", "reconnecting"}[s]
}

// SubscribeOptions tune a subscription.
type SubscribeOptions struct {
	// LastEventID resumes after this cursor; empty starts at the present ("0.0": the whole feed
	// still kept).
	LastEventID string
	// Types keeps only these notification types (control events always come).
	Types []string
	// OnState is told of every change of the connection's state, with the error that caused a
	// reconnection (nil otherwise). It runs on the subscription's goroutine: keep it short.
	OnState func(State, error)
	// MinBackoff and MaxBackoff bound the wait before a reconnection, which doubles from one to
	// the other (with jitter) while attempts fail. Defaults: 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// IdleTimeout ends a connection on which nothing (not even the server's heartbeat comment)
	// arrived for this long, and reconnects: a dead peer behind a NAT gives no other sign.
	// Default 1 minute; it must exceed the server's --heartbeat (15s by default). The time the
	// loop's body spends on an event does not count.
	IdleTimeout time.Duration
	// MaxEventSize bounds one event, and one line (default 4 MiB). A larger event ends the
	// subscription with an error: it would come back on every reconnection.
	MaxEventSize int
}

// Subscribe follows the subscriber's feed: it yields every notification and control event, in
// order, reconnecting after failures and resuming from the last cursor, so that nothing is
// missed and nothing comes twice. It ends when ctx ends or the loop breaks, yielding nothing
// more; or, after yielding it, on an error that retrying cannot fix: bad credentials, a refused
// parameter (a 4xx other than 408 and 429), a cursor that cannot be sent, an event larger than
// MaxEventSize or one that is not a notification (each would come back on every reconnection).
//
// Each call of the returned sequence is a new subscription that starts at o.LastEventID.
func (c *Client) Subscribe(ctx context.Context, o SubscribeOptions) iter.Seq2[Event, error] {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = time.Minute
	}
	if o.MaxEventSize <= 0 {
		o.MaxEventSize = 4 << 20
	}
	return func(yield func(Event, error) bool) {
		s := &subscription{c: c, o: o, cursor: o.LastEventID, state: -1}
		s.run(ctx, yield)
	}
}

type subscription struct {
	c      *Client
	o      SubscribeOptions
	cursor string
	state  State
}

func (s *subscription) setState(st State, err error) {
	if st == s.state && err == nil {
		return
	}
	s.state = st
	if s.o.OnState != nil {
		s.o.OnState(st, err)
	}
}

// healthyAfter is how long a connection that delivered no event must have lasted for the
// backoff to start afresh: a server or proxy in trouble that accepts streams and closes them at
// once must see its clients slow down, not return twice a second each.
const healthyAfter = time.Second

func (s *subscription) run(ctx context.Context, yield func(Event, error) bool) {
	s.setState(Connecting, nil)
	backoff := s.o.MinBackoff
	for {
		healthy, stop, err := s.connect(ctx, yield)
		if stop || ctx.Err() != nil {
			return
		}
		if permanent(err) {
			yield(Event{}, err)
			return
		}
		if healthy {
			backoff = s.o.MinBackoff // the connection worked: the next failure starts afresh
		}
		wait := rand.N(backoff) + backoff/2 // jitter, so that clients cut together do not return together
		var he *Error
		if errors.As(err, &he) && he.RetryAfter > wait {
			wait = he.RetryAfter
		}
		s.setState(Reconnecting, err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, s.o.MaxBackoff)
	}
}

// permanentError is an error that reconnecting cannot fix.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// permanent reports whether retrying cannot fix err.
func permanent(err error) bool {
	var pe permanentError
	var he *Error
	return errors.As(err, &pe) || (errors.As(err, &he) && !he.Temporary())
}

// connect runs one connection until it fails or ends. healthy: it delivered an event or lasted
// healthyAfter; stop: the consumer broke the loop.
func (s *subscription) connect(ctx context.Context, yield func(Event, error) bool) (healthy, stop bool, err error) {
	if strings.ContainsFunc(s.cursor, isControl) {
		// A header cannot carry it (a cursor read from a file with its newline): every attempt
		// would fail the same way.
		return false, false, permanentError{fmt.Errorf("herald: the cursor %q contains control characters", s.cursor)}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q := url.Values{}
	if len(s.o.Types) > 0 {
		q.Set("types", strings.Join(s.o.Types, ","))
	}
	req, err := s.c.request(ctx, http.MethodGet, "/v1/stream", q, nil)
	if err != nil {
		return false, false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if s.cursor != "" {
		req.Header.Set("Last-Event-ID", s.cursor)
	}
	// The watchdog also covers the wait for the answer: a server that accepts the connection
	// but never answers counts as idle too.
	wd := newWatchdog(s.o.IdleTimeout, cancel)
	defer wd.stop()
	resp, err := s.c.http.Do(req)
	if err != nil {
		if wd.fired() {
			err = errIdle
		}
		return false, false, err
	}
	defer resp.Body.Close()
	wd.kick() // the answer came: the timeout now runs on the body
	if resp.StatusCode != http.StatusOK {
		return false, false, readError(resp)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return false, false, &Error{Status: resp.StatusCode, Code: "not_a_stream", Message: "the answer is " + resp.Header.Get("Content-Type") + ", not an event stream: is this Herald?"}
	}
	s.setState(Live, nil)
	opened := time.Now()
	defer func() { healthy = healthy || time.Since(opened) >= healthyAfter }()

	body := &watchedReader{r: resp.Body, wd: wd}
	for ev, err := range sse.Read(body, &sse.ReadConfig{MaxEventSize: s.o.MaxEventSize}) {
		if err != nil {
			switch {
			case errors.Is(err, bufio.ErrTooLong):
				// The same bytes would come back on every reconnection.
				return healthy, false, permanentError{fmt.Errorf("herald: an event after cursor %q is larger than MaxEventSize (%d bytes): %w", s.cursor, s.o.MaxEventSize, err)}
			case wd.fired():
				err = errIdle
			}
			return healthy, false, err
		}
		cursor := s.cursor
		if ev.LastEventID != "" {
			cursor = ev.LastEventID
		}
		if ev.Data == "" {
			// An event without data is not dispatched (the SSE specification); an id-only
			// frame (notifications the type filter left out) only moves the cursor.
			s.cursor, healthy = cursor, true
			continue
		}
		out := Event{Cursor: cursor, Type: ev.Type, Data: json.RawMessage(ev.Data)}
		switch {
		case ev.Type == "herald.connected":
			s.cursor, healthy = cursor, true // its id is the cursor
			continue
		case !strings.HasPrefix(ev.Type, "herald."):
			n := new(Notification)
			if err := json.Unmarshal([]byte(ev.Data), n); err != nil || n.ID == "" {
				// The cursor stays before it: skipping it would be a silent gap, and it would
				// come back the same on every reconnection.
				if err == nil {
					err = errors.New("no id")
				}
				return healthy, false, permanentError{fmt.Errorf("herald: the event after cursor %q is not a notification: %w", s.cursor, err)}
			}
			out.Notification, out.Type = n, n.Type
		}
		s.cursor, healthy = cursor, true
		// The consumer's time is not the server's silence.
		wd.pause()
		if !yield(out, nil) {
			return true, true, nil
		}
		wd.kick()
		if ev.Type == "herald.expired" {
			return true, false, errExpired
		}
	}
	if wd.fired() {
		return healthy, false, errIdle
	}
	if ctx.Err() == nil {
		return healthy, false, io.ErrUnexpectedEOF // the server ended the stream (a restart, a drain)
	}
	return healthy, false, ctx.Err()
}

var (
	errIdle    = errors.New("herald: nothing received within the idle timeout; reconnecting")
	errExpired = errors.New("herald: the subscriber's token expired")
)

// isControl reports whether r cannot appear in an HTTP header value.
func isControl(r rune) bool { return r < ' ' || r == 0x7f }

// watchdog cancels a connection on which nothing arrived for its timeout.
type watchdog struct {
	timeout time.Duration
	timer   *time.Timer
	done    atomic.Bool
}

func newWatchdog(timeout time.Duration, cancel context.CancelFunc) *watchdog {
	w := &watchdog{timeout: timeout}
	w.timer = time.AfterFunc(timeout, func() {
		w.done.Store(true)
		cancel()
	})
	return w
}

// kick starts the timeout again.
func (w *watchdog) kick() { w.timer.Reset(w.timeout) }

// pause stops the timeout until the next kick.
func (w *watchdog) pause() { w.timer.Stop() }

func (w *watchdog) stop() { w.timer.Stop() }

// fired reports whether the timeout cancelled the connection.
func (w *watchdog) fired() bool { return w.done.Load() }

// watchedReader kicks its watchdog whenever a read returns data.
type watchedReader struct {
	r  io.Reader
	wd *watchdog
}

func (r *watchedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.wd.kick()
	}
	return n, err
}
