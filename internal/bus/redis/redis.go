// Package redis is a bus on Redis Pub/Sub: every node publishes its commits on one channel and
// subscribes to it.
//
// Pub/Sub is at most once: a subscriber that is disconnected, or that Redis drops for falling
// behind (client-output-buffer-limit pubsub), misses what was published meanwhile. The client
// reconnects and resubscribes by itself; Listen notices the new subscription and reports the
// possible loss, and the node catches its streams up from the store.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/heraldhq/herald"
)

var _ herald.Bus = (*Bus)(nil)

// Options configure a Bus.
type Options struct {
	// Channel is the Pub/Sub channel; nodes of one cluster share it, clusters on one Redis must
	// not. "herald" when empty.
	Channel string
	Logger  *slog.Logger
}

// Bus is a herald.Bus on Redis.
type Bus struct {
	rdb     *goredis.Client
	channel string
	log     *slog.Logger
	closed  atomic.Bool
}

// Open connects to the Redis at url (redis:// or rediss://, as go-redis parses them).
func Open(ctx context.Context, url string, opts Options) (*Bus, error) {
	o, err := goredis.ParseURL(url)
	if err != nil {
		return nil, herald.Errorf(herald.EINVALID, "redis: %s", redact(err.Error(), url))
	}
	if opts.Channel == "" {
		opts.Channel = "herald"
	}
	// A publish waits at most this long; the bus is at most once, so a slow Redis must not
	// hold a publisher's acknowledgement.
	o.WriteTimeout = 2 * time.Second
	o.ReadTimeout = 2 * time.Second
	o.DialTimeout = 2 * time.Second
	if o.ClientName == "" {
		o.ClientName = "herald:" + opts.Channel // visible in CLIENT LIST
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Bus{rdb: goredis.NewClient(o), channel: opts.Channel, log: opts.Logger}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := b.rdb.Ping(pctx).Err(); err != nil {
		// Not fatal: a node can serve from the store alone, and catches up when Redis is back.
		b.log.Warn("bus: redis not reachable at start; streams catch up from the store until it is", "err", err)
	}
	return b, nil
}

// redact keeps a password in the URL out of an error message, even when the URL does not parse.
func redact(msg, rawURL string) string {
	_, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return msg
	}
	authority, _, _ := strings.Cut(rest, "/")
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		if _, pass, ok := strings.Cut(authority[:i], ":"); ok && pass != "" {
			msg = strings.ReplaceAll(msg, pass, "xxx")
		}
	}
	return msg
}

// Publish sends msg; Redis orders it before anything published after it returns.
func (b *Bus) Publish(ctx context.Context, msg []byte) error {
	if b.closed.Load() {
		return herald.Errorf(herald.EUNAVAILABLE, "bus is closed")
	}
	if err := b.rdb.Publish(ctx, b.channel, msg).Err(); err != nil {
		return fmt.Errorf("redis: publish: %w", err)
	}
	return nil
}

// healthInterval is how long a subscription may be silent before Listen pings it: a connection
// that died without a word (a network partition) is found within twice this.
const healthInterval = 5 * time.Second

// Listen subscribes and delivers until ctx ends. Every subscription, the first included, starts
// with a call to lost: whatever was published while this node was not subscribed is only in the
// store.
func (b *Bus) Listen(ctx context.Context, deliver func(msg []byte), lost func()) {
	backoff := 250 * time.Millisecond
	for ctx.Err() == nil {
		ps := b.rdb.Subscribe(ctx, b.channel)
		// The client reads with deadlines, not contexts: closing the subscription is what ends
		// a receive at once when ctx does.
		stop := context.AfterFunc(ctx, func() { ps.Close() })
		ok, err := b.session(ctx, ps, deliver, lost)
		stop()
		ps.Close()
		if ctx.Err() != nil {
			return
		}
		if ok {
			backoff = 250 * time.Millisecond // it worked for a while: retry soon
		}
		b.log.Warn("bus: redis subscription lost; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// session receives on one subscription until it fails; ok reports whether it was established.
func (b *Bus) session(ctx context.Context, ps *goredis.PubSub, deliver func(msg []byte), lost func()) (ok bool, err error) {
	awaitingPong := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, healthInterval)
		if err != nil {
			var nerr interface{ Timeout() bool }
			if ctx.Err() == nil && errors.As(err, &nerr) && nerr.Timeout() && !awaitingPong {
				// Silence: ask. A connection that cannot answer within another interval is dead.
				if err := ps.Ping(ctx); err != nil {
					return ok, err
				}
				awaitingPong = true
				continue
			}
			return ok, err
		}
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				ok = true
				lost()
			}
		case *goredis.Pong:
			awaitingPong = false
		case *goredis.Message:
			awaitingPong = false
			deliver([]byte(m.Payload))
		}
	}
}

// Ping reports whether Redis answers.
func (b *Bus) Ping(ctx context.Context) error {
	if b.closed.Load() {
		return herald.Errorf(herald.EUNAVAILABLE, "bus is closed")
	}
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		return &herald.Error{Code: herald.EUNAVAILABLE, Message: "bus unavailable", Err: err}
	}
	return nil
}

// Close closes the connections; Listen returns with its context.
func (b *Bus) Close() error {
	if b.closed.CompareAndSwap(false, true) {
		return b.rdb.Close()
	}
	return nil
}
