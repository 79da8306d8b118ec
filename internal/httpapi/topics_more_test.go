package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/sqlite"
)

// sqliteAPI serves the API with opts over a real SQLite store in a temporary directory, with
// dev-mode identities (the subscriber from ?user=, any publisher).
func sqliteAPI(t *testing.T, opts Options) (http.Handler, *sqlite.Store) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "h.db"), sqlite.Options{Sync: sqlite.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	opts.Store, opts.Auth, opts.NoPark = st, devAuth{}, true
	h, err := New(opts).Handler()
	if err != nil {
		t.Fatal(err)
	}
	return h, st
}

// expectAnswer checks a response's status and, when code is not empty, its error code.
func expectAnswer(t *testing.T, rec interface {
	Result() *http.Response
}, status int, code string) {
	t.Helper()
	res := rec.Result()
	var body struct {
		Error struct{ Code, Message string }
	}
	json.NewDecoder(res.Body).Decode(&body)
	if res.StatusCode != status || body.Error.Code != code {
		t.Fatalf("answer %d %q (%s), want %d %q", res.StatusCode, body.Error.Code, body.Error.Message, status, code)
	}
}

// TestSelfService: a subscriber leaves any topic, joins only those under an open prefix, and
// acts only on itself, whatever the path or query says.
func TestSelfService(t *testing.T) {
	h, st := sqliteAPI(t, Options{SelfSubscribe: []string{"public/", "status:"}})
	ctx := context.Background()
	if _, err := st.Subscribe(ctx, "issue:42", []string{"alice", "bob"}, herald.TopicLimits{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"join an open topic", "PUT", "/v1/me/topics/public%2Fnews?user=alice", 204, ""},
		{"join it again", "PUT", "/v1/me/topics/public%2Fnews?user=alice", 204, ""},
		{"join under another open prefix", "PUT", "/v1/me/topics/status:api?user=alice", 204, ""},
		{"join a closed topic", "PUT", "/v1/me/topics/issue:7?user=alice", 403, herald.EFORBIDDEN},
		{"a prefix is a prefix, not a part", "PUT", "/v1/me/topics/x-public%2Fnews?user=alice", 403, herald.EFORBIDDEN},
		{"leave a topic a publisher chose", "DELETE", "/v1/me/topics/issue:42?user=alice", 204, ""},
		{"leave one not joined", "DELETE", "/v1/me/topics/issue:9?user=alice", 204, ""},
		{"a bad topic", "PUT", "/v1/me/topics/a%20b?user=alice", 400, herald.EINVALID},
		{"a topic too long", "DELETE", "/v1/me/topics/" + strings.Repeat("t", herald.MaxTopicLen+1) + "?user=alice", 400, herald.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectAnswer(t, call(h, tt.method, tt.path, "", ""), tt.status, tt.code)
		})
	}
	rec := call(h, "GET", "/v1/topics?user=alice", "", "")
	if got, want := strings.TrimSpace(rec.Body.String()), `{"topics":["public/news","status:api"]}`; rec.Code != 200 || got != want {
		t.Fatalf("alice's topics: %d %s, want %s", rec.Code, got, want)
	}
	// bob was not touched by alice's leaving issue:42.
	if us, _ := st.TopicSubscribers(ctx, "issue:42", "", 10); len(us) != 1 || us[0] != "bob" {
		t.Fatalf("issue:42's subscribers %q, want bob alone", us)
	}
}

// TestSelfServiceAuth: the routes of a subscriber need a subscriber; none is closed by default.
func TestSelfServiceAuth(t *testing.T) {
	h, err := New(Options{Store: newTopicStore(t), Auth: anyPublisher{}, NoPark: true, SelfSubscribe: []string{"p/"}}).Handler()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"PUT", "DELETE"} {
		if rec := call(h, m, "/v1/me/topics/p%2Fx", "", ""); rec.Code != 401 && rec.Code != 403 {
			t.Fatalf("%s without a subscriber: %d, want 401 or 403", m, rec.Code)
		}
	}
	h2, _ := sqliteAPI(t, Options{})
	expectAnswer(t, call(h2, "PUT", "/v1/me/topics/public%2Fnews?user=alice", "", ""), 403, herald.EFORBIDDEN)
}

// TestTopicLimitsHTTP: a subscription past a limit is 409, one by one, in bulk and for oneself.
func TestTopicLimitsHTTP(t *testing.T) {
	h, _ := sqliteAPI(t, Options{TopicLimits: herald.TopicLimits{MaxSubscribers: 2, MaxTopics: 1}, SelfSubscribe: []string{"open/"}})
	expectAnswer(t, call(h, "POST", "/v1/topics/t1/subscribers", "application/json", `{"users":["a","b","c"]}`), 409, herald.ECONFLICT)
	expectAnswer(t, call(h, "POST", "/v1/topics/t1/subscribers", "application/json", `{"users":["a","b"]}`), 200, "")
	expectAnswer(t, call(h, "PUT", "/v1/topics/t1/subscribers/c", "", ""), 409, herald.ECONFLICT)
	expectAnswer(t, call(h, "PUT", "/v1/topics/t1/subscribers/a", "", ""), 204, "") // already in
	expectAnswer(t, call(h, "PUT", "/v1/topics/t2/subscribers/a", "", ""), 409, herald.ECONFLICT)
	expectAnswer(t, call(h, "PUT", "/v1/me/topics/open%2Fx?user=a", "", ""), 409, herald.ECONFLICT)
	expectAnswer(t, call(h, "PUT", "/v1/me/topics/open%2Fx?user=z", "", ""), 204, "")
}

// TestTopicPublishCharged: a topic publish counts its subscribers against the request limit,
// the rate limit's burst and the in-flight limit, not as one notification.
func TestTopicPublishCharged(t *testing.T) {
	subscribeN := func(t *testing.T, st *sqlite.Store, topic string, n int) {
		t.Helper()
		var us []string
		for i := range n {
			us = append(us, fmt.Sprintf("u%d", i))
		}
		if _, err := st.Subscribe(context.Background(), topic, us, herald.TopicLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		opts   Options
		body   string
		status int
		code   string
	}{
		{"within every limit", Options{MaxRecipients: 5, MaxRequestRecipients: 10}, `{"topic":"big"}`, 201, ""},
		{"over the request limit", Options{MaxRecipients: 5, MaxRequestRecipients: 9}, `{"topic":"big"}`, 413, herald.ETOOLARGE},
		{"a batch over it together", Options{MaxRecipients: 5, MaxRequestRecipients: 15},
			`{"notifications":[{"topic":"big"},{"topic":"big","exclude":["u1"]}]}`, 413, herald.ETOOLARGE},
		{"names and a topic together", Options{MaxRecipients: 5, MaxRequestRecipients: 13},
			`{"notifications":[{"topic":"big"},{"to":["x","y","z","w"]}]}`, 413, herald.ETOOLARGE},
		{"over the rate limit's burst", Options{Limiter: NewLimiter(1, 9)}, `{"topic":"big"}`, 413, herald.ETOOLARGE},
		{"within the burst", Options{Limiter: NewLimiter(1, 10)}, `{"topic":"big"}`, 201, ""},
		{"an empty topic costs one", Options{Limiter: NewLimiter(1, 1)}, `{"topic":"empty"}`, 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, st := sqliteAPI(t, tt.opts)
			subscribeN(t, st, "big", 10)
			path := "/v1/notifications"
			if strings.Contains(tt.body, `"notifications"`) {
				path += "/batch"
			}
			expectAnswer(t, call(h, "POST", path, "application/json", tt.body), tt.status, tt.code)
		})
	}
	t.Run("the in-flight limit holds the recipients", func(t *testing.T) {
		inflight := NewInflight(15, 0)
		h, st := sqliteAPI(t, Options{Inflight: inflight})
		subscribeN(t, st, "big", 10)
		release, ok := inflight.Acquire(context.Background(), 6) // another request's work
		if !ok {
			t.Fatal("no room")
		}
		defer release()
		// 9 free: a publish to one user fits, one to the topic's 10 does not.
		expectAnswer(t, call(h, "POST", "/v1/notifications", "application/json", `{"to":["x"]}`), 201, "")
		expectAnswer(t, call(h, "POST", "/v1/notifications", "application/json", `{"topic":"big"}`), 503, herald.EUNAVAILABLE)
	})
	t.Run("the rate limit takes the recipients", func(t *testing.T) {
		h, st := sqliteAPI(t, Options{Limiter: NewLimiter(0.001, 15)})
		subscribeN(t, st, "big", 10)
		expectAnswer(t, call(h, "POST", "/v1/notifications", "application/json", `{"topic":"big"}`), 201, "")
		// 5 tokens left: a second publish to the 10 is refused for the rate, not let through as one.
		expectAnswer(t, call(h, "POST", "/v1/notifications", "application/json", `{"topic":"big"}`), 429, herald.ERATELIMITED)
	})
}

// TestInboxTopicFilter: ?topic= selects a topic's notifications; a bad or repeated one is 400.
func TestInboxTopicFilter(t *testing.T) {
	h, st := sqliteAPI(t, Options{})
	if _, err := st.Subscribe(context.Background(), "org/acme", []string{"alice"}, herald.TopicLimits{}); err != nil {
		t.Fatal(err)
	}
	expectAnswer(t, call(h, "POST", "/v1/notifications", "application/json", `{"topic":"org/acme","title":"from the topic"}`), 201, "")
	expectAnswer(t, call(h, "POST", "/v1/notifications", "application/json", `{"to":["alice"],"title":"direct"}`), 201, "")
	expectAnswer(t, call(h, "POST", "/v1/notifications", "application/json", `{"broadcast":true,"title":"everyone"}`), 201, "")
	inbox := func(query string) []string {
		t.Helper()
		rec := call(h, "GET", "/v1/notifications?user=alice&"+query, "", "")
		var page struct {
			Notifications []struct{ Title, Topic string }
		}
		if err := json.NewDecoder(rec.Body).Decode(&page); err != nil || rec.Code != 200 {
			t.Fatalf("inbox %s: %d %v", query, rec.Code, err)
		}
		var out []string
		for _, n := range page.Notifications {
			out = append(out, n.Title+"@"+n.Topic)
		}
		return out
	}
	if got := inbox("topic=org%2Facme"); len(got) != 1 || got[0] != "from the topic@org/acme" {
		t.Fatalf("?topic=org/acme: %q", got)
	}
	if got := inbox(""); len(got) != 3 {
		t.Fatalf("unfiltered: %q, want all three", got)
	}
	for _, q := range []string{"topic=", "topic=a%20b", "topic=a&topic=b"} {
		t.Run(q, func(t *testing.T) {
			expectAnswer(t, call(h, "GET", "/v1/notifications?user=alice&"+q, "", ""), 400, herald.EINVALID)
		})
	}
}
