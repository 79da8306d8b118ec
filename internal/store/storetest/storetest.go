// Package storetest is the conformance suite every herald.Store must pass. It speaks only
// through the herald.Store interface, so the SQLite store and any other adapter (PostgreSQL, …)
// are held to exactly the same behaviour:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) herald.Store {
//			s := openFreshStore(t)
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// open must return a fresh, empty store for every call and should close it in a t.Cleanup. The
// suite may call Close itself first, so a second Close must be harmless. Subtests run one after
// another, never in parallel, so stores that share a server may reset it in open.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
)

// Run runs the conformance suite against the stores open returns.
func Run(t *testing.T, open func(t *testing.T) herald.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s herald.Store)
	}{
		{"AppendUnicast", testAppendUnicast},
		{"AppendMulticast", testAppendMulticast},
		{"AppendBroadcast", testAppendBroadcast},
		{"AppendBatch", testAppendBatch},
		{"AppendEmpty", testAppendEmpty},
		{"Content", testContent},
		{"Idempotency", testIdempotency},
		{"IdempotencyContent", testIdempotencyContent},
		{"IdempotencyAtomic", testIdempotencyAtomic},
		{"Feed", testFeed},
		{"Stream", testStream},
		{"Heads", testHeads},
		{"StreamHeads", testStreamHeads},
		{"NewEpoch", testNewEpoch},
		{"ConcurrentAppends", testConcurrentAppends},
		{"ConcurrentConflicts", testConcurrentConflicts},
		{"ConcurrentSameKey", testConcurrentSameKey},
		{"FeedFollowsConcurrentAppends", testFeedFollowsConcurrentAppends},
		{"InboxPaging", testInboxPaging},
		{"InboxFilters", testInboxFilters},
		{"Get", testGet},
		{"SetRead", testSetRead},
		{"SetReadBroadcastPerUser", testSetReadBroadcastPerUser},
		{"SetReadNotFound", testSetReadNotFound},
		{"ReadAll", testReadAll},
		{"Counts", testCounts},
		{"MarkSeen", testMarkSeen},
		{"MarkSeenBroadcastPerUser", testMarkSeenBroadcastPerUser},
		{"SetArchived", testSetArchived},
		{"SetArchivedBroadcastPerUser", testSetArchivedBroadcastPerUser},
		{"SetArchivedNotFound", testSetArchivedNotFound},
		{"ArchiveRead", testArchiveRead},
		{"InboxArchived", testInboxArchived},
		{"PruneNothing", testPruneNothing},
		{"PruneMaxPerStream", testPruneMaxPerStream},
		{"PruneMaxAge", testPruneMaxAge},
		{"PruneIdempotencyTTL", testPruneIdempotencyTTL},
		{"PruneReadMarks", testPruneReadMarks},
		{"PruneStateMarks", testPruneStateMarks},
		{"AppendCancelledContext", testAppendCancelledContext},
		{"Topics", testTopics},
		{"TopicsPaging", testTopicsPaging},
		{"TopicPublish", testTopicPublish},
		{"TopicIdempotency", testTopicIdempotency},
		{"TopicConcurrentSubscribe", testTopicConcurrentSubscribe},
		{"Announce", testAnnounce},
		{"TopicsMore", testTopicsMore},
		{"Close", testClose},
	}
	tests = append(tests, prefsTests...) // prefs.go
	tests = append(tests, pushCases()...)
	t.Run("Identity", func(t *testing.T) { testIdentity(t, open) })
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			if s == nil {
				t.Fatal("open returned a nil store")
			}
			tc.fn(t, s)
		})
	}
}

// ---------------------------------------------------------------------------------------------
// helpers

const scope = "publisher-1"

// uni is a draft to the given users (one for unicast, several for multicast).
func uni(typ, data string, to ...string) herald.Draft {
	return herald.Draft{To: to, Type: typ, Data: json.RawMessage(data)}
}

func bcast(typ, data string) herald.Draft {
	return herald.Draft{Broadcast: true, Type: typ, Data: json.RawMessage(data)}
}

func keyed(d herald.Draft, key string) herald.Draft {
	d.Key = key
	return d
}

// appendOK appends drafts and checks the receipts' shape: one per draft, one notification per
// recipient in the draft's order, each with an id, a sequence number, the draft's type and data.
func appendOK(t *testing.T, s herald.Store, scope string, drafts ...herald.Draft) []herald.Receipt {
	t.Helper()
	before := time.Now()
	rs, err := s.Append(t.Context(), scope, drafts)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	after := time.Now()
	checkReceipts(t, drafts, rs, before, after)
	return rs
}

func checkReceipts(t *testing.T, drafts []herald.Draft, rs []herald.Receipt, before, after time.Time) {
	t.Helper()
	if len(rs) != len(drafts) {
		t.Fatalf("Append returned %d receipts for %d drafts", len(rs), len(drafts))
	}
	for i, r := range rs {
		d := drafts[i]
		want := d.To
		if d.Broadcast {
			want = []string{herald.BroadcastStream}
		}
		switch {
		case d.Topic != "":
			// The recipients are the topic's subscribers: the caller checks who they are.
			if !r.Replayed && len(r.Notifications) != r.Recipients {
				t.Fatalf("receipt %d: %d notifications, recipients %d", i, len(r.Notifications), r.Recipients)
			}
		case !slices.Equal(users(r.Notifications), want):
			t.Fatalf("receipt %d: users %q, want %q (the draft's recipient order)", i, users(r.Notifications), want)
		}
		if r.Replayed {
			for _, n := range r.Notifications {
				if n.ID <= 0 {
					t.Fatalf("receipt %d (replayed): notification without id: %+v", i, n)
				}
			}
			continue
		}
		for _, n := range r.Notifications {
			if n.ID <= 0 || n.Seq == 0 {
				t.Fatalf("receipt %d: notification without id or seq: %+v", i, n)
			}
			if n.Type != d.Type || !sameJSON(n.Data, d.Data) || !sameContent(n.Content, d.Content) {
				t.Fatalf("receipt %d: type %q content %s data %s, want %q %s %s", i, n.Type, n.Content.AppendJSON(nil), n.Data,
					d.Type, d.Content.AppendJSON(nil), d.Data)
			}
			if !n.ReadAt.IsZero() || n.Seen || !n.ArchivedAt.IsZero() {
				t.Fatalf("receipt %d: new notification has a user's state: %s", i, show(n))
			}
			checkTime(t, "CreatedAt", n.CreatedAt, before, after)
		}
	}
}

// checkTime allows for clock resolution and for a store whose clock is not the test's.
func checkTime(t *testing.T, what string, got, before, after time.Time) {
	t.Helper()
	const skew = time.Second
	if got.Before(before.Add(-skew)) || got.After(after.Add(skew)) {
		t.Fatalf("%s = %v, want between %v and %v", what, got, before, after)
	}
}

// one appends a single draft with a single recipient and returns its notification.
func one(t *testing.T, s herald.Store, d herald.Draft) herald.Notification {
	t.Helper()
	rs := appendOK(t, s, scope, d)
	if len(rs[0].Notifications) != 1 {
		t.Fatalf("draft created %d notifications, want 1", len(rs[0].Notifications))
	}
	return rs[0].Notifications[0]
}

func users(ns []herald.Notification) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.User
	}
	return out
}

func seqs(ns []herald.Notification) []uint64 {
	out := make([]uint64, len(ns))
	for i, n := range ns {
		out[i] = n.Seq
	}
	return out
}

func ids(ns []herald.Notification) []int64 {
	out := make([]int64, len(ns))
	for i, n := range ns {
		out[i] = n.ID
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	out := []uint64{}
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// sameJSON compares JSON by value, so a store may re-encode what it keeps (jsonb, …).
func sameJSON(a, b json.RawMessage) bool {
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		return false
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// sameNotification checks that a notification read back equals the one Append returned.
func sameNotification(t *testing.T, got, want herald.Notification) {
	t.Helper()
	if got.ID != want.ID || got.User != want.User || got.Seq != want.Seq || got.Type != want.Type ||
		!sameContent(got.Content, want.Content) || !sameJSON(got.Data, want.Data) || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("read back %s, want %s", show(got), show(want))
	}
}

// sameContent compares content field by field (an empty list of actions is none).
func sameContent(a, b *herald.Content) bool {
	return string(a.AppendJSON(nil)) == string(b.AppendJSON(nil))
}

func show(n herald.Notification) string {
	return fmt.Sprintf("{ID:%d User:%q Seq:%d Type:%q Content:%s Data:%s CreatedAt:%s ReadAt:%v Seen:%v ArchivedAt:%v}", n.ID, n.User, n.Seq,
		n.Type, n.Content.AppendJSON(nil), n.Data, n.CreatedAt.Format(time.RFC3339Nano), n.ReadAt, n.Seen, n.ArchivedAt)
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := herald.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %q, want %q", err, got, code)
	}
}

func headsOf(t *testing.T, s herald.Store, user string) herald.Cursor {
	t.Helper()
	c, err := s.Heads(t.Context(), user)
	if err != nil {
		t.Fatalf("Heads(%q): %v", user, err)
	}
	return c
}

func streamAll(t *testing.T, s herald.Store, stream string) []herald.Notification {
	t.Helper()
	ns, err := s.Stream(t.Context(), stream, 0, 1_000_000)
	if err != nil {
		t.Fatalf("Stream(%q): %v", stream, err)
	}
	return ns
}

func get(t *testing.T, s herald.Store, user string, id int64) herald.Notification {
	t.Helper()
	n, err := s.Get(t.Context(), user, id)
	if err != nil {
		t.Fatalf("Get(%q, %d): %v", user, id, err)
	}
	return n
}

func setRead(t *testing.T, s herald.Store, user string, id int64, read bool) {
	t.Helper()
	if err := s.SetRead(t.Context(), user, id, read); err != nil {
		t.Fatalf("SetRead(%q, %d, %v): %v", user, id, read, err)
	}
}

func unread(t *testing.T, s herald.Store, user string) int64 {
	t.Helper()
	return counts(t, s, user).Unread
}

func counts(t *testing.T, s herald.Store, user string) herald.Counts {
	t.Helper()
	c, err := s.Counts(t.Context(), user)
	if err != nil {
		t.Fatalf("Counts(%q): %v", user, err)
	}
	return c
}

func markSeen(t *testing.T, s herald.Store, user string, upTo int64) (int64, bool) {
	t.Helper()
	mark, moved, err := s.MarkSeen(t.Context(), user, upTo)
	if err != nil {
		t.Fatalf("MarkSeen(%q, %d): %v", user, upTo, err)
	}
	return mark, moved
}

func setArchived(t *testing.T, s herald.Store, user string, id int64, archived bool) {
	t.Helper()
	if err := s.SetArchived(t.Context(), user, id, archived); err != nil {
		t.Fatalf("SetArchived(%q, %d, %v): %v", user, id, archived, err)
	}
}

func prune(t *testing.T, s herald.Store, r herald.Retention) int64 {
	t.Helper()
	n, err := s.Prune(t.Context(), r)
	if err != nil {
		t.Fatalf("Prune(%+v): %v", r, err)
	}
	return n
}

// inboxAll pages through user's inbox with q (q.Before is the first page's) until NextBefore is
// 0, checking every page: at most Limit notifications, newest first, full unless it is the last,
// never overlapping the previous ones.
func inboxAll(t *testing.T, s herald.Store, user string, q herald.InboxQuery) []herald.Notification {
	t.Helper()
	var all []herald.Notification
	for pages := 0; ; pages++ {
		if pages > 10_000 {
			t.Fatalf("inbox of %q: paging does not end", user)
		}
		p, err := s.Inbox(t.Context(), user, q)
		if err != nil {
			t.Fatalf("Inbox(%q, %+v): %v", user, q, err)
		}
		if len(p.Notifications) > q.Limit {
			t.Fatalf("Inbox(%q, %+v): %d notifications, more than the limit", user, q, len(p.Notifications))
		}
		for _, n := range p.Notifications {
			if len(all) > 0 && n.ID >= all[len(all)-1].ID {
				t.Fatalf("inbox of %q not newest first, or pages overlap: id %d after %d", user, n.ID, all[len(all)-1].ID)
			}
			if n.User != user && n.User != herald.BroadcastStream {
				t.Fatalf("inbox of %q holds a notification of %q: %s", user, n.User, show(n))
			}
			all = append(all, n)
		}
		if p.NextBefore == 0 {
			return all
		}
		if len(p.Notifications) != q.Limit {
			t.Fatalf("Inbox(%q, %+v): page of %d with a next page, want a full page of %d", user, q, len(p.Notifications), q.Limit)
		}
		q.Before = p.NextBefore
	}
}

// within fails the test if fn does not return within d: a store must never hang a caller.
func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// ---------------------------------------------------------------------------------------------
// Append

func testAppendUnicast(t *testing.T, s herald.Store) {
	// Appends one at a time, interleaving users: each user's stream counts from 1 on its own.
	steps := []struct {
		to      string
		wantSeq uint64
	}{
		{"alice", 1}, {"alice", 2}, {"bob", 1}, {"alice", 3}, {"bob", 2}, {"carol", 1}, {"alice", 4},
	}
	var got []herald.Notification
	for i, st := range steps {
		n := one(t, s, uni("greeting", fmt.Sprintf(`{"step":%d}`, i), st.to))
		if n.User != st.to || n.Seq != st.wantSeq {
			t.Fatalf("step %d: got user %q seq %d, want %q seq %d", i, n.User, n.Seq, st.to, st.wantSeq)
		}
		if len(got) > 0 && n.ID <= got[len(got)-1].ID {
			t.Fatalf("step %d: id %d not above the previous append's %d", i, n.ID, got[len(got)-1].ID)
		}
		got = append(got, n)
	}
	// What was returned is what is stored.
	for _, user := range []string{"alice", "bob", "carol"} {
		var want []herald.Notification
		for _, n := range got {
			if n.User == user {
				want = append(want, n)
			}
		}
		stored := streamAll(t, s, user)
		if len(stored) != len(want) {
			t.Fatalf("stream %q holds %d notifications, want %d", user, len(stored), len(want))
		}
		for i := range want {
			sameNotification(t, stored[i], want[i])
		}
	}
	if h := headsOf(t, s, "alice"); h != (herald.Cursor{User: 4}) {
		t.Fatalf("Heads(alice) = %+v, want {4 0}", h)
	}
	if h := streamAll(t, s, herald.BroadcastStream); len(h) != 0 {
		t.Fatalf("unicasts reached the broadcast stream: %d", len(h))
	}
}

func testAppendMulticast(t *testing.T, s herald.Store) {
	one(t, s, uni("x", `{}`, "alice")) // alice is one ahead of the others
	d := uni("party", `{"where":"here","n":[1,2,3]}`, "carol", "alice", "bob")
	rs := appendOK(t, s, scope, d)
	ns := rs[0].Notifications
	wantSeq := map[string]uint64{"carol": 1, "alice": 2, "bob": 1}
	for _, n := range ns {
		if n.Seq != wantSeq[n.User] {
			t.Fatalf("%q got seq %d, want %d", n.User, n.Seq, wantSeq[n.User])
		}
		if rs[0].Replayed {
			t.Fatal("fresh draft reported as replayed")
		}
	}
	seen := map[int64]bool{}
	for _, n := range ns {
		if seen[n.ID] {
			t.Fatalf("id %d given to two recipients", n.ID)
		}
		seen[n.ID] = true
		stored := streamAll(t, s, n.User)
		sameNotification(t, stored[len(stored)-1], n)
	}
	// Each recipient sees its own copy in its inbox.
	for _, n := range ns {
		got := get(t, s, n.User, n.ID)
		sameNotification(t, got, n)
	}
}

func testAppendBroadcast(t *testing.T, s herald.Store) {
	one(t, s, uni("x", `{}`, "alice"))
	one(t, s, uni("x", `{}`, "alice"))
	var bs []herald.Notification
	for i := range 3 {
		n := one(t, s, bcast("news", fmt.Sprintf(`{"i":%d}`, i)))
		if n.User != herald.BroadcastStream || !n.Broadcast() {
			t.Fatalf("broadcast has user %q", n.User)
		}
		if n.Seq != uint64(i+1) {
			t.Fatalf("broadcast %d has seq %d, want %d (independent of the user streams)", i, n.Seq, i+1)
		}
		bs = append(bs, n)
	}
	// The user streams go on from where they were.
	if n := one(t, s, uni("x", `{}`, "alice")); n.Seq != 3 {
		t.Fatalf("alice's seq after broadcasts = %d, want 3", n.Seq)
	}
	stored := streamAll(t, s, herald.BroadcastStream)
	if len(stored) != len(bs) {
		t.Fatalf("broadcast stream holds %d, want %d", len(stored), len(bs))
	}
	for i := range bs {
		sameNotification(t, stored[i], bs[i])
	}
	for _, tc := range []struct {
		user string
		want herald.Cursor
	}{
		{"alice", herald.Cursor{User: 3, Broadcast: 3}},
		{"bob", herald.Cursor{User: 0, Broadcast: 3}},
	} {
		if h := headsOf(t, s, tc.user); h != tc.want {
			t.Fatalf("Heads(%q) = %+v, want %+v", tc.user, h, tc.want)
		}
	}
}

func testAppendBatch(t *testing.T, s herald.Store) {
	drafts := []herald.Draft{
		uni("a", `{"i":0}`, "alice"),
		bcast("b", `{"i":1}`),
		uni("c", `{"i":2}`, "alice", "bob"),
		uni("d", `{"i":3}`, "bob"),
		bcast("e", `{"i":4}`),
		keyed(uni("f", `{"i":5}`, "carol"), "k-batch"),
	}
	rs := appendOK(t, s, scope, drafts...)
	want := [][]uint64{{1}, {1}, {2, 1}, {2}, {2}, {1}}
	var last int64
	for i, r := range rs {
		if r.Replayed {
			t.Fatalf("receipt %d replayed in a fresh batch", i)
		}
		if got := seqs(r.Notifications); !slices.Equal(got, want[i]) {
			t.Fatalf("receipt %d: seqs %v, want %v", i, got, want[i])
		}
		for _, n := range r.Notifications {
			if n.ID <= last {
				t.Fatalf("receipt %d: id %d not above %d: ids must follow draft order", i, n.ID, last)
			}
			last = n.ID
		}
	}
	if h := headsOf(t, s, "bob"); h != (herald.Cursor{User: 2, Broadcast: 2}) {
		t.Fatalf("Heads(bob) = %+v, want {2 2}", h)
	}
	if got := seqs(streamAll(t, s, "alice")); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("alice's stream seqs %v", got)
	}
	if got := seqs(streamAll(t, s, herald.BroadcastStream)); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("broadcast stream seqs %v", got)
	}
}

func testAppendEmpty(t *testing.T, s herald.Store) {
	rs, err := s.Append(t.Context(), scope, nil)
	if err != nil || len(rs) != 0 {
		t.Fatalf("Append of no drafts = %v, %v; want no receipts and no error", rs, err)
	}
	if h := headsOf(t, s, "alice"); h != (herald.Cursor{}) {
		t.Fatalf("Heads after an empty append = %+v", h)
	}
}

// ---------------------------------------------------------------------------------------------
// idempotency

func testIdempotency(t *testing.T, s herald.Store) {
	base := keyed(uni("order", `{"id":7}`, "alice", "bob"), "k1")
	tests := []struct {
		name     string
		scope    string
		draft    herald.Draft
		wantCode string // "" for success
		replayed bool
	}{
		{"same key same draft replays", scope, base, "", true},
		{"same draft again still replays", scope, base, "", true},
		{"different data conflicts", scope, keyed(uni("order", `{"id":8}`, "alice", "bob"), "k1"), herald.ECONFLICT, false},
		{"different type conflicts", scope, keyed(uni("order2", `{"id":7}`, "alice", "bob"), "k1"), herald.ECONFLICT, false},
		{"different recipients conflict", scope, keyed(uni("order", `{"id":7}`, "alice"), "k1"), herald.ECONFLICT, false},
		{"recipient order conflicts", scope, keyed(uni("order", `{"id":7}`, "bob", "alice"), "k1"), herald.ECONFLICT, false},
		{"broadcast conflicts", scope, keyed(bcast("order", `{"id":7}`), "k1"), herald.ECONFLICT, false},
		{"other scope is independent", "publisher-2", base, "", false},
		{"other scope replays its own", "publisher-2", base, "", true},
		{"other key is independent", scope, keyed(base, "k2"), "", false},
	}
	first := appendOK(t, s, scope, base)[0]
	if first.Replayed {
		t.Fatal("first use of a key reported as replayed")
	}
	firstByScope := map[string]herald.Receipt{scope: first}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hAlice, hBob := headsOf(t, s, "alice"), headsOf(t, s, "bob")
			rs, err := s.Append(t.Context(), tc.scope, []herald.Draft{tc.draft})
			if tc.wantCode != "" {
				wantCode(t, err, tc.wantCode)
				if rs != nil {
					t.Fatalf("failed Append returned receipts %+v", rs)
				}
				if headsOf(t, s, "alice") != hAlice || headsOf(t, s, "bob") != hBob {
					t.Fatal("a conflicting Append changed the heads")
				}
				return
			}
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			checkReceipts(t, []herald.Draft{tc.draft}, rs, time.Time{}, time.Now())
			r := rs[0]
			if r.Replayed != tc.replayed {
				t.Fatalf("Replayed = %v, want %v", r.Replayed, tc.replayed)
			}
			if !tc.replayed {
				if tc.draft.Key != "" && tc.scope != scope {
					firstByScope[tc.scope] = r
				}
				for _, n := range r.Notifications {
					if slices.Contains(ids(first.Notifications), n.ID) {
						t.Fatalf("a new append reused id %d", n.ID)
					}
				}
				return
			}
			orig := firstByScope[tc.scope]
			if !slices.Equal(ids(r.Notifications), ids(orig.Notifications)) || !slices.Equal(users(r.Notifications), users(orig.Notifications)) {
				t.Fatalf("replay returned ids %v users %q, want the original %v %q",
					ids(r.Notifications), users(r.Notifications), ids(orig.Notifications), users(orig.Notifications))
			}
			if headsOf(t, s, "alice") != hAlice || headsOf(t, s, "bob") != hBob {
				t.Fatal("a replay changed the heads")
			}
		})
	}
	// In all: the base draft was stored once per scope, plus k2.
	if got := len(streamAll(t, s, "alice")); got != 3 {
		t.Fatalf("alice holds %d notifications, want 3", got)
	}

	t.Run("duplicate key within one call", func(t *testing.T) {
		d := keyed(uni("dup", `{"x":1}`, "carol"), "k-dup")
		rs := appendOK(t, s, scope, d, uni("plain", `{}`, "carol"), d)
		if rs[0].Replayed || !rs[2].Replayed {
			t.Fatalf("Replayed = %v, %v; want false, true", rs[0].Replayed, rs[2].Replayed)
		}
		if !slices.Equal(ids(rs[2].Notifications), ids(rs[0].Notifications)) {
			t.Fatalf("duplicate in a batch got ids %v, want %v", ids(rs[2].Notifications), ids(rs[0].Notifications))
		}
		if got := seqs(streamAll(t, s, "carol")); !slices.Equal(got, []uint64{1, 2}) {
			t.Fatalf("carol's seqs %v, want [1 2]: the duplicate must not be stored", got)
		}
		// And a later call replays it too.
		again := appendOK(t, s, scope, d)
		if !again[0].Replayed || !slices.Equal(ids(again[0].Notifications), ids(rs[0].Notifications)) {
			t.Fatalf("later replay = %+v", again[0])
		}
	})

	t.Run("keyed broadcast replays", func(t *testing.T) {
		d := keyed(bcast("news", `{"v":1}`), "k-news")
		a := appendOK(t, s, scope, d)[0]
		b := appendOK(t, s, scope, d)[0]
		if !b.Replayed || !slices.Equal(ids(b.Notifications), ids(a.Notifications)) || b.Notifications[0].User != herald.BroadcastStream {
			t.Fatalf("broadcast replay = %+v, want ids of %+v", b, a)
		}
		if got := len(streamAll(t, s, herald.BroadcastStream)); got != 1 {
			t.Fatalf("broadcast stream holds %d, want 1", got)
		}
	})
}

// fullContent is content with every field, and text a store must keep exactly: markup (text,
// never HTML), line breaks, quotes and backslashes, characters beyond ASCII.
var fullContent = herald.Content{
	Title:   `Bob & "Ana" commented <b>here</b> \o/ 🎉`,
	Body:    "<script>alert(1)</script>\nline two: é, 日本, 👨\u200d👩\u200d👧",
	URL:     "https://example.com/p/42?c=7&x=%20#c7",
	Icon:    "/static/comment.svg",
	Avatar:  "https://cdn.example.com/u/bob.png",
	Actions: []herald.Action{{Label: "Reply", URL: "/p/42#reply"}, {Label: "Mute “thread”", URL: "https://example.com/mute?t=42"}},
	Group:   "post:42:comments",
}

// testContent: a notification's content is kept exactly, for each recipient, and returned by
// every read; a notification without content reads back without it.
func testContent(t *testing.T, s herald.Store) {
	if err := fullContent.Validate(); err != nil {
		t.Fatalf("the fixture is not valid content: %v", err)
	}
	withContent := func(d herald.Draft, c *herald.Content) herald.Draft { d.Content = c; return d }
	rs := appendOK(t, s, scope,
		withContent(uni("comment", `{"post":42}`, "alice", "bob"), &fullContent),
		uni("plain", `{"x":1}`, "alice"),
		withContent(bcast("release", `null`), &herald.Content{Title: "v1.2 is out", URL: "/changelog"}),
		withContent(uni("only.group", `{}`, "alice"), &herald.Content{Group: "g"}),
	)
	var aliceWant []herald.Notification
	for _, r := range rs {
		for _, n := range r.Notifications {
			if n.User == "alice" || n.User == herald.BroadcastStream {
				aliceWant = append(aliceWant, n)
			}
		}
	}
	if bob := rs[0].Notifications[1]; bob.User != "bob" || !sameContent(bob.Content, &fullContent) {
		t.Fatalf("bob's copy: %s", show(bob))
	}

	t.Run("Stream", func(t *testing.T) {
		got := append(streamAll(t, s, "alice"), streamAll(t, s, herald.BroadcastStream)...)
		slices.SortFunc(got, func(a, b herald.Notification) int { return int(a.ID - b.ID) })
		if len(got) != len(aliceWant) {
			t.Fatalf("%d notifications, want %d", len(got), len(aliceWant))
		}
		for i := range got {
			sameNotification(t, got[i], aliceWant[i])
		}
		bob := streamAll(t, s, "bob")
		if len(bob) != 1 || !sameContent(bob[0].Content, &fullContent) {
			t.Fatalf("bob's stream: %d notifications, the first %s", len(bob), show(bob[0]))
		}
	})
	t.Run("Feed", func(t *testing.T) {
		page, err := s.Feed(t.Context(), "alice", herald.Cursor{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		got := append(page.User, page.Broadcast...)
		slices.SortFunc(got, func(a, b herald.Notification) int { return int(a.ID - b.ID) })
		for i := range got {
			sameNotification(t, got[i], aliceWant[i])
		}
	})
	t.Run("Inbox", func(t *testing.T) {
		got := inboxAll(t, s, "alice", herald.InboxQuery{Limit: 2})
		slices.Reverse(got)
		if len(got) != len(aliceWant) {
			t.Fatalf("%d notifications, want %d", len(got), len(aliceWant))
		}
		for i := range got {
			sameNotification(t, got[i], aliceWant[i])
		}
	})
	t.Run("Get", func(t *testing.T) {
		for _, want := range aliceWant {
			sameNotification(t, get(t, s, "alice", want.ID), want)
		}
	})
	t.Run("without content", func(t *testing.T) {
		n := get(t, s, "alice", rs[1].Notifications[0].ID)
		if n.Content != nil {
			t.Fatalf("a notification published without content reads back with %+v", *n.Content)
		}
	})
}

// testIdempotencyContent: content is part of what a key stands for. A retry with the same
// content replays; with any field changed, added or removed it is a conflict.
func testIdempotencyContent(t *testing.T, s herald.Store) {
	base := keyed(uni("comment", `{"post":42}`, "alice"), "kc")
	base.Content = &fullContent
	first := appendOK(t, s, scope, base)[0]
	again := appendOK(t, s, scope, base)[0]
	if !again.Replayed || !slices.Equal(ids(again.Notifications), ids(first.Notifications)) {
		t.Fatalf("the same content did not replay: %+v", again)
	}
	changed := func(f func(c *herald.Content)) herald.Draft {
		d, c := base, fullContent
		c.Actions = slices.Clone(fullContent.Actions)
		f(&c)
		d.Content = &c
		return d
	}
	for name, d := range map[string]herald.Draft{
		"title":         changed(func(c *herald.Content) { c.Title += "!" }),
		"body removed":  changed(func(c *herald.Content) { c.Body = "" }),
		"url":           changed(func(c *herald.Content) { c.URL = "/other" }),
		"action label":  changed(func(c *herald.Content) { c.Actions[1].Label = "Mute" }),
		"actions fewer": changed(func(c *herald.Content) { c.Actions = c.Actions[:1] }),
		"group":         changed(func(c *herald.Content) { c.Group = "post:43:comments" }),
		"none":          changed(func(c *herald.Content) { *c = herald.Content{} }),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.Append(t.Context(), scope, []herald.Draft{d})
			wantCode(t, err, herald.ECONFLICT)
		})
	}
	// And a key first used without content conflicts with content added.
	plain := keyed(uni("comment", `{"post":42}`, "alice"), "kp")
	appendOK(t, s, scope, plain)
	plain.Content = &herald.Content{Title: "t"}
	_, err := s.Append(t.Context(), scope, []herald.Draft{plain})
	wantCode(t, err, herald.ECONFLICT)
}

// testIdempotencyAtomic: an Append that fails stores none of its drafts.
func testIdempotencyAtomic(t *testing.T, s herald.Store) {
	appendOK(t, s, scope, keyed(uni("t", `{"v":1}`, "alice"), "k"))
	tests := []struct {
		name   string
		drafts []herald.Draft
	}{
		{"conflict after a fresh draft", []herald.Draft{uni("t", `{"v":2}`, "alice", "bob"), bcast("t", `{}`), keyed(uni("t", `{"v":9}`, "alice"), "k")}},
		{"conflict inside the call", []herald.Draft{keyed(uni("t", `{"v":3}`, "bob"), "k-new"), keyed(uni("t", `{"v":4}`, "bob"), "k-new")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ha, hb := headsOf(t, s, "alice"), headsOf(t, s, "bob")
			_, err := s.Append(t.Context(), scope, tc.drafts)
			wantCode(t, err, herald.ECONFLICT)
			if headsOf(t, s, "alice") != ha || headsOf(t, s, "bob") != hb {
				t.Fatalf("failed Append stored some drafts: heads %+v %+v, were %+v %+v", headsOf(t, s, "alice"), headsOf(t, s, "bob"), ha, hb)
			}
		})
	}
	// The failed call did not remember k-new: it can be used now.
	r := appendOK(t, s, scope, keyed(uni("t", `{"v":4}`, "bob"), "k-new"))[0]
	if r.Replayed || r.Notifications[0].Seq != 1 {
		t.Fatalf("key of a failed Append: %+v, want a fresh notification with seq 1", r)
	}
	// And the store still works after a conflict.
	if n := one(t, s, uni("t", `{}`, "alice")); n.Seq != 2 {
		t.Fatalf("alice's next seq %d, want 2", n.Seq)
	}
}

// ---------------------------------------------------------------------------------------------
// feeds

func testFeed(t *testing.T, s herald.Store) {
	var alice, bcasts []herald.Notification
	for i := range 5 {
		alice = append(alice, one(t, s, uni("a", fmt.Sprintf(`{"i":%d}`, i), "alice")))
		one(t, s, uni("b", `{}`, "bob"))
		if i < 4 {
			bcasts = append(bcasts, one(t, s, bcast("n", fmt.Sprintf(`{"i":%d}`, i))))
		}
	}
	heads := herald.Cursor{User: 5, Broadcast: 4}
	tests := []struct {
		name          string
		user          string
		after         herald.Cursor
		limit         int
		wantUser      []herald.Notification
		wantBroadcast []herald.Notification
		wantHeads     herald.Cursor
	}{
		{"from the start", "alice", herald.Cursor{}, 100, alice, bcasts, heads},
		{"after a cursor", "alice", herald.Cursor{User: 2, Broadcast: 1}, 100, alice[2:], bcasts[1:], heads},
		{"limit applies per stream", "alice", herald.Cursor{User: 2, Broadcast: 1}, 2, alice[2:4], bcasts[1:3], heads},
		{"limit one", "alice", herald.Cursor{}, 1, alice[:1], bcasts[:1], heads},
		{"only broadcasts new", "alice", herald.Cursor{User: 5, Broadcast: 3}, 100, nil, bcasts[3:], heads},
		{"at the heads", "alice", heads, 100, nil, nil, heads},
		{"beyond the heads", "alice", herald.Cursor{User: 50, Broadcast: 50}, 100, nil, nil, heads},
		{"unknown user", "dave", herald.Cursor{}, 100, nil, bcasts, herald.Cursor{Broadcast: 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := s.Feed(t.Context(), tc.user, tc.after, tc.limit)
			if err != nil {
				t.Fatalf("Feed: %v", err)
			}
			if len(p.User) != len(tc.wantUser) || len(p.Broadcast) != len(tc.wantBroadcast) {
				t.Fatalf("Feed returned seqs %v / %v, want %v / %v", seqs(p.User), seqs(p.Broadcast), seqs(tc.wantUser), seqs(tc.wantBroadcast))
			}
			for i := range tc.wantUser {
				sameNotification(t, p.User[i], tc.wantUser[i])
			}
			for i := range tc.wantBroadcast {
				sameNotification(t, p.Broadcast[i], tc.wantBroadcast[i])
			}
			if p.Heads != tc.wantHeads {
				t.Fatalf("Heads = %+v, want %+v", p.Heads, tc.wantHeads)
			}
		})
	}
}

func testStream(t *testing.T, s herald.Store) {
	var alice, bcasts []herald.Notification
	for i := range 4 {
		alice = append(alice, one(t, s, uni("a", fmt.Sprintf(`{"i":%d}`, i), "alice")))
		bcasts = append(bcasts, one(t, s, bcast("n", fmt.Sprintf(`{"i":%d}`, i))))
	}
	one(t, s, uni("b", `{}`, "bob"))
	tests := []struct {
		name   string
		stream string
		after  uint64
		limit  int
		want   []herald.Notification
	}{
		{"user from start", "alice", 0, 100, alice},
		{"user after", "alice", 2, 100, alice[2:]},
		{"user limited", "alice", 1, 2, alice[1:3]},
		{"user at head", "alice", 4, 100, nil},
		{"broadcast", herald.BroadcastStream, 0, 100, bcasts},
		{"broadcast after, limited", herald.BroadcastStream, 1, 1, bcasts[1:2]},
		{"unknown stream", "nobody", 0, 100, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns, err := s.Stream(t.Context(), tc.stream, tc.after, tc.limit)
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			if len(ns) != len(tc.want) {
				t.Fatalf("Stream returned seqs %v, want %v", seqs(ns), seqs(tc.want))
			}
			for i := range tc.want {
				sameNotification(t, ns[i], tc.want[i])
			}
		})
	}
}

func testHeads(t *testing.T, s herald.Store) {
	if h := headsOf(t, s, "nobody"); h != (herald.Cursor{}) {
		t.Fatalf("Heads of an empty store = %+v", h)
	}
	appendOK(t, s, scope, uni("x", `{}`, "alice", "bob"), uni("x", `{}`, "alice"), bcast("x", `{}`))
	for _, tc := range []struct {
		user string
		want herald.Cursor
	}{
		{"alice", herald.Cursor{User: 2, Broadcast: 1}},
		{"bob", herald.Cursor{User: 1, Broadcast: 1}},
		{"nobody", herald.Cursor{User: 0, Broadcast: 1}},
		{"ALICE", herald.Cursor{User: 0, Broadcast: 1}}, // user ids are case-sensitive
	} {
		if h := headsOf(t, s, tc.user); h != tc.want {
			t.Errorf("Heads(%q) = %+v, want %+v", tc.user, h, tc.want)
		}
	}
}

func testStreamHeads(t *testing.T, s herald.Store) {
	h, err := s.StreamHeads(t.Context(), []string{"alice", herald.BroadcastStream})
	if err != nil || len(h) != 0 {
		t.Fatalf("StreamHeads of an empty store = %v, %v", h, err)
	}
	appendOK(t, s, scope, uni("x", `{}`, "alice", "bob"), uni("x", `{}`, "alice"), bcast("x", `{}`))
	many := []string{"alice", "bob", "nobody", herald.BroadcastStream}
	for i := range 600 { // more than one statement's worth of parameters
		many = append(many, fmt.Sprintf("absent-%d", i))
	}
	h, err = s.StreamHeads(t.Context(), many)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"alice": 2, "bob": 1, herald.BroadcastStream: 1}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("StreamHeads = %v, want %v", h, want)
	}
	if h, err := s.StreamHeads(t.Context(), nil); err != nil || len(h) != 0 {
		t.Fatalf("StreamHeads(nil) = %v, %v", h, err)
	}
}

// ---------------------------------------------------------------------------------------------
// concurrency

func testConcurrentAppends(t *testing.T, s herald.Store) {
	const publishers, perPublisher = 32, 50
	streamsOf := func(p, i int) herald.Draft {
		switch {
		case i%10 == 9:
			return bcast("c", fmt.Sprintf(`{"p":%d,"i":%d}`, p, i))
		case i%7 == 3:
			return uni("c", fmt.Sprintf(`{"p":%d,"i":%d}`, p, i), "u0", "u1", "u2")
		default:
			return uni("c", fmt.Sprintf(`{"p":%d,"i":%d}`, p, i), fmt.Sprintf("u%d", (p+i)%4))
		}
	}
	var mu sync.Mutex
	byStream := map[string][]herald.Notification{}
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := map[string]uint64{}
			for i := range perPublisher {
				d := streamsOf(p, i)
				if i%5 == 0 {
					d.Key = fmt.Sprintf("p%d-i%d", p, i)
				}
				rs, err := s.Append(t.Context(), fmt.Sprintf("scope-%d", p%3), []herald.Draft{d})
				if err != nil {
					t.Errorf("publisher %d append %d: %v", p, i, err)
					return
				}
				if len(rs) != 1 || rs[0].Replayed {
					t.Errorf("publisher %d append %d: receipts %+v", p, i, rs)
					return
				}
				for _, n := range rs[0].Notifications {
					// One publisher's appends are ordered: each lands after its previous one.
					if n.Seq <= last[n.User] {
						t.Errorf("publisher %d: stream %q went from seq %d to %d", p, n.User, last[n.User], n.Seq)
					}
					last[n.User] = n.Seq
				}
				mu.Lock()
				for _, n := range rs[0].Notifications {
					byStream[n.User] = append(byStream[n.User], n)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	allIDs := map[int64]bool{}
	total := 0
	for stream, ns := range byStream {
		slices.SortFunc(ns, func(a, b herald.Notification) int { return int(a.Seq) - int(b.Seq) })
		if got, want := seqs(ns), seqRange(1, uint64(len(ns))); !slices.Equal(got, want) {
			t.Fatalf("stream %q: seqs are not 1..%d without gap or duplicate: %v", stream, len(ns), got)
		}
		for i, n := range ns {
			if allIDs[n.ID] {
				t.Fatalf("id %d given twice", n.ID)
			}
			allIDs[n.ID] = true
			// Within a stream ids grow with sequence numbers: the inbox pages by either.
			if i > 0 && n.ID <= ns[i-1].ID {
				t.Fatalf("stream %q: seq %d has id %d, not above seq %d's %d", stream, n.Seq, n.ID, ns[i-1].Seq, ns[i-1].ID)
			}
		}
		total += len(ns)
		stored := streamAll(t, s, stream)
		if len(stored) != len(ns) {
			t.Fatalf("stream %q stores %d, receipts say %d", stream, len(stored), len(ns))
		}
		for i := range ns {
			sameNotification(t, stored[i], ns[i])
		}
		if stream != herald.BroadcastStream {
			if h := headsOf(t, s, stream); h.User != uint64(len(ns)) {
				t.Fatalf("Heads(%q).User = %d, want %d", stream, h.User, len(ns))
			}
		}
	}
	if len(byStream[herald.BroadcastStream]) != publishers*perPublisher/10 {
		t.Fatalf("%d broadcasts, want %d", len(byStream[herald.BroadcastStream]), publishers*perPublisher/10)
	}
	if h := headsOf(t, s, "u1"); h.Broadcast != uint64(len(byStream[herald.BroadcastStream])) || h.User != uint64(len(byStream["u1"])) {
		t.Fatalf("Heads(u1) = %+v", h)
	}
}

// testConcurrentConflicts: Appends that fail on a conflicting key, among concurrent ones that do
// not, neither fail the others nor leave gaps.
func testConcurrentConflicts(t *testing.T, s herald.Store) {
	appendOK(t, s, scope, keyed(uni("t", `{"v":0}`, "zed"), "taken"))
	const publishers, perPublisher = 16, 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok []herald.Notification
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perPublisher {
				if p%2 == 1 {
					// A conflicting batch that would also write to alice.
					_, err := s.Append(t.Context(), scope, []herald.Draft{
						uni("t", `{}`, "alice"), keyed(uni("t", fmt.Sprintf(`{"v":%d}`, i+1), "zed"), "taken"),
					})
					if herald.ErrorCode(err) != herald.ECONFLICT {
						t.Errorf("conflicting append: %v, want code %q", err, herald.ECONFLICT)
						return
					}
					continue
				}
				rs, err := s.Append(t.Context(), scope, []herald.Draft{uni("t", fmt.Sprintf(`{"p":%d,"i":%d}`, p, i), "alice")})
				if err != nil {
					t.Errorf("append beside conflicts: %v", err)
					return
				}
				mu.Lock()
				ok = append(ok, rs[0].Notifications...)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	stored := streamAll(t, s, "alice")
	if got, want := seqs(stored), seqRange(1, uint64(len(ok))); !slices.Equal(got, want) {
		t.Fatalf("alice's seqs %v, want 1..%d: conflicting appends must store nothing", got, len(ok))
	}
	if got := seqs(streamAll(t, s, "zed")); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("zed's seqs %v, want [1]", got)
	}
}

// testConcurrentSameKey: a request retried while the first is still in flight (the same key at
// once, many times) creates the notification once; every call returns its ids.
func testConcurrentSameKey(t *testing.T, s herald.Store) {
	for round := range 5 {
		d := keyed(uni("t", fmt.Sprintf(`{"round":%d}`, round), "alice", "bob"), fmt.Sprintf("retry-%d", round))
		const callers = 16
		results := make([]herald.Receipt, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rs, err := s.Append(t.Context(), scope, []herald.Draft{d})
				if err != nil {
					t.Errorf("caller %d: %v", i, err)
					return
				}
				results[i] = rs[0]
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		fresh := 0
		for i, r := range results {
			if !r.Replayed {
				fresh++
			}
			if !slices.Equal(ids(r.Notifications), ids(results[0].Notifications)) {
				t.Fatalf("round %d caller %d got ids %v, caller 0 %v", round, i, ids(r.Notifications), ids(results[0].Notifications))
			}
		}
		if fresh != 1 {
			t.Fatalf("round %d: %d callers created the notification, want exactly 1", round, fresh)
		}
	}
	if got := len(streamAll(t, s, "alice")); got != 5 {
		t.Fatalf("alice has %d notifications, want 5", got)
	}
}

// testFeedFollowsConcurrentAppends: a reader that follows a feed by its cursor while publishers
// append sees every sequence number exactly once and in order; no lower number appears later.
func testFeedFollowsConcurrentAppends(t *testing.T, s herald.Store) {
	const publishers, perPublisher = 8, 40
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perPublisher {
				d := uni("f", fmt.Sprintf(`{"p":%d,"i":%d}`, p, i), "alice")
				if i%4 == 0 {
					d = bcast("f", fmt.Sprintf(`{"p":%d,"i":%d}`, p, i))
				}
				if _, err := s.Append(t.Context(), scope, []herald.Draft{d}); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	wantUser := uint64(publishers * perPublisher * 3 / 4)
	wantBroadcast := uint64(publishers * perPublisher / 4)
	var cur herald.Cursor
	deadline := time.Now().Add(60 * time.Second)
	for cur.User < wantUser || cur.Broadcast < wantBroadcast {
		if time.Now().After(deadline) {
			t.Fatalf("feed stuck at %+v", cur)
		}
		p, err := s.Feed(t.Context(), "alice", cur, 7)
		if err != nil {
			t.Fatalf("Feed: %v", err)
		}
		for i, n := range p.User {
			if n.Seq != cur.User+uint64(i)+1 || n.User != "alice" {
				t.Fatalf("after %+v the feed returned user seqs %v", cur, seqs(p.User))
			}
		}
		for i, n := range p.Broadcast {
			if n.Seq != cur.Broadcast+uint64(i)+1 || n.User != herald.BroadcastStream {
				t.Fatalf("after %+v the feed returned broadcast seqs %v", cur, seqs(p.Broadcast))
			}
		}
		cur.User += uint64(len(p.User))
		cur.Broadcast += uint64(len(p.Broadcast))
		if p.Heads.User < cur.User || p.Heads.Broadcast < cur.Broadcast {
			t.Fatalf("Heads %+v behind what the same read returned (%+v)", p.Heads, cur)
		}
		if len(p.User) == 0 && len(p.Broadcast) == 0 {
			select {
			case <-done:
				if t.Failed() {
					return
				}
			case <-time.After(time.Millisecond):
			}
		}
	}
	<-done
	if h := headsOf(t, s, "alice"); h != (herald.Cursor{User: wantUser, Broadcast: wantBroadcast}) {
		t.Fatalf("Heads = %+v, want {%d %d}", h, wantUser, wantBroadcast)
	}
}

// ---------------------------------------------------------------------------------------------
// inbox and read state

// inboxFixture gives alice unicasts, multicasts and broadcasts, and bob and carol their own, and
// returns alice's inbox newest first.
func inboxFixture(t *testing.T, s herald.Store) []herald.Notification {
	t.Helper()
	var mine []herald.Notification
	types := []string{"alpha", "beta", "gamma"}
	for i := range 12 {
		typ := types[i%3]
		data := fmt.Sprintf(`{"i":%d}`, i)
		var d herald.Draft
		switch i % 4 {
		case 0:
			d = uni(typ, data, "alice")
		case 1:
			d = bcast(typ, data)
		case 2:
			d = uni(typ, data, "bob", "alice", "carol")
		case 3:
			d = uni(typ, data, "bob")
		}
		rs := appendOK(t, s, scope, d, uni(typ, data, "carol"))
		for _, n := range rs[0].Notifications {
			if n.User == "alice" || n.User == herald.BroadcastStream {
				mine = append(mine, n)
			}
		}
	}
	slices.Reverse(mine)
	return mine
}

func testInboxPaging(t *testing.T, s herald.Store) {
	empty, err := s.Inbox(t.Context(), "alice", herald.InboxQuery{Limit: 10})
	if err != nil || len(empty.Notifications) != 0 || empty.NextBefore != 0 {
		t.Fatalf("empty inbox = %+v, %v", empty, err)
	}
	want := inboxFixture(t, s)
	if len(want) != 9 {
		t.Fatalf("fixture gave alice %d notifications, want 9", len(want))
	}
	for _, limit := range []int{1, 2, 3, 4, 5, 8, 9, 10, 100} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			got := inboxAll(t, s, "alice", herald.InboxQuery{Limit: limit})
			if !slices.Equal(ids(got), ids(want)) {
				t.Fatalf("paged inbox ids %v, want %v (no overlap, no omission)", ids(got), ids(want))
			}
			for i := range want {
				sameNotification(t, got[i], want[i])
				if !got[i].ReadAt.IsZero() {
					t.Fatalf("unread notification has ReadAt: %s", show(got[i]))
				}
			}
		})
	}
	t.Run("before", func(t *testing.T) {
		got := inboxAll(t, s, "alice", herald.InboxQuery{Limit: 5, Before: want[3].ID})
		if !slices.Equal(ids(got), ids(want[4:])) {
			t.Fatalf("inbox before %d = %v, want %v", want[3].ID, ids(got), ids(want[4:]))
		}
	})
	t.Run("other users", func(t *testing.T) {
		bob := inboxAll(t, s, "bob", herald.InboxQuery{Limit: 4})
		for _, n := range bob {
			if n.User != "bob" && n.User != herald.BroadcastStream {
				t.Fatalf("bob's inbox holds %s", show(n))
			}
		}
		// bob has 6 of his own (cases 2 and 3) and the 3 broadcasts.
		if len(bob) != 9 {
			t.Fatalf("bob's inbox holds %d, want 9", len(bob))
		}
		nobody := inboxAll(t, s, "nobody", herald.InboxQuery{Limit: 2})
		if len(nobody) != 3 {
			t.Fatalf("a user with no notifications sees %d, want the 3 broadcasts", len(nobody))
		}
	})
}

func testInboxFilters(t *testing.T, s herald.Store) {
	all := inboxFixture(t, s)
	// alice reads every third of hers, unicast and broadcast alike; bob reads all of his.
	read := map[int64]bool{}
	for i, n := range all {
		if i%3 == 0 {
			setRead(t, s, "alice", n.ID, true)
			read[n.ID] = true
		}
	}
	if _, err := s.ReadAll(t.Context(), "bob"); err != nil {
		t.Fatal(err)
	}
	filter := func(f func(herald.Notification) bool) []herald.Notification {
		var out []herald.Notification
		for _, n := range all {
			if f(n) {
				out = append(out, n)
			}
		}
		return out
	}
	tests := []struct {
		name string
		q    herald.InboxQuery
		want []herald.Notification
	}{
		{"all", herald.InboxQuery{}, all},
		{"unread only", herald.InboxQuery{UnreadOnly: true}, filter(func(n herald.Notification) bool { return !read[n.ID] })},
		{"one type", herald.InboxQuery{Types: []string{"beta"}}, filter(func(n herald.Notification) bool { return n.Type == "beta" })},
		{"two types", herald.InboxQuery{Types: []string{"gamma", "alpha"}}, filter(func(n herald.Notification) bool { return n.Type != "beta" })},
		{"unknown type", herald.InboxQuery{Types: []string{"delta"}}, nil},
		{"unread of a type", herald.InboxQuery{UnreadOnly: true, Types: []string{"alpha"}},
			filter(func(n herald.Notification) bool { return !read[n.ID] && n.Type == "alpha" })},
	}
	for _, tc := range tests {
		for _, limit := range []int{2, 100} {
			t.Run(fmt.Sprintf("%s limit %d", tc.name, limit), func(t *testing.T) {
				q := tc.q
				q.Limit = limit
				got := inboxAll(t, s, "alice", q)
				if !slices.Equal(ids(got), ids(tc.want)) {
					t.Fatalf("ids %v, want %v", ids(got), ids(tc.want))
				}
				for _, n := range got {
					if read[n.ID] == n.ReadAt.IsZero() {
						t.Fatalf("alice's read state of %d: ReadAt %v, read %v", n.ID, n.ReadAt, read[n.ID])
					}
				}
			})
		}
	}
	// bob's ReadAll does not touch alice's broadcasts, nor alice's reads bob's.
	t.Run("read state is per user", func(t *testing.T) {
		got := inboxAll(t, s, "bob", herald.InboxQuery{Limit: 100, UnreadOnly: true})
		if len(got) != 0 {
			t.Fatalf("bob read all but has unread %v", ids(got))
		}
		carol := inboxAll(t, s, "carol", herald.InboxQuery{Limit: 100, UnreadOnly: true})
		for _, n := range carol {
			if !n.ReadAt.IsZero() {
				t.Fatalf("carol's %s", show(n))
			}
		}
		if want := len(inboxAll(t, s, "carol", herald.InboxQuery{Limit: 100})); len(carol) != want {
			t.Fatalf("carol has %d unread of %d, read nothing", len(carol), want)
		}
	})
}

func testGet(t *testing.T, s herald.Store) {
	mine := one(t, s, uni("t", `{"to":"alice"}`, "alice"))
	bobs := one(t, s, uni("t", `{"to":"bob"}`, "bob"))
	news := one(t, s, bcast("t", `{"to":"all"}`))
	tests := []struct {
		name     string
		user     string
		id       int64
		want     *herald.Notification
		wantCode string
	}{
		{"own", "alice", mine.ID, &mine, ""},
		{"broadcast", "alice", news.ID, &news, ""},
		{"broadcast for another", "bob", news.ID, &news, ""},
		{"other user's", "alice", bobs.ID, nil, herald.ENOTFOUND},
		{"own to its owner", "bob", bobs.ID, &bobs, ""},
		{"unknown", "alice", news.ID + 1000, nil, herald.ENOTFOUND},
		{"zero", "alice", 0, nil, herald.ENOTFOUND},
		{"negative", "alice", -1, nil, herald.ENOTFOUND},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := s.Get(t.Context(), tc.user, tc.id)
			if tc.wantCode != "" {
				wantCode(t, err, tc.wantCode)
				return
			}
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			sameNotification(t, n, *tc.want)
			if !n.ReadAt.IsZero() {
				t.Fatalf("unread notification has ReadAt %v", n.ReadAt)
			}
		})
	}
}

func testSetRead(t *testing.T, s herald.Store) {
	for _, kind := range []struct {
		name  string
		draft herald.Draft
	}{
		{"unicast", uni("t", `{}`, "alice")},
		{"broadcast", bcast("t", `{}`)},
	} {
		t.Run(kind.name, func(t *testing.T) {
			n := one(t, s, kind.draft)
			before := unread(t, s, "alice")

			t0 := time.Now()
			setRead(t, s, "alice", n.ID, true)
			first := get(t, s, "alice", n.ID).ReadAt
			checkTime(t, "ReadAt", first, t0, time.Now())
			if got := unread(t, s, "alice"); got != before-1 {
				t.Fatalf("UnreadCount after read = %d, want %d", got, before-1)
			}

			time.Sleep(5 * time.Millisecond)
			setRead(t, s, "alice", n.ID, true)
			if again := get(t, s, "alice", n.ID).ReadAt; !again.Equal(first) {
				t.Fatalf("marking read twice moved ReadAt from %v to %v", first, again)
			}
			if got := unread(t, s, "alice"); got != before-1 {
				t.Fatalf("UnreadCount after reading twice = %d, want %d", got, before-1)
			}

			setRead(t, s, "alice", n.ID, false)
			if got := get(t, s, "alice", n.ID).ReadAt; !got.IsZero() {
				t.Fatalf("ReadAt after unread = %v", got)
			}
			if got := unread(t, s, "alice"); got != before {
				t.Fatalf("UnreadCount after unread = %d, want %d", got, before)
			}
			setRead(t, s, "alice", n.ID, false) // unread twice is fine
			if got := unread(t, s, "alice"); got != before {
				t.Fatalf("UnreadCount after unread twice = %d, want %d", got, before)
			}

			// Read again after unread: a new ReadAt.
			time.Sleep(5 * time.Millisecond)
			setRead(t, s, "alice", n.ID, true)
			if got := get(t, s, "alice", n.ID).ReadAt; got.IsZero() || !got.After(first) {
				t.Fatalf("ReadAt after read, unread, read = %v, want after %v", got, first)
			}
		})
	}
}

func testSetReadBroadcastPerUser(t *testing.T, s herald.Store) {
	b := one(t, s, bcast("news", `{}`))
	setRead(t, s, "alice", b.ID, true)
	for _, tc := range []struct {
		user   string
		read   bool
		unread int64
	}{
		{"alice", true, 0},
		{"bob", false, 1},
		{"carol", false, 1},
	} {
		n := get(t, s, tc.user, b.ID)
		if n.ReadAt.IsZero() == tc.read {
			t.Fatalf("%s: ReadAt %v, want read %v", tc.user, n.ReadAt, tc.read)
		}
		if got := unread(t, s, tc.user); got != tc.unread {
			t.Fatalf("%s: UnreadCount %d, want %d", tc.user, got, tc.unread)
		}
		p, err := s.Inbox(t.Context(), tc.user, herald.InboxQuery{Limit: 10})
		if err != nil || len(p.Notifications) != 1 || p.Notifications[0].ReadAt.IsZero() == tc.read {
			t.Fatalf("%s: inbox %+v, %v; want the broadcast with read %v", tc.user, p, err, tc.read)
		}
		p, err = s.Inbox(t.Context(), tc.user, herald.InboxQuery{Limit: 10, UnreadOnly: true})
		if err != nil || (len(p.Notifications) == 0) != tc.read {
			t.Fatalf("%s: unread inbox %+v, %v", tc.user, p, err)
		}
	}
	// bob reads and unreads it: alice's mark stays.
	setRead(t, s, "bob", b.ID, true)
	setRead(t, s, "bob", b.ID, false)
	if get(t, s, "alice", b.ID).ReadAt.IsZero() {
		t.Fatal("bob's unread cleared alice's read mark")
	}
	if !get(t, s, "bob", b.ID).ReadAt.IsZero() {
		t.Fatal("bob's broadcast still read after unread")
	}
}

func testSetReadNotFound(t *testing.T, s herald.Store) {
	bobs := one(t, s, uni("t", `{}`, "bob"))
	news := one(t, s, bcast("t", `{}`))
	for _, tc := range []struct {
		name string
		user string
		id   int64
		read bool
	}{
		{"other user's, read", "alice", bobs.ID, true},
		{"other user's, unread", "alice", bobs.ID, false},
		{"unknown", "alice", news.ID + 1000, true},
		{"zero", "alice", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, s.SetRead(t.Context(), tc.user, tc.id, tc.read), herald.ENOTFOUND)
		})
	}
	if !get(t, s, "bob", bobs.ID).ReadAt.IsZero() {
		t.Fatal("alice's SetRead marked bob's notification")
	}
}

func testReadAll(t *testing.T, s herald.Store) {
	if n, err := s.ReadAll(t.Context(), "alice"); err != nil || n != 0 {
		t.Fatalf("ReadAll of an empty inbox = %d, %v", n, err)
	}
	a1 := one(t, s, uni("t", `{}`, "alice"))
	one(t, s, uni("t", `{}`, "alice"))
	one(t, s, uni("t", `{}`, "alice"))
	b1 := one(t, s, bcast("t", `{}`))
	one(t, s, bcast("t", `{}`))
	one(t, s, uni("t", `{}`, "bob"))
	one(t, s, uni("t", `{}`, "bob"))
	setRead(t, s, "alice", a1.ID, true)
	setRead(t, s, "alice", b1.ID, true)
	firstA1, firstB1 := get(t, s, "alice", a1.ID).ReadAt, get(t, s, "alice", b1.ID).ReadAt
	time.Sleep(5 * time.Millisecond)

	n, err := s.ReadAll(t.Context(), "alice")
	if err != nil || n != 3 {
		t.Fatalf("ReadAll = %d, %v; want 3 (2 unicasts and 1 broadcast were unread)", n, err)
	}
	if got := unread(t, s, "alice"); got != 0 {
		t.Fatalf("UnreadCount after ReadAll = %d", got)
	}
	if got := get(t, s, "alice", a1.ID).ReadAt; !got.Equal(firstA1) {
		t.Fatalf("ReadAll moved the ReadAt of a read unicast from %v to %v", firstA1, got)
	}
	if got := get(t, s, "alice", b1.ID).ReadAt; !got.Equal(firstB1) {
		t.Fatalf("ReadAll moved the ReadAt of a read broadcast from %v to %v", firstB1, got)
	}
	if got := unread(t, s, "bob"); got != 4 {
		t.Fatalf("bob's UnreadCount = %d, want 4: alice's ReadAll is hers only", got)
	}
	if n, err := s.ReadAll(t.Context(), "alice"); err != nil || n != 0 {
		t.Fatalf("second ReadAll = %d, %v; want 0", n, err)
	}

	b3 := one(t, s, bcast("t", `{}`))
	one(t, s, uni("t", `{}`, "alice"))
	if got := unread(t, s, "alice"); got != 2 {
		t.Fatalf("UnreadCount after new notifications = %d, want 2", got)
	}
	if !get(t, s, "alice", b3.ID).ReadAt.IsZero() {
		t.Fatal("a broadcast published after ReadAll is read")
	}
	if n, err := s.ReadAll(t.Context(), "bob"); err != nil || n != 5 {
		t.Fatalf("bob's ReadAll = %d, %v; want 5", n, err)
	}
	if n, err := s.ReadAll(t.Context(), "nobody"); err != nil || n != 3 {
		t.Fatalf("ReadAll of a user with only broadcasts = %d, %v; want 3", n, err)
	}
}

func testCounts(t *testing.T, s herald.Store) {
	if got := counts(t, s, "alice"); got != (herald.Counts{}) {
		t.Fatalf("Counts of an empty store = %+v", got)
	}
	appendOK(t, s, scope,
		uni("t", `{}`, "alice"), uni("t", `{}`, "alice", "bob"), uni("t", `{}`, "bob"),
		bcast("t", `{}`), bcast("t", `{}`))
	for _, tc := range []struct {
		user string
		want herald.Counts
	}{
		{"alice", herald.Counts{Unread: 4, Unseen: 4}},
		{"bob", herald.Counts{Unread: 4, Unseen: 4}},
		{"nobody", herald.Counts{Unread: 2, Unseen: 2}},
	} {
		if got := counts(t, s, tc.user); got != tc.want {
			t.Errorf("Counts(%q) = %+v, want %+v", tc.user, got, tc.want)
		}
	}
}

// testMarkSeen: the seen mark covers every notification of the feed up to it, never moves
// back, and never runs ahead of what the feed holds; reading a notification sees it too.
func testMarkSeen(t *testing.T, s herald.Store) {
	if mark, moved := markSeen(t, s, "alice", 0); mark != 0 || moved {
		t.Fatalf("MarkSeen of an empty feed = %d, %v; want 0, false", mark, moved)
	}
	a1 := one(t, s, uni("t", `{}`, "alice"))
	b1 := one(t, s, bcast("t", `{}`))
	one(t, s, uni("t", `{}`, "bob"))
	a2 := one(t, s, uni("t", `{}`, "alice"))
	seen := func(user string, n herald.Notification, want bool) {
		t.Helper()
		if got := get(t, s, user, n.ID); got.Seen != want {
			t.Fatalf("%s: Get(%d).Seen = %v, want %v", user, n.ID, got.Seen, want)
		}
	}
	for _, n := range []herald.Notification{a1, b1, a2} {
		seen("alice", n, false)
	}

	if mark, moved := markSeen(t, s, "alice", b1.ID); mark != b1.ID || !moved {
		t.Fatalf("MarkSeen(b1) = %d, %v; want %d, true", mark, moved, b1.ID)
	}
	seen("alice", a1, true)
	seen("alice", b1, true)
	seen("alice", a2, false)
	if got, want := counts(t, s, "alice"), (herald.Counts{Unread: 3, Unseen: 1}); got != want {
		t.Fatalf("Counts after seeing up to b1 = %+v, want %+v", got, want)
	}
	page, err := s.Inbox(t.Context(), "alice", herald.InboxQuery{Limit: 10})
	if err != nil || len(page.Notifications) != 3 {
		t.Fatalf("Inbox: %+v, %v", page, err)
	}
	for _, n := range page.Notifications {
		if n.Seen != (n.ID <= b1.ID) {
			t.Fatalf("inbox item %s: want seen %v", show(n), n.ID <= b1.ID)
		}
	}

	// Never back.
	if mark, moved := markSeen(t, s, "alice", a1.ID); mark != b1.ID || moved {
		t.Fatalf("MarkSeen below the mark = %d, %v; want %d, false", mark, moved, b1.ID)
	}
	seen("alice", b1, true)
	// 0: everything up to now.
	if mark, moved := markSeen(t, s, "alice", 0); mark != a2.ID || !moved {
		t.Fatalf("MarkSeen(0) = %d, %v; want %d, true", mark, moved, a2.ID)
	}
	if got := counts(t, s, "alice"); got.Unseen != 0 || got.Unread != 3 {
		t.Fatalf("Counts after seeing everything = %+v, want 0 unseen and 3 unread", got)
	}
	if mark, moved := markSeen(t, s, "alice", 0); mark != a2.ID || moved {
		t.Fatalf("MarkSeen(0) again = %d, %v; want %d, false", mark, moved, a2.ID)
	}
	if mark, moved := markSeen(t, s, "alice", 1<<40); mark != a2.ID || moved {
		t.Fatalf("MarkSeen(2^40) = %d, %v; want %d, false", mark, moved, a2.ID)
	}

	// A mark past the feed's newest stops there: what comes later is unseen.
	a3 := one(t, s, uni("t", `{}`, "alice"))
	if mark, moved := markSeen(t, s, "alice", a3.ID+1000); mark != a3.ID || !moved {
		t.Fatalf("MarkSeen past the newest = %d, %v; want %d (capped), true", mark, moved, a3.ID)
	}
	a4 := one(t, s, uni("t", `{}`, "alice"))
	seen("alice", a4, false)
	if got := counts(t, s, "alice"); got.Unseen != 1 {
		t.Fatalf("Counts after a new notification = %+v, want 1 unseen", got)
	}

	// Reading sees; unreading something never shown makes it unseen again.
	setRead(t, s, "alice", a4.ID, true)
	seen("alice", a4, true)
	if got := counts(t, s, "alice"); got.Unseen != 0 {
		t.Fatalf("Counts after reading the unseen one = %+v, want 0 unseen", got)
	}
	setRead(t, s, "alice", a4.ID, false)
	seen("alice", a4, false)
	setRead(t, s, "alice", a1.ID, false)
	seen("alice", a1, true)

	// The mark is alice's: bob's own and his broadcasts are as they were.
	if got, want := counts(t, s, "bob"), (herald.Counts{Unread: 2, Unseen: 2}); got != want {
		t.Fatalf("bob's Counts = %+v, want %+v", got, want)
	}
	seen("bob", b1, false)
	// An id that is not in the feed (bob's, or none at all) is only a position: carol's mark
	// stops at her feed's newest, the broadcast.
	if mark, _ := markSeen(t, s, "carol", a4.ID); mark != b1.ID {
		t.Fatalf("carol's MarkSeen(alice's newest) = %d, want %d (her newest)", mark, b1.ID)
	}
}

func testMarkSeenBroadcastPerUser(t *testing.T, s herald.Store) {
	b := one(t, s, bcast("news", `{}`))
	markSeen(t, s, "alice", 0)
	for _, tc := range []struct {
		user string
		want herald.Counts
	}{
		{"alice", herald.Counts{Unread: 1, Unseen: 0}},
		{"bob", herald.Counts{Unread: 1, Unseen: 1}},
	} {
		if got := counts(t, s, tc.user); got != tc.want {
			t.Fatalf("%s: Counts %+v, want %+v", tc.user, got, tc.want)
		}
		if got := get(t, s, tc.user, b.ID).Seen; got != (tc.want.Unseen == 0) {
			t.Fatalf("%s: Seen %v", tc.user, got)
		}
	}
}

func testSetArchived(t *testing.T, s herald.Store) {
	for _, kind := range []struct {
		name  string
		draft herald.Draft
	}{
		{"unicast", uni("t", `{}`, "alice")},
		{"broadcast", bcast("t", `{}`)},
	} {
		t.Run(kind.name, func(t *testing.T) {
			n := one(t, s, kind.draft)
			before := counts(t, s, "alice")
			inInbox := func(archived bool) bool {
				t.Helper()
				for _, x := range inboxAll(t, s, "alice", herald.InboxQuery{Limit: 100, Archived: archived}) {
					if x.ID == n.ID {
						return true
					}
				}
				return false
			}

			t0 := time.Now()
			setArchived(t, s, "alice", n.ID, true)
			first := get(t, s, "alice", n.ID).ArchivedAt
			checkTime(t, "ArchivedAt", first, t0, time.Now())
			if inInbox(false) || !inInbox(true) {
				t.Fatal("an archived notification is in the inbox, or not among the archived")
			}
			if got, want := counts(t, s, "alice"), (herald.Counts{Unread: before.Unread - 1, Unseen: before.Unseen - 1}); got != want {
				t.Fatalf("Counts after archiving = %+v, want %+v (archived ones do not count)", got, want)
			}

			time.Sleep(5 * time.Millisecond)
			setArchived(t, s, "alice", n.ID, true)
			if again := get(t, s, "alice", n.ID).ArchivedAt; !again.Equal(first) {
				t.Fatalf("archiving twice moved ArchivedAt from %v to %v", first, again)
			}
			// Archiving does not read: the read state is its own.
			if !get(t, s, "alice", n.ID).ReadAt.IsZero() {
				t.Fatal("archiving marked read")
			}

			setArchived(t, s, "alice", n.ID, false)
			if got := get(t, s, "alice", n.ID).ArchivedAt; !got.IsZero() {
				t.Fatalf("ArchivedAt after unarchive = %v", got)
			}
			if !inInbox(false) || inInbox(true) {
				t.Fatal("an unarchived notification is not back in the inbox")
			}
			if got := counts(t, s, "alice"); got != before {
				t.Fatalf("Counts after unarchiving = %+v, want %+v", got, before)
			}
			setArchived(t, s, "alice", n.ID, false) // twice is fine
			if got := counts(t, s, "alice"); got != before {
				t.Fatalf("Counts after unarchiving twice = %+v, want %+v", got, before)
			}
		})
	}
}

func testSetArchivedBroadcastPerUser(t *testing.T, s herald.Store) {
	b := one(t, s, bcast("news", `{}`))
	setArchived(t, s, "alice", b.ID, true)
	for _, tc := range []struct {
		user     string
		archived bool
		unread   int64
	}{
		{"alice", true, 0},
		{"bob", false, 1},
	} {
		if got := get(t, s, tc.user, b.ID).ArchivedAt.IsZero(); got == tc.archived {
			t.Fatalf("%s: archived %v, want %v", tc.user, !got, tc.archived)
		}
		if got := unread(t, s, tc.user); got != tc.unread {
			t.Fatalf("%s: unread %d, want %d", tc.user, got, tc.unread)
		}
		inbox := inboxAll(t, s, tc.user, herald.InboxQuery{Limit: 10})
		archived := inboxAll(t, s, tc.user, herald.InboxQuery{Limit: 10, Archived: true})
		if (len(inbox) == 0) != tc.archived || (len(archived) == 1) != tc.archived {
			t.Fatalf("%s: inbox %v, archived %v; want the broadcast archived %v", tc.user, ids(inbox), ids(archived), tc.archived)
		}
	}
	// bob archives and unarchives it: alice's mark stays.
	setArchived(t, s, "bob", b.ID, true)
	setArchived(t, s, "bob", b.ID, false)
	if get(t, s, "alice", b.ID).ArchivedAt.IsZero() {
		t.Fatal("bob's unarchive cleared alice's archive mark")
	}
}

func testSetArchivedNotFound(t *testing.T, s herald.Store) {
	bobs := one(t, s, uni("t", `{}`, "bob"))
	news := one(t, s, bcast("t", `{}`))
	for _, tc := range []struct {
		name     string
		id       int64
		archived bool
	}{
		{"other user's, archive", bobs.ID, true},
		{"other user's, unarchive", bobs.ID, false},
		{"unknown", news.ID + 1000, true},
		{"zero", 0, true},
		{"negative", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, s.SetArchived(t.Context(), "alice", tc.id, tc.archived), herald.ENOTFOUND)
		})
	}
	if !get(t, s, "bob", bobs.ID).ArchivedAt.IsZero() {
		t.Fatal("alice's SetArchived archived bob's notification")
	}
}

func testArchiveRead(t *testing.T, s herald.Store) {
	if n, err := s.ArchiveRead(t.Context(), "alice"); err != nil || n != 0 {
		t.Fatalf("ArchiveRead of an empty inbox = %d, %v", n, err)
	}
	a1 := one(t, s, uni("t", `{}`, "alice"))
	a2 := one(t, s, uni("t", `{}`, "alice"))
	a3 := one(t, s, uni("t", `{}`, "alice"))
	b1 := one(t, s, bcast("t", `{}`))
	b2 := one(t, s, bcast("t", `{}`))
	bob := one(t, s, uni("t", `{}`, "bob"))
	for _, n := range []herald.Notification{a1, a3, b1} {
		setRead(t, s, "alice", n.ID, true)
	}
	setArchived(t, s, "alice", a3.ID, true) // read and archived already: not counted again
	setRead(t, s, "bob", bob.ID, true)
	setRead(t, s, "bob", b2.ID, true)
	before := counts(t, s, "alice")

	n, err := s.ArchiveRead(t.Context(), "alice")
	if err != nil || n != 2 {
		t.Fatalf("ArchiveRead = %d, %v; want 2 (a read unicast and a read broadcast)", n, err)
	}
	if got, want := ids(inboxAll(t, s, "alice", herald.InboxQuery{Limit: 10})), []int64{b2.ID, a2.ID}; !slices.Equal(got, want) {
		t.Fatalf("inbox after ArchiveRead = %v, want the unread %v", got, want)
	}
	if got, want := ids(inboxAll(t, s, "alice", herald.InboxQuery{Limit: 10, Archived: true})), []int64{b1.ID, a3.ID, a1.ID}; !slices.Equal(got, want) {
		t.Fatalf("archived after ArchiveRead = %v, want %v", got, want)
	}
	if got := counts(t, s, "alice"); got != before {
		t.Fatalf("Counts changed from %+v to %+v: only read ones were archived", before, got)
	}
	// bob's are his: his read broadcast and his own stay in his inbox.
	if got := inboxAll(t, s, "bob", herald.InboxQuery{Limit: 10}); len(got) != 3 {
		t.Fatalf("bob's inbox after alice's ArchiveRead: %v, want his 3", ids(got))
	}
	if n, err := s.ArchiveRead(t.Context(), "alice"); err != nil || n != 0 {
		t.Fatalf("second ArchiveRead = %d, %v; want 0", n, err)
	}
	if n, err := s.ArchiveRead(t.Context(), "bob"); err != nil || n != 2 {
		t.Fatalf("bob's ArchiveRead = %d, %v; want 2", n, err)
	}
}

// testInboxArchived: the inbox and the archived are two views that split the feed, each paged
// and filtered like the inbox.
func testInboxArchived(t *testing.T, s herald.Store) {
	all := inboxFixture(t, s)
	archived, read := map[int64]bool{}, map[int64]bool{}
	for i, n := range all {
		if i%2 == 0 {
			setArchived(t, s, "alice", n.ID, true)
			archived[n.ID] = true
		}
		if i%3 == 0 {
			setRead(t, s, "alice", n.ID, true)
			read[n.ID] = true
		}
	}
	// bob archives everything he has: alice's views do not change.
	for _, n := range inboxAll(t, s, "bob", herald.InboxQuery{Limit: 100}) {
		setArchived(t, s, "bob", n.ID, true)
	}
	filter := func(f func(herald.Notification) bool) []herald.Notification {
		var out []herald.Notification
		for _, n := range all {
			if f(n) {
				out = append(out, n)
			}
		}
		return out
	}
	tests := []struct {
		name string
		q    herald.InboxQuery
		want []herald.Notification
	}{
		{"inbox", herald.InboxQuery{}, filter(func(n herald.Notification) bool { return !archived[n.ID] })},
		{"archived", herald.InboxQuery{Archived: true}, filter(func(n herald.Notification) bool { return archived[n.ID] })},
		{"archived unread", herald.InboxQuery{Archived: true, UnreadOnly: true},
			filter(func(n herald.Notification) bool { return archived[n.ID] && !read[n.ID] })},
		{"inbox unread", herald.InboxQuery{UnreadOnly: true},
			filter(func(n herald.Notification) bool { return !archived[n.ID] && !read[n.ID] })},
		{"archived of a type", herald.InboxQuery{Archived: true, Types: []string{"beta", "gamma"}},
			filter(func(n herald.Notification) bool { return archived[n.ID] && n.Type != "alpha" })},
	}
	for _, tc := range tests {
		for _, limit := range []int{1, 2, 3, 100} {
			t.Run(fmt.Sprintf("%s limit %d", tc.name, limit), func(t *testing.T) {
				q := tc.q
				q.Limit = limit
				got := inboxAll(t, s, "alice", q)
				if !slices.Equal(ids(got), ids(tc.want)) {
					t.Fatalf("ids %v, want %v", ids(got), ids(tc.want))
				}
				for _, n := range got {
					if n.ArchivedAt.IsZero() == archived[n.ID] || n.ReadAt.IsZero() == read[n.ID] {
						t.Fatalf("alice's state of %s: want archived %v, read %v", show(n), archived[n.ID], read[n.ID])
					}
				}
			})
		}
	}
	if got := inboxAll(t, s, "bob", herald.InboxQuery{Limit: 100}); len(got) != 0 {
		t.Fatalf("bob archived everything but his inbox holds %v", ids(got))
	}
	if got := inboxAll(t, s, "carol", herald.InboxQuery{Limit: 100, Archived: true}); len(got) != 0 {
		t.Fatalf("carol archived nothing but has archived %v", ids(got))
	}
}

// ---------------------------------------------------------------------------------------------
// retention

func testPruneNothing(t *testing.T, s herald.Store) {
	if n := prune(t, s, herald.Retention{MaxAge: time.Hour, MaxPerStream: 10, IdempotencyTTL: time.Hour}); n != 0 {
		t.Fatalf("Prune of an empty store removed %d", n)
	}
	appendOK(t, s, scope, uni("t", `{}`, "alice"), bcast("t", `{}`), keyed(uni("t", `{}`, "bob"), "k"))
	for _, r := range []herald.Retention{
		{},
		{MaxAge: time.Hour},
		{MaxPerStream: 1},
		{MaxPerStream: 5, IdempotencyTTL: time.Hour},
	} {
		if n := prune(t, s, r); n != 0 {
			t.Fatalf("Prune(%+v) removed %d, want 0", r, n)
		}
	}
	if got := len(streamAll(t, s, "alice")) + len(streamAll(t, s, "bob")) + len(streamAll(t, s, herald.BroadcastStream)); got != 3 {
		t.Fatalf("%d notifications left, want 3", got)
	}
	if r := appendOK(t, s, scope, keyed(uni("t", `{}`, "bob"), "k"))[0]; !r.Replayed {
		t.Fatal("a young key was forgotten")
	}
}

func testPruneMaxPerStream(t *testing.T, s herald.Store) {
	var alice, bob, bcasts []herald.Notification
	for i := range 5 {
		alice = append(alice, one(t, s, uni("t", fmt.Sprintf(`{"i":%d}`, i), "alice")))
		if i < 2 {
			bob = append(bob, one(t, s, uni("t", `{}`, "bob")))
		}
		if i < 4 {
			bcasts = append(bcasts, one(t, s, bcast("t", fmt.Sprintf(`{"i":%d}`, i))))
		}
	}
	if n := prune(t, s, herald.Retention{MaxPerStream: 3}); n != 3 {
		t.Fatalf("Prune removed %d, want 3 (2 of alice's, 1 broadcast)", n)
	}
	tests := []struct {
		stream string
		want   []herald.Notification
		gone   []herald.Notification
	}{
		{"alice", alice[2:], alice[:2]},
		{"bob", bob, nil},
		{herald.BroadcastStream, bcasts[1:], bcasts[:1]},
	}
	for _, tc := range tests {
		got := streamAll(t, s, tc.stream)
		if !slices.Equal(ids(got), ids(tc.want)) {
			t.Fatalf("stream %q keeps %v, want the newest %v", tc.stream, ids(got), ids(tc.want))
		}
		for _, n := range tc.gone {
			user := n.User
			if user == herald.BroadcastStream {
				user = "alice"
			}
			if _, err := s.Get(t.Context(), user, n.ID); herald.ErrorCode(err) != herald.ENOTFOUND {
				t.Fatalf("Get of pruned %d: %v, want %s", n.ID, err, herald.ENOTFOUND)
			}
		}
	}
	// The feed from the start shows the hole: it resumes at the first kept seq, past cursor+1.
	p, err := s.Feed(t.Context(), "alice", herald.Cursor{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(p.User); !slices.Equal(got, []uint64{3, 4, 5}) {
		t.Fatalf("feed user seqs %v, want [3 4 5]", got)
	}
	if got := seqs(p.Broadcast); !slices.Equal(got, []uint64{2, 3, 4}) {
		t.Fatalf("feed broadcast seqs %v, want [2 3 4]", got)
	}
	if p.Heads != (herald.Cursor{User: 5, Broadcast: 4}) {
		t.Fatalf("Heads after prune = %+v, want {5 4}", p.Heads)
	}
	p, err = s.Feed(t.Context(), "alice", herald.Cursor{User: 1}, 1)
	if err != nil || len(p.User) != 1 || p.User[0].Seq <= 2 {
		t.Fatalf("feed after 1: %v, %v; want seq 3 (a visible hole)", seqs(p.User), err)
	}
	inbox := inboxAll(t, s, "alice", herald.InboxQuery{Limit: 2})
	if len(inbox) != 6 {
		t.Fatalf("alice's inbox holds %d after prune, want 6", len(inbox))
	}
	// Sequences go on after a prune; they never restart or reuse.
	if n := one(t, s, uni("t", `{}`, "alice")); n.Seq != 6 || n.ID <= alice[4].ID {
		t.Fatalf("after prune: seq %d id %d, want seq 6 and an id above %d", n.Seq, n.ID, alice[4].ID)
	}
	if n := one(t, s, bcast("t", `{}`)); n.Seq != 5 {
		t.Fatalf("broadcast seq after prune = %d, want 5", n.Seq)
	}
	if n := prune(t, s, herald.Retention{MaxPerStream: 3}); n != 2 {
		t.Fatalf("second Prune removed %d, want 2", n)
	}
	if n := prune(t, s, herald.Retention{MaxPerStream: 3}); n != 0 {
		t.Fatalf("third Prune removed %d, want 0", n)
	}
}

func testPruneMaxAge(t *testing.T, s herald.Store) {
	const gap = 100 * time.Millisecond
	oldAlice := one(t, s, uni("t", `{"old":1}`, "alice"))
	appendOK(t, s, scope, uni("t", `{"old":2}`, "alice", "bob"), bcast("t", `{"old":3}`), bcast("t", `{"old":4}`))
	if n, err := s.ReadAll(t.Context(), "alice"); err != nil || n != 4 {
		t.Fatalf("ReadAll = %d, %v", n, err)
	}
	time.Sleep(gap)
	mark := time.Now()
	young := appendOK(t, s, scope, uni("t", `{"young":1}`, "alice"), bcast("t", `{"young":2}`))
	// Everything appended before the sleep is older than the cutoff, all after it younger.
	if n := prune(t, s, herald.Retention{MaxAge: time.Since(mark) + gap/2}); n != 5 {
		t.Fatalf("Prune by age removed %d, want the 5 old ones", n)
	}
	if _, err := s.Get(t.Context(), "alice", oldAlice.ID); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("Get of an aged-out notification: %v", err)
	}
	for _, tc := range []struct {
		stream string
		want   []uint64
	}{{"alice", []uint64{3}}, {"bob", nil}, {herald.BroadcastStream, []uint64{3}}} {
		got := streamAll(t, s, tc.stream)
		if !slices.Equal(seqs(got), tc.want) {
			t.Fatalf("stream %q keeps seqs %v, want %v", tc.stream, seqs(got), tc.want)
		}
	}
	if h := headsOf(t, s, "bob"); h != (herald.Cursor{User: 1, Broadcast: 3}) {
		t.Fatalf("Heads(bob) after prune = %+v, want {1 3}: heads survive their notifications", h)
	}
	if got := unread(t, s, "alice"); got != 2 {
		t.Fatalf("alice's UnreadCount = %d, want the 2 young ones", got)
	}

	// Prune everything: the store forgets the notifications but not the sequences, and never
	// gives an id twice.
	maxID := young[1].Notifications[0].ID
	time.Sleep(2 * time.Millisecond)
	if n := prune(t, s, herald.Retention{MaxAge: time.Microsecond}); n != 2 {
		t.Fatalf("Prune of everything removed %d, want 2", n)
	}
	if p, err := s.Inbox(t.Context(), "alice", herald.InboxQuery{Limit: 10}); err != nil || len(p.Notifications) != 0 {
		t.Fatalf("inbox after pruning everything: %+v, %v", p, err)
	}
	rs := appendOK(t, s, scope, uni("t", `{}`, "alice"), bcast("t", `{}`))
	for i, wantSeq := range []uint64{4, 4} {
		n := rs[i].Notifications[0]
		if n.Seq != wantSeq || n.ID <= maxID {
			t.Fatalf("after pruning everything: %s, want seq %d and an id above %d (ids are never reused)", show(n), wantSeq, maxID)
		}
	}
	// alice had read every broadcast before; the new one is unread for her.
	if got := unread(t, s, "alice"); got != 2 {
		t.Fatalf("alice's UnreadCount = %d, want 2", got)
	}
}

func testPruneIdempotencyTTL(t *testing.T, s herald.Store) {
	// The TTL puts the prune's cutoff half a gap before the young key was written, and half a
	// gap after the old one: a pause of the machine between computing the TTL and the store
	// reading its clock longer than that would move the cutoff past the young key. Such a run
	// proves nothing, so it is tried again with a wider gap rather than failed.
	for gap := 100 * time.Millisecond; ; gap *= 2 {
		if pruneKeysOnce(t, s, gap) {
			return
		}
		if gap > 5*time.Second {
			t.Fatal("the machine paused longer than the gap in every attempt")
		}
		t.Logf("prune took over %v: trying again with a wider gap", gap/2)
	}
}

// pruneKeysOnce is testPruneIdempotencyTTL with the given gap between the old key and the young
// one, on keys and a user of its own; it returns false when the run was too slow to tell.
func pruneKeysOnce(t *testing.T, s herald.Store, gap time.Duration) bool {
	user, suffix := fmt.Sprintf("alice-%d", gap.Milliseconds()), fmt.Sprintf("-%d", gap.Milliseconds())
	oldDraft := keyed(uni("t", `{"v":1}`, user), "old"+suffix)
	old := appendOK(t, s, scope, oldDraft)[0]
	time.Sleep(gap)
	mark := time.Now()
	youngDraft := keyed(uni("t", `{"v":2}`, user), "young"+suffix)
	young := appendOK(t, s, scope, youngDraft)[0]

	// Pruning keys does not prune notifications.
	start := time.Now()
	n := prune(t, s, herald.Retention{IdempotencyTTL: time.Since(mark) + gap/2})
	if time.Since(start) >= gap/2 {
		return false
	}
	if n != 0 {
		t.Fatalf("Prune of keys reported %d notifications removed", n)
	}
	if got := len(streamAll(t, s, user)); got != 2 {
		t.Fatalf("%s has %d notifications, want 2", user, got)
	}
	r := appendOK(t, s, scope, youngDraft)[0]
	if !r.Replayed || !slices.Equal(ids(r.Notifications), ids(young.Notifications)) {
		t.Fatalf("young key: %+v, want a replay of %v", r, ids(young.Notifications))
	}
	// The old key is forgotten: reusing it, even for a different draft, makes a new notification.
	r = appendOK(t, s, scope, keyed(uni("t", `{"v":3}`, user), "old"+suffix))[0]
	if r.Replayed || r.Notifications[0].ID == old.Notifications[0].ID || r.Notifications[0].Seq != 3 {
		t.Fatalf("forgotten key: %+v, want a fresh notification with seq 3", r)
	}
	// And it is remembered again from now on.
	if _, err := s.Append(t.Context(), scope, []herald.Draft{oldDraft}); herald.ErrorCode(err) != herald.ECONFLICT {
		t.Fatalf("reused key with the first draft: %v, want %s", err, herald.ECONFLICT)
	}
	return true
}

func testPruneReadMarks(t *testing.T, s herald.Store) {
	var bs []herald.Notification
	for range 3 {
		bs = append(bs, one(t, s, bcast("t", `{}`)))
	}
	one(t, s, uni("t", `{}`, "alice"))
	for _, user := range []string{"alice", "bob"} {
		if _, err := s.ReadAll(t.Context(), user); err != nil {
			t.Fatal(err)
		}
	}
	if n := prune(t, s, herald.Retention{MaxPerStream: 1}); n != 2 {
		t.Fatalf("Prune removed %d, want 2 broadcasts", n)
	}
	for _, user := range []string{"alice", "bob", "carol"} {
		wantUnread := int64(1)
		if user != "carol" {
			wantUnread = 0
		}
		if got := unread(t, s, user); got != wantUnread {
			t.Fatalf("%s: UnreadCount %d after prune, want %d", user, got, wantUnread)
		}
		if _, err := s.Get(t.Context(), user, bs[0].ID); herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Fatalf("%s: Get of a pruned broadcast: %v", user, err)
		}
		if err := s.SetRead(t.Context(), user, bs[0].ID, true); herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Fatalf("%s: SetRead of a pruned broadcast: %v", user, err)
		}
	}
	// The kept broadcast keeps its marks; a new one has none.
	if get(t, s, "alice", bs[2].ID).ReadAt.IsZero() {
		t.Fatal("alice's mark on the kept broadcast is gone")
	}
	nb := one(t, s, bcast("t", `{}`))
	for _, user := range []string{"alice", "bob"} {
		if !get(t, s, user, nb.ID).ReadAt.IsZero() {
			t.Fatalf("%s: a new broadcast is read", user)
		}
		if n, err := s.ReadAll(t.Context(), user); err != nil || n != 1 {
			t.Fatalf("%s: ReadAll after prune = %d, %v; want 1", user, n, err)
		}
	}
}

// testPruneStateMarks: retention takes archive marks with their broadcasts, and a seen mark
// keeps meaning the same after what it covered is gone.
func testPruneStateMarks(t *testing.T, s herald.Store) {
	var bs []herald.Notification
	for range 3 {
		bs = append(bs, one(t, s, bcast("t", `{}`)))
	}
	mine := one(t, s, uni("t", `{}`, "alice"))
	for _, b := range bs {
		setArchived(t, s, "alice", b.ID, true)
	}
	setArchived(t, s, "bob", bs[0].ID, true)
	markSeen(t, s, "alice", 0)
	if n := prune(t, s, herald.Retention{MaxPerStream: 1}); n != 2 {
		t.Fatalf("Prune removed %d, want 2 broadcasts", n)
	}
	for _, user := range []string{"alice", "bob"} {
		if err := s.SetArchived(t.Context(), user, bs[0].ID, false); herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Fatalf("%s: SetArchived of a pruned broadcast: %v", user, err)
		}
	}
	if get(t, s, "alice", bs[2].ID).ArchivedAt.IsZero() {
		t.Fatal("alice's archive mark on the kept broadcast is gone")
	}
	if got, want := counts(t, s, "alice"), (herald.Counts{Unread: 1, Unseen: 0}); got != want {
		t.Fatalf("alice's Counts after prune = %+v, want %+v", got, want)
	}
	if got, want := counts(t, s, "bob"), (herald.Counts{Unread: 1, Unseen: 1}); got != want {
		t.Fatalf("bob's Counts after prune = %+v, want %+v", got, want)
	}
	// A new broadcast is in everyone's inbox, unseen.
	nb := one(t, s, bcast("t", `{}`))
	for _, user := range []string{"alice", "bob"} {
		n := get(t, s, user, nb.ID)
		if !n.ArchivedAt.IsZero() || n.Seen {
			t.Fatalf("%s: a new broadcast is %s", user, show(n))
		}
	}
	// Everything goes: alice's mark covered only what was removed, and what comes next is
	// unseen; her mark moves on from there.
	if n := prune(t, s, herald.Retention{MaxAge: time.Nanosecond}); n != 3 {
		t.Fatalf("Prune by age removed %d, want 3", n)
	}
	next := one(t, s, uni("t", `{}`, "alice"))
	if got := get(t, s, "alice", next.ID); got.Seen || next.ID <= mine.ID {
		t.Fatalf("after pruning everything, a new notification is %s", show(got))
	}
	if got, want := counts(t, s, "alice"), (herald.Counts{Unread: 1, Unseen: 1}); got != want {
		t.Fatalf("alice's Counts = %+v, want %+v", got, want)
	}
	if mark, moved := markSeen(t, s, "alice", 0); mark != next.ID || !moved {
		t.Fatalf("MarkSeen after prune = %d, %v; want %d, true", mark, moved, next.ID)
	}
}

// ---------------------------------------------------------------------------------------------
// lifecycle

func testAppendCancelledContext(t *testing.T, s herald.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for i := range 20 {
		h := headsOf(t, s, "alice")
		var rs []herald.Receipt
		var err error
		within(t, 10*time.Second, "Append with a cancelled context", func() {
			rs, err = s.Append(ctx, scope, []herald.Draft{uni("t", fmt.Sprintf(`{"i":%d}`, i), "alice")})
		})
		// Either it was committed and says so, or it failed and stored nothing.
		after := headsOf(t, s, "alice")
		switch {
		case err == nil:
			if len(rs) != 1 || len(rs[0].Notifications) != 1 || rs[0].Notifications[0].Seq != h.User+1 || after.User != h.User+1 {
				t.Fatalf("cancelled Append succeeded with %+v, heads %+v → %+v", rs, h, after)
			}
		case after != h:
			t.Fatalf("cancelled Append failed (%v) but heads moved %+v → %+v", err, h, after)
		}
	}
	// The store still works.
	n := one(t, s, uni("t", `{}`, "alice"))
	if got := seqs(streamAll(t, s, "alice")); !slices.Equal(got, seqRange(1, n.Seq)) {
		t.Fatalf("alice's seqs %v after cancelled appends", got)
	}
}

func testClose(t *testing.T, s herald.Store) {
	n := one(t, s, uni("t", `{}`, "alice"))
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	within(t, 30*time.Second, "Close", func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	ops := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Append", func(ctx context.Context) error {
			_, err := s.Append(ctx, scope, []herald.Draft{uni("t", `{}`, "alice")})
			return err
		}},
		{"Append broadcast", func(ctx context.Context) error {
			_, err := s.Append(ctx, scope, []herald.Draft{bcast("t", `{}`)})
			return err
		}},
		{"Feed", func(ctx context.Context) error { _, err := s.Feed(ctx, "alice", herald.Cursor{}, 10); return err }},
		{"Stream", func(ctx context.Context) error { _, err := s.Stream(ctx, "alice", 0, 10); return err }},
		{"Heads", func(ctx context.Context) error { _, err := s.Heads(ctx, "alice"); return err }},
		{"StreamHeads", func(ctx context.Context) error { _, err := s.StreamHeads(ctx, []string{"alice"}); return err }},
		{"Inbox", func(ctx context.Context) error {
			_, err := s.Inbox(ctx, "alice", herald.InboxQuery{Limit: 10})
			return err
		}},
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, "alice", n.ID); return err }},
		{"SetRead", func(ctx context.Context) error { return s.SetRead(ctx, "alice", n.ID, true) }},
		{"ReadAll", func(ctx context.Context) error { _, err := s.ReadAll(ctx, "alice"); return err }},
		{"Counts", func(ctx context.Context) error { _, err := s.Counts(ctx, "alice"); return err }},
		{"MarkSeen", func(ctx context.Context) error { _, _, err := s.MarkSeen(ctx, "alice", 0); return err }},
		{"SetArchived", func(ctx context.Context) error { return s.SetArchived(ctx, "alice", n.ID, true) }},
		{"ArchiveRead", func(ctx context.Context) error { _, err := s.ArchiveRead(ctx, "alice"); return err }},
		{"Prune", func(ctx context.Context) error {
			_, err := s.Prune(ctx, herald.Retention{MaxAge: time.Nanosecond, MaxPerStream: 1, IdempotencyTTL: time.Nanosecond})
			return err
		}},
		{"Ping", func(ctx context.Context) error { return s.Ping(ctx) }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			var err error
			within(t, 10*time.Second, op.name+" after Close", func() { err = op.call(t.Context()) })
			// A closed store is unavailable: an error a caller may retry elsewhere, never a panic.
			wantCode(t, err, herald.EUNAVAILABLE)
			within(t, 10*time.Second, op.name+" after Close with a cancelled context", func() { err = op.call(cancelled) })
			if err == nil {
				t.Fatal("no error from a closed store")
			}
		})
	}
	within(t, 10*time.Second, "second Close", func() { _ = s.Close() })
}

// Epochs is what every store offers the operator who restored it from a backup.
type Epochs interface {
	NewEpoch(ctx context.Context) (herald.Identity, error)
}

// testIdentity: every store has an identity of its own from the start, in the first epoch.
func testIdentity(t *testing.T, open func(t *testing.T) herald.Store) {
	a, b := open(t), open(t)
	ia, ib := a.Identity(), b.Identity()
	for _, id := range []herald.Identity{ia, ib} {
		if len(id.ID) < 16 || !herald.ValidEpoch(id.Epoch) || id.Since != 0 {
			t.Fatalf("a new store's identity is %+v; want an id of 16+ hex digits, a hex epoch, Since 0", id)
		}
	}
	if ia.ID == ib.ID || ia.Epoch == ib.Epoch {
		t.Fatalf("two stores share an id or epoch: %+v and %+v", ia, ib)
	}
	if got := a.Identity(); got != ia {
		t.Fatalf("Identity changed from %+v to %+v without a new epoch", ia, got)
	}
	c, err := a.EpochStart(t.Context(), "alice")
	if err != nil || c != (herald.Cursor{}) {
		t.Fatalf("EpochStart in the first epoch = %+v, %v; want 0.0", c, err)
	}
}

// testNewEpoch: a new epoch keeps the store's id, and begins, in every stream, after what was
// committed before it, also when retention removed all of that.
func testNewEpoch(t *testing.T, s herald.Store) {
	e, ok := s.(Epochs)
	if !ok {
		t.Fatalf("%T has no NewEpoch method", s)
	}
	appendOK(t, s, scope, uni("x", `{}`, "alice"), uni("x", `{}`, "alice", "bob"), uni("x", `{}`, "alice"), bcast("x", `{}`), bcast("x", `{}`))
	before := s.Identity()
	id, err := e.NewEpoch(t.Context())
	if err != nil {
		t.Fatalf("NewEpoch: %v", err)
	}
	if id.ID != before.ID || id.Epoch == before.Epoch || !herald.ValidEpoch(id.Epoch) || id.Since < 6 {
		t.Fatalf("NewEpoch: %+v after %+v; want the same id, another epoch, Since >= 6", id, before)
	}
	if s.Identity() != id {
		t.Fatalf("Identity() = %+v after NewEpoch returned %+v", s.Identity(), id)
	}
	start := func(user string) herald.Cursor {
		t.Helper()
		c, err := s.EpochStart(t.Context(), user)
		if err != nil {
			t.Fatalf("EpochStart(%q): %v", user, err)
		}
		return c
	}
	want := map[string]herald.Cursor{"alice": {User: 3, Broadcast: 2}, "bob": {User: 1, Broadcast: 2}, "carol": {Broadcast: 2}}
	for user, c := range want {
		if got := start(user); got != c {
			t.Fatalf("EpochStart(%q) right after NewEpoch = %+v, want %+v", user, got, c)
		}
	}
	appendOK(t, s, scope, uni("y", `{}`, "alice"), uni("y", `{}`, "alice", "carol"), bcast("y", `{}`))
	for user, c := range want {
		if got := start(user); got != c {
			t.Fatalf("EpochStart(%q) after appends = %+v, want %+v", user, got, c)
		}
	}
	// Ids of the new epoch are far past those given before it, which clients of the replaced
	// history may hold.
	if n := one(t, s, uni("y", `{}`, "dave")); n.ID <= id.Since+1<<31 {
		t.Fatalf("the first id of the new epoch is %d, Since %d: want ids far past those of the replaced history", n.ID, id.Since)
	}
	// From the epoch's start, the feed holds exactly what this epoch committed.
	fp, err := s.Feed(t.Context(), "alice", start("alice"), 100)
	if err != nil {
		t.Fatalf("Feed: %v", err)
	}
	if len(fp.User) != 2 || len(fp.Broadcast) != 1 || fp.User[0].Type != "y" || fp.Broadcast[0].Type != "y" {
		t.Fatalf("Feed from the epoch's start: %d of alice's, %d broadcasts; want this epoch's 2 and 1", len(fp.User), len(fp.Broadcast))
	}
	// Retention keeps only this epoch's last of each stream: the epoch then starts before it.
	if _, err := s.Prune(t.Context(), herald.Retention{MaxPerStream: 1}); err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if got, w := start("alice"), (herald.Cursor{User: 4, Broadcast: 2}); got != w {
		t.Fatalf("EpochStart(alice) after retention = %+v, want %+v", got, w)
	}
}

// ---------------------------------------------------------------------------------------------
// topics

func subscribe(t *testing.T, s herald.Store, topic string, users ...string) int64 {
	t.Helper()
	n, err := s.Subscribe(context.Background(), topic, users, herald.TopicLimits{})
	if err != nil {
		t.Fatalf("Subscribe(%q, %q): %v", topic, users, err)
	}
	return n
}

func subscribers(t *testing.T, s herald.Store, topic string) []string {
	t.Helper()
	us, err := s.TopicSubscribers(context.Background(), topic, "", 1000)
	if err != nil {
		t.Fatalf("TopicSubscribers(%q): %v", topic, err)
	}
	return us
}

func userTopics(t *testing.T, s herald.Store, user string) []string {
	t.Helper()
	ts, err := s.UserTopics(context.Background(), user)
	if err != nil {
		t.Fatalf("UserTopics(%q): %v", user, err)
	}
	return ts
}

func testTopics(t *testing.T, s herald.Store) {
	ctx := context.Background()
	if got := subscribers(t, s, "issue:42"); got == nil || len(got) != 0 {
		t.Fatalf("subscribers of an unknown topic = %#v, want an empty non-nil list", got)
	}
	if got := userTopics(t, s, "alice"); got == nil || len(got) != 0 {
		t.Fatalf("topics of a user without any = %#v, want an empty non-nil list", got)
	}
	if n := subscribe(t, s, "issue:42", "bob", "alice", "carol"); n != 3 {
		t.Fatalf("Subscribe added %d, want 3", n)
	}
	if n := subscribe(t, s, "issue:42", "alice", "dave"); n != 1 {
		t.Fatalf("Subscribe of one old and one new added %d, want 1", n)
	}
	subscribe(t, s, "org/acme", "alice")
	if n := subscribe(t, s, "org/acme"); n != 0 {
		t.Fatalf("Subscribe of nobody added %d", n)
	}
	if got, want := subscribers(t, s, "issue:42"), []string{"alice", "bob", "carol", "dave"}; !slices.Equal(got, want) {
		t.Fatalf("subscribers = %q, want %q (byte order)", got, want)
	}
	if got, want := userTopics(t, s, "alice"), []string{"issue:42", "org/acme"}; !slices.Equal(got, want) {
		t.Fatalf("alice's topics = %q, want %q", got, want)
	}
	n, err := s.Unsubscribe(ctx, "issue:42", []string{"bob", "nobody"})
	if err != nil || n != 1 {
		t.Fatalf("Unsubscribe = %d, %v; want 1 removed", n, err)
	}
	if got, want := subscribers(t, s, "issue:42"), []string{"alice", "carol", "dave"}; !slices.Equal(got, want) {
		t.Fatalf("subscribers after unsubscribe = %q, want %q", got, want)
	}
	n, err = s.DeleteTopic(ctx, "issue:42")
	if err != nil || n != 3 {
		t.Fatalf("DeleteTopic = %d, %v; want 3 removed", n, err)
	}
	if got := subscribers(t, s, "issue:42"); len(got) != 0 {
		t.Fatalf("subscribers of a deleted topic = %q", got)
	}
	if got, want := userTopics(t, s, "alice"), []string{"org/acme"}; !slices.Equal(got, want) {
		t.Fatalf("alice's topics after the delete = %q, want %q: other topics stay", got, want)
	}
	if n, err := s.DeleteTopic(ctx, "issue:42"); err != nil || n != 0 {
		t.Fatalf("DeleteTopic again = %d, %v; want 0", n, err)
	}
}

func testTopicsPaging(t *testing.T, s herald.Store) {
	var all []string
	for i := range 25 {
		all = append(all, fmt.Sprintf("user-%02d", i))
	}
	// Upper and lower case and a multi-byte id: pages are in byte order in every store.
	all = append(all, "Zed", "zoë", "Ω")
	subscribe(t, s, "t", all...)
	slices.Sort(all)
	for _, limit := range []int{1, 7, 28, 100} {
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > len(all)+1 {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			page, err := s.TopicSubscribers(context.Background(), "t", after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(page))
			}
			got = append(got, page...)
			if len(page) < limit {
				break
			}
			after = page[len(page)-1]
		}
		if !slices.Equal(got, all) {
			t.Fatalf("limit %d: pages = %q, want %q", limit, got, all)
		}
	}
}

func topicDraft(topic, data string, exclude ...string) herald.Draft {
	return herald.Draft{Topic: topic, Exclude: exclude, Type: "comment", Data: json.RawMessage(data)}
}

// testTopicPublish: a topic draft makes one notification per subscriber but the excluded, in
// each user's own stream (after what they had), saying its topic wherever it is read.
func testTopicPublish(t *testing.T, s herald.Store) {
	ctx := context.Background()
	first := one(t, s, uni("t", `{}`, "alice"))
	subscribe(t, s, "issue:42", "carol", "bob", "alice")
	subscribe(t, s, "issue:43", "dave")
	rs, err := s.Append(ctx, scope, []herald.Draft{topicDraft("issue:42", `{"n":1}`, "bob"), uni("t", `{}`, "erin"), topicDraft("nobody", `{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 {
		t.Fatalf("%d receipts for 3 drafts", len(rs))
	}
	got := rs[0].Notifications
	if rs[0].Recipients != 2 || !slices.Equal(users(got), []string{"alice", "carol"}) {
		t.Fatalf("topic receipt: recipients %d, users %q; want 2, alice and carol (bob excluded)", rs[0].Recipients, users(got))
	}
	for _, n := range got {
		if n.Topic != "issue:42" || n.Type != "comment" || !sameJSON(n.Data, json.RawMessage(`{"n":1}`)) || n.ID == 0 {
			t.Fatalf("topic notification %s", show(n))
		}
	}
	if got[0].Seq != first.Seq+1 || got[1].Seq != 1 {
		t.Fatalf("seqs %v: each subscriber's notification goes on in their own stream", seqs(got))
	}
	if rs[1].Notifications[0].Topic != "" || rs[1].Recipients != 0 {
		t.Fatalf("a named draft has topic %q, recipients %d", rs[1].Notifications[0].Topic, rs[1].Recipients)
	}
	if len(rs[2].Notifications) != 0 || rs[2].Recipients != 0 {
		t.Fatalf("a topic without subscribers reached %d", rs[2].Recipients)
	}
	for _, u := range []string{"bob", "dave"} {
		if ns := streamAll(t, s, u); len(ns) != 0 {
			t.Fatalf("%s received %d notifications", u, len(ns))
		}
	}
	st := streamAll(t, s, "carol")
	if len(st) != 1 || st[0].Topic != "issue:42" {
		t.Fatalf("carol's stream: %v", st)
	}
	if n := get(t, s, "alice", got[0].ID); n.Topic != "issue:42" {
		t.Fatalf("Get: topic %q", n.Topic)
	}
	in := inboxAll(t, s, "alice", herald.InboxQuery{Limit: 10})
	if len(in) != 2 || in[0].Topic != "issue:42" || in[1].Topic != "" {
		t.Fatalf("alice's inbox: %v", in)
	}
	page, err := s.Feed(ctx, "carol", herald.Cursor{}, 10)
	if err != nil || len(page.User) != 1 || page.User[0].Topic != "issue:42" {
		t.Fatalf("carol's feed: %v, %v", page.User, err)
	}
}

// testTopicIdempotency: a retried topic publish returns how many it reached the first time and
// creates nothing, however the subscribers changed; the same key for another topic or another
// exclusion is a conflict.
func testTopicIdempotency(t *testing.T, s herald.Store) {
	ctx := context.Background()
	subscribe(t, s, "issue:42", "alice", "bob", "carol")
	d := keyed(topicDraft("issue:42", `{}`, "carol"), "k1")
	rs := appendOK(t, s, scope, d)
	if rs[0].Recipients != 2 || rs[0].Replayed {
		t.Fatalf("first publish: %+v", rs[0])
	}
	subscribe(t, s, "issue:42", "dave")
	for _, drafts := range [][]herald.Draft{{d}, {d, d}} {
		again, err := s.Append(ctx, scope, drafts)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range again {
			if !r.Replayed || r.Recipients != 2 || r.Notifications != nil {
				t.Fatalf("retry: replayed %v, recipients %d, %d notifications; want a replay of 2", r.Replayed, r.Recipients, len(r.Notifications))
			}
		}
	}
	if ns := streamAll(t, s, "dave"); len(ns) != 0 {
		t.Fatalf("a retry reached dave, who subscribed after the publish")
	}
	if ns := streamAll(t, s, "alice"); len(ns) != 1 {
		t.Fatalf("alice has %d notifications after retries, want 1", len(ns))
	}
	// Within one request, the second use of a fresh key replays the first.
	rs = appendOK(t, s, scope, keyed(topicDraft("issue:42", `{}`), "k2"), keyed(topicDraft("issue:42", `{}`), "k2"))
	if rs[0].Replayed || rs[0].Recipients != 4 || !rs[1].Replayed || rs[1].Recipients != 4 {
		t.Fatalf("same key twice in a request: %+v / %+v", rs[0].Recipients, rs[1].Recipients)
	}
	for name, other := range map[string]herald.Draft{
		"other exclusion": keyed(topicDraft("issue:42", `{}`), "k1"),
		"other topic":     keyed(topicDraft("issue:43", `{}`, "carol"), "k1"),
		"named instead":   keyed(uni("comment", `{}`, "alice", "bob"), "k1"),
	} {
		_, err := s.Append(ctx, scope, []herald.Draft{other})
		if herald.ErrorCode(err) != herald.ECONFLICT {
			t.Fatalf("%s with a used key: %v, want a conflict", name, err)
		}
	}
}

// testTopicConcurrentSubscribe: subscriptions made in bulk while a topic is published are either
// wholly in a publish or wholly out of it, and every recipient's stream stays gapless.
func testTopicConcurrentSubscribe(t *testing.T, s herald.Store) {
	const batches, size = 20, 25
	done := make(chan error, 1)
	go func() {
		for b := range batches {
			us := make([]string, size)
			for i := range us {
				us[i] = fmt.Sprintf("b%02d-u%02d", b, i)
			}
			if _, err := s.Subscribe(context.Background(), "hot", us, herald.TopicLimits{}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var reached []int
	for finished := false; !finished; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			finished = true
		default:
		}
		rs := appendOK(t, s, scope, topicDraft("hot", `{}`))
		per := map[string]int{}
		for _, n := range rs[0].Notifications {
			per[n.User[:3]]++
		}
		for b, n := range per {
			if n != size {
				t.Fatalf("batch %s: %d of its %d subscribers reached: a bulk subscribe was split by a publish", b, n, size)
			}
		}
		reached = append(reached, rs[0].Recipients)
	}
	if last := reached[len(reached)-1]; last != batches*size {
		t.Fatalf("the publish after every subscribe reached %d, want %d", last, batches*size)
	}
	if !slices.IsSorted(reached) {
		t.Fatalf("publishes reached %v: later ones must reach at least as many", reached)
	}
	for _, u := range []string{"b00-u00", "b19-u24"} {
		ns := streamAll(t, s, u)
		if !slices.Equal(seqs(ns), seqRange(1, uint64(len(ns)))) {
			t.Fatalf("%s's stream seqs %v, want 1..%d", u, seqs(ns), len(ns))
		}
	}
}
