// Package nats is a bus on NATS core subjects: every node publishes its commits on one subject
// and subscribes to it.
//
// Core NATS is at most once: a node that is disconnected, or that falls behind and is cut off as
// a slow consumer, misses what was published meanwhile. The client reconnects and resubscribes
// by itself; the bus reports the possible loss (after a reconnect, and on a slow-consumer
// error), and the node catches its streams up from the store.
package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/heraldhq/herald"
)

var _ herald.Bus = (*Bus)(nil)

// Options configure a Bus.
type Options struct {
	// Subject is the subject the nodes of one cluster share; "herald" when empty.
	Subject string
	Logger  *slog.Logger
	// PendingMsgs and PendingBytes bound the messages received and not yet delivered; beyond
	// either the client drops messages and the bus reports the loss (a slow consumer). 65,536
	// messages and 256 MiB when zero.
	PendingMsgs, PendingBytes int
}

// The default bounds of what waits for delivery: a few seconds of a busy cluster's commits.
const (
	defaultPendingMsgs  = 65536
	defaultPendingBytes = 256 << 20
)

// Bus is a herald.Bus on NATS.
type Bus struct {
	nc      *natsgo.Conn
	subject string
	log     *slog.Logger
	// pendingMsgs and pendingBytes bound each subscription's undelivered messages.
	pendingMsgs, pendingBytes int

	mu       sync.Mutex
	lostSubs map[*natsgo.Subscription]func() // the lost callback of each Listen
}

// Open connects to the NATS server(s) at url (nats://host:4222, or several comma-separated;
// credentials in the URL). A server that is down at start is not fatal: the client keeps
// trying, and the node serves from the store meanwhile.
func Open(ctx context.Context, url string, opts Options) (*Bus, error) {
	if opts.Subject == "" {
		opts.Subject = "herald"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PendingMsgs <= 0 {
		opts.PendingMsgs = defaultPendingMsgs
	}
	if opts.PendingBytes <= 0 {
		opts.PendingBytes = defaultPendingBytes
	}
	b := &Bus{subject: opts.Subject, log: opts.Logger, lostSubs: map[*natsgo.Subscription]func(){},
		pendingMsgs: opts.PendingMsgs, pendingBytes: opts.PendingBytes}
	nc, err := natsgo.Connect(url,
		natsgo.Name("herald:"+opts.Subject),
		natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(250*time.Millisecond),
		natsgo.ReconnectJitter(100*time.Millisecond, time.Second),
		natsgo.RetryOnFailedConnect(true),
		natsgo.Timeout(2*time.Second),
		natsgo.PingInterval(5*time.Second),
		natsgo.MaxPingsOutstanding(2),
		// A synchronous subscription's channel: as long as the message bound, which
		// SetPendingLimits sets with the byte bound (Listen).
		natsgo.SyncQueueLen(opts.PendingMsgs),
		natsgo.DisconnectErrHandler(func(_ *natsgo.Conn, err error) {
			if err != nil {
				b.log.Warn("bus: nats disconnected; reconnecting", "err", err)
			}
		}),
		// Subscriptions are restored by the client before this runs: whatever was published
		// while this node was away is only in the store.
		natsgo.ReconnectHandler(func(*natsgo.Conn) {
			b.log.Info("bus: nats reconnected; catching up from the store")
			b.lostAll()
		}),
		natsgo.ErrorHandler(func(_ *natsgo.Conn, _ *natsgo.Subscription, err error) {
			if errors.Is(err, natsgo.ErrSlowConsumer) {
				return // Listen hears of it from its subscription, and reports the loss
			}
			b.log.Warn("bus: nats error", "err", err)
		}),
	)
	if err != nil {
		return nil, herald.Errorf(herald.EINVALID, "nats: %s", redact(err.Error(), url))
	}
	b.nc = nc
	return b, nil
}

// redact keeps a password in the URL out of an error message.
func redact(msg, rawURL string) string {
	for _, u := range strings.Split(rawURL, ",") {
		_, rest, ok := strings.Cut(u, "://")
		if !ok {
			continue
		}
		authority, _, _ := strings.Cut(rest, "/")
		if i := strings.LastIndex(authority, "@"); i >= 0 {
			user, pass, _ := strings.Cut(authority[:i], ":")
			for _, secret := range []string{pass, user} { // a token may stand alone as the user
				if secret != "" {
					msg = strings.ReplaceAll(msg, secret, "xxx")
				}
			}
		}
	}
	return msg
}

func (b *Bus) lostAll() {
	b.mu.Lock()
	fs := make([]func(), 0, len(b.lostSubs))
	for _, f := range b.lostSubs {
		fs = append(fs, f)
	}
	b.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// flushTimeout bounds the wait for the server to have a commit's messages.
const flushTimeout = 2 * time.Second

// Publish sends msg and waits until the server has it: a message published after, on whichever
// node, then comes after it in every subscriber's order.
func (b *Bus) Publish(ctx context.Context, msg []byte) error {
	if b.nc.IsClosed() {
		return herald.Errorf(herald.EUNAVAILABLE, "bus is closed")
	}
	if !b.nc.IsConnected() {
		// While reconnecting the client would buffer, and deliver late and out of order; the
		// nodes get these by resync instead.
		return errors.New("nats: not connected")
	}
	if err := b.nc.Publish(b.subject, msg); err != nil {
		return fmt.Errorf("nats: publish: %w", err)
	}
	fctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	if err := b.nc.FlushWithContext(fctx); err != nil {
		return fmt.Errorf("nats: flush: %w", err)
	}
	return nil
}

// Listen subscribes and delivers until ctx ends. The subscription is synchronous: the messages
// wait in the client, bounded by PendingMsgs and PendingBytes, and this goroutine delivers them.
// (A channel subscription ignores SetPendingLimits: its only bound is its channel's length.)
func (b *Bus) Listen(ctx context.Context, deliver func(msg []byte), lost func()) {
	for ctx.Err() == nil && !b.nc.IsClosed() {
		if err := b.listen(ctx, deliver, lost); err != nil {
			b.log.Warn("bus: nats subscription failed; subscribing again", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// listen is one subscription of Listen; it returns nil when ctx ends or the bus closes.
func (b *Bus) listen(ctx context.Context, deliver func(msg []byte), lost func()) error {
	sub := b.subscribe(ctx)
	if sub == nil {
		return nil
	}
	b.mu.Lock()
	b.lostSubs[sub] = lost
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.lostSubs, sub)
		b.mu.Unlock()
		if err := sub.Unsubscribe(); err != nil && !b.nc.IsClosed() {
			b.log.Debug("bus: nats unsubscribe", "err", err)
		}
	}()
	// The subscription is active once the server has seen it; from then on nothing is missed
	// unless reported. What came before is only in the store.
	fctx, cancel := context.WithTimeout(ctx, flushTimeout)
	if err := b.nc.FlushWithContext(fctx); err != nil && ctx.Err() == nil {
		// The client subscribes again when it reconnects, and reports the loss then.
		b.log.Warn("bus: nats did not confirm the subscription", "err", err)
	}
	cancel()
	lost()
	for {
		m, err := sub.NextMsgWithContext(ctx)
		switch {
		case err == nil:
			deliver(m.Data)
		case ctx.Err() != nil || b.nc.IsClosed():
			return nil
		case errors.Is(err, natsgo.ErrSlowConsumer):
			b.log.Warn("bus: this node fell behind the bus and lost messages; catching up from the store",
				"pending_msgs", b.pendingMsgs, "pending_bytes", b.pendingBytes)
			lost()
		default:
			return err
		}
	}
}

// subscribe subscribes with the configured bounds, retrying each second until ctx ends.
func (b *Bus) subscribe(ctx context.Context) *natsgo.Subscription {
	for {
		sub, err := b.nc.SubscribeSync(b.subject)
		if err == nil {
			if err = sub.SetPendingLimits(b.pendingMsgs, b.pendingBytes); err == nil {
				return sub
			}
			_ = sub.Unsubscribe()
		}
		if b.nc.IsClosed() {
			return nil
		}
		b.log.Warn("bus: nats subscribe failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// Ping reports whether the server answers.
func (b *Bus) Ping(ctx context.Context) error {
	if b.nc.IsClosed() {
		return herald.Errorf(herald.EUNAVAILABLE, "bus is closed")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, flushTimeout)
		defer cancel()
	}
	if err := b.nc.FlushWithContext(ctx); err != nil {
		return &herald.Error{Code: herald.EUNAVAILABLE, Message: "bus unavailable", Err: err}
	}
	return nil
}

// Close closes the connection; Listen returns with its context.
func (b *Bus) Close() error {
	b.nc.Close()
	return nil
}
