package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/store/sqlite"
)

// devAuth takes the subscriber from ?user=, as dev mode does.
type devAuth struct{}

func (devAuth) Subscriber(r *http.Request) (herald.Subscriber, error) {
	return herald.Subscriber{User: r.URL.Query().Get("user")}, nil
}

func (devAuth) Publisher(*http.Request) (herald.Publisher, error) { return herald.Publisher{}, nil }

// streamServer is the stream handler on a real listener, with a real store and hub, for tests
// that need to reach inside a stream.
type streamServer struct {
	api   *API
	hub   *hub.Hub
	store *sqlite.Store
	addr  string
}

func startStreamServer(t *testing.T, hopts hub.Options, opts Options) *streamServer {
	t.Helper()
	var h *hub.Hub
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "h.db"), sqlite.Options{
		Sync:     sqlite.SyncNormal,
		OnCommit: func(ns []herald.Notification) { h.Publish(ns) },
	})
	if err != nil {
		t.Fatal(err)
	}
	hopts.Source = st
	h = hub.New(hopts)
	opts.Store, opts.Hub = st, h
	if opts.Auth == nil {
		opts.Auth = devAuth{}
	}
	a := New(opts)
	handler, err := a.Handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(func() {
		h.Close()
		a.Close()
		srv.Close()
		st.Close()
	})
	return &streamServer{api: a, hub: h, store: st, addr: srv.Listener.Addr().String()}
}

// broadcast commits n broadcasts of size bytes of data each.
func (s *streamServer) broadcast(t *testing.T, n, size int) {
	t.Helper()
	if err := s.commit(n, size); err != nil {
		t.Fatal(err)
	}
}

func (s *streamServer) commit(n, size int) error {
	data, _ := json.Marshal(strings.Repeat("x", size))
	drafts := make([]herald.Draft, n)
	for i := range drafts {
		drafts[i] = herald.Draft{Broadcast: true, Type: "big", Data: data}
	}
	_, err := s.store.Append(context.Background(), "test", drafts)
	return err
}

// stalledClient opens a stream for user and never reads it, with a receive buffer as small as
// the system allows.
func (s *streamServer) stalledClient(t *testing.T, user string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: nil}
	c, err := d.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.(*net.TCPConn).SetReadBuffer(1024)
	fmt.Fprintf(c, "GET /v1/stream?user=%s HTTP/1.1\r\nHost: localhost\r\n\r\n", user)
	return c
}

// readingClient opens a stream for user and counts the events of type typ it reads.
func (s *streamServer) readingClient(t *testing.T, user, typ string) func() int {
	t.Helper()
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET /v1/stream?user=%s HTTP/1.1\r\nHost: localhost\r\n\r\n", user)
	var mu sync.Mutex
	n := 0
	go func() {
		sc := bufio.NewScanner(c)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if sc.Text() == "event: "+typ {
				mu.Lock()
				n++
				mu.Unlock()
			}
		}
	}()
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// waitUntil polls cond until it holds, or fails the test after within.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCatchUpBeganBeforeTheHandlerReturned: a stream is parked, and at once overflows and gets a
// catch-up goroutine, before its handler has returned. The handler's return must not disarm the
// slow-client cut-off of that catch-up: a client that stops reading during it is ended once its
// write has been blocked for slowWriteGrace while events are dropped, not at the write timeout
// (a minute here, longer than the test waits).
func TestCatchUpBeganBeforeTheHandlerReturned(t *testing.T) {
	if !parkSupported {
		t.Skip("streams are parked only on Linux")
	}
	s := startStreamServer(t, hub.Options{QueueSize: 4}, Options{WriteTimeout: time.Minute, Heartbeat: time.Hour})
	hooked := make(chan error, 1)
	s.api.afterPark = func(c *conn) {
		// Still on the handler's goroutine. A burst overflows the stream's buffer (made certain,
		// however quickly the shard's writer takes events, by counting its client as far behind):
		// its catch-up writes far more than the stalled client's socket holds.
		c.nc.(*net.TCPConn).SetWriteBuffer(1024)
		c.sub.Unwritten(1 << 30)
		if err := s.commit(64, 32<<10); err != nil {
			hooked <- err
			return
		}
		st := &c.park
		deadline := time.Now().Add(10 * time.Second)
		for {
			st.shard.mu.Lock()
			busy := st.busy
			st.shard.mu.Unlock()
			if busy {
				hooked <- nil
				return
			}
			if time.Now().After(deadline) {
				hooked <- fmt.Errorf("no catch-up began")
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	s.stalledClient(t, "stalled")
	select {
	case err := <-hooked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream was not parked")
	}
	// More events keep overflowing the queue while the catch-up's write is blocked.
	waitUntil(t, 20*time.Second, "the stalled stream to be cut as slow", func() bool {
		s.broadcast(t, 1, 16)
		return s.api.SlowDisconnects() == 1
	})
}
