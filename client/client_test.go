package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/client"
	"github.com/heraldhq/herald/internal/apptest"
	"github.com/heraldhq/herald/internal/config"
)

// start runs Herald on addr ("127.0.0.1:0" for any port) with the SQLite file db.
func start(t *testing.T, addr, db string, mutate func(*config.Config)) *apptest.Server {
	t.Helper()
	cfg := apptest.Config(t)
	cfg.Addr, cfg.Store = addr, "sqlite:"+db
	if mutate != nil {
		mutate(&cfg)
	}
	return apptest.Start(t, cfg)
}

func newClient(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNew(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://x", "http://"} {
		if _, err := client.New(u); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	if _, err := client.New("http://x", client.WithHTTPClient(&http.Client{Timeout: time.Second})); err == nil {
		t.Error("an HTTP client with a Timeout was accepted")
	}
}

func TestPublishAndInbox(t *testing.T) {
	s := start(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "h.db"), nil)
	ctx := context.Background()
	pub := newClient(t, s.URL)
	alice := newClient(t, s.URL, client.WithUser("alice"))

	r, err := pub.Publish(ctx, client.Message{To: []string{"alice", "bob"}, Type: "comment", Data: map[string]string{"text": "hi"}})
	if err != nil || len(r) != 2 || r[0].User != "alice" || r[1].User != "bob" {
		t.Fatalf("Publish: %+v, %v", r, err)
	}
	b, err := pub.Publish(ctx, client.Message{Broadcast: true, Type: "maintenance", Data: json.RawMessage(`{"at":"02:00"}`)})
	if err != nil || len(b) != 1 || b[0].User != "" {
		t.Fatalf("broadcast: %+v, %v", b, err)
	}
	batch, err := pub.PublishBatch(ctx, []client.Message{{To: []string{"alice"}, Type: "like"}, {To: []string{"alice"}, Type: "like", Key: "k1"}})
	if err != nil || len(batch) != 2 {
		t.Fatalf("PublishBatch: %+v, %v", batch, err)
	}
	again, err := pub.Publish(ctx, client.Message{To: []string{"alice"}, Type: "like", Key: "k1"})
	if err != nil || again[0].ID != batch[1].ID {
		t.Fatalf("idempotent retry: %+v, %v; want id %s", again, err, batch[1].ID)
	}

	page, err := alice.List(ctx, client.ListOptions{Limit: 2})
	if err != nil || len(page.Notifications) != 2 || page.NextBefore == "" {
		t.Fatalf("List: %+v, %v", page, err)
	}
	rest, err := alice.List(ctx, client.ListOptions{Before: page.NextBefore})
	if err != nil || len(rest.Notifications) != 2 || rest.NextBefore != "" {
		t.Fatalf("List page 2: %+v, %v", rest, err)
	}
	if n, _ := alice.UnreadCount(ctx); n != 4 {
		t.Fatalf("unread %d, want 4", n)
	}
	if err := alice.MarkRead(ctx, r[0].ID); err != nil {
		t.Fatal(err)
	}
	n, err := alice.Get(ctx, r[0].ID)
	if err != nil || !n.Read || n.ReadAt == nil || n.Type != "comment" || string(n.Data) != `{"text":"hi"}` {
		t.Fatalf("Get after MarkRead: %+v, %v", n, err)
	}
	if err := alice.MarkUnread(ctx, r[0].ID); err != nil {
		t.Fatal(err)
	}
	if unread, err := alice.List(ctx, client.ListOptions{Unread: true, Types: []string{"comment"}}); err != nil || len(unread.Notifications) != 1 {
		t.Fatalf("unread comments: %+v, %v", unread, err)
	}
	// Seen: up to the first page's oldest, then everything; the counts follow.
	if c, err := alice.Counts(ctx); err != nil || c != (client.Counts{Unread: 4, Unseen: 4}) {
		t.Fatalf("Counts: %+v, %v", c, err)
	}
	seen, err := alice.MarkSeen(ctx, page.Notifications[1].ID)
	if err != nil || seen.UpTo != page.Notifications[1].ID || seen.Counts != (client.Counts{Unread: 4, Unseen: 1}) {
		t.Fatalf("MarkSeen(%s): %+v, %v", page.Notifications[1].ID, seen, err)
	}
	if seen, err = alice.MarkSeen(ctx, ""); err != nil || seen.UpTo != page.Notifications[0].ID || seen.Unseen != 0 {
		t.Fatalf("MarkSeen(everything): %+v, %v; want up to %s", seen, err, page.Notifications[0].ID)
	}
	if n, err := alice.Get(ctx, r[0].ID); err != nil || !n.Seen || n.Read {
		t.Fatalf("Get after MarkSeen: %+v, %v", n, err)
	}
	// Archive: out of the inbox and the counts, into the archive; and back.
	if err := alice.Archive(ctx, b[0].ID); err != nil {
		t.Fatal(err)
	}
	archived, err := alice.List(ctx, client.ListOptions{Archived: true})
	if err != nil || len(archived.Notifications) != 1 || archived.Notifications[0].ID != b[0].ID || !archived.Notifications[0].Archived || archived.Notifications[0].ArchivedAt == nil {
		t.Fatalf("archived: %+v, %v; want the broadcast", archived, err)
	}
	if n, _ := alice.UnreadCount(ctx); n != 3 {
		t.Fatalf("unread %d with the broadcast archived, want 3", n)
	}
	if err := alice.Unarchive(ctx, b[0].ID); err != nil {
		t.Fatal(err)
	}
	if inbox, err := alice.List(ctx, client.ListOptions{}); err != nil || len(inbox.Notifications) != 4 {
		t.Fatalf("inbox after Unarchive: %+v, %v", inbox, err)
	}
	if changed, err := alice.MarkAllRead(ctx); err != nil || changed != 4 {
		t.Fatalf("MarkAllRead: %d, %v", changed, err)
	}
	if n, err := alice.ArchiveRead(ctx); err != nil || n != 4 {
		t.Fatalf("ArchiveRead: %d, %v", n, err)
	}
	if inbox, err := alice.List(ctx, client.ListOptions{}); err != nil || len(inbox.Notifications) != 0 {
		t.Fatalf("inbox after ArchiveRead: %+v, %v", inbox, err)
	}

	errs := []struct {
		name string
		call func() error
		code string
	}{
		{"publish to nobody", func() error { _, err := pub.Publish(ctx, client.Message{Type: "x"}); return err }, "invalid"},
		{"get another user's", func() error { _, err := newClient(t, s.URL, client.WithUser("carol")).Get(ctx, r[1].ID); return err }, "not_found"},
		{"bad id", func() error { return alice.MarkRead(ctx, "x/../1") }, "invalid"},
		{"archive another user's", func() error { return newClient(t, s.URL, client.WithUser("carol")).Archive(ctx, r[1].ID) }, "not_found"},
		{"seen up to a bad id", func() error { _, err := alice.MarkSeen(ctx, "-1"); return err }, "invalid"},
		{"key reused", func() error {
			_, err := pub.Publish(ctx, client.Message{To: []string{"alice"}, Type: "other", Key: "k1"})
			return err
		}, "conflict"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			var he *client.Error
			if err := tt.call(); !errors.As(err, &he) || he.Code != tt.code || he.Message == "" || he.Temporary() {
				t.Errorf("got %v, want a %s *client.Error", err, tt.code)
			}
		})
	}
}

// collect reads n events from a subscription, failing after a while.
func collect(t *testing.T, events <-chan client.Event, n int) []client.Event {
	t.Helper()
	var got []client.Event
	timeout := time.After(15 * time.Second)
	for len(got) < n {
		select {
		case ev := <-events:
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("got %d events, want %d: %+v", len(got), n, got)
		}
	}
	return got
}

// subscribe runs Subscribe on a goroutine, sending its events on a channel; states are recorded.
func subscribe(t *testing.T, ctx context.Context, c *client.Client, o client.SubscribeOptions) (<-chan client.Event, func() []string, <-chan error) {
	events, errc := make(chan client.Event, 256), make(chan error, 1)
	var mu sync.Mutex
	var states []string
	o.OnState = func(s client.State, err error) {
		mu.Lock()
		states = append(states, s.String())
		mu.Unlock()
	}
	go func() {
		defer close(errc)
		for ev, err := range c.Subscribe(ctx, o) {
			if err != nil {
				errc <- err
				return
			}
			events <- ev
		}
	}()
	return events, func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(states) }, errc
}

// waitState waits until the last state recorded is want.
func waitState(t *testing.T, states func() []string, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for st := states(); len(st) == 0 || st[len(st)-1] != want; st = states() {
		if time.Now().After(deadline) {
			t.Fatalf("states %v, want %s", st, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSubscribeResumesAcrossRestarts: the server is stopped and started again (same address,
// same store) several times while publishes continue; the subscription sees every notification
// once, in order, and says it was reconnecting.
func TestSubscribeResumesAcrossRestarts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	db := filepath.Join(t.TempDir(), "h.db")
	s := start(t, addr, db, nil)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	alice := newClient(t, s.URL, client.WithUser("alice"))
	events, states, errc := subscribe(t, ctx, alice, client.SubscribeOptions{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	waitLive := func() { t.Helper(); waitState(t, states, "live") }
	waitLive()

	pub := newClient(t, s.URL)
	var want []string
	publish := func(i int) {
		r, err := pub.Publish(context.Background(), client.Message{To: []string{"alice"}, Type: "n", Data: i})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, r[0].ID)
	}
	for round := 0; round < 3; round++ {
		for i := 0; i < 5; i++ {
			publish(round*10 + i)
		}
		s.Stop()
		s = start(t, addr, db, nil)
		for i := 5; i < 10; i++ {
			publish(round*10 + i) // while the subscription may still be away
		}
		waitLive()
	}
	got := collect(t, events, len(want))
	var ids []string
	for _, ev := range got {
		if ev.Control() || ev.Cursor == "" {
			t.Fatalf("unexpected event %+v", ev)
		}
		ids = append(ids, ev.Notification.ID)
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("got %v\nwant %v", ids, want)
	}
	if st := states(); strings.Count(strings.Join(st, " "), "reconnecting") < 3 {
		t.Errorf("states %v: want a reconnection per restart", st)
	}
	// Resuming from a cursor in a new subscription picks up exactly after it.
	mid := got[len(got)/2]
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	rest, _, _ := subscribe(t, ctx2, alice, client.SubscribeOptions{LastEventID: mid.Cursor})
	for i, ev := range collect(t, rest, len(want)-len(want)/2-1) {
		if ev.Notification.ID != want[len(want)/2+1+i] {
			t.Fatalf("resumed event %d is %s, want %s", i, ev.Notification.ID, want[len(want)/2+1+i])
		}
	}
	cancel()
	select {
	case err, ok := <-errc:
		if ok {
			t.Fatalf("subscription ended with %v, want nothing after ctx ends", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the subscription did not end with its context")
	}
}

// TestSubscribeControlEvents: control events arrive as such, whatever the type filter, and the
// filter holds.
func TestSubscribeControlEvents(t *testing.T) {
	s := start(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "h.db"), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	alice := newClient(t, s.URL, client.WithUser("alice"))
	events, states, _ := subscribe(t, ctx, alice, client.SubscribeOptions{Types: []string{"comment"}})
	waitState(t, states, "live") // it starts at the present
	pub := newClient(t, s.URL)
	pub.Publish(ctx, client.Message{To: []string{"alice"}, Type: "like"})
	r, _ := pub.Publish(ctx, client.Message{To: []string{"alice"}, Type: "comment", Data: "hi"})
	if err := alice.MarkRead(ctx, r[0].ID); err != nil {
		t.Fatal(err)
	}
	got := collect(t, events, 2)
	if got[0].Control() || got[0].Type != "comment" || got[0].Notification.ID != r[0].ID || string(got[0].Notification.Data) != `"hi"` {
		t.Errorf("first event %+v, want the comment (the like is filtered out)", got[0])
	}
	var read struct {
		IDs    []string `json:"ids"`
		Read   bool     `json:"read"`
		Unread int      `json:"unread"`
	}
	if !got[1].Control() || got[1].Type != "herald.read" || json.Unmarshal(got[1].Data, &read) != nil ||
		!slices.Equal(read.IDs, []string{r[0].ID}) || !read.Read || read.Unread != 1 {
		t.Errorf("second event %+v (%+v), want herald.read of the comment, 1 unread", got[1], read)
	}
	if got[1].Cursor != got[0].Cursor {
		t.Errorf("a control event without an id moved the cursor: %q after %q", got[1].Cursor, got[0].Cursor)
	}
}

// TestSubscribePermanentErrors: what retrying cannot fix is yielded once, and the sequence ends.
func TestSubscribePermanentErrors(t *testing.T) {
	authed := start(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "h.db"), func(c *config.Config) {
		c.JWTSecret = strings.Repeat("s", 40)
	})
	dev := start(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "h.db"), nil)
	tests := []struct {
		name   string
		c      *client.Client
		o      client.SubscribeOptions
		status int
	}{
		{"bad token", newClient(t, authed.URL, client.WithToken("not-a-token")), client.SubscribeOptions{}, 401},
		{"no credentials", newClient(t, authed.URL), client.SubscribeOptions{}, 401},
		{"bad type filter", newClient(t, dev.URL, client.WithUser("alice")), client.SubscribeOptions{Types: []string{"bad type!"}}, 400},
		{"bad cursor", newClient(t, dev.URL, client.WithUser("alice")), client.SubscribeOptions{LastEventID: "nope"}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			n := 0
			for _, err := range tt.c.Subscribe(ctx, tt.o) {
				n++
				var he *client.Error
				if !errors.As(err, &he) || he.Status != tt.status {
					t.Fatalf("got %v, want a %d", err, tt.status)
				}
			}
			if n != 1 || ctx.Err() != nil {
				t.Fatalf("yielded %d times (ctx %v), want one error and the end", n, ctx.Err())
			}
		})
	}
}

// TestSubscribeIdleTimeout: a server that answers and then goes silent (a dead peer behind a
// NAT looks like this) is left after IdleTimeout, and the subscription reconnects with its
// cursor.
func TestSubscribeIdleTimeout(t *testing.T) {
	var mu sync.Mutex
	var cursors []string
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		cursors = append(cursors, r.Header.Get("Last-Event-ID"))
		n := len(cursors)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "id: %d.0\nevent: n\ndata: {\"id\":\"%d\",\"type\":\"n\",\"data\":null,\"created_at\":\"2026-11-23T00:00:00Z\",\"broadcast\":false}\n\n", n, n)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // then nothing, not even a heartbeat
	}))
	defer silent.Close()
	defer silent.CloseClientConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := newClient(t, silent.URL)
	var got []string
	for ev, err := range c.Subscribe(ctx, client.SubscribeOptions{IdleTimeout: 100 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Cursor)
		if len(got) == 3 {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, []string{"1.0", "2.0", "3.0"}) || !slices.Equal(cursors, []string{"", "1.0", "2.0"}) {
		t.Fatalf("events %v, requests' cursors %v", got, cursors)
	}
}

// TestClientErrors: every error answer becomes an *Error with the API's code — also when a
// proxy in front of Herald answers in HTML or plain text — and a Retry-After in either form.
func TestClientErrors(t *testing.T) {
	soon := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		code       string
		message    string
		retryAfter time.Duration // ± 2s for dates
		temporary  bool
	}{
		{"Herald's JSON", 409, map[string]string{"Content-Type": "application/json"}, `{"error":{"code":"conflict","message":"key reused"}}`, "conflict", "key reused", 0, false},
		{"rate limited, seconds", 429, map[string]string{"Retry-After": "7"}, `{"error":{"code":"rate_limited","message":"slow down"}}`, "rate_limited", "slow down", 7 * time.Second, true},
		{"unavailable, HTTP date", 503, map[string]string{"Retry-After": soon}, `{"error":{"code":"unavailable","message":"draining"}}`, "unavailable", "draining", 30 * time.Second, true},
		{"date in the past", 503, map[string]string{"Retry-After": "Mon, 02 Jan 2006 15:04:05 GMT"}, ``, "unavailable", "", 0, true},
		{"garbage Retry-After", 503, map[string]string{"Retry-After": "soon"}, ``, "unavailable", "", 0, true},
		{"negative Retry-After", 503, map[string]string{"Retry-After": "-5"}, ``, "unavailable", "", 0, true},
		{"proxy HTML", 502, map[string]string{"Content-Type": "text/html"}, "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>", "unavailable", "502 Bad Gateway", 0, true},
		{"gateway timeout, empty", 504, nil, ``, "unavailable", "", 0, true},
		{"plain text 401", 401, map[string]string{"Content-Type": "text/plain"}, "Unauthorized\n", "unauthorized", "Unauthorized", 0, false},
		{"plain 413", 413, nil, "request entity too large", "too_large", "request entity too large", 0, false},
		{"JSON of another shape", 400, map[string]string{"Content-Type": "application/json"}, `{"message":"nope"}`, "invalid", `{"message":"nope"}`, 0, false},
		{"plain 500", 500, nil, "Internal Server Error", "internal", "Internal Server Error", 0, true},
		{"proxy timeout 408", 408, nil, "", "timeout", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			defer srv.Close()
			_, err := newClient(t, srv.URL).UnreadCount(context.Background())
			var he *client.Error
			if !errors.As(err, &he) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if he.Status != tt.status || he.Code != tt.code || he.Temporary() != tt.temporary ||
				(tt.message != "" && !strings.Contains(he.Message, tt.message)) || strings.Contains(he.Message, "<") {
				t.Errorf("got %+v (temporary %v), want status %d, code %s, a message with %q, temporary %v", he, he.Temporary(), tt.status, tt.code, tt.message, tt.temporary)
			}
			if d := he.RetryAfter - tt.retryAfter; d < -2*time.Second || d > 2*time.Second || (tt.retryAfter == 0 && he.RetryAfter != 0) {
				t.Errorf("RetryAfter %v, want %v", he.RetryAfter, tt.retryAfter)
			}
		})
	}
}

// TestClientReusesConnections: a publisher or an inbox reader keeps one connection however
// large the answers, instead of a new TCP (and TLS) connection per call.
func TestClientReusesConnections(t *testing.T) {
	big := strings.Repeat("x", 64<<10)
	answers := map[string]string{
		"/v1/notifications":       `{"notifications":[{"id":"1","type":"n","data":"` + big + `","created_at":"2026-11-23T00:00:00Z","broadcast":false,"read":false,"read_at":null}],"next_before":null}`,
		"/v1/notifications/batch": `{"notifications":[` + strings.Repeat(`{"id":"1","user":"alice"},`, 2000) + `{"id":"2"}]}`,
		"/v1/notifications/7":     `{"id":"7","type":"n","data":"` + big + `","created_at":"2026-11-23T00:00:00Z","broadcast":false,"read":false,"read_at":null}`,
	}
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost && r.URL.Path == "/v1/notifications" {
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintln(w, `{"notifications":[{"id":"1","user":"alice"}]}`)
			return
		}
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/read") {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.URL.Path == "/v1/notifications/404" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintln(w, `{"error":{"code":"not_found","message":"`+big+`"}}`)
			return
		}
		fmt.Fprintln(w, answers[r.URL.Path])
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := newClient(t, srv.URL, client.WithUser("alice"))
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if _, err := c.List(ctx, client.ListOptions{}); err != nil {
			t.Fatal(err)
		}
		if r, err := c.PublishBatch(ctx, []client.Message{{To: []string{"alice"}}}); err != nil || len(r) != 2001 {
			t.Fatal(len(r), err)
		}
		if _, err := c.Publish(ctx, client.Message{To: []string{"alice"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(ctx, "7"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(ctx, "404"); err == nil {
			t.Fatal("no error")
		}
		if err := c.MarkRead(ctx, "7"); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 30 calls, want 1", n)
	}
}

// TestClientRequests: what the client sends: paths escaped once (under the base URL's own
// path, escaping kept), the user and inbox parameters in the query, the idempotency key, credentials from the
// token source on every call, and nothing once the context has ended.
func TestClientRequests(t *testing.T) {
	type seen struct{ method, path, query, auth, body, ctype string }
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := new(strings.Builder)
		io.Copy(b, r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), b.String(), r.Header.Get("Content-Type")})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/read"), strings.HasSuffix(r.URL.Path, "/archive"):
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodPost:
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{"notifications":[{"id":"1","user":"a"}]}`)
		default:
			fmt.Fprint(w, `{"id":"1","type":"n","data":null,"created_at":"2026-11-23T00:00:00Z","broadcast":false,"read":false,"read_at":null,"notifications":[],"next_before":null}`)
		}
	}))
	defer srv.Close()
	sent := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	n := 0
	c := newClient(t, srv.URL+"/her%2Fald/", client.WithUser("al ice&x=1"), client.WithTokenSource(func(context.Context) (string, error) {
		n++
		return fmt.Sprintf("t%d", n), nil
	}))
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want seen
	}{
		{"get an odd id", func() error { _, err := c.Get(ctx, "a/b c%"); return err },
			seen{"GET", "/her%2Fald/v1/notifications/a%2Fb%20c%25", "user=al+ice%26x%3D1", "Bearer t1", "", ""}},
		{"mark read", func() error { return c.MarkRead(ctx, "12") },
			seen{"POST", "/her%2Fald/v1/notifications/12/read", "user=al+ice%26x%3D1", "Bearer t2", "", ""}},
		{"mark unread of a dotted id", func() error { return c.MarkUnread(ctx, "..") },
			seen{"DELETE", "/her%2Fald/v1/notifications/%2E%2E/read", "user=al+ice%26x%3D1", "Bearer t3", "", ""}},
		{"list", func() error {
			_, err := c.List(ctx, client.ListOptions{Limit: 5, Before: "9&x", Unread: true, Types: []string{"a", "b"}})
			return err
		}, seen{"GET", "/her%2Fald/v1/notifications", "before=9%26x&limit=5&types=a%2Cb&unread=true&user=al+ice%26x%3D1", "Bearer t4", "", ""}},
		{"publish with a key", func() error {
			_, err := c.Publish(ctx, client.Message{To: []string{"a"}, Type: "t", Data: json.RawMessage(`{"k":1}`), Key: "order-7"})
			return err
		}, seen{"POST", "/her%2Fald/v1/notifications", "user=al+ice%26x%3D1", "Bearer t5", `{"to":["a"],"type":"t","data":{"k":1},"key":"order-7"}`, "application/json"}},
		{"mark seen up to an id", func() error { _, err := c.MarkSeen(ctx, "41"); return err },
			seen{"POST", "/her%2Fald/v1/notifications/seen", "user=al+ice%26x%3D1", "Bearer t6", `{"up_to":"41"}`, "application/json"}},
		{"mark everything seen", func() error { _, err := c.MarkSeen(ctx, ""); return err },
			seen{"POST", "/her%2Fald/v1/notifications/seen", "user=al+ice%26x%3D1", "Bearer t7", "", ""}},
		{"archive", func() error { return c.Archive(ctx, "12") },
			seen{"POST", "/her%2Fald/v1/notifications/12/archive", "user=al+ice%26x%3D1", "Bearer t8", "", ""}},
		{"unarchive", func() error { return c.Unarchive(ctx, "12") },
			seen{"DELETE", "/her%2Fald/v1/notifications/12/archive", "user=al+ice%26x%3D1", "Bearer t9", "", ""}},
		{"archive read", func() error { _, err := c.ArchiveRead(ctx); return err },
			seen{"POST", "/her%2Fald/v1/notifications/archive-read", "user=al+ice%26x%3D1", "Bearer t10", "", ""}},
		{"list archived", func() error { _, err := c.List(ctx, client.ListOptions{Archived: true}); return err },
			seen{"GET", "/her%2Fald/v1/notifications", "archived=true&user=al+ice%26x%3D1", "Bearer t11", "", ""}},
		{"counts", func() error { _, err := c.Counts(ctx); return err },
			seen{"GET", "/her%2Fald/v1/notifications/unread-count", "user=al+ice%26x%3D1", "Bearer t12", "", ""}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != i+1 || got[i] != tt.want {
				t.Errorf("sent %+v\nwant %+v", got[len(got)-1], tt.want)
			}
		})
	}
	t.Run("empty id", func(t *testing.T) {
		before := sent()
		_, err := c.Get(ctx, "")
		if err == nil || c.MarkRead(ctx, "") == nil || c.MarkUnread(ctx, "") == nil || c.Archive(ctx, "") == nil || c.Unarchive(ctx, "") == nil {
			t.Error("an empty id was accepted")
		}
		if sent() != before {
			t.Error("a request was sent")
		}
	})
	// encoding/json would send "a\xffb" as "a\uFFFDb", another user: the client refuses instead,
	// as the server refuses such bytes.
	t.Run("not UTF-8", func(t *testing.T) {
		for name, m := range map[string]client.Message{
			"to":   {To: []string{"a", "b\xffc"}},
			"type": {To: []string{"a"}, Type: "t\xfe"},
			"key":  {To: []string{"a"}, Key: "k\xc0\xaf"},
			"data": {To: []string{"a"}, Data: json.RawMessage("\"\xff\"")},
		} {
			before := sent()
			if _, err := c.Publish(ctx, m); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s: Publish = %v, want an error naming %s", name, err, name)
			}
			if _, err := c.PublishBatch(ctx, []client.Message{{Broadcast: true}, m}); err == nil || !strings.Contains(err.Error(), "[1]") {
				t.Errorf("%s: PublishBatch = %v, want an error naming notifications[1]", name, err)
			}
			if sent() != before {
				t.Errorf("%s: a request was sent", name)
			}
		}
	})
	t.Run("ended context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		before := sent()
		if _, err := c.Publish(ctx, client.Message{To: []string{"a"}}); !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
		if sent() != before {
			t.Error("a request was sent")
		}
	})
}

// TestPublishContent: a Message's content reaches the subscriber's stream and inbox as it was
// sent, text as text; content the server refuses is an invalid *client.Error naming the field.
func TestPublishContent(t *testing.T) {
	s := start(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "h.db"), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := newClient(t, s.URL)
	alice := newClient(t, s.URL, client.WithUser("alice"))
	content := client.Content{Title: "Bob commented", Body: "<b>Nice</b>\nwork", URL: "/p/42", Icon: "/i.svg",
		Avatar: "https://cdn.example.com/bob.png", Actions: []client.Action{{Label: "Reply", URL: "/p/42#reply"}}, Group: "post:42"}
	r, err := pub.Publish(ctx, client.Message{To: []string{"alice"}, Type: "comment", Content: content, Data: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.PublishBatch(ctx, []client.Message{{To: []string{"alice"}, Content: client.Content{Title: "second"}}}); err != nil {
		t.Fatal(err)
	}
	events, _, _ := subscribe(t, ctx, alice, client.SubscribeOptions{LastEventID: "0.0"})
	got := collect(t, events, 2)
	if n := got[0].Notification; n == nil || n.ID != r[0].ID || !reflectEqual(n.Content, content) || string(n.Data) != "1" {
		t.Fatalf("streamed %+v, want the content %+v", got[0], content)
	}
	if n := got[1].Notification; n == nil || n.Title != "second" || n.Body != "" || n.Actions != nil {
		t.Fatalf("streamed %+v, want only the title", got[1])
	}
	n, err := alice.Get(ctx, r[0].ID)
	if err != nil || !reflectEqual(n.Content, content) {
		t.Fatalf("Get: %+v, %v; want the content %+v", n, err, content)
	}
	_, err = pub.Publish(ctx, client.Message{To: []string{"alice"}, Content: client.Content{URL: "javascript:alert(1)"}})
	var he *client.Error
	if !errors.As(err, &he) || he.Code != "invalid" || !strings.Contains(he.Message, `"url"`) {
		t.Fatalf("a javascript: url: %v, want an invalid error naming \"url\"", err)
	}
	if _, err := pub.Publish(ctx, client.Message{To: []string{"alice"}, Content: client.Content{Title: "a\xffb"}}); err == nil || !strings.Contains(err.Error(), "title") {
		t.Fatalf("a title not UTF-8: %v, want an error naming title", err)
	}
}

func reflectEqual(a, b client.Content) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
