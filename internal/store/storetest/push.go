package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
)

// Web Push (issue 18): subscriptions, the outbox written by Append, claims with leases, and
// presence. The stores under test are opened without a push delay: a fallback push is due at
// its commit.

func pushCases() []struct {
	name string
	fn   func(t *testing.T, s herald.Store)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s herald.Store)
	}{
		{"PushSubscriptions", testPushSubscriptions},
		{"PushQueue", testPushQueue},
		{"PushClaims", testPushClaims},
		{"PushConcurrentClaims", testPushConcurrentClaims},
		{"PushPresence", testPushPresence},
	}
}

func sub(user, endpoint string) herald.PushSubscription {
	return herald.PushSubscription{User: user, Endpoint: endpoint, P256DH: "p-" + endpoint, Auth: "a-" + endpoint}
}

func endpoints(subs []herald.PushSubscription) []string {
	out := []string{}
	for _, s := range subs {
		out = append(out, s.Endpoint)
	}
	return out
}

func testPushSubscriptions(t *testing.T, s herald.Store) {
	ctx := t.Context()
	add := func(sb herald.PushSubscription, max int) bool {
		t.Helper()
		created, err := s.AddPushSubscription(ctx, sb, max)
		if err != nil {
			t.Fatalf("AddPushSubscription(%s, %s): %v", sb.User, sb.Endpoint, err)
		}
		return created
	}
	list := func(user string) []herald.PushSubscription {
		t.Helper()
		subs, err := s.PushSubscriptions(ctx, user)
		if err != nil {
			t.Fatalf("PushSubscriptions(%s): %v", user, err)
		}
		return subs
	}
	if got := list("alice"); got == nil || len(got) != 0 {
		t.Fatalf("no subscriptions: got %#v, want an empty non-nil list", got)
	}
	before := time.Now().Add(-time.Second)
	if !add(sub("alice", "https://push.example/1"), 3) || !add(sub("alice", "https://push.example/2"), 3) {
		t.Fatal("new endpoints were not reported created")
	}
	t.Run("listed oldest first with their keys", func(t *testing.T) {
		got := list("alice")
		if !slices.Equal(endpoints(got), []string{"https://push.example/1", "https://push.example/2"}) {
			t.Fatalf("got %v", endpoints(got))
		}
		if g := got[0]; g.User != "alice" || g.P256DH != "p-https://push.example/1" || g.Auth != "a-https://push.example/1" ||
			g.CreatedAt.Before(before) || g.CreatedAt.After(time.Now().Add(time.Second)) {
			t.Fatalf("got %+v", g)
		}
	})
	t.Run("same endpoint again updates its keys", func(t *testing.T) {
		again := sub("alice", "https://push.example/1")
		again.Auth = "new-auth"
		if add(again, 3) {
			t.Fatal("a known endpoint was reported created")
		}
		if got := list("alice"); len(got) != 2 || got[0].Auth != "new-auth" {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("limit per user", func(t *testing.T) {
		add(sub("alice", "https://push.example/3"), 3)
		_, err := s.AddPushSubscription(ctx, sub("alice", "https://push.example/4"), 3)
		if herald.ErrorCode(err) != herald.ETOOLARGE {
			t.Fatalf("a 4th subscription with a limit of 3: got %v, want too_large", err)
		}
		if !add(sub("alice", "https://push.example/4"), 0) {
			t.Fatal("limit 0 (none) refused")
		}
	})
	t.Run("another user takes the browser over", func(t *testing.T) {
		if !add(sub("bob", "https://push.example/4"), 3) {
			t.Fatal("not created for bob")
		}
		if got := endpoints(list("alice")); slices.Contains(got, "https://push.example/4") {
			t.Fatalf("alice still has the endpoint bob registered: %v", got)
		}
		if got := endpoints(list("bob")); !slices.Equal(got, []string{"https://push.example/4"}) {
			t.Fatalf("bob: %v", got)
		}
	})
	t.Run("delete", func(t *testing.T) {
		if err := s.DeletePushSubscription(ctx, "bob", "https://push.example/1"); herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Fatalf("deleting alice's endpoint as bob: got %v, want not_found", err)
		}
		if err := s.DeletePushSubscription(ctx, "alice", "https://push.example/1"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeletePushSubscription(ctx, "alice", "https://push.example/1"); herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Fatalf("second delete: got %v, want not_found", err)
		}
		if got := endpoints(list("alice")); !slices.Equal(got, []string{"https://push.example/2", "https://push.example/3"}) {
			t.Fatalf("got %v", got)
		}
	})
}

// claimAll claims everything due within the next hour.
func claimAll(t *testing.T, s herald.Store) []herald.PushJob {
	t.Helper()
	jobs, err := s.ClaimPushes(t.Context(), time.Now().Add(time.Hour), time.Minute, 1000)
	if err != nil {
		t.Fatalf("ClaimPushes: %v", err)
	}
	return jobs
}

type pushKey struct {
	id       int64
	user     string
	endpoint string
	now      bool
}

func keys(jobs []herald.PushJob) []pushKey {
	out := []pushKey{}
	for _, j := range jobs {
		out = append(out, pushKey{j.Notification, j.User, j.Subscription.Endpoint, j.Immediate})
	}
	slices.SortFunc(out, func(a, b pushKey) int {
		if a.id != b.id {
			return int(a.id - b.id)
		}
		if a.endpoint < b.endpoint {
			return -1
		}
		return 1
	})
	return out
}

func testPushQueue(t *testing.T, s herald.Store) {
	ctx := t.Context()
	for _, sb := range []herald.PushSubscription{sub("alice", "e/a1"), sub("alice", "e/a2"), sub("bob", "e/b1")} {
		if _, err := s.AddPushSubscription(ctx, sb, 0); err != nil {
			t.Fatal(err)
		}
	}
	withPush := func(d herald.Draft, m herald.PushMode) herald.Draft { d.Push = m; return d }
	before := time.Now().Add(-time.Second)
	rs := appendOK(t, s, scope,
		uni("t", `1`, "alice", "carol", "bob"),             // 0: carol has no subscription
		withPush(uni("t", `2`, "alice"), herald.PushNever), // 1: never
		withPush(uni("t", `3`, "bob"), herald.PushAlways),  // 2: at once
		bcast("t", `4`), // 3: a broadcast: not by default
		withPush(bcast("t", `5`), herald.PushAlways), // 4: every subscription
	)
	alice0, bob0 := rs[0].Notifications[0].ID, rs[0].Notifications[2].ID
	bob2, b4 := rs[2].Notifications[0].ID, rs[4].Notifications[0].ID
	want := []pushKey{
		{alice0, "alice", "e/a1", false}, {alice0, "alice", "e/a2", false},
		{bob0, "bob", "e/b1", false},
		{bob2, "bob", "e/b1", true},
		{b4, "alice", "e/a1", true}, {b4, "alice", "e/a2", true}, {b4, "bob", "e/b1", true},
	}
	slices.SortFunc(want, func(a, b pushKey) int {
		if a.id != b.id {
			return int(a.id - b.id)
		}
		if a.endpoint < b.endpoint {
			return -1
		}
		return 1
	})
	jobs := claimAll(t, s)
	if got := keys(jobs); !slices.Equal(got, want) {
		t.Fatalf("queued:\n got %+v\nwant %+v", got, want)
	}
	for _, j := range jobs {
		if j.Attempts != 0 || j.Claim == "" || j.CreatedAt.Before(before) || j.Subscription.P256DH != "p-"+j.Subscription.Endpoint ||
			j.Subscription.Auth != "a-"+j.Subscription.Endpoint || j.Subscription.User != j.User {
			t.Fatalf("job %+v", j)
		}
	}
	st, err := s.PushOutboxStats(ctx)
	if err != nil || st.Pending != int64(len(want)) || st.Oldest.Before(before) {
		t.Fatalf("PushOutboxStats: %+v, %v", st, err)
	}
	t.Run("deleting a subscription drops its pushes", func(t *testing.T) {
		if err := s.DeletePushSubscription(ctx, "alice", "e/a2"); err != nil {
			t.Fatal(err)
		}
		st, err := s.PushOutboxStats(ctx)
		if err != nil || st.Pending != int64(len(want)-2) {
			t.Fatalf("PushOutboxStats: %+v, %v", st, err)
		}
	})
	t.Run("finished pushes leave the outbox", func(t *testing.T) {
		var ids []int64
		for _, j := range jobs {
			ids = append(ids, j.ID)
		}
		if err := s.FinishPushes(ctx, jobs[0].Claim, ids); err != nil {
			t.Fatal(err)
		}
		st, err := s.PushOutboxStats(ctx)
		if err != nil || st.Pending != 0 || !st.Oldest.IsZero() {
			t.Fatalf("PushOutboxStats: %+v, %v", st, err)
		}
	})
	t.Run("a topic's subscribers", func(t *testing.T) {
		subscribe(t, s, "push-topic", "alice", "bob", "carol") // carol has no subscription
		for _, tc := range []struct {
			mode herald.PushMode
			now  bool
			none bool
		}{{herald.PushDefault, false, false}, {herald.PushAlways, true, false}, {herald.PushNever, false, true}} {
			d := topicDraft("push-topic", `7`, "bob")
			d.Push = tc.mode
			ns, err := s.Stream(ctx, "alice", 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			appendOK(t, s, scope, d)
			after, err := s.Stream(ctx, "alice", ns[len(ns)-1].Seq, 10)
			if err != nil || len(after) != 1 {
				t.Fatalf("alice's new notifications: %v, %v", after, err)
			}
			want := []pushKey{{after[0].ID, "alice", "e/a1", tc.now}}
			if tc.none {
				want = []pushKey{}
			}
			if got := keys(claimAll(t, s)); !slices.Equal(got, want) {
				t.Fatalf("push %q: queued %+v, want %+v", tc.mode, got, want)
			}
		}
	})
	t.Run("a replayed key queues nothing", func(t *testing.T) {
		appendOK(t, s, scope, keyed(uni("t", `6`, "bob"), "k1"))
		if n := len(claimAll(t, s)); n != 1 {
			t.Fatalf("first: %d pushes", n)
		}
		if rs := appendOK(t, s, scope, keyed(uni("t", `6`, "bob"), "k1")); !rs[0].Replayed {
			t.Fatal("not replayed")
		}
		if jobs := claimAll(t, s); len(jobs) != 0 {
			t.Fatalf("the replay queued %+v", jobs)
		}
	})
}

func testPushClaims(t *testing.T, s herald.Store) {
	ctx := t.Context()
	if _, err := s.AddPushSubscription(ctx, sub("alice", "e/1"), 0); err != nil {
		t.Fatal(err)
	}
	appendOK(t, s, scope, uni("t", `1`, "alice"))
	now := time.Now().Add(time.Hour)
	claim := func(at time.Time) []herald.PushJob {
		t.Helper()
		jobs, err := s.ClaimPushes(ctx, at, time.Minute, 10)
		if err != nil {
			t.Fatal(err)
		}
		return jobs
	}
	if jobs := claim(time.Now().Add(-time.Minute)); len(jobs) != 0 {
		t.Fatalf("claimed before it was due: %+v", jobs)
	}
	first := claim(now)
	if len(first) != 1 {
		t.Fatalf("claimed %d, want 1", len(first))
	}
	if again := claim(now.Add(59 * time.Second)); len(again) != 0 {
		t.Fatalf("claimed again within the lease: %+v", again)
	}
	second := claim(now.Add(61 * time.Second))
	if len(second) != 1 || second[0].Attempts != 1 || second[0].Claim == first[0].Claim || second[0].ID != first[0].ID {
		t.Fatalf("after the lease: %+v (first %+v)", second, first)
	}
	// The first claim lapsed: it can neither finish nor reschedule the push.
	if err := s.FinishPushes(ctx, first[0].Claim, []int64{first[0].ID}); err != nil {
		t.Fatal(err)
	}
	if err := s.RetryPush(ctx, first[0].ID, first[0].Claim, now); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.PushOutboxStats(ctx); st.Pending != 1 {
		t.Fatalf("a lapsed claim finished the push: %+v", st)
	}
	if jobs := claim(now.Add(62 * time.Second)); len(jobs) != 0 {
		t.Fatalf("a lapsed claim rescheduled the push: %+v", jobs)
	}
	// The current claim retries it later.
	if err := s.RetryPush(ctx, second[0].ID, second[0].Claim, now.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if jobs := claim(now.Add(9 * time.Minute)); len(jobs) != 0 {
		t.Fatalf("claimed before the retry's time: %+v", jobs)
	}
	third := claim(now.Add(10 * time.Minute))
	if len(third) != 1 || third[0].Attempts != 2 {
		t.Fatalf("at the retry's time: %+v", third)
	}
	if err := s.FinishPushes(ctx, third[0].Claim, []int64{third[0].ID}); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.PushOutboxStats(ctx); st.Pending != 0 {
		t.Fatalf("finished push still pending: %+v", st)
	}
}

// testPushConcurrentClaims: claimers racing never get the same push.
func testPushConcurrentClaims(t *testing.T, s herald.Store) {
	ctx := t.Context()
	if _, err := s.AddPushSubscription(ctx, sub("alice", "e/1"), 0); err != nil {
		t.Fatal(err)
	}
	const n = 200
	var drafts []herald.Draft
	for range n {
		drafts = append(drafts, uni("t", `1`, "alice"))
	}
	appendOK(t, s, scope, drafts...)
	var mu sync.Mutex
	got := map[int64]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				jobs, err := s.ClaimPushes(ctx, time.Now().Add(time.Hour), time.Hour, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(jobs) == 0 {
					return
				}
				mu.Lock()
				for _, j := range jobs {
					got[j.Notification]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(got) != n {
		t.Fatalf("claimed %d distinct pushes, want %d", len(got), n)
	}
	for id, k := range got {
		if k != 1 {
			t.Fatalf("push of %d claimed %d times", id, k)
		}
	}
}

func testPushPresence(t *testing.T, s herald.Store) {
	ctx := t.Context()
	at, err := s.LastPresent(ctx, "alice")
	if err != nil || !at.IsZero() {
		t.Fatalf("never present: %v, %v", at, err)
	}
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	if err := s.MarkPresent(ctx, map[string]time.Time{"alice": t0, "bob": t0.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkPresent(ctx, map[string]time.Time{"alice": t0.Add(-time.Minute), "bob": t0}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if at, err := s.LastPresent(ctx, u); err != nil || !at.Equal(t0) {
			t.Fatalf("%s: got %v, %v; want %v (the later time)", u, at, err, t0)
		}
	}
	if err := s.MarkPresent(ctx, nil); err != nil {
		t.Fatal(err)
	}
	t.Run("pruned before a time, at most limit at once", func(t *testing.T) {
		old := map[string]time.Time{}
		for i := range 5 {
			old[fmt.Sprintf("gone-%d", i)] = t0.Add(-3 * time.Hour)
		}
		if err := s.MarkPresent(ctx, old); err != nil {
			t.Fatal(err)
		}
		before := t0.Add(-2 * time.Hour)
		if n, err := s.PrunePresence(ctx, before, 3); err != nil || n != 3 {
			t.Fatalf("PrunePresence, limit 3: %d, %v", n, err)
		}
		if n, err := s.PrunePresence(ctx, before, 3); err != nil || n != 2 {
			t.Fatalf("PrunePresence again: %d, %v; want the 2 left", n, err)
		}
		if n, err := s.PrunePresence(ctx, before, 3); err != nil || n != 0 {
			t.Fatalf("PrunePresence a third time: %d, %v", n, err)
		}
		for u := range old {
			if at, err := s.LastPresent(ctx, u); err != nil || !at.IsZero() {
				t.Fatalf("%s after the prune: %v, %v", u, at, err)
			}
		}
		for _, u := range []string{"alice", "bob"} {
			if at, err := s.LastPresent(ctx, u); err != nil || !at.Equal(t0) {
				t.Fatalf("%s, newer than the time: %v, %v; want %v kept", u, at, err, t0)
			}
		}
	})
}
