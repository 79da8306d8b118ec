package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/sse"
)

// MissedType is the control event a stream sends when notifications between the client's cursor
// and what the store still holds are gone (retention), or when the cursor is unknown to the
// store. Its id moves the client's cursor past the hole, so the event is sent once.
const MissedType = herald.ControlPrefix + "missed"

// ExpiredType is the control event a stream sends before it ends because the subscriber's token
// expired.
const ExpiredType = herald.ControlPrefix + "expired"

// ReadType, SeenType and ArchivedType are the events a user's streams receive when the user's
// state of notifications changes, from any tab or device, so that every one shows the same list
// and badge. They have no id: they are not in the feed.
const (
	ReadType     = herald.ControlPrefix + "read"
	SeenType     = herald.ControlPrefix + "seen"
	ArchivedType = herald.ControlPrefix + "archived"
)

// StateFrame encodes the event telling a user's streams of sc: herald.read
// {"ids","all","read","unread","unseen"}, herald.seen {"up_to","unread","unseen"} or
// herald.archived {"ids","all","archived","unread","unseen"}. unseen is left out when it is not
// known. Ids are strings, as everywhere in the API (JavaScript numbers lose precision past 2^53).
func StateFrame(sc herald.StateChange) []byte {
	b := make([]byte, 0, 96+24*len(sc.IDs))
	event := SeenType
	if sc.Kind == herald.StateSeen {
		b = append(b, `{"up_to":"`...)
		b = strconv.AppendInt(b, sc.SeenUpTo, 10)
		b = append(b, '"')
	} else {
		b = append(b, `{"ids":[`...)
		for i, id := range sc.IDs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = strconv.AppendInt(b, id, 10)
			b = append(b, '"')
		}
		b = append(b, `],"all":`...)
		b = strconv.AppendBool(b, sc.All)
		event = ReadType
		if sc.Kind == herald.StateArchived {
			event = ArchivedType
			b = append(b, `,"archived":`...)
		} else {
			b = append(b, `,"read":`...)
		}
		b = strconv.AppendBool(b, sc.On)
	}
	b = append(b, `,"unread":`...)
	b = strconv.AppendInt(b, sc.Counts.Unread, 10)
	if sc.Counts.Unseen >= 0 {
		b = append(b, `,"unseen":`...)
		b = strconv.AppendInt(b, sc.Counts.Unseen, 10)
	}
	b = append(b, '}')
	f, _ := sse.AppendEvent(nil, "", event, b)
	return f
}

// stream serves GET /v1/stream.
//
// The subscription is registered before anything is read from the store, so nothing committed
// in between is missed; each stream's position (the cursor) then decides what is new: events at
// or below it were already sent, the next one is sent, and one beyond the next means a gap that
// is read from the store. Replay after a reconnect is the same gap, from the client's cursor.
func (a *API) stream(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		// The mux routes HEAD to GET handlers; a stream without a body would only hold a slot.
		w.Header().Set("Allow", "GET")
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "open the stream with GET")
		return
	}
	caller, err := a.opts.Auth.Subscriber(r)
	if err != nil {
		a.refuseStream(w, r, err)
		return
	}
	// A copy: the id may be a slice of the request line, which a long-lived stream would pin.
	user := strings.Clone(caller.User)
	q := r.URL.Query()
	raw := r.Header.Get("Last-Event-ID")
	if raw == "" {
		raw = q.Get("last_event_id")
	}
	var cursor herald.Cursor
	var epoch string
	if raw != "" {
		if cursor, epoch, err = herald.ParsePosition(raw); err != nil {
			a.refuseStream(w, r, err)
			return
		}
	}
	// A cursor of another epoch numbers another history (the store was restored from a backup,
	// or replaced): its sequence numbers say nothing about this one's. The client resumes where
	// this epoch began and is told so. A cursor without an epoch is taken as of this one.
	storeChanged := epoch != "" && epoch != a.epoch
	filter, err := a.parseTypes(q["types"])
	if err != nil {
		a.refuseStream(w, r, err)
		return
	}
	named := true
	if v := q.Get("named"); v != "" {
		if named, err = strconv.ParseBool(v); err != nil {
			a.refuseStream(w, r, herald.Errorf(herald.EINVALID, "named must be true or false"))
			return
		}
	}

	sub, err := a.opts.Hub.Subscribe(user)
	if err != nil {
		a.refuseStream(w, r, err)
		return
	}
	parked := false
	defer func() {
		if !parked {
			sub.Close()
		}
	}()
	// The user's preferences: broadcasts they muted are left out (conn.muted). Read once the
	// stream is admitted, so that a refused one costs no read; what arrives meanwhile waits in
	// the subscription.
	prefs, err := a.prefs.acquire(r.Context(), user)
	if err != nil {
		a.refuseStream(w, r, err)
		return
	}
	defer func() {
		if !parked {
			a.prefs.release(prefs)
		}
	}()

	c := &conn{
		api:    a,
		user:   user,
		filter: filter,
		prefs:  prefs,
		named:  named,
		sub:    sub,
		w:      w,
		rc:     http.NewResponseController(w),
		pos:    cursor,
		sent:   cursor,
	}
	c.arm()
	sub.OnOverflow(c.overflowed)
	defer func() {
		if !parked {
			c.disarm() // once parked, the stream's catch-ups arm and disarm its cut-off
		}
	}()
	var hello bool
	if raw == "" {
		// A new client starts at the present. Telling it the present as an id right away means a
		// reconnect before its first notification still resumes from here.
		if c.pos, err = a.opts.Store.Heads(r.Context(), user); err != nil {
			a.refuseStream(w, r, err)
			return
		}
		hello = true
	} else if storeChanged {
		if c.pos, err = a.opts.Store.EpochStart(r.Context(), user); err != nil {
			a.refuseStream(w, r, err)
			return
		}
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer this response
	h.Set("X-Content-Type-Options", "nosniff")
	// A stream over plain HTTP/1 leaves net/http: it is parked once caught up, holding no
	// goroutine and no buffers while idle (park.go). Any other stream keeps its handler.
	if c.nc = a.hijack(w, r); c.nc != nil {
		c.buf = appendHead(c.buf, h)
	} else {
		// The server's ReadTimeout would end a long stream; this request has no body left to read.
		_ = c.rc.SetReadDeadline(time.Time{})
		w.WriteHeader(http.StatusOK)
	}
	a.metrics.StreamsOpened.Inc()
	a.metrics.StreamsOpen.Inc()
	var end hub.Disconnect // why the stream ended, unless parked
	defer func() {
		if !parked {
			a.metrics.StreamsOpen.Dec()
			if c.nc != nil {
				c.nc.Close()
			}
			if r.Context().Err() != nil {
				err = nil // the client left: nothing to say about how its last write failed
			}
			a.ended(a.logFor(r), end, err)
		}
	}()

	c.buf = sse.AppendComment(c.buf, "herald stream")
	c.buf = sse.AppendRetry(c.buf, a.opts.Retry.Milliseconds())
	if hello {
		c.buf = sse.AppendID(c.buf, c.pos.StringIn(a.epoch))
		c.buf, _ = sse.AppendEvent(c.buf, "", herald.ControlPrefix+"connected", []byte(`{"cursor":"`+c.pos.StringIn(a.epoch)+`"}`))
		c.sent = c.pos
	}
	if storeChanged {
		c.appendMissed(reasonStoreChanged)
	}
	if err = c.flush(); err != nil {
		end = c.reason(r.Context(), err)
		return
	}
	catchUp := raw != ""
	if c.nc != nil {
		// Catch up here, where blocking on the store and on the client is fine; then park.
		if catchUp {
			if err = c.catchUpInSlot(r.Context()); err != nil {
				end = c.reason(r.Context(), err)
				if c.sub.Ended() {
					end, err = c.sub.Reason(), nil
				}
				return
			}
			catchUp = false
		}
		c.sub.Caught(c.pos)
		ri := info(r)
		c.park.reqID, c.park.start, c.park.remote, c.park.expires = "", time.Now(), r.RemoteAddr, caller.Expires
		if ri != nil {
			c.park.reqID, c.park.start = ri.id, ri.start
		}
		if parked = a.park(c); parked {
			if ri != nil {
				ri.parked = true // the parker logs the request when the stream ends
			}
			if a.afterPark != nil {
				a.afterPark(c)
			}
			return // the parker owns the subscription and the connection now
		}
		// Not parked (the server is stopping): serve it here. Without net/http reading the
		// connection, a client that leaves is noticed at the next write.
	}
	end, err = c.run(r.Context(), catchUp, caller.Expires)
}

// refuseStream answers a stream request that will not open, counting why.
func (a *API) refuseStream(w http.ResponseWriter, r *http.Request, err error) {
	a.metrics.StreamsRejected.WithLabelValues(herald.ErrorCode(err)).Inc()
	a.writeError(w, r, err)
}

// conn is the writer side of one stream.
type conn struct {
	api    *API
	user   string
	filter map[string]bool // nil: every type
	prefs  *userPrefs      // what the user muted (prefs.go)
	named  bool            // notifications carry their type as the SSE event field
	sub    *hub.Subscription
	// The stream is written through net/http (w, rc), or, once hijacked, to nc.
	w  http.ResponseWriter
	rc *http.ResponseController
	nc net.Conn

	pos  herald.Cursor // everything up to here has been handled (sent or filtered out)
	sent herald.Cursor // the id the client last received
	buf  []byte
	// owed is the size of the events deliver has taken from the queue and not yet put in buf:
	// with buf, what the stream holds that its client has not taken (Subscription.Unwritten).
	owed int
	// Of what buf holds: the commit times of the live notifications, for the delivery latency
	// once written, and how many came from the store.
	live     []time.Time
	replayed int

	cut  cutoff    // the slow-consumer cut-off of blocking writes (slow.go)
	park parkState // a parked stream's place in its shard, and its request (park.go)
}

// run serves the stream on its handler's goroutine until it ends, and says why.
func (c *conn) run(ctx context.Context, catchUp bool, expires time.Time) (hub.Disconnect, error) {
	heartbeat := time.NewTicker(c.api.opts.Heartbeat)
	defer heartbeat.Stop()
	var expired <-chan time.Time
	if !expires.IsZero() {
		t := time.NewTimer(time.Until(expires))
		defer t.Stop()
		expired = t.C
	}
	var events []*hub.Event
	if !catchUp {
		c.sub.Caught(c.pos) // a new client starts at the heads it was just told
	}
	for {
		if catchUp {
			if err := c.catchUpInSlot(ctx); err != nil {
				if c.sub.Ended() {
					return c.sub.Reason(), nil
				}
				return c.reason(ctx, err), err
			}
			// The hub compares what it has seen of this user's streams with the store (after a bus
			// outage); tell it where this stream stands, in case it has seen nothing yet.
			c.sub.Caught(c.pos)
			catchUp = false
		}
		var err error
		select {
		case <-ctx.Done():
			return hub.ClientGone, ctx.Err()
		case <-c.sub.Done():
			return c.sub.Reason(), nil
		case <-expired:
			// The credential is no longer accepted; the client reconnects with a fresh one and
			// resumes from its last id.
			c.buf = c.appendControl(c.buf, expiredFrame)
			return hub.CredentialsExpired, c.flush()
		case <-heartbeat.C:
			c.buf = sse.AppendComment(c.buf, "")
			err = c.flush()
		case <-c.sub.Ready():
			var overflowed bool
			events, overflowed = c.sub.Take(events)
			// After an overflow the queue misses events; the store has them all.
			if catchUp = overflowed; catchUp {
				continue
			}
			if catchUp, err = c.deliver(events); err == nil && !catchUp {
				err = c.flush()
			}
		}
		if err != nil {
			return c.reason(ctx, err), err
		}
	}
}

// deliver writes the live events that follow the cursor and reports whether one left a gap.
// It writes whenever flushSize is buffered, so a queue of large events never piles up in memory.
func (c *conn) deliver(events []*hub.Event) (gap bool, err error) {
	for _, ev := range events {
		c.owed += ev.Size()
	}
	defer func() { c.owed = 0 }() // what is left is written by the caller, or read again from the store
	for _, ev := range events {
		c.owed -= ev.Size()
		if f := ev.Control(); f != nil {
			c.buf = c.appendControl(c.buf, f)
			continue
		}
		have := c.pos.Of(ev.User)
		switch {
		case ev.Seq <= have:
			continue
		case ev.Seq > have+1:
			return true, nil
		}
		c.pos = c.pos.With(ev.User, ev.Seq)
		if c.wanted(ev.Type) && !c.muted(&ev.Notification) {
			if ev.Topic != "" {
				// One of a topic publish's notifications, each in its own stream: their frames
				// differ only in the id (frame.go).
				c.buf = c.appendID(c.buf)
				c.buf = c.api.appendTopicFrame(c.buf, &ev.Notification, c.named)
			} else {
				c.buf = c.appendEvent(c.buf, ev.Frame(c.named, encodeNotification))
			}
			c.live = append(c.live, ev.CreatedAt)
			if c.park.shard != nil {
				continue // parked: the shard writes what deliver buffers, without blocking
			}
			if err := c.flushAt(flushSize); err != nil {
				return false, err
			}
		}
	}
	return false, nil
}

// flushSize is how much a stream buffers before writing, during replay or a burst.
const flushSize = 32 << 10

// flushAt flushes once at least n bytes are buffered.
func (c *conn) flushAt(n int) error {
	if len(c.buf) < n {
		return nil
	}
	return c.flush()
}

func (c *conn) wanted(typ string) bool { return c.filter == nil || c.filter[typ] }

func (c *conn) appendEvent(dst, frame []byte) []byte {
	return append(c.appendID(dst), frame...)
}

// appendID appends the id line of the stream's position, the cursor of the event that follows.
func (c *conn) appendID(dst []byte) []byte {
	dst = append(dst, "id: "...)
	dst = c.pos.AppendIn(dst, c.api.epoch)
	dst = append(dst, '\n')
	c.sent = c.pos
	return dst
}

// appendControl appends a control event's frame with the id the client last received: the
// event does not move the cursor, and it must not leave the client without one either. A client
// that keeps the id of the last event of each response (not EventSource, which keeps the last id
// it saw on any response; but go-sse's Read and many hand-written readers do) would otherwise,
// when a control event is the first thing a resumed stream sends, resume from no id at all: from
// the present, skipping everything published meanwhile, with no herald.missed to say so.
func (c *conn) appendControl(dst, frame []byte) []byte {
	dst = append(dst, "id: "...)
	dst = c.sent.AppendIn(dst, c.api.epoch)
	dst = append(dst, '\n')
	return append(dst, frame...)
}

// catchUpInSlot is catchUp on the stream's own goroutine, within the server's bound on
// catch-ups (catchup.go).
func (c *conn) catchUpInSlot(ctx context.Context) error {
	if err := c.api.catchUps.acquire(ctx, c.sub.Done()); err != nil {
		return err
	}
	defer c.api.catchUps.release()
	return c.catchUp(ctx)
}

// catchUp sends everything the store holds after the cursor, a page at a time.
func (c *conn) catchUp(ctx context.Context) error {
	page := c.api.opts.ReplayPage
	for {
		fp, err := c.api.opts.Store.Feed(ctx, c.user, c.pos, page)
		if err != nil {
			return fmt.Errorf("%w: %w", errStore, err)
		}
		c.checkHoles(&fp)
		// Merge the streams in commit order, but only as far as both are known: past the last
		// event of a full page, the other stream could overtake what the next page holds.
		limit := int64(1<<63 - 1)
		if len(fp.User) == page {
			limit = fp.User[page-1].ID
		}
		if len(fp.Broadcast) == page {
			limit = min(limit, fp.Broadcast[page-1].ID)
		}
		u, b := fp.User, fp.Broadcast
		for {
			var n *herald.Notification
			switch {
			case len(u) > 0 && (len(b) == 0 || u[0].ID < b[0].ID):
				n, u = &u[0], u[1:]
			case len(b) > 0:
				n, b = &b[0], b[1:]
			}
			if n == nil || n.ID > limit {
				break
			}
			if n.Seq > c.pos.Of(n.User)+1 {
				// Retention removes the oldest of a stream, but a clock step could make it remove
				// from the middle: a hole is a hole wherever it is, and the client is told.
				c.pos = c.pos.With(n.User, n.Seq-1)
				c.appendMissed(reasonRetention)
			}
			c.pos = c.pos.With(n.User, n.Seq)
			if c.wanted(n.Type) && !c.muted(n) {
				c.buf = c.appendEvent(c.buf, encodeNotification(n, c.named))
				c.replayed++
			}
			if err := c.flushAt(flushSize); err != nil {
				return err
			}
		}
		more := limit != 1<<63-1
		if !more && c.sent != c.pos {
			// Filtered-out notifications still move the cursor; an id-only frame lets the next
			// reconnect start past them.
			c.buf = sse.AppendID(c.buf, c.pos.StringIn(c.api.epoch))
			c.buf = append(c.buf, '\n')
			c.sent = c.pos
		}
		if err := c.flush(); err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
}

// checkHoles finds the parts of each stream between the cursor and the first notification kept
// that are no longer in the store, moves the cursor past them, and tells the client.
func (c *conn) checkHoles(fp *herald.FeedPage) {
	reason := ""
	lost := func() {
		if reason == "" {
			reason = reasonRetention
		}
	}
	check := func(stream string, ns []herald.Notification, head uint64) {
		have := c.pos.Of(stream)
		switch {
		case have > head:
			// A cursor from the future: another server's, or a store restored from a backup.
			reason = reasonUnknownCursor
			c.pos = c.pos.With(stream, head)
		case len(ns) > 0 && ns[0].Seq > have+1:
			lost()
			c.pos = c.pos.With(stream, ns[0].Seq-1)
		case len(ns) == 0 && head > have:
			lost()
			c.pos = c.pos.With(stream, head)
		}
	}
	check(c.user, fp.User, fp.Heads.User)
	check(herald.BroadcastStream, fp.Broadcast, fp.Heads.Broadcast)
	if reason == "" {
		return
	}
	c.appendMissed(reason)
}

// Why a stream sends herald.missed.
const (
	// reasonRetention: notifications after the cursor were removed by retention.
	reasonRetention = "retention"
	// reasonUnknownCursor: the cursor is ahead of the store (taken from another server?).
	reasonUnknownCursor = "unknown_cursor"
	// reasonStoreChanged: the cursor is of another epoch: the store was restored from a backup
	// or replaced since. What the client saw may no longer exist, and sequence numbers were
	// given anew; it resumes where this epoch began.
	reasonStoreChanged = "store_changed"
)

// appendMissed tells the client that notifications between its cursor and c.pos are gone, with
// c.pos as the event's id so its next reconnect starts past the hole.
func (c *conn) appendMissed(reason string) {
	message := "some notifications after your cursor are no longer kept; refresh from the inbox"
	switch reason {
	case reasonUnknownCursor:
		message = "your cursor is ahead of what this server has stored; refresh from the inbox"
	case reasonStoreChanged:
		message = "the server's store was restored or replaced since your cursor was issued; what follows is what it holds since, refresh the rest from the inbox"
	}
	data := []byte(`{"reason":"`)
	data = append(data, reason...)
	data = append(data, `","message":"`...)
	data = append(data, message...)
	data = append(data, `","cursor":"`...)
	data = c.pos.AppendIn(data, c.api.epoch)
	data = append(data, `"}`...)
	c.buf = sse.AppendID(c.buf, c.pos.StringIn(c.api.epoch))
	c.buf, _ = sse.AppendEvent(c.buf, "", MissedType, data)
	c.sent = c.pos
}

// flush writes what is buffered, bounded by the write deadline: a peer that stopped reading
// cannot hold this goroutine longer than WriteTimeout, nor, once its buffer overflows, longer
// than slowWriteGrace (the cut-off).
func (c *conn) flush() error {
	if len(c.buf) == 0 {
		c.sub.Unwritten(c.owed)
		return nil
	}
	if err := c.setWriteDeadline(time.Now().Add(c.api.opts.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	// Checked after setting the deadline: an overflow after this point moves it back to now.
	if c.cut.kicked.Load() {
		return errSlow
	}
	c.sub.Unwritten(c.owed + len(c.buf))
	c.cut.writing.Store(time.Now().UnixNano())
	var err error
	if c.nc != nil {
		_, err = c.nc.Write(c.buf)
	} else if _, err = c.w.Write(c.buf); err == nil {
		err = c.rc.Flush()
	}
	c.cut.writing.Store(0)
	c.sub.Unwritten(c.owed)
	if err != nil && c.cut.kicked.Load() {
		err = errSlow
	}
	if err == nil {
		c.written()
	}
	c.live, c.replayed = c.live[:0], 0
	c.buf = c.buf[:0]
	if cap(c.buf) > 64<<10 {
		c.buf = nil // a large replay page must not stay pinned to an idle connection
	}
	return err
}

func (c *conn) setWriteDeadline(t time.Time) error {
	if c.nc != nil {
		return c.nc.SetWriteDeadline(t)
	}
	return c.rc.SetWriteDeadline(t)
}

// written counts what a successful flush delivered.
func (c *conn) written() {
	m := c.api.metrics
	if len(c.live) > 0 {
		now := time.Now()
		for _, t := range c.live {
			m.DeliveryLatency.Observe(now.Sub(t).Seconds())
		}
		m.Delivered.Add(float64(len(c.live)))
	}
	if c.replayed > 0 {
		m.Replayed.Add(float64(c.replayed))
	}
}

func (a *API) parseTypes(values []string) (map[string]bool, error) {
	if len(values) == 0 {
		return nil, nil
	}
	filter := map[string]bool{}
	for _, v := range values {
		for _, t := range splitList(v) {
			if err := herald.ValidateType(t); err != nil {
				return nil, err
			}
			filter[t] = true
		}
	}
	if len(filter) == 0 {
		return nil, herald.Errorf(herald.EINVALID, "types must name at least one type")
	}
	if len(filter) > a.opts.MaxTypes {
		return nil, herald.Errorf(herald.EINVALID, "types names at most %d types", a.opts.MaxTypes)
	}
	return filter, nil
}

// encodeNotification is the event every subscriber of n receives, less its id line: the type as
// the SSE event name (unless named is false: then EventSource's onmessage gets it) and the JSON
// envelope as data.
func encodeNotification(n *herald.Notification, named bool) []byte {
	// Sized once: the envelope's fixed text, id and time are under 128 bytes.
	env := appendEnvelope(make([]byte, 0, 128+len(n.Type)+n.Content.Size()+len(n.Data)), n)
	typ := ""
	if named {
		typ = n.Type
	}
	b, _ := sse.AppendEvent(make([]byte, 0, 24+len(typ)+len(env)), "", typ, env)
	return b
}

// appendEnvelope appends {"id","type","title","body","url","icon","avatar","actions","group",
// "data","created_at","broadcast","topic","critical"}, the content fields, topic and critical
// only when present: a notification without content has the envelope it had before content
// existed, byte for byte. Types are
// validated to a JSON-safe alphabet and data is compact JSON, so only content needs escaping.
func appendEnvelope(b []byte, n *herald.Notification) []byte {
	b = append(b, `{"id":"`...)
	b = strconv.AppendInt(b, n.ID, 10)
	b = append(b, `","type":"`...)
	b = append(b, n.Type...)
	b = append(b, '"')
	b = n.Content.AppendJSONFields(b)
	b = append(b, `,"data":`...)
	b = append(b, n.Data...)
	b = append(b, `,"created_at":"`...)
	b = n.CreatedAt.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","broadcast":`...)
	b = strconv.AppendBool(b, n.Broadcast())
	if n.Topic != "" {
		// Topic names are validated to a JSON-safe alphabet (herald.ValidateTopic).
		b = append(b, `,"topic":"`...)
		b = append(b, n.Topic...)
		b = append(b, '"')
	}
	if n.Critical {
		b = append(b, `,"critical":true`...) // absent when false: envelopes stay as they were
	}
	return append(b, '}')
}
