package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	sse "github.com/tmaxmax/go-sse"
)

// Event is what a subscription yields: a notification, or a message from Herald.
type Event struct {
	// Cursor is the feed position after this event: pass it as SubscribeOptions.LastEventID to
	// resume after it. Control events without an id carry the cursor in effect.
	Cursor string
	// Type is the notification's type, or a control event's name: herald.missed (notifications
	// after the cursor are no longer kept: reload from the inbox), herald.read (the read state
	// changed elsewhere), herald.expired (the token expired; the subscription renews it if it
	// has a token source, and reconnects).
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
	// Default 1 minute; it must exceed the server's --heartbeat (15s by default).
	IdleTimeout time.Duration
	// MaxEventSize bounds one event (default 4 MiB).
	MaxEventSize int
}

// Subscribe follows the subscriber's feed: it yields every notification and control event, in
// order, reconnecting after failures and resuming from the last cursor, so that nothing is
// missed and nothing comes twice. It ends when ctx ends or the loop breaks, yielding nothing
// more; or, after yielding it, on an error that retrying cannot fix (bad credentials, a refused
// parameter: a 4xx other than 429).
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

func (s *subscription) run(ctx context.Context, yield func(Event, error) bool) {
	s.setState(Connecting, nil)
	backoff := s.o.MinBackoff
	for {
		delivered, stop, err := s.connect(ctx, yield)
		if stop || ctx.Err() != nil {
			return
		}
		var he *Error
		if errors.As(err, &he) && !he.Temporary() {
			yield(Event{}, err)
			return
		}
		if delivered {
			backoff = s.o.MinBackoff // the connection worked: the next failure starts afresh
		}
		wait := rand.N(backoff) + backoff/2 // jitter, so that clients cut together do not return together
		if he != nil && he.RetryAfter > wait {
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

// connect runs one connection until it fails or ends. delivered: the server accepted it;
// stop: the consumer broke the loop.
func (s *subscription) connect(ctx context.Context, yield func(Event, error) bool) (delivered, stop bool, err error) {
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
	// A server that accepts the connection but never answers counts as idle too.
	headers := time.AfterFunc(s.o.IdleTimeout, cancel)
	resp, err := s.c.http.Do(req)
	headers.Stop()
	if err != nil {
		return false, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, false, readError(resp)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return false, false, &Error{Status: resp.StatusCode, Code: "not_a_stream", Message: "the answer is " + ct + ", not an event stream: is this Herald?"}
	}
	s.setState(Live, nil)

	body := &idleReader{r: resp.Body, timeout: s.o.IdleTimeout, cancel: cancel}
	defer body.stop()
	for ev, err := range sse.Read(body, &sse.ReadConfig{MaxEventSize: s.o.MaxEventSize}) {
		if err != nil {
			if body.idle() {
				err = errIdle
			}
			return true, false, err
		}
		if ev.LastEventID != "" {
			s.cursor = ev.LastEventID
		}
		if ev.Type == "" && ev.Data == "" {
			continue // only moves the cursor (notifications the type filter left out)
		}
		out := Event{Cursor: s.cursor, Type: ev.Type, Data: json.RawMessage(ev.Data)}
		switch {
		case ev.Type == "herald.connected":
			continue // its id is the cursor, taken above
		case ev.Type == "" || !strings.HasPrefix(ev.Type, "herald."):
			var n Notification
			if err := json.Unmarshal([]byte(ev.Data), &n); err != nil {
				return true, false, errors.New("herald: an event's data is not a notification: " + err.Error())
			}
			out.Notification, out.Type = &n, n.Type
		}
		if !yield(out, nil) {
			return true, true, nil
		}
		if ev.Type == "herald.expired" {
			return true, false, errors.New("herald: the subscriber's token expired")
		}
	}
	if body.idle() {
		return true, false, errIdle
	}
	if ctx.Err() == nil {
		return true, false, io.ErrUnexpectedEOF // the server ended the stream (a restart, a drain)
	}
	return true, false, ctx.Err()
}

var errIdle = errors.New("herald: nothing received within the idle timeout; reconnecting")

// idleReader cancels its request when no read returns data for timeout.
type idleReader struct {
	r       io.Reader
	timeout time.Duration
	cancel  context.CancelFunc

	once  sync.Once
	timer *time.Timer
	mu    sync.Mutex
	fired bool
}

func (r *idleReader) Read(p []byte) (int, error) {
	r.once.Do(func() {
		r.timer = time.AfterFunc(r.timeout, func() {
			r.mu.Lock()
			r.fired = true
			r.mu.Unlock()
			r.cancel()
		})
	})
	n, err := r.r.Read(p)
	if n > 0 {
		r.timer.Reset(r.timeout)
	}
	return n, err
}

func (r *idleReader) idle() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fired
}

func (r *idleReader) stop() {
	if r.timer != nil {
		r.timer.Stop()
	}
}
