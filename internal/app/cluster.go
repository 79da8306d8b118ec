package app

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/bus"
	"github.com/heraldhq/herald/internal/httpapi"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/metrics"
)

// cluster connects this node to the others that share its store. Every commit, this node's
// included, reaches the hub through the bus, so that every node delivers commits in the one order
// the bus gives them; a commit is on the bus before its publisher is answered, so a publisher's
// next notification can never overtake it, even in another stream. The bus is at most once:
// the hub is resynced with the store after every bus (re)subscription, every ResyncInterval
// (up to the heads of the previous one, so that the bus has delivered what it carries), and
// every second while the bus is down, so the store, not the bus, decides what a stream holds.
type cluster struct {
	bus      herald.Bus // nil: no bus; commits of other nodes arrive by resync only
	origin   string     // this node's store (herald.Identity.Origin): the only one it delivers
	hub      *hub.Hub
	log      *slog.Logger
	m        *metrics.Metrics
	interval time.Duration

	// prefs are told of changes of users' preferences, from any node; set once the API exists,
	// before the cluster starts.
	prefs interface {
		PreferencesChanged(user string)
		ReloadPreferences()
	}

	resync  chan struct{} // has a value when a resync is wanted now
	busDown atomic.Bool   // a commit's publish failed for publishWait; until a ping or a subscription

	// settle is how long a node holds after it subscribes again before it resyncs
	// (--bus-settle): the nodes of a cluster come back on the bus one after another (each
	// client retries on its own schedule), and a node still off it commits what only the store
	// has; a node back earlier must not deliver what the others publish before it has read
	// those commits, which may precede them (publish order across a user's two streams,
	// docs/design.md). A node back later than this after another may still let the other
	// nodes' notifications overtake its own commits of that time.
	settle time.Duration
	// settleUntil (unix ns) delays the resync after a bus resubscription (see settle).
	settleUntil atomic.Int64
	subscribed  atomic.Bool // the bus subscribed once: later subscriptions follow a loss

	// unannounced are this node's commits that did not go on the bus (it was down), kept to
	// go on it, in commit order, before the node's next commit does (see committed). pubMu
	// orders the node's bus publishes: the store's commit loop and retried publishes
	// (announce.go) both publish.
	pubMu            sync.Mutex
	unannounced      []herald.Notification
	unannouncedBytes int // of their data

	// When a warning about foreign or undecodable messages was last logged (unix ns): a
	// neighbour on the channel must not flood the log.
	foreignWarned, decodeWarned atomic.Int64

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// publishTimeout bounds the wait for the bus of a state change or a change of preferences: a
// display hint, which a bus that does not answer loses.
const publishTimeout = 250 * time.Millisecond

// publishWait bounds the wait for the bus on the commit path: a publish that fails is tried
// again until then. Only then is the node's bus taken as down, and its commits answered without
// being on it (each is committed: the other nodes read it by resync). A confirmation that is
// late, or a broker connection cut and dialled again at once, is not an outage: a commit
// answered before it is on the bus could be overtaken, on the other nodes, by its publisher's
// next notification, published on another node whose bus is fine. Once the bus is taken as
// down, commits do not wait for it (until a ping or a subscription says it is back): waiting
// for a bus that does not answer would hold every group commit.
const publishWait = time.Second

// maxUnannounced and maxUnannouncedBytes (of data) bound the commits a node keeps while its
// bus is down to publish them when it is back. Beyond, they are dropped: the other nodes read
// them by resync (and may then deliver them after what this node publishes next).
const (
	maxUnannounced      = 4096
	maxUnannouncedBytes = 4 << 20
)

func newCluster(bus herald.Bus, origin herald.Identity, h *hub.Hub, log *slog.Logger, m *metrics.Metrics, interval, settle time.Duration) *cluster {
	return &cluster{bus: bus, origin: origin.Origin(), hub: h, log: log, m: m, interval: interval, settle: settle, resync: make(chan struct{}, 1)}
}

// warnEvery is the least time between two warnings of one kind about what arrives on the bus.
const warnEvery = time.Minute

// warnOnce logs a warning unless one was logged through last less than warnEvery ago.
func (c *cluster) warnOnce(last *atomic.Int64, msg string, args ...any) {
	now := time.Now().UnixNano()
	prev := last.Load()
	if prev != 0 && now-prev < int64(warnEvery) || !last.CompareAndSwap(prev, now) {
		return
	}
	c.log.Warn(msg, args...)
}

// committed takes a commit of this node: on the bus when there is one (the hub gets it back
// from there, in the bus's order), else straight to the hub.
//
// While the bus is down the commit goes straight to this node's hub, and to the other nodes by
// their resyncs: waiting for a bus that does not answer would hold every group commit.
func (c *cluster) committed(ns []herald.Notification) {
	if c.bus == nil {
		c.hub.Publish(ns)
		return
	}
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	if c.busDown.Load() {
		c.m.BusPublishErrors.Inc()
		c.deliverDown(ns)
		return
	}
	deadline := time.Now().Add(publishWait)
	// What this node committed while its bus was down goes first: the other nodes may have
	// read it by resync already, or not yet, and what this node commits now must not reach
	// them before it.
	if len(c.unannounced) > 0 {
		if !c.publish(deadline, c.unannounced) {
			c.deliverDown(ns)
			return
		}
		c.unannounced, c.unannouncedBytes = nil, 0
	}
	if !c.publish(deadline, ns) {
		c.deliverDown(ns)
	}
}

// publish puts ns on the bus, trying again until deadline, and reports whether the bus took all
// of it. A message tried again after a late confirmation may reach the nodes twice; their hubs
// drop what they already have. c.pubMu is held.
func (c *cluster) publish(deadline time.Time, ns []herald.Notification) bool {
	backoff := 10 * time.Millisecond
	for _, msg := range bus.EncodeNotifications(c.origin, ns) {
		for {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			err := c.bus.Publish(ctx, msg)
			cancel()
			if err == nil {
				break
			}
			if time.Until(deadline) <= backoff {
				c.busDown.Store(true)
				c.m.BusPublishErrors.Inc()
				c.log.Warn("bus: publish failed; delivering by resync until the bus answers", "notifications", len(ns), "err", err)
				// Messages already published come back through the bus too; the hub drops
				// what it already has.
				c.want()
				return false
			}
			time.Sleep(backoff)
			backoff = min(2*backoff, 100*time.Millisecond)
		}
	}
	c.m.BusPublished.Add(float64(len(ns)))
	return true
}

// deliverDown hands a commit made while the bus is down to this node's hub, behind the
// barrier: it is delivered with the next resync, merged in id order with what that resync finds
// of the other nodes' commits, one of which its publisher may have sent before it. It is kept
// to go on the bus before this node's next commit that does. c.pubMu is held.
func (c *cluster) deliverDown(ns []herald.Notification) {
	c.hub.Hold()
	c.hub.Publish(ns)
	for i := range ns {
		c.unannouncedBytes += len(ns[i].Data)
	}
	c.unannounced = append(c.unannounced, ns...)
	if len(c.unannounced) > maxUnannounced || c.unannouncedBytes > maxUnannouncedBytes {
		c.unannounced, c.unannouncedBytes = nil, 0 // the other nodes read them by resync
	}
}

// stateChanged tells every node's streams of user about a change of its state of
// notifications (read, seen, archived). The state lives in the store; this message only updates
// what open tabs show, so when the bus is down only this node's streams hear of it.
func (c *cluster) stateChanged(sc herald.StateChange) {
	if c.bus == nil || c.busDown.Load() {
		c.notifyState(sc)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	err := c.bus.Publish(ctx, bus.EncodeState(c.origin, sc))
	cancel()
	if err != nil {
		// Not taken as the bus being down: that would send the node's next commits past the
		// bus at once, while a late answer (this wait is short) is no outage (publishWait).
		c.m.BusPublishErrors.Inc()
		c.notifyState(sc)
		c.want()
	}
}

func (c *cluster) notifyState(sc herald.StateChange) {
	c.hub.Notify(sc.User, hub.NewControl(httpapi.StateFrame(sc)))
}

// preferencesChanged tells every node's streams of user that the user's preferences changed in
// the store, so that they reload them. Like a state change, when the bus is down only this
// node's streams hear of it; the others reload every user's rules when their bus comes back
// (ReloadPreferences), and any stream does at its next open.
func (c *cluster) preferencesChanged(user string) {
	if c.bus == nil || c.busDown.Load() {
		c.prefs.PreferencesChanged(user)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	err := c.bus.Publish(ctx, bus.EncodePreferences(c.origin, user))
	cancel()
	if err != nil {
		// Not taken as the bus being down, as in stateChanged.
		c.m.BusPublishErrors.Inc()
		c.prefs.PreferencesChanged(user)
		c.want()
	}
}

// received handles a message from the bus.
func (c *cluster) received(msg []byte) {
	m, err := bus.Decode(msg)
	if err != nil {
		// A node of another version, or a foreign publisher on our subject: the store still
		// has every notification, so resync rather than guess.
		c.m.BusDecodeErrors.Inc()
		c.warnOnce(&c.decodeWarned, "bus: undecodable message; resyncing (logged at most once a minute; see herald_bus_decode_errors_total)",
			"bytes", len(msg), "err", err)
		c.want()
		return
	}
	if m.Origin != c.origin {
		// Another deployment on the same broker and channel, or a node still running on a
		// history this store replaced: its sequence numbers are not ours, and one taken for
		// ours would hide a real notification of the same number. Nothing of it is delivered.
		c.m.BusForeign.Inc()
		c.warnOnce(&c.foreignWarned, "bus: dropped messages from another store on this channel; give each deployment its own --bus-channel (or broker database), and restart nodes that still run on a replaced store (logged at most once a minute; see herald_bus_foreign_messages_total)",
			"channel_origin", m.Origin, "this_store", c.origin)
		return
	}
	if len(m.Notifications) > 0 {
		c.m.BusReceived.Add(float64(len(m.Notifications)))
		c.hub.Publish(m.Notifications)
	}
	for _, sc := range m.States {
		c.notifyState(sc)
	}
	if c.prefs != nil {
		for _, u := range m.Preferences {
			c.prefs.PreferencesChanged(u)
		}
	}
}

// start runs the listener and the resync loops until stop.
func (c *cluster) start() {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.resyncLoop(ctx)
	}()
	if c.bus == nil {
		return
	}
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		c.bus.Listen(ctx, c.received, func() {
			// What the bus lost is only in the store: hold what it brings from now on until
			// the resync has read what was missed, so both are delivered in publish order.
			// After a loss, the resync waits for the other nodes to be back too (settle).
			c.hub.Hold()
			if c.subscribed.Swap(true) && c.settle > 0 {
				c.settleUntil.Store(time.Now().Add(c.settle).UnixNano())
			}
			// Subscribed, so the bus answers: commits go on it again from now, not from the
			// next ping. Until then they would reach the other nodes only by their resyncs,
			// while those nodes, back on the bus, let what other nodes publish overtake them.
			c.busDown.Store(false)
			c.m.BusReconnects.Inc()
			c.want()
			if c.prefs != nil {
				c.prefs.ReloadPreferences() // changes of preferences may be among the lost
			}
		})
	}()
	go func() {
		defer c.wg.Done()
		c.watchBus(ctx)
	}()
}

// watchBus resyncs every second while the bus does not answer: live delivery then rests on
// the store alone.
func (c *cluster) watchBus(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		err := c.bus.Ping(pctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			// Live delivery rests on resyncs, each merging both streams in publish order.
			// Commits still try the bus (publishWait): a broker connection cut is often
			// dialled again at once, and a commit answered without the bus meanwhile could
			// be overtaken on the other nodes by its publisher's next notification.
			c.hub.Hold()
			c.want()
		default:
			c.busDown.Store(false)
		}
	}
}

// want asks for a resync now.
func (c *cluster) want() {
	select {
	case c.resync <- struct{}{}:
	default:
	}
}

func (c *cluster) resyncLoop(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		lost := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.resync:
			lost = true // the bus lost messages, or is down: repair up to the store's heads
		}
		if wait := time.Until(time.Unix(0, c.settleUntil.Load())); wait > 0 {
			// Back on the bus a moment ago: let the nodes still off it come back, then read.
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			lost = true
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := c.hub.Resync(rctx, lost)
		cancel()
		c.m.Resyncs.Inc()
		if err != nil && ctx.Err() == nil {
			c.m.ResyncErrors.Inc()
			c.log.Warn("resync with the store failed; retrying at the next interval", "err", err)
		}
	}
}

// stop ends the goroutines and closes the bus. It may be called more than once.
func (c *cluster) stop() {
	c.stopOnce.Do(func() {
		if c.cancel != nil {
			c.cancel()
		}
		c.wg.Wait()
		if c.bus != nil {
			c.bus.Close()
		}
	})
}
