// Package memory is a bus inside one process: a Network connects the Buses of several nodes
// running in the same process (tests, benchmarks). It keeps the semantics of a real bus:
// delivery is asynchronous, and a listener that falls behind loses messages and is told so.
package memory

import (
	"context"
	"sync"

	"github.com/heraldhq/herald"
)

var _ herald.Bus = (*Bus)(nil)

// queueSize bounds the messages waiting for one listener; beyond it they are dropped.
const queueSize = 1024

// Network connects buses.
type Network struct {
	mu        sync.Mutex
	listeners map[*listener]struct{}
}

// NewNetwork returns an empty network.
func NewNetwork() *Network { return &Network{listeners: map[*listener]struct{}{}} }

type listener struct {
	queue chan []byte
	lost  chan struct{} // has a value when messages were dropped
}

// Bus returns a new node's connection to the network.
func (n *Network) Bus() *Bus { return &Bus{net: n} }

// Cut drops every message in flight and tells every listener it lost messages, as a network
// outage would.
func (n *Network) Cut() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for l := range n.listeners {
		for len(l.queue) > 0 {
			<-l.queue
		}
		l.markLost()
	}
}

func (l *listener) markLost() {
	select {
	case l.lost <- struct{}{}:
	default:
	}
}

// Bus is one node's connection.
type Bus struct {
	net    *Network
	mu     sync.Mutex
	closed bool
}

// Publish queues a copy of msg for every listener on the network.
func (b *Bus) Publish(ctx context.Context, msg []byte) error {
	if err := b.check(); err != nil {
		return err
	}
	m := append([]byte(nil), msg...) // the caller may reuse msg
	b.net.mu.Lock()
	defer b.net.mu.Unlock()
	for l := range b.net.listeners {
		select {
		case l.queue <- m:
		default:
			l.markLost() // at most once: a listener that falls behind loses messages
		}
	}
	return nil
}

// Listen delivers messages until ctx ends.
func (b *Bus) Listen(ctx context.Context, deliver func(msg []byte), lost func()) {
	l := &listener{queue: make(chan []byte, queueSize), lost: make(chan struct{}, 1)}
	b.net.mu.Lock()
	b.net.listeners[l] = struct{}{}
	b.net.mu.Unlock()
	defer func() {
		b.net.mu.Lock()
		delete(b.net.listeners, l)
		b.net.mu.Unlock()
	}()
	// Whatever was published before this listener joined is only in the store.
	lost()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.lost:
			lost()
		case m := <-l.queue:
			deliver(m)
		}
	}
}

// Ping reports whether the bus is open.
func (b *Bus) Ping(context.Context) error { return b.check() }

func (b *Bus) check() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return herald.Errorf(herald.EUNAVAILABLE, "bus is closed")
	}
	return nil
}

// Close makes Publish and Ping fail; listeners end with their contexts.
func (b *Bus) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}
