package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/sqlite"
)

// topicStore is a real SQLite store that records the drafts it is given, to check what a
// request asked of it.
type topicStore struct {
	*sqlite.Store
	drafts []herald.Draft
}

func newTopicStore(t *testing.T) *topicStore {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "h.db"), sqlite.Options{Sync: sqlite.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &topicStore{Store: st}
}

func (s *topicStore) Append(ctx context.Context, scope string, drafts []herald.Draft) ([]herald.Receipt, error) {
	s.drafts = append(s.drafts, drafts...)
	return s.Store.Append(ctx, scope, drafts)
}

// subscribers returns topic's subscribers, in byte order.
func (s *topicStore) subscribers(t *testing.T, topic string) []string {
	t.Helper()
	us, err := s.TopicSubscribers(context.Background(), topic, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return us
}

func topicAPI(t *testing.T, store *topicStore, auth Authenticator) http.Handler {
	t.Helper()
	h, err := New(Options{Store: store, Auth: auth, NoPark: true}).Handler()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestTopicSubscriptions: a publisher subscribes and unsubscribes users one by one and in bulk,
// pages through the subscribers and deletes the topic; a topic with a / works percent-encoded.
func TestTopicSubscriptions(t *testing.T) {
	store := newTopicStore(t)
	h := topicAPI(t, store, anyPublisher{})
	expect := func(rec *httptest.ResponseRecorder, status int, body string) {
		t.Helper()
		if got := strings.TrimSpace(rec.Body.String()); rec.Code != status || got != body {
			t.Fatalf("answer %d %s, want %d %s", rec.Code, got, status, body)
		}
	}
	expect(call(h, "PUT", "/v1/topics/issue:42/subscribers/carol", "", ""), 204, "")
	expect(call(h, "PUT", "/v1/topics/issue:42/subscribers/carol", "", ""), 204, "") // again: harmless
	expect(call(h, "POST", "/v1/topics/issue:42/subscribers", "application/json", `{"users":["alice","bob","carol"]}`), 200, `{"subscribed":2}`)
	expect(call(h, "GET", "/v1/topics/issue:42/subscribers?limit=2", "", ""), 200, `{"subscribers":["alice","bob"],"next_after":"bob"}`)
	expect(call(h, "GET", "/v1/topics/issue:42/subscribers?limit=2&after=bob", "", ""), 200, `{"subscribers":["carol"],"next_after":null}`)
	expect(call(h, "DELETE", "/v1/topics/issue:42/subscribers/bob", "", ""), 204, "")
	expect(call(h, "DELETE", "/v1/topics/issue:42/subscribers/bob", "", ""), 204, "") // not subscribed: the same
	expect(call(h, "GET", "/v1/topics/issue:42/subscribers", "", ""), 200, `{"subscribers":["alice","carol"],"next_after":null}`)
	expect(call(h, "PUT", "/v1/topics/org%2Facme/subscribers/alice", "", ""), 204, "")
	if us := store.subscribers(t, "org/acme"); !slices.Equal(us, []string{"alice"}) {
		t.Fatalf("org%%2Facme did not subscribe alice to org/acme: %q", us)
	}
	expect(call(h, "DELETE", "/v1/topics/issue:42", "", ""), 204, "")
	expect(call(h, "GET", "/v1/topics/issue:42/subscribers", "", ""), 200, `{"subscribers":[],"next_after":null}`)
}

// TestTopicErrors: a bad topic, user, body or limit is a 400 (or 413, 415) naming the field, and
// nothing reaches the store.
func TestTopicErrors(t *testing.T) {
	many, _ := json.Marshal(map[string][]string{"users": slices.Repeat([]string{"u"}, maxBulkSubscribe+1)})
	tests := []struct {
		method, path, body string
		status             int
		message            string
	}{
		{"PUT", "/v1/topics/a%20b/subscribers/alice", "", 400, "topic: "},
		{"PUT", "/v1/topics/issue:42/subscribers/a%00b", "", 400, "user: "},
		{"DELETE", "/v1/topics/issue:42/subscribers/a%0Ab", "", 400, "user: "},
		{"DELETE", "/v1/topics/" + strings.Repeat("x", 256), "", 400, "topic: "},
		{"GET", "/v1/topics/issue:42/subscribers?limit=0", "", 400, "limit"},
		{"GET", "/v1/topics/issue:42/subscribers?limit=1001", "", 400, "limit"},
		{"GET", "/v1/topics/issue:42/subscribers?after=a%00", "", 400, "after: "},
		{"POST", "/v1/topics/issue:42/subscribers", `{"users":["alice","a\u0000"]}`, 400, "users[1]: "},
		{"POST", "/v1/topics/issue:42/subscribers", `{}`, 400, `"users"`},
		{"POST", "/v1/topics/issue:42/subscribers", `{"users":["a"],"user":"b"}`, 400, "user"},
		{"POST", "/v1/topics/issue:42/subscribers", string(many), 413, "10000"},
		{"POST", "/v1/topics/a%20b/subscribers", `{"users":["alice"]}`, 400, "topic: "},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			store := newTopicStore(t)
			h := topicAPI(t, store, anyPublisher{})
			rec := call(h, tt.method, tt.path, "application/json", tt.body)
			var answer struct {
				Error struct{ Code, Message string }
			}
			json.Unmarshal(rec.Body.Bytes(), &answer)
			if rec.Code != tt.status || !strings.Contains(answer.Error.Message, tt.message) {
				t.Errorf("answer %d %s, want %d naming %q", rec.Code, rec.Body.String(), tt.status, tt.message)
			}
			if us := store.subscribers(t, "issue:42"); len(us) != 0 {
				t.Errorf("the store changed: %q", us)
			}
		})
	}
	rec := call(topicAPI(t, newTopicStore(t), anyPublisher{}), "POST", "/v1/topics/t/subscribers", "text/plain", `{"users":[]}`)
	if rec.Code != 415 {
		t.Errorf("text/plain: %d, want 415", rec.Code)
	}
}

// TestTopicOwnership: a subscriber's credential manages no topic and publishes to none, and
// GET /v1/topics lists only the caller's own topics.
func TestTopicOwnership(t *testing.T) {
	store := newTopicStore(t)
	store.Subscribe(context.Background(), "issue:42", []string{"alice", "bob"}, herald.TopicLimits{})
	store.Subscribe(context.Background(), "issue:7", []string{"bob"}, herald.TopicLimits{})
	store.Subscribe(context.Background(), "team/x", []string{"alice"}, herald.TopicLimits{})
	h := topicAPI(t, store, asAlice{})
	for _, r := range []struct{ method, path, body string }{
		{"PUT", "/v1/topics/issue:7/subscribers/alice", ""},
		{"DELETE", "/v1/topics/issue:42/subscribers/bob", ""},
		{"POST", "/v1/topics/issue:7/subscribers", `{"users":["alice"]}`},
		{"GET", "/v1/topics/issue:42/subscribers", ""},
		{"DELETE", "/v1/topics/issue:42", ""},
		{"POST", "/v1/notifications", `{"topic":"issue:42","data":1}`},
	} {
		if rec := call(h, r.method, r.path, "application/json", r.body); rec.Code != 403 {
			t.Errorf("%s %s as a subscriber: %d %s, want 403", r.method, r.path, rec.Code, rec.Body)
		}
	}
	if len(store.subscribers(t, "issue:42")) != 2 || len(store.subscribers(t, "issue:7")) != 1 || len(store.drafts) != 0 {
		t.Errorf("a subscriber changed the store: %q %q %v", store.subscribers(t, "issue:42"), store.subscribers(t, "issue:7"), store.drafts)
	}
	rec := call(h, "GET", "/v1/topics", "", "")
	if got := strings.TrimSpace(rec.Body.String()); rec.Code != 200 || got != `{"topics":["issue:42","team/x"]}` {
		t.Errorf("GET /v1/topics: %d %s", rec.Code, got)
	}
	if rec := call(topicAPI(t, store, anyPublisher{}), "GET", "/v1/topics", "", ""); rec.Code != 401 {
		t.Errorf("GET /v1/topics without a subscriber: %d, want 401", rec.Code)
	}
}

// TestPublishTopic: a publish addresses exactly one of to, broadcast and topic, exclude goes only
// with a topic, and a topic publish answers how many it reached without listing them; the
// answers of to and broadcast are as they were.
func TestPublishTopic(t *testing.T) {
	tests := []struct {
		path, body string
		status     int
		answer     string // the 201's body, or a part of the error's message
	}{
		{"/v1/notifications", `{"topic":"issue:42","exclude":["bob","bob"],"data":1}`, 201, `{"notifications":[],"recipients":2}`},
		{"/v1/notifications", `{"topic":"issue:42","data":1}`, 201, `{"notifications":[],"recipients":3}`},
		{"/v1/notifications", `{"topic":"nobody","data":1}`, 201, `{"notifications":[],"recipients":0}`},
		{"/v1/notifications", `{"to":["x","y"],"data":1}`, 201, `{"notifications":[{"id":"1","user":"x"},{"id":"2","user":"y"}]}`},
		{"/v1/notifications", `{"broadcast":true,"data":1}`, 201, `{"notifications":[{"id":"1"}]}`},
		{"/v1/notifications/batch", `{"notifications":[{"to":["x"]},{"topic":"issue:42","exclude":["alice"]},{"topic":"issue:42"}]}`, 201,
			`{"notifications":[{"id":"1","user":"x"}],"recipients":5}`},
		{"/v1/notifications", `{"topic":"issue:42","to":["x"]}`, 400, "exactly one of"},
		{"/v1/notifications", `{"topic":"issue:42","broadcast":true}`, 400, "exactly one of"},
		{"/v1/notifications", `{"to":["x"],"broadcast":true}`, 400, "exactly one of"},
		{"/v1/notifications", `{"data":1}`, 400, `"topic" is required`},
		{"/v1/notifications", `{"to":["x"],"exclude":["y"]}`, 400, `"exclude" may only be given with "topic"`},
		{"/v1/notifications", `{"broadcast":true,"exclude":[]}`, 400, `"exclude" may only be given with "topic"`},
		{"/v1/notifications", `{"topic":"a b"}`, 400, "topic: "},
		{"/v1/notifications", `{"topic":""}`, 400, "topic: "},
		{"/v1/notifications", `{"topic":"issue:42","exclude":["ok","a\u0000"]}`, 400, "exclude[1]: "},
		{"/v1/notifications", `{"topic":"issue:42","exclude":"bob"}`, 400, "exclude"},
		{"/v1/notifications/batch", `{"notifications":[{"to":["x"]},{"topic":"issue:42","to":["y"]}]}`, 400, "notifications[1]: give exactly one of"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			store := newTopicStore(t)
			store.Subscribe(context.Background(), "issue:42", []string{"alice", "bob", "carol"}, herald.TopicLimits{})
			rec := call(topicAPI(t, store, anyPublisher{}), "POST", tt.path, "application/json", tt.body)
			if rec.Code != tt.status {
				t.Fatalf("answer %d %s, want %d", rec.Code, rec.Body, tt.status)
			}
			if tt.status == 201 {
				if got := strings.TrimSpace(rec.Body.String()); got != tt.answer {
					t.Errorf("answer %s, want %s", got, tt.answer)
				}
				return
			}
			var answer struct {
				Error struct{ Code, Message string }
			}
			json.Unmarshal(rec.Body.Bytes(), &answer)
			if !strings.Contains(answer.Error.Message, tt.answer) {
				t.Errorf("answer %s, want it to name %q", rec.Body, tt.answer)
			}
			if len(store.drafts) != 0 {
				t.Errorf("drafts reached the store: %v", store.drafts)
			}
		})
	}
	// The draft says the topic and whom it excludes, once each.
	store := newTopicStore(t)
	call(topicAPI(t, store, anyPublisher{}), "POST", "/v1/notifications", "application/json", `{"topic":"issue:42","exclude":["bob","amy","bob"]}`)
	if len(store.drafts) != 1 || store.drafts[0].Topic != "issue:42" || !slices.Equal(store.drafts[0].Exclude, []string{"bob", "amy"}) || store.drafts[0].To != nil {
		t.Errorf("drafts %+v", store.drafts)
	}
}
