// Package amqp is a bus on RabbitMQ: a fanout exchange per cluster, and a queue per node of its
// own (exclusive, deleted with its connection) bound to it.
//
// The client library does not reconnect: the Bus keeps one connection up itself, redeclaring
// the exchange and each node's queue after every reconnect, which it reports as a possible loss
// (the queue of the old connection, and what it held, is gone). Publishes wait for the broker's
// confirmation, so a commit is in every node's queue before its publisher is answered. A node
// receives its own messages like everyone else's: nothing is filtered.
package amqp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/heraldhq/herald"
)

var _ herald.Bus = (*Bus)(nil)

// Options configure a Bus.
type Options struct {
	// Channel names the cluster: its exchange is "herald.<Channel>". "herald" when empty.
	Channel string
	Logger  *slog.Logger
}

// Bus is a herald.Bus on RabbitMQ.
type Bus struct {
	url      string
	exchange string
	name     string // the connection name, shown by the broker
	log      *slog.Logger

	mu      sync.Mutex
	conn    *amqp.Connection // nil while disconnected
	pub     *amqp.Channel    // confirm mode; nil while disconnected
	up      chan struct{}    // closed when conn is set; replaced when it goes
	closed  bool
	pubMu   sync.Mutex // one publish (and its confirmation) at a time
	stop    chan struct{}
	stopped chan struct{}
}

// Open starts connecting to the broker at url (amqp:// or amqps://). A broker that is down at
// start is not fatal: the Bus keeps trying, and the node serves from the store meanwhile.
func Open(ctx context.Context, url string, opts Options) (*Bus, error) {
	if _, err := amqp.ParseURI(url); err != nil {
		return nil, herald.Errorf(herald.EINVALID, "amqp: %s", redact(err.Error(), url))
	}
	if opts.Channel == "" {
		opts.Channel = "herald"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Bus{url: url, exchange: "herald." + opts.Channel, name: "herald:" + opts.Channel, log: opts.Logger,
		up: make(chan struct{}), stop: make(chan struct{}), stopped: make(chan struct{})}
	go b.maintain()
	// Give the first connection a moment, so that a healthy node starts connected.
	select {
	case <-b.current():
	case <-time.After(2 * time.Second):
		b.log.Warn("bus: rabbitmq not reachable at start; streams catch up from the store until it is")
	case <-ctx.Done():
	}
	return b, nil
}

// redact keeps a password in the URL out of an error message.
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

// current returns a channel closed while a connection is up.
func (b *Bus) current() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.up
}

// maintain keeps a connection and a publishing channel up until Close.
func (b *Bus) maintain() {
	defer close(b.stopped)
	backoff := 250 * time.Millisecond
	for {
		conn, pub, err := b.dial()
		if err != nil {
			b.log.Warn("bus: rabbitmq connection failed; retrying", "err", redactErr(err, b.url), "in", backoff)
			select {
			case <-b.stop:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 250 * time.Millisecond
		connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))
		pubClosed := pub.NotifyClose(make(chan *amqp.Error, 1))
		b.mu.Lock()
		b.conn, b.pub = conn, pub
		close(b.up)
		b.mu.Unlock()

		var cause error
		select {
		case <-b.stop:
		case e := <-connClosed:
			cause = e
		case e := <-pubClosed:
			cause = e
		}
		b.mu.Lock()
		b.conn, b.pub = nil, nil
		b.up = make(chan struct{})
		b.mu.Unlock()
		conn.Close() // closes every channel, and with them the consumers of Listen
		select {
		case <-b.stop:
			return
		default:
		}
		b.log.Warn("bus: rabbitmq connection lost; reconnecting", "err", cause)
	}
}

func redactErr(err error, url string) error { return errors.New(redact(err.Error(), url)) }

func (b *Bus) dial() (*amqp.Connection, *amqp.Channel, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(b.name)
	conn, err := amqp.DialConfig(b.url, amqp.Config{
		Properties: props,
		Heartbeat:  5 * time.Second,
		Dial:       amqp.DefaultDial(2 * time.Second),
	})
	if err != nil {
		return nil, nil, err
	}
	pub, err := conn.Channel()
	if err == nil {
		err = pub.Confirm(false)
	}
	if err == nil {
		// Not durable: it holds nothing, and is declared again after every reconnect.
		err = pub.ExchangeDeclare(b.exchange, amqp.ExchangeFanout, false, false, false, false, nil)
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, pub, nil
}

// confirmTimeout bounds the wait for the broker to confirm a commit's messages.
const confirmTimeout = 2 * time.Second

// Publish sends msg and waits for the broker's confirmation: it is then in every node's queue,
// before any message published after.
func (b *Bus) Publish(ctx context.Context, msg []byte) error {
	b.mu.Lock()
	closed, pub := b.closed, b.pub
	b.mu.Unlock()
	if closed {
		return herald.Errorf(herald.EUNAVAILABLE, "bus is closed")
	}
	if pub == nil {
		return errors.New("amqp: not connected")
	}
	ctx, cancel := context.WithTimeout(ctx, confirmTimeout)
	defer cancel()
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	c, err := pub.PublishWithDeferredConfirmWithContext(ctx, b.exchange, "", false, false, amqp.Publishing{
		ContentType: "application/json",
		Body:        msg,
	})
	if err != nil {
		return fmt.Errorf("amqp: publish: %w", err)
	}
	ok, err := c.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("amqp: confirm: %w", err)
	}
	if !ok {
		return errors.New("amqp: the broker refused the message")
	}
	return nil
}

// queueMax bounds the messages waiting in a node's queue (the oldest are dropped beyond it; the
// node repairs them from the store at its next resync).
const queueMax = 100000

// Listen consumes this node's queue until ctx ends, declaring it again on every connection.
func (b *Bus) Listen(ctx context.Context, deliver func(msg []byte), lost func()) {
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-b.current():
		}
		if err := b.consume(ctx, deliver, lost); err != nil && ctx.Err() == nil {
			b.log.Warn("bus: rabbitmq consumer stopped; starting again", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
}

// consume runs one consumer on the current connection until it ends.
func (b *Bus) consume(ctx context.Context, deliver func(msg []byte), lost func()) error {
	b.mu.Lock()
	conn := b.conn
	b.mu.Unlock()
	if conn == nil {
		return errors.New("not connected")
	}
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	q, err := ch.QueueDeclare("", false, true, true, false, amqp.Table{"x-max-length": int32(queueMax)})
	if err == nil {
		err = ch.QueueBind(q.Name, "", b.exchange, false, nil)
	}
	if err == nil {
		err = ch.Qos(256, 0, false)
	}
	if err != nil {
		return err
	}
	deliveries, err := ch.ConsumeWithContext(ctx, q.Name, "", false, true, false, false, nil)
	if err != nil {
		return err
	}
	// A new queue: whatever was published before it was bound is only in the store.
	lost()
	for d := range deliveries {
		deliver(d.Body)
		d.Ack(false)
	}
	return errors.New("deliveries ended")
}

// Ping reports whether a connection is up.
func (b *Bus) Ping(ctx context.Context) error {
	b.mu.Lock()
	closed, conn := b.closed, b.conn
	b.mu.Unlock()
	switch {
	case closed:
		return herald.Errorf(herald.EUNAVAILABLE, "bus is closed")
	case conn == nil || conn.IsClosed():
		return herald.Errorf(herald.EUNAVAILABLE, "bus unavailable")
	}
	return nil
}

// Close closes the connection and stops reconnecting; Listen returns with its context.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	<-b.stopped
	return nil
}
