package storetest

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"

	"github.com/heraldhq/herald"
)

// Preferences: what users muted (herald.Preferences), applied by Append to what it creates and
// by Inbox and Counts to broadcasts.

// prefsTests are the conformance cases of preferences; Run runs them with the others.
var prefsTests = []struct {
	name string
	fn   func(t *testing.T, s herald.Store)
}{
	{"Preferences", testPreferences},
	{"MutedType", testMutedType},
	{"MutedPrefix", testMutedPrefix},
	{"MutedTopic", testMutedTopic},
	{"MutedCritical", testMutedCritical},
	{"MutedIdempotency", testMutedIdempotency},
	{"MutedBroadcastInbox", testMutedBroadcastInbox},
	{"MutedConcurrentChange", testMutedConcurrentChange},
}

func mute(channel, kind, value string) herald.Mute {
	return herald.Mute{Channel: channel, Kind: kind, Value: value}
}

func inApp(kind, value string) herald.Mute { return mute(herald.ChannelInApp, kind, value) }

func setPrefs(t testing.TB, s herald.Store, user string, ms ...herald.Mute) {
	t.Helper()
	if err := s.SetPreferences(context.Background(), user, herald.Preferences{Mutes: ms}); err != nil {
		t.Fatalf("SetPreferences(%q): %v", user, err)
	}
}

func prefsOf(t *testing.T, s herald.Store, user string) herald.Preferences {
	t.Helper()
	p, err := s.Preferences(t.Context(), user)
	if err != nil {
		t.Fatalf("Preferences(%q): %v", user, err)
	}
	return p
}

func appendAll(t *testing.T, s herald.Store, drafts ...herald.Draft) []herald.Receipt {
	t.Helper()
	rs, err := s.Append(t.Context(), scope, drafts)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if len(rs) != len(drafts) {
		t.Fatalf("%d receipts for %d drafts", len(rs), len(drafts))
	}
	return rs
}

// testPreferences: a user without preferences has none; SetPreferences replaces them all,
// normalized (sorted, without repeats); users do not see each other's.
func testPreferences(t *testing.T, s herald.Store) {
	if p := prefsOf(t, s, "alice"); len(p.Mutes) != 0 {
		t.Fatalf("a new user has rules: %v", p.Mutes)
	}
	setPrefs(t, s, "alice", inApp(herald.MuteTopic, "issue:42"), mute(herald.ChannelPush, herald.MuteType, "digest"),
		inApp(herald.MutePrefix, "marketing."), inApp(herald.MuteType, "digest"), inApp(herald.MutePrefix, "marketing."))
	want := []herald.Mute{inApp(herald.MutePrefix, "marketing."), inApp(herald.MuteTopic, "issue:42"), inApp(herald.MuteType, "digest"),
		mute(herald.ChannelPush, herald.MuteType, "digest")}
	if got := prefsOf(t, s, "alice").Mutes; !slices.Equal(got, want) {
		t.Fatalf("alice's rules %v, want %v", got, want)
	}
	if p := prefsOf(t, s, "bob"); len(p.Mutes) != 0 {
		t.Fatalf("bob has alice's rules: %v", p.Mutes)
	}
	setPrefs(t, s, "alice", mute(herald.ChannelPush, herald.MuteTopic, "issue:1"))
	if got := prefsOf(t, s, "alice").Mutes; !slices.Equal(got, []herald.Mute{mute(herald.ChannelPush, herald.MuteTopic, "issue:1")}) {
		t.Fatalf("after a replace, alice's rules are %v", got)
	}
	setPrefs(t, s, "alice")
	if p := prefsOf(t, s, "alice"); len(p.Mutes) != 0 {
		t.Fatalf("after clearing, alice's rules are %v", p.Mutes)
	}
}

// testMutedType: a draft of a type a recipient muted in the app creates nothing for them (and
// says so in Muted); the others get theirs, and so do they for other types. A mute of the push
// channel does not hold back the in-app notification.
func testMutedType(t *testing.T, s herald.Store) {
	setPrefs(t, s, "alice", inApp(herald.MuteType, "comment"))
	setPrefs(t, s, "carol", mute(herald.ChannelPush, herald.MuteType, "comment"))
	rs := appendAll(t, s, uni("comment", `{"n":1}`, "alice", "bob", "carol"), uni("mention", `{}`, "alice"), uni("comment", `{}`, "alice"))
	if got := users(rs[0].Notifications); !slices.Equal(got, []string{"bob", "carol"}) || rs[0].Muted != 1 {
		t.Fatalf("comment to alice, bob, carol reached %q, muted %d; want bob and carol, 1 muted", got, rs[0].Muted)
	}
	if got := users(rs[1].Notifications); !slices.Equal(got, []string{"alice"}) || rs[1].Muted != 0 {
		t.Fatalf("mention to alice reached %q, muted %d", got, rs[1].Muted)
	}
	if len(rs[2].Notifications) != 0 || rs[2].Muted != 1 {
		t.Fatalf("comment to alice alone reached %q, muted %d", users(rs[2].Notifications), rs[2].Muted)
	}
	st := streamAll(t, s, "alice")
	if len(st) != 1 || st[0].Type != "mention" || st[0].Seq != 1 {
		t.Fatalf("alice's stream: %v; want only the mention, as seq 1 (a muted draft takes no sequence number)", st)
	}
	if c := counts(t, s, "alice"); c.Unread != 1 {
		t.Fatalf("alice's unread %d, want 1", c.Unread)
	}
	for _, u := range []string{"bob", "carol"} {
		if st := streamAll(t, s, u); len(st) != 1 || st[0].Type != "comment" {
			t.Fatalf("%s's stream: %v", u, st)
		}
	}
}

// testMutedPrefix: a prefix mutes the types it starts, not those it merely contains.
func testMutedPrefix(t *testing.T, s herald.Store) {
	setPrefs(t, s, "alice", inApp(herald.MutePrefix, "marketing."))
	tests := []struct {
		typ   string
		muted bool
	}{
		{"marketing.weekly", true},
		{"marketing.", true},
		{"marketing.promo.spring", true},
		{"marketing", false},
		{"marketingx", false},
		{"news.marketing.weekly", false},
		{"Marketing.weekly", false},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			rs := appendAll(t, s, uni(tt.typ, `{}`, "alice", "bob"))
			want := []string{"alice", "bob"}
			if tt.muted {
				want = want[1:]
			}
			if got := users(rs[0].Notifications); !slices.Equal(got, want) || (rs[0].Muted == 1) != tt.muted {
				t.Fatalf("%s reached %q, muted %d; want %q", tt.typ, got, rs[0].Muted, want)
			}
		})
	}
}

// testMutedTopic: a topic rule mutes the topic's publishes, and type and prefix rules hold for
// topic publishes too; excluded users are not counted as muted; a draft addressed by name is
// not a topic's, whatever its type.
func testMutedTopic(t *testing.T, s herald.Store) {
	subscribe(t, s, "issue:42", "alice", "bob", "carol", "dave", "erin")
	setPrefs(t, s, "alice", inApp(herald.MuteTopic, "issue:42"))
	setPrefs(t, s, "bob", inApp(herald.MutePrefix, "comm"))
	setPrefs(t, s, "carol", inApp(herald.MuteTopic, "issue:43"), mute(herald.ChannelPush, herald.MuteTopic, "issue:42"))
	setPrefs(t, s, "erin", inApp(herald.MuteTopic, "issue:42"))
	rs := appendAll(t, s, topicDraft("issue:42", `{}`, "erin"), topicDraft("issue:42", `{}`), uni("issue", `{}`, "alice"))
	if got := users(rs[0].Notifications); !slices.Equal(got, []string{"carol", "dave"}) || rs[0].Recipients != 2 || rs[0].Muted != 2 {
		t.Fatalf("topic publish excluding erin reached %q (recipients %d), muted %d; want carol and dave, 2 muted (alice, bob)",
			got, rs[0].Recipients, rs[0].Muted)
	}
	if rs[1].Recipients != 2 || rs[1].Muted != 3 {
		t.Fatalf("topic publish reached %d, muted %d; want 2, 3 muted (alice, bob, erin)", rs[1].Recipients, rs[1].Muted)
	}
	if got := users(rs[2].Notifications); !slices.Equal(got, []string{"alice"}) {
		t.Fatalf("a draft by name to alice reached %q: a topic rule is about topic publishes", got)
	}
	// A topic draft of a type nobody muted, to a topic nobody muted, reaches everyone.
	rs = appendAll(t, s, herald.Draft{Topic: "issue:42", Type: "closed", Data: json.RawMessage(`{}`)})
	if rs[0].Recipients != 3 || rs[0].Muted != 2 {
		t.Fatalf("closed reached %d, muted %d; want 3 and 2 (alice's and erin's topic rules)", rs[0].Recipients, rs[0].Muted)
	}
}

// testMutedCritical: a critical draft reaches every recipient whatever they muted, by name, by
// topic or as a broadcast, and says it is critical wherever it is read.
func testMutedCritical(t *testing.T, s herald.Store) {
	subscribe(t, s, "account:1", "alice", "bob")
	setPrefs(t, s, "alice", inApp(herald.MuteType, "security"), inApp(herald.MuteTopic, "account:1"))
	setPrefs(t, s, "bob", inApp(herald.MutePrefix, "sec"))
	critical := func(d herald.Draft) herald.Draft { d.Critical = true; return d }
	rs := appendAll(t, s,
		critical(uni("security", `{}`, "alice", "bob")),
		critical(herald.Draft{Topic: "account:1", Type: "security", Data: json.RawMessage(`{}`)}),
		critical(bcast("security", `{}`)),
		uni("security", `{}`, "alice", "bob"))
	if got := users(rs[0].Notifications); !slices.Equal(got, []string{"alice", "bob"}) || rs[0].Muted != 0 {
		t.Fatalf("critical by name reached %q, muted %d", got, rs[0].Muted)
	}
	if rs[1].Recipients != 2 || rs[1].Muted != 0 {
		t.Fatalf("critical topic publish reached %d, muted %d", rs[1].Recipients, rs[1].Muted)
	}
	if len(rs[3].Notifications) != 0 || rs[3].Muted != 2 {
		t.Fatalf("the same draft, not critical, reached %q, muted %d", users(rs[3].Notifications), rs[3].Muted)
	}
	for _, rc := range rs[:3] {
		for _, n := range rc.Notifications {
			if !n.Critical {
				t.Fatalf("receipt of a critical draft: %s is not critical", show(n))
			}
		}
	}
	st := streamAll(t, s, "alice")
	if len(st) != 2 || !st[0].Critical || !st[1].Critical {
		t.Fatalf("alice's stream: %v", st)
	}
	if b := streamAll(t, s, herald.BroadcastStream); len(b) != 1 || !b[0].Critical {
		t.Fatalf("broadcast stream: %v", b)
	}
	// A resume reads it critical too (Feed is its own statement, and may answer from memory).
	page, err := s.Feed(context.Background(), "alice", herald.Cursor{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.User) != 2 || !page.User[0].Critical || !page.User[1].Critical || len(page.Broadcast) != 1 || !page.Broadcast[0].Critical {
		t.Fatalf("alice's feed: %v %v", page.User, page.Broadcast)
	}
	in := inboxAll(t, s, "alice", herald.InboxQuery{Limit: 10})
	if len(in) != 3 || !in[0].Critical || in[0].User != herald.BroadcastStream {
		t.Fatalf("alice's inbox: %v; want the critical broadcast first, then her two", in)
	}
	if n := get(t, s, "alice", st[0].ID); !n.Critical {
		t.Fatal("Get: not critical")
	}
	if c := counts(t, s, "alice"); c.Unread != 3 {
		t.Fatalf("alice's unread %d, want 3", c.Unread)
	}
	// Not critical: the flag is false where it is read.
	n := one(t, s, uni("other", `{}`, "alice"))
	if n.Critical || get(t, s, "alice", n.ID).Critical {
		t.Fatal("a draft that is not critical reads as critical")
	}
}

// testMutedIdempotency: a retried draft replays what the first reached and how many it did
// not, however the preferences changed since, and creates nothing.
func testMutedIdempotency(t *testing.T, s herald.Store) {
	ctx := context.Background()
	subscribe(t, s, "issue:7", "alice", "bob", "carol")
	setPrefs(t, s, "alice", inApp(herald.MuteType, "comment"))
	drafts := []herald.Draft{
		keyed(uni("comment", `{}`, "alice", "bob"), "k-named"),
		keyed(topicDraft("issue:7", `{}`), "k-topic"),
		keyed(uni("comment", `{}`, "alice"), "k-all-muted"),
	}
	first := appendAll(t, s, drafts...)
	if first[0].Muted != 1 || len(first[0].Notifications) != 1 || first[1].Muted != 1 || first[1].Recipients != 2 ||
		first[2].Muted != 1 || len(first[2].Notifications) != 0 {
		t.Fatalf("first receipts: %+v", first)
	}
	heads := headsOf(t, s, "bob")
	setPrefs(t, s, "alice")
	setPrefs(t, s, "bob", inApp(herald.MuteType, "comment"))
	for attempt := range 2 {
		again, err := s.Append(ctx, scope, drafts)
		if err != nil {
			t.Fatal(err)
		}
		for i, rc := range again {
			if drafts[i].Topic != "" {
				// A topic's replay tells only how many it reached (herald.Receipt).
				first[i].Notifications = nil
			}
			if !rc.Replayed || rc.Muted != first[i].Muted || rc.Recipients != first[i].Recipients ||
				!slices.Equal(ids(rc.Notifications), ids(first[i].Notifications)) || !slices.Equal(users(rc.Notifications), users(first[i].Notifications)) {
				t.Fatalf("attempt %d, draft %d: replay %+v, first %+v", attempt, i, rc, first[i])
			}
		}
	}
	if h := headsOf(t, s, "bob"); h != heads {
		t.Fatalf("a replay created notifications: bob's heads %v, were %v", h, heads)
	}
	if len(streamAll(t, s, "alice")) != 0 {
		t.Fatal("a replay created alice's notification once she unmuted")
	}
	// The same key with a critical flag is another request.
	d := drafts[0]
	d.Critical = true
	_, err := s.Append(ctx, scope, []herald.Draft{d})
	wantCode(t, err, herald.ECONFLICT)
	// A key used twice in one request: the second replays the first, muted count included.
	rs := appendAll(t, s, keyed(uni("comment", `{}`, "bob", "carol"), "k-dup"), keyed(uni("comment", `{}`, "bob", "carol"), "k-dup"))
	if rs[0].Muted != 1 || rs[1].Muted != 1 || !rs[1].Replayed || !slices.Equal(ids(rs[1].Notifications), ids(rs[0].Notifications)) {
		t.Fatalf("a key twice in a request: %+v", rs)
	}
}

// testMutedBroadcastInbox: a broadcast has one row for everyone, so a user who muted its type
// does not find it in their inbox nor in their counts, while others do; the rule works on the
// broadcasts already stored, and undoing it brings them back. The broadcast stream itself is
// not filtered: streams leave the broadcast out for each user as they deliver it.
func testMutedBroadcastInbox(t *testing.T, s herald.Store) {
	promo := one(t, s, bcast("promo.spring", `{}`))
	release := one(t, s, bcast("release", `{}`))
	own := one(t, s, uni("promo.spring", `{}`, "alice"))
	setPrefs(t, s, "alice", inApp(herald.MutePrefix, "promo."), mute(herald.ChannelPush, herald.MuteType, "release"),
		inApp(herald.MuteTopic, "release"))
	setPrefs(t, s, "bob", inApp(herald.MuteType, "release"))

	inbox := func(user string, q herald.InboxQuery) []int64 {
		q.Limit = 1
		return ids(inboxAll(t, s, user, q))
	}
	tests := []struct {
		user    string
		q       herald.InboxQuery
		want    []int64
		unread  int64
		comment string
	}{
		{"alice", herald.InboxQuery{}, []int64{own.ID, release.ID}, 2, "her own stays: it was created before the mute"},
		{"alice", herald.InboxQuery{UnreadOnly: true}, []int64{own.ID, release.ID}, 2, "unread only"},
		{"alice", herald.InboxQuery{Types: []string{"promo.spring"}}, []int64{own.ID}, 2, "by type"},
		{"bob", herald.InboxQuery{}, []int64{promo.ID}, 1, "bob muted the release"},
		{"carol", herald.InboxQuery{}, []int64{release.ID, promo.ID}, 2, "carol muted nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.user+" "+tt.comment, func(t *testing.T) {
			if got := inbox(tt.user, tt.q); !slices.Equal(got, tt.want) {
				t.Fatalf("inbox %v, want %v", got, tt.want)
			}
			if c := counts(t, s, tt.user); c.Unread != tt.unread || c.Unseen != tt.unread {
				t.Fatalf("counts %+v, want %d unread and unseen", c, tt.unread)
			}
		})
	}
	// Archived view: a muted broadcast is in neither view.
	setArchived(t, s, "alice", promo.ID, true)
	if got := inbox("alice", herald.InboxQuery{Archived: true}); len(got) != 0 {
		t.Fatalf("alice's archive shows %v", got)
	}
	if b := streamAll(t, s, herald.BroadcastStream); len(b) != 2 {
		t.Fatalf("the broadcast stream holds %d, want 2", len(b))
	}
	setPrefs(t, s, "alice")
	if got := inbox("alice", herald.InboxQuery{Archived: true}); !slices.Equal(got, []int64{promo.ID}) {
		t.Fatalf("unmuted, alice's archive shows %v", got)
	}
	if got := inbox("alice", herald.InboxQuery{}); !slices.Equal(got, []int64{own.ID, release.ID}) {
		t.Fatalf("unmuted, alice's inbox shows %v", got)
	}
}

// testMutedConcurrentChange: preferences replaced while publishes commit are wholly before or
// after each publish, never half applied. alice's rules switch between muting "a" and muting
// "b"; every batch of one "a" and one "b" to her reaches her with exactly one of them. bob's
// switch between two rules that both mute "c" (by type, then by prefix and topic): a publish
// never sees him with neither.
func testMutedConcurrentChange(t *testing.T, s herald.Store) {
	ctx := context.Background()
	subscribe(t, s, "issue:9", "bob", "carol")
	const publishes = 60
	// The first rules are in place before the first publish.
	setPrefs(t, s, "alice", inApp(herald.MuteType, "a"))
	setPrefs(t, s, "bob", inApp(herald.MuteType, "c"))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var changeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			a, b := []herald.Mute{inApp(herald.MuteType, "a")}, []herald.Mute{inApp(herald.MuteType, "c")}
			if i%2 == 1 {
				a, b = []herald.Mute{inApp(herald.MuteType, "b")}, []herald.Mute{inApp(herald.MutePrefix, "c"), inApp(herald.MuteTopic, "issue:9")}
			}
			if err := s.SetPreferences(ctx, "alice", herald.Preferences{Mutes: a}); err != nil {
				changeErr = err
				return
			}
			if err := s.SetPreferences(ctx, "bob", herald.Preferences{Mutes: b}); err != nil {
				changeErr = err
				return
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
		if changeErr != nil {
			t.Errorf("SetPreferences: %v", changeErr)
		}
	}()
	for i := range publishes {
		rs, err := s.Append(ctx, scope, []herald.Draft{uni("a", `{}`, "alice"), uni("b", `{}`, "alice"),
			uni("c", `{}`, "bob", "carol"), {Topic: "issue:9", Type: "c", Data: json.RawMessage(`{}`)}})
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if m := rs[0].Muted + rs[1].Muted; m != 1 {
			t.Fatalf("publish %d: alice muted in %d of \"a\" and \"b\" (%d, %d); want exactly 1", i, m, rs[0].Muted, rs[1].Muted)
		}
		if got := users(rs[2].Notifications); !slices.Equal(got, []string{"carol"}) {
			t.Fatalf("publish %d: \"c\" by name reached %q, want carol only", i, got)
		}
		if got := users(rs[3].Notifications); !slices.Equal(got, []string{"carol"}) || rs[3].Muted != 1 {
			t.Fatalf("publish %d: \"c\" to the topic reached %q, muted %d; want carol only", i, got, rs[3].Muted)
		}
	}
	if n := len(streamAll(t, s, "alice")); n != publishes {
		t.Fatalf("alice has %d notifications after %d publishes, want one each", n, publishes)
	}
}
