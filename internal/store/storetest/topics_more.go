package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/heraldhq/herald"
)

// testTopicsMore holds the topic cases of issue 17 beyond fan-out: the inbox's topic filter,
// counting subscribers, and the limits of subscriptions, alone and under concurrency. The cases
// share one store, each with its own topics and users.
func testTopicsMore(t *testing.T, s herald.Store) {
	t.Run("InboxTopic", func(t *testing.T) { testInboxTopic(t, s) })
	t.Run("CountSubscribers", func(t *testing.T) { testCountSubscribers(t, s) })
	t.Run("TopicLimits", func(t *testing.T) { testTopicLimits(t, s) })
	t.Run("TopicLimitsConcurrent", func(t *testing.T) { testTopicLimitsConcurrent(t, s) })
	t.Run("TopicAmongDrafts", func(t *testing.T) { testTopicAmongDrafts(t, s) })
	t.Run("TopicOverTheBound", func(t *testing.T) { testTopicOverTheBound(t, s) })
}

// testTopicOverTheBound: a topic publish that would reach more than MaxTopicRecipients (100,000)
// is too_large and writes nothing, in a batch with other drafts too; excluding one subscriber
// does not bring it under, since the bound is on the audience counted with one over.
func testTopicOverTheBound(t *testing.T, s herald.Store) {
	if testing.Short() {
		t.Skip("subscribes 100,001 users")
	}
	const bound = 100_000 // store.MaxTopicRecipients, which storetest cannot import
	users := make([]string, bound+1)
	for i := range users {
		users[i] = fmt.Sprintf("big-%06d", i)
	}
	for from := 0; from < len(users); from += 10_000 {
		subscribe(t, s, "big", users[from:min(from+10_000, len(users))]...)
	}
	before := appendOK(t, s, scope, uni("t", `{}`, "big-000000"))[0].Notifications[0]
	for _, drafts := range [][]herald.Draft{
		{topicDraft("big", `{}`)},
		{topicDraft("big", `{}`, "nobody")},
		{uni("t", `{}`, "big-000000"), topicDraft("big", `{}`)},
	} {
		_, err := s.Append(t.Context(), scope, drafts)
		if herald.ErrorCode(err) != herald.ETOOLARGE {
			t.Fatalf("Append of %d drafts to a topic of %d: %v, want too_large", len(drafts), bound+1, err)
		}
	}
	ns, err := s.Stream(t.Context(), "big-000000", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 || ns[0].ID != before.ID {
		t.Fatalf("after refused publishes big-000000 has %d notifications, want only %d", len(ns), before.ID)
	}
}

// testTopicAmongDrafts: a topic draft between drafts to the same users, in one request and in
// concurrent ones, numbers each stream on without a gap or a repeat.
func testTopicAmongDrafts(t *testing.T, s herald.Store) {
	ctx := context.Background()
	subscribe(t, s, "among", "am-a", "am-b", "am-c")
	appendOK(t, s, scope, uni("t", `{"n":0}`, "am-a"))
	rs := appendOK(t, s, scope, uni("t", `{"n":1}`, "am-a", "am-b"), topicDraft("among", `{"n":2}`, "am-c"), uni("t", `{"n":3}`, "am-b"),
		topicDraft("among", `{"n":4}`), uni("t", `{"n":5}`, "am-a"))
	if rs[1].Recipients != 2 || rs[3].Recipients != 3 {
		t.Fatalf("recipients %d and %d, want 2 and 3", rs[1].Recipients, rs[3].Recipients)
	}
	// Ids follow the drafts' order, across the kinds of draft.
	for user, want := range map[string][]string{"am-a": {`{"n":0}`, `{"n":1}`, `{"n":2}`, `{"n":4}`, `{"n":5}`}, "am-b": {`{"n":1}`, `{"n":2}`, `{"n":3}`, `{"n":4}`}} {
		ns, err := s.Stream(ctx, user, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range ns {
			got = append(got, string(n.Data))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s's stream in order: %v, want %v", user, got, want)
		}
	}
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			d := uni("t", `{"c":1}`, "am-a", "am-c")
			if i%2 == 0 {
				d = topicDraft("among", `{"c":2}`)
			}
			if _, err := s.Append(ctx, scope, []herald.Draft{d}); err != nil {
				t.Errorf("Append: %v", err)
			}
		})
	}
	wg.Wait()
	for user, want := range map[string]int{"am-a": 5 + 6, "am-b": 4 + 3, "am-c": 1 + 6} {
		ns, err := s.Stream(ctx, user, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(ns) != want {
			t.Fatalf("%s has %d notifications, want %d", user, len(ns), want)
		}
		for i, n := range ns {
			if n.Seq != uint64(i+1) || (i > 0 && n.ID <= ns[i-1].ID) {
				t.Fatalf("%s: notification %d has seq %d id %d after id %d; want seq %d, ids growing", user, i, n.Seq, n.ID, ns[max(i-1, 0)].ID, i+1)
			}
		}
	}
}

// testInboxTopic: ?topic= selects the user's notifications of that topic, never a broadcast,
// never another user's, with the other filters and paging as usual.
func testInboxTopic(t *testing.T, s herald.Store) {
	ctx := context.Background()
	subscribe(t, s, "inbox:a", "ita", "itb")
	subscribe(t, s, "inbox:b", "ita")
	appendOK(t, s, scope, uni("t", `{"n":0}`, "ita"))
	appendOK(t, s, scope, topicDraft("inbox:a", `{"n":1}`))
	appendOK(t, s, scope, topicDraft("inbox:b", `{"n":2}`))
	appendOK(t, s, scope, bcast("t", `{"n":3}`))
	appendOK(t, s, scope, topicDraft("inbox:a", `{"n":4}`))
	page := func(user string, q herald.InboxQuery) []string {
		t.Helper()
		p, err := s.Inbox(ctx, user, q)
		if err != nil {
			t.Fatalf("Inbox(%q, %+v): %v", user, q, err)
		}
		var out []string
		for _, n := range p.Notifications {
			if n.Topic != q.Topic {
				t.Fatalf("Inbox(%q, topic %q) returned a notification of topic %q", user, q.Topic, n.Topic)
			}
			out = append(out, string(n.Data))
		}
		return out
	}
	tests := []struct {
		name string
		user string
		q    herald.InboxQuery
		want []string
	}{
		{"one topic", "ita", herald.InboxQuery{Limit: 10, Topic: "inbox:a"}, []string{`{"n":4}`, `{"n":1}`}},
		{"another topic", "ita", herald.InboxQuery{Limit: 10, Topic: "inbox:b"}, []string{`{"n":2}`}},
		{"another subscriber", "itb", herald.InboxQuery{Limit: 10, Topic: "inbox:a"}, []string{`{"n":4}`, `{"n":1}`}},
		{"not subscribed", "itb", herald.InboxQuery{Limit: 10, Topic: "inbox:b"}, nil},
		{"unknown topic", "ita", herald.InboxQuery{Limit: 10, Topic: "inbox:none"}, nil},
		{"a page", "ita", herald.InboxQuery{Limit: 1, Topic: "inbox:a"}, []string{`{"n":4}`}},
		{"with types", "ita", herald.InboxQuery{Limit: 10, Topic: "inbox:a", Types: []string{"other"}}, nil},
		{"archived view", "ita", herald.InboxQuery{Limit: 10, Topic: "inbox:a", Archived: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := page(tt.user, tt.q); !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("paging", func(t *testing.T) {
		p, err := s.Inbox(ctx, "ita", herald.InboxQuery{Limit: 1, Topic: "inbox:a"})
		if err != nil || p.NextBefore == 0 {
			t.Fatalf("first page: %+v, %v; want a next page", p, err)
		}
		if got := page("ita", herald.InboxQuery{Limit: 1, Topic: "inbox:a", Before: p.NextBefore}); !slices.Equal(got, []string{`{"n":1}`}) {
			t.Fatalf("second page %q", got)
		}
	})
	t.Run("unread", func(t *testing.T) {
		p, _ := s.Inbox(ctx, "ita", herald.InboxQuery{Limit: 1, Topic: "inbox:a"})
		if err := s.SetRead(ctx, "ita", p.Notifications[0].ID, true); err != nil {
			t.Fatal(err)
		}
		if got := page("ita", herald.InboxQuery{Limit: 10, Topic: "inbox:a", UnreadOnly: true}); !slices.Equal(got, []string{`{"n":1}`}) {
			t.Fatalf("unread of inbox:a %q", got)
		}
	})
}

func testCountSubscribers(t *testing.T, s herald.Store) {
	ctx := context.Background()
	var users []string
	for i := range 7 {
		users = append(users, fmt.Sprintf("cs-%d", i))
	}
	subscribe(t, s, "count:7", users...)
	subscribe(t, s, "count:other", "cs-0")
	tests := []struct {
		topic string
		max   int
		want  int64
	}{
		{"count:7", 0, 7},
		{"count:7", 100, 7},
		{"count:7", 7, 7},
		{"count:7", 3, 4}, // at most max+1: enough to tell "over"
		{"count:none", 0, 0},
		{"count:other", 0, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s max %d", tt.topic, tt.max), func(t *testing.T) {
			if n, err := s.CountSubscribers(ctx, tt.topic, tt.max); err != nil || n != tt.want {
				t.Fatalf("CountSubscribers = %d, %v; want %d", n, err, tt.want)
			}
		})
	}
}

// testTopicLimits: a subscription past a limit is a conflict and adds nothing, bulk or not;
// subscribing again who is already in never is.
func testTopicLimits(t *testing.T, s herald.Store) {
	ctx := context.Background()
	lim := herald.TopicLimits{MaxSubscribers: 3, MaxTopics: 2}
	sub := func(topic string, users ...string) (int64, error) {
		return s.Subscribe(ctx, topic, users, lim)
	}
	conflict := func(t *testing.T, n int64, err error) {
		t.Helper()
		if herald.ErrorCode(err) != herald.ECONFLICT || n != 0 {
			t.Fatalf("got %d, %v; want a conflict", n, err)
		}
	}
	t.Run("subscribers per topic", func(t *testing.T) {
		if n, err := sub("lim:t", "lt-a", "lt-b"); err != nil || n != 2 {
			t.Fatalf("two of three: %d, %v", n, err)
		}
		n, err := sub("lim:t", "lt-c", "lt-d") // would be four
		conflict(t, n, err)
		if got := subscribers(t, s, "lim:t"); !slices.Equal(got, []string{"lt-a", "lt-b"}) {
			t.Fatalf("after a refused bulk subscribe: %q; want nothing of it added", got)
		}
		if n, err := sub("lim:t", "lt-c"); err != nil || n != 1 {
			t.Fatalf("the third: %d, %v", n, err)
		}
		n, err = sub("lim:t", "lt-d")
		conflict(t, n, err)
		if n, err := sub("lim:t", "lt-a", "lt-c"); err != nil || n != 0 {
			t.Fatalf("subscribing again who is in, at the limit: %d, %v; want 0, nil", n, err)
		}
		if _, err := s.Unsubscribe(ctx, "lim:t", []string{"lt-a"}); err != nil {
			t.Fatal(err)
		}
		if n, err := sub("lim:t", "lt-d"); err != nil || n != 1 {
			t.Fatalf("after one left: %d, %v", n, err)
		}
		if n, err := s.Subscribe(ctx, "lim:t", []string{"lt-e", "lt-f"}, herald.TopicLimits{}); err != nil || n != 2 {
			t.Fatalf("without limits: %d, %v", n, err)
		}
	})
	t.Run("topics per user", func(t *testing.T) {
		for _, topic := range []string{"lim:u1", "lim:u2"} {
			if n, err := sub(topic, "lu-a"); err != nil || n != 1 {
				t.Fatalf("%s: %d, %v", topic, n, err)
			}
		}
		n, err := sub("lim:u3", "lu-b", "lu-a") // lu-a is at its limit: lu-b is not added either
		conflict(t, n, err)
		if got := subscribers(t, s, "lim:u3"); len(got) != 0 {
			t.Fatalf("after a refused subscribe: %q", got)
		}
		if got := userTopics(t, s, "lu-a"); !slices.Equal(got, []string{"lim:u1", "lim:u2"}) {
			t.Fatalf("lu-a's topics %q", got)
		}
		if n, err := sub("lim:u1", "lu-a"); err != nil || n != 0 {
			t.Fatalf("again to a topic it has, at its limit: %d, %v", n, err)
		}
	})
}

// testTopicLimitsConcurrent: subscribes running at once never pass a limit together.
func testTopicLimitsConcurrent(t *testing.T, s herald.Store) {
	ctx := context.Background()
	const tries, max = 12, 4
	run := func(t *testing.T, topic func(i int) string, user func(i int) string, lim herald.TopicLimits) int {
		t.Helper()
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for i := range tries {
			wg.Go(func() {
				n, err := s.Subscribe(ctx, topic(i), []string{user(i)}, lim)
				switch {
				case err == nil && n == 1:
					mu.Lock()
					ok++
					mu.Unlock()
				case herald.ErrorCode(err) != herald.ECONFLICT:
					t.Errorf("Subscribe: %d, %v; want 1 or a conflict", n, err)
				}
			})
		}
		wg.Wait()
		return ok
	}
	t.Run("one topic", func(t *testing.T) {
		ok := run(t, func(int) string { return "conc:t" }, func(i int) string { return fmt.Sprintf("ct-%d", i) }, herald.TopicLimits{MaxSubscribers: max})
		if n, err := s.CountSubscribers(ctx, "conc:t", 0); ok != max || n != max || err != nil {
			t.Fatalf("%d subscribes succeeded, the topic has %d (%v); want %d and %d", ok, n, err, max, max)
		}
	})
	t.Run("one user", func(t *testing.T) {
		ok := run(t, func(i int) string { return fmt.Sprintf("conc:u%d", i) }, func(int) string { return "cu" }, herald.TopicLimits{MaxTopics: max})
		if got := userTopics(t, s, "cu"); ok != max || len(got) != max {
			t.Fatalf("%d subscribes succeeded, the user has %q; want %d", ok, got, max)
		}
	})
}
