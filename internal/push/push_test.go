package push_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/push"
	"github.com/heraldhq/herald/internal/push/pushtest"
	"github.com/heraldhq/herald/internal/store/postgres"
	"github.com/heraldhq/herald/internal/store/sqlite"
	"github.com/heraldhq/herald/internal/testenv"
)

// The policy and the outbox against a real store and the loopback push service, one round of
// the sender at a time (Sender.Round), so that each rule is checked without waiting on timers:
// the stores are opened without a push delay, so a fallback push is due at its commit.

type rig struct {
	store   herald.Store
	service *pushtest.Service
	sender  *push.Sender
	reg     *prometheus.Registry
	keys    push.Keys
}

type rigOption func(*push.Options)

func openSQLite(t *testing.T) herald.Store {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "h.db"), sqlite.Options{Sync: sqlite.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newRig(t *testing.T, store herald.Store, opts ...rigOption) *rig {
	keys, err := push.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{store: store, service: pushtest.New(t, keys.Public), reg: prometheus.NewRegistry(), keys: keys}
	r.service.Log = t.Logf
	o := push.Options{Store: store, Keys: keys, Subject: "mailto:ops@example.com", Retry: time.Millisecond, Registerer: r.reg}
	for _, f := range opts {
		f(&o)
	}
	if r.sender, err = push.New(o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if errs := r.service.Errors(); len(errs) > 0 {
			t.Errorf("the push service refused pushes: %v", errs)
		}
	})
	return r
}

func (r *rig) subscribe(t *testing.T, user string) *pushtest.Subscription {
	t.Helper()
	sub := r.service.Subscribe()
	if _, err := r.store.AddPushSubscription(t.Context(), herald.PushSubscription{User: user, Endpoint: sub.Endpoint, P256DH: sub.P256DH, Auth: sub.Auth}, 0); err != nil {
		t.Fatal(err)
	}
	return sub
}

func (r *rig) publish(t *testing.T, d herald.Draft) herald.Notification {
	t.Helper()
	if d.Type == "" {
		d.Type = "comment"
	}
	if d.Data == nil {
		d.Data = json.RawMessage(`{}`)
	}
	rs, err := r.store.Append(t.Context(), "p", []herald.Draft{d})
	if err != nil {
		t.Fatal(err)
	}
	return rs[0].Notifications[0]
}

// round runs one round of the sender and returns how many pushes it claimed.
func (r *rig) round(t *testing.T) int {
	t.Helper()
	n, err := r.sender.Round(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (r *rig) pending(t *testing.T) int64 {
	t.Helper()
	st, err := r.store.PushOutboxStats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st.Pending
}

func (r *rig) counter(name, label string) float64 {
	mfs, _ := r.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || (len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == label) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

func payloadOf(t *testing.T, b []byte) push.Payload {
	t.Helper()
	var p push.Payload
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("payload %s: %v", b, err)
	}
	return p
}

func to(user string, c *herald.Content, mode herald.PushMode) herald.Draft {
	return herald.Draft{To: []string{user}, Content: c, Push: mode}
}

func TestPolicy(t *testing.T) {
	hello := &herald.Content{Title: "Bob commented", Body: "Nice work", URL: "https://app.example/posts/42", Icon: "https://app.example/bob.png", Group: "post-42"}
	tests := []struct {
		name string
		// before runs after the publish and before the round.
		before func(t *testing.T, r *rig, n herald.Notification)
		mode   herald.PushMode
		opts   []rigOption
		want   bool // pushed
		reason string
	}{
		{name: "unread and absent: pushed", want: true},
		{name: "read: not pushed", reason: "seen", before: func(t *testing.T, r *rig, n herald.Notification) {
			if err := r.store.SetRead(t.Context(), "alice", n.ID, true); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "seen: not pushed", reason: "seen", before: func(t *testing.T, r *rig, n herald.Notification) {
			if _, _, err := r.store.MarkSeen(t.Context(), "alice", 0); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "present on some node since: not pushed", reason: "present", before: func(t *testing.T, r *rig, n herald.Notification) {
			if err := r.store.MarkPresent(t.Context(), map[string]time.Time{"alice": n.CreatedAt}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "present only before: pushed", want: true, before: func(t *testing.T, r *rig, n herald.Notification) {
			if err := r.store.MarkPresent(t.Context(), map[string]time.Time{"alice": n.CreatedAt.Add(-time.Millisecond)}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "always: pushed although read and present", mode: herald.PushAlways, want: true, before: func(t *testing.T, r *rig, n herald.Notification) {
			r.store.SetRead(t.Context(), "alice", n.ID, true)
			r.store.MarkPresent(t.Context(), map[string]time.Time{"alice": time.Now()})
		}},
		{name: "never: not queued", mode: herald.PushNever},
		{name: "muted: not pushed", reason: "muted", opts: []rigOption{func(o *push.Options) { o.Muter = muteType("comment") }}},
		{name: "muted even with always", mode: herald.PushAlways, reason: "muted", opts: []rigOption{func(o *push.Options) { o.Muter = muteType("comment") }}},
		{name: "other type muted: pushed", want: true, opts: []rigOption{func(o *push.Options) { o.Muter = muteType("invoice") }}},
		{name: "older than the TTL: dropped", opts: []rigOption{func(o *push.Options) { o.TTL = time.Nanosecond }}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, openSQLite(t), tc.opts...)
			sub := r.subscribe(t, "alice")
			n := r.publish(t, to("alice", hello, tc.mode))
			if tc.before != nil {
				tc.before(t, r, n)
			}
			r.round(t)
			got := r.service.Delivered(sub)
			if pushed := len(got) > 0; pushed != tc.want {
				t.Fatalf("pushed: %v, want %v", pushed, tc.want)
			}
			if r.pending(t) != 0 {
				t.Fatalf("%d pushes left in the outbox", r.pending(t))
			}
			if tc.reason != "" {
				if c := r.counter("herald_push_skipped_total", tc.reason); c != 1 {
					t.Fatalf("herald_push_skipped_total{reason=%q} = %v, want 1", tc.reason, c)
				}
			}
			if !tc.want {
				return
			}
			p := payloadOf(t, got[0])
			if p.ID != n.ID || p.Title != hello.Title || p.Body != hello.Body || p.URL != hello.URL || p.Icon != hello.Icon || p.Tag != "post-42" || p.Type != "comment" {
				t.Fatalf("payload %+v", p)
			}
			ps := r.service.Pushes(sub)
			if ps[0].Topic != "post-42" || ps[0].TTL == "0" || ps[0].TTL == "" {
				t.Fatalf("headers: Topic %q TTL %q", ps[0].Topic, ps[0].TTL)
			}
			if want := map[bool]string{true: "high", false: "normal"}[tc.mode == herald.PushAlways]; ps[0].Urgency != want {
				t.Fatalf("Urgency %q, want %q", ps[0].Urgency, want)
			}
			if c := r.counter("herald_push_sent_total", ""); c != 1 {
				t.Fatalf("herald_push_sent_total = %v", c)
			}
		})
	}
}

// muteType mutes one type for everyone: a real, if tiny, implementation of the interface
// preferences provide.
type muteType string

func (m muteType) MutedPush(_ context.Context, _, typ, _ string) (bool, error) {
	return typ == string(m), nil
}

func TestPresenceHere(t *testing.T) {
	store := openSQLite(t)
	pr := push.NewPresence(store, time.Hour, nil)
	r := newRig(t, store, func(o *push.Options) { o.Presence = pr })
	sub := r.subscribe(t, "alice")
	pr.Changed("alice", true) // a stream open on this node, not yet written to the store
	r.publish(t, to("alice", nil, ""))
	r.round(t)
	if n := len(r.service.Pushes(sub)); n != 0 {
		t.Fatalf("pushed %d to a user with a stream open here", n)
	}
	pr.Changed("alice", false)
	pr.Flush(t.Context()) // the close is written with its time, before the next publish
	r.publish(t, to("alice", nil, ""))
	r.round(t)
	if n := len(r.service.Delivered(sub)); n != 1 {
		t.Fatalf("after the stream closed: %d pushes, want 1", n)
	}
}

// TestPrunePresence: presence from before the TTL goes (it can hold back no push still to be
// sent), newer presence stays, however many users there are.
func TestPrunePresence(t *testing.T) {
	store := openSQLite(t)
	r := newRig(t, store, func(o *push.Options) { o.TTL = time.Hour })
	now := time.Now()
	old := map[string]time.Time{}
	for i := range 2500 { // more than one prune statement removes
		old[fmt.Sprintf("old-%d", i)] = now.Add(-2 * time.Hour)
	}
	if err := store.MarkPresent(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	if err := store.MarkPresent(t.Context(), map[string]time.Time{"recent": now.Add(-30 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if n, err := r.sender.PrunePresence(t.Context()); err != nil || n != 2500 {
		t.Fatalf("PrunePresence: %d, %v; want the 2500 older than the TTL", n, err)
	}
	if at, err := store.LastPresent(t.Context(), "old-7"); err != nil || !at.IsZero() {
		t.Fatalf("old-7: %v, %v; want pruned", at, err)
	}
	if at, err := store.LastPresent(t.Context(), "recent"); err != nil || at.IsZero() {
		t.Fatalf("recent: %v, %v; want kept", at, err)
	}
}

func TestPayloadFromData(t *testing.T) {
	r := newRig(t, openSQLite(t))
	sub := r.subscribe(t, "alice")
	n := r.publish(t, herald.Draft{To: []string{"alice"}, Type: "chat", Data: json.RawMessage(`{"text":"hi there","n":1}`)})
	r.round(t)
	got := r.service.Delivered(sub)
	if len(got) != 1 {
		t.Fatalf("%d pushes", len(got))
	}
	if p := payloadOf(t, got[0]); p.Body != "hi there" || p.Title != "" || p.Tag != "herald-"+itoa(n.ID) {
		t.Fatalf("payload %+v", p)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestPayloadLimit(t *testing.T) {
	long := strings.Repeat("é", herald.MaxBodyLen)
	n := herald.Notification{ID: 1, Type: "t", Content: &herald.Content{Title: strings.Repeat("t", 200), Body: long, URL: "https://x.example/" + strings.Repeat("u", 1500)}}
	b, err := push.NewPayload(&n)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > push.MaxPayload {
		t.Fatalf("payload of %d bytes", len(b))
	}
	var p push.Payload
	if err := json.Unmarshal(b, &p); err != nil || !strings.HasSuffix(p.Body, "…") || p.URL == "" {
		t.Fatalf("payload %+v, %v", p, err)
	}
}

func TestBroadcasts(t *testing.T) {
	r := newRig(t, openSQLite(t))
	a, b := r.subscribe(t, "alice"), r.subscribe(t, "bob")
	r.publish(t, herald.Draft{Broadcast: true, Content: &herald.Content{Title: "maintenance"}})
	r.publish(t, herald.Draft{Broadcast: true, Content: &herald.Content{Title: "outage"}, Push: herald.PushAlways})
	r.round(t)
	for _, sub := range []*pushtest.Subscription{a, b} {
		got := r.service.Delivered(sub)
		if len(got) != 1 || payloadOf(t, got[0]).Title != "outage" {
			t.Fatalf("got %q, want only the broadcast with push always", got)
		}
	}
}

// TestAnswers: what the sender does with each answer of the push service.
func TestAnswers(t *testing.T) {
	t.Run("500 then 201: sent once, on the retry", func(t *testing.T) {
		r := newRig(t, openSQLite(t))
		sub := r.subscribe(t, "alice")
		r.service.Answer(sub, pushtest.Answer{Status: 500})
		r.publish(t, to("alice", nil, ""))
		r.round(t)
		if r.pending(t) != 1 {
			t.Fatal("the failed push left the outbox")
		}
		waitRounds(t, r, func() bool { return len(r.service.Delivered(sub)) == 1 })
		if ps := r.service.Pushes(sub); len(ps) != 2 || ps[0].Status != 500 || ps[1].Status != 201 {
			t.Fatalf("pushes %+v", ps)
		}
		if r.pending(t) != 0 || r.counter("herald_push_failed_total", "server_error") != 1 {
			t.Fatal("not finished, or not counted")
		}
	})
	for _, code := range []int{404, 410} {
		t.Run(http.StatusText(code)+": the subscription is removed", func(t *testing.T) {
			r := newRig(t, openSQLite(t))
			sub := r.subscribe(t, "alice")
			r.service.Answer(sub, pushtest.Answer{Status: code})
			r.publish(t, to("alice", nil, ""))
			r.publish(t, to("alice", nil, "")) // its push goes with the subscription
			r.round(t)
			subs, err := r.store.PushSubscriptions(t.Context(), "alice")
			if err != nil || len(subs) != 0 {
				t.Fatalf("subscriptions %v, %v", subs, err)
			}
			if r.pending(t) != 0 || r.counter("herald_push_subscriptions_pruned_total", "") != 1 {
				t.Fatal("pushes left, or not counted")
			}
		})
	}
	t.Run("429 waits for Retry-After", func(t *testing.T) {
		r := newRig(t, openSQLite(t))
		sub := r.subscribe(t, "alice")
		r.service.Answer(sub, pushtest.Answer{Status: 429, RetryAfter: "120"})
		r.publish(t, to("alice", nil, ""))
		start := time.Now()
		r.round(t)
		if jobs, _ := r.store.ClaimPushes(t.Context(), start.Add(110*time.Second), time.Minute, 10); len(jobs) != 0 {
			t.Fatal("due before its Retry-After")
		}
		if jobs, _ := r.store.ClaimPushes(t.Context(), time.Now().Add(121*time.Second), time.Minute, 10); len(jobs) != 1 {
			t.Fatal("not due after its Retry-After")
		}
	})
	t.Run("400: dropped", func(t *testing.T) {
		r := newRig(t, openSQLite(t))
		sub := r.subscribe(t, "alice")
		r.service.Answer(sub, pushtest.Answer{Status: 400})
		r.publish(t, to("alice", nil, ""))
		r.round(t)
		if r.pending(t) != 0 || r.counter("herald_push_failed_total", "rejected") != 1 {
			t.Fatal("not dropped")
		}
		if subs, _ := r.store.PushSubscriptions(t.Context(), "alice"); len(subs) != 1 {
			t.Fatal("the subscription went with a 400")
		}
	})
	t.Run("network error: retried", func(t *testing.T) {
		r := newRig(t, openSQLite(t))
		r.store.AddPushSubscription(t.Context(), herald.PushSubscription{User: "alice", Endpoint: "http://127.0.0.1:1/push/x",
			P256DH: r.service.Subscribe().P256DH, Auth: "AAAAAAAAAAAAAAAAAAAAAA"}, 0)
		r.publish(t, to("alice", nil, ""))
		r.round(t)
		if r.pending(t) != 1 || r.counter("herald_push_failed_total", "network") != 1 {
			t.Fatal("not kept for a retry")
		}
	})
}

// waitRounds runs rounds until cond holds; the retries in these tests are due within
// milliseconds.
func waitRounds(t *testing.T, r *rig, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		if r.round(t) == 0 {
			time.Sleep(time.Millisecond) // the retry's due time is a moment ahead
		}
	}
}

// TestSendersShareTheOutbox: several senders (nodes) on one store send each push once.
func TestSendersShareTheOutbox(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			var store herald.Store
			if kind == "sqlite" {
				store = openSQLite(t)
			} else {
				s, err := postgres.Open(t.Context(), testenv.Postgres(t), postgres.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				store = s
			}
			r := newRig(t, store)
			sub := r.subscribe(t, "alice")
			const n = 60
			for range n {
				r.publish(t, to("alice", nil, ""))
			}
			var senders []*push.Sender
			for range 3 {
				s, err := push.New(push.Options{Store: store, Keys: r.keys, Subject: "https://ops.example", Workers: 2, Registerer: prometheus.NewRegistry()})
				if err != nil {
					t.Fatal(err)
				}
				senders = append(senders, s)
			}
			var wg sync.WaitGroup
			for _, s := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						k, err := s.Round(t.Context())
						if err != nil {
							t.Error(err)
							return
						}
						if k == 0 {
							return
						}
					}
				}()
			}
			wg.Wait()
			got := r.service.Delivered(sub)
			ids := map[int64]int{}
			for _, b := range got {
				ids[payloadOf(t, b).ID]++
			}
			if len(got) != n || len(ids) != n {
				t.Fatalf("%d pushes of %d notifications, want %d of %d", len(got), len(ids), n, n)
			}
		})
	}
}

func TestGoroutinesStop(t *testing.T) {
	store := openSQLite(t)
	r := newRig(t, store, func(o *push.Options) { o.Poll = time.Millisecond })
	pr := push.NewPresence(store, time.Millisecond, nil)
	r.sender.Start()
	pr.Start()
	r.sender.Close()
	pr.Close()
	r.sender.Close() // twice is harmless
	pr.Close()
}
