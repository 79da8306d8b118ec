package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
)

// stateStore is a Store of alice's state: she owns the notifications in owned, and every call
// is recorded. It answers nothing else.
type stateStore struct {
	herald.Store
	owned  map[int64]bool
	mark   int64 // the seen mark
	newest int64 // the newest id of alice's feed
	counts herald.Counts
	calls  []string
	query  herald.InboxQuery
	page   herald.InboxPage
}

func (s *stateStore) Identity() herald.Identity {
	return herald.Identity{ID: "0123456789abcdef", Epoch: "1"}
}

func (s *stateStore) MarkSeen(_ context.Context, user string, upTo int64) (int64, bool, error) {
	s.calls = append(s.calls, fmt.Sprintf("MarkSeen %s %d", user, upTo))
	target := s.newest
	if upTo > 0 && upTo < target {
		target = upTo
	}
	if target <= s.mark {
		return s.mark, false, nil
	}
	s.mark = target
	return target, true, nil
}

func (s *stateStore) SetArchived(_ context.Context, user string, id int64, archived bool) error {
	s.calls = append(s.calls, fmt.Sprintf("SetArchived %s %d %v", user, id, archived))
	if !s.owned[id] {
		return herald.Errorf(herald.ENOTFOUND, "notification %d not found", id)
	}
	return nil
}

func (s *stateStore) ArchiveRead(_ context.Context, user string) (int64, error) {
	s.calls = append(s.calls, "ArchiveRead "+user)
	return int64(len(s.owned)), nil
}

func (s *stateStore) Counts(_ context.Context, user string) (herald.Counts, error) {
	return s.counts, nil
}

func (s *stateStore) Inbox(_ context.Context, user string, q herald.InboxQuery) (herald.InboxPage, error) {
	s.query = q
	return s.page, nil
}

// asAlice lets every request read alice's feed.
type asAlice struct{}

func (asAlice) Subscriber(*http.Request) (herald.Subscriber, error) {
	return herald.Subscriber{User: "alice"}, nil
}
func (asAlice) Publisher(*http.Request) (herald.Publisher, error) {
	return herald.Publisher{}, herald.Errorf(herald.EFORBIDDEN, "subscribers do not publish")
}

// stateAPI serves the API over store, and returns the state changes it reports.
func stateAPI(t *testing.T, store *stateStore) (http.Handler, *[]herald.StateChange) {
	t.Helper()
	var changes []herald.StateChange
	a := New(Options{Store: store, Auth: asAlice{}, NoPark: true, OnState: func(sc herald.StateChange) { changes = append(changes, sc) }})
	h, err := a.Handler()
	if err != nil {
		t.Fatal(err)
	}
	return h, &changes
}

// call sends a request to h; a body is sent as JSON unless contentType says otherwise.
func call(h http.Handler, method, path, contentType, body string) *httptest.ResponseRecorder {
	var req *http.Request
	if body == "" {
		req = httptest.NewRequest(method, path, nil)
	} else {
		req = httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func errorCode(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var answer struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
		t.Fatalf("answer %q is not JSON: %v", rec.Body.Bytes(), err)
	}
	return answer.Error.Code
}

// TestMarkSeen: POST /v1/notifications/seen takes up_to as an id string, or nothing for
// everything up to now; answers the mark and the counts; and tells the other streams only when
// the mark moved.
func TestMarkSeen(t *testing.T) {
	const path = "/v1/notifications/seen"
	tests := []struct {
		name, contentType, body string
		mark                    int64 // before
		status                  int
		code                    string
		call                    string // the store call, "" for none
		want                    string // the answer, when 200
		event                   bool
	}{
		{"no body: up to now", "", "", 0, 200, "", "MarkSeen alice 0", `{"seen_up_to":"50","unread":7,"unseen":2}`, true},
		{"up to an id", "application/json", `{"up_to":"41"}`, 0, 200, "", "MarkSeen alice 41", `{"seen_up_to":"41","unread":7,"unseen":2}`, true},
		{"charset parameter", "application/json; charset=utf-8", `{"up_to":"41"}`, 0, 200, "", "MarkSeen alice 41", `{"seen_up_to":"41","unread":7,"unseen":2}`, true},
		{"empty object", "application/json", `{}`, 0, 200, "", "MarkSeen alice 0", `{"seen_up_to":"50","unread":7,"unseen":2}`, true},
		{"null up_to", "application/json", `{"up_to":null}`, 0, 200, "", "MarkSeen alice 0", `{"seen_up_to":"50","unread":7,"unseen":2}`, true},
		{"nothing new", "application/json", `{"up_to":"41"}`, 45, 200, "", "MarkSeen alice 41", `{"seen_up_to":"45","unread":7,"unseen":2}`, false},
		{"nothing in the feed", "", "", 0, 200, "", "MarkSeen alice 0", `{"seen_up_to":null,"unread":7,"unseen":2}`, false},
		{"a number", "application/json", `{"up_to":41}`, 0, 400, herald.EINVALID, "", "", false},
		{"zero", "application/json", `{"up_to":"0"}`, 0, 400, herald.EINVALID, "", "", false},
		{"negative", "application/json", `{"up_to":"-4"}`, 0, 400, herald.EINVALID, "", "", false},
		{"a page position", "application/json", `{"up_to":"41.1"}`, 0, 400, herald.EINVALID, "", "", false},
		{"past int64", "application/json", `{"up_to":"9223372036854775808"}`, 0, 400, herald.EINVALID, "", "", false},
		{"unknown field", "application/json", `{"upto":"41"}`, 0, 400, herald.EINVALID, "", "", false},
		{"name given twice", "application/json", `{"up_to":"1","up_to":"2"}`, 0, 400, herald.EINVALID, "", "", false},
		{"not JSON", "application/json", `up_to=41`, 0, 400, herald.EINVALID, "", "", false},
		{"form body", "application/x-www-form-urlencoded", `up_to=41`, 0, 415, herald.EUNSUPPORTED, "", "", false},
		{"too large", "application/json", `{"up_to":"` + strings.Repeat("1", 2000) + `"}`, 0, 413, herald.ETOOLARGE, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &stateStore{mark: tt.mark, newest: 50, counts: herald.Counts{Unread: 7, Unseen: 2}}
			if tt.name == "nothing in the feed" {
				store.newest = 0
			}
			h, changes := stateAPI(t, store)
			rec := call(h, "POST", path, tt.contentType, tt.body)
			if rec.Code != tt.status {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body.Bytes(), tt.status)
			}
			if tt.status != 200 {
				if code := errorCode(t, rec); code != tt.code {
					t.Fatalf("code %q, want %q", code, tt.code)
				}
			} else if got := strings.TrimSpace(rec.Body.String()); got != tt.want {
				t.Fatalf("answer %s, want %s", got, tt.want)
			}
			if want := []string{tt.call}; tt.call == "" && len(store.calls) > 0 || tt.call != "" && !slices.Equal(store.calls, want) {
				t.Fatalf("store calls %q, want %q", store.calls, tt.call)
			}
			if tt.event != (len(*changes) == 1) || len(*changes) > 1 {
				t.Fatalf("state changes %+v, want an event: %v", *changes, tt.event)
			}
			if tt.event {
				sc := (*changes)[0]
				if sc.User != "alice" || sc.Kind != herald.StateSeen || sc.SeenUpTo != store.mark || sc.Counts != store.counts {
					t.Fatalf("state change %+v", sc)
				}
			}
		})
	}
}

// TestArchiveHandlers: archive and unarchive answer 204 and tell the other streams; another
// user's notification is a 404 that tells nobody; archive-read counts and tells only when it
// archived something.
func TestArchiveHandlers(t *testing.T) {
	tests := []struct {
		name, method, path string
		status             int
		code               string
		call               string
		event              *herald.StateChange
	}{
		{"archive", "POST", "/v1/notifications/12/archive", 204, "", "SetArchived alice 12 true",
			&herald.StateChange{User: "alice", Kind: herald.StateArchived, IDs: []int64{12}, On: true}},
		{"unarchive", "DELETE", "/v1/notifications/12/archive", 204, "", "SetArchived alice 12 false",
			&herald.StateChange{User: "alice", Kind: herald.StateArchived, IDs: []int64{12}}},
		{"not hers", "POST", "/v1/notifications/13/archive", 404, herald.ENOTFOUND, "SetArchived alice 13 true", nil},
		{"not an id", "POST", "/v1/notifications/x1/archive", 400, herald.EINVALID, "", nil},
		{"id 0", "DELETE", "/v1/notifications/0/archive", 400, herald.EINVALID, "", nil},
		{"archive read", "POST", "/v1/notifications/archive-read", 200, "", "ArchiveRead alice",
			&herald.StateChange{User: "alice", Kind: herald.StateArchived, All: true, On: true}},
		{"GET seen", "GET", "/v1/notifications/seen", 405, "method_not_allowed", "", nil},
		{"GET archive-read", "GET", "/v1/notifications/archive-read", 405, "method_not_allowed", "", nil},
		{"DELETE seen", "DELETE", "/v1/notifications/seen", 405, "method_not_allowed", "", nil},
		{"PUT archive", "PUT", "/v1/notifications/12/archive", 405, "method_not_allowed", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &stateStore{owned: map[int64]bool{12: true}, counts: herald.Counts{Unread: 3, Unseen: 1}}
			h, changes := stateAPI(t, store)
			rec := call(h, tt.method, tt.path, "", "")
			if rec.Code != tt.status {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body.Bytes(), tt.status)
			}
			if tt.code != "" {
				if code := errorCode(t, rec); code != tt.code {
					t.Fatalf("code %q, want %q", code, tt.code)
				}
			}
			if tt.status == 405 && rec.Header().Get("Allow") == "" {
				t.Fatal("a 405 without Allow")
			}
			if tt.call == "" && len(store.calls) > 0 || tt.call != "" && !slices.Equal(store.calls, []string{tt.call}) {
				t.Fatalf("store calls %q, want %q", store.calls, tt.call)
			}
			if tt.event == nil {
				if len(*changes) > 0 {
					t.Fatalf("state changes %+v, want none", *changes)
				}
				return
			}
			want := *tt.event
			want.Counts = store.counts
			if len(*changes) != 1 || fmt.Sprintf("%+v", (*changes)[0]) != fmt.Sprintf("%+v", want) {
				t.Fatalf("state changes %+v, want %+v", *changes, want)
			}
		})
	}
	t.Run("archive read: the count, and no event for nothing", func(t *testing.T) {
		store := &stateStore{owned: map[int64]bool{}}
		h, changes := stateAPI(t, store)
		rec := call(h, "POST", "/v1/notifications/archive-read", "", "")
		if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"updated":0}` || len(*changes) != 0 {
			t.Fatalf("%d %s, changes %+v; want 200 {\"updated\":0} and no event", rec.Code, rec.Body.Bytes(), *changes)
		}
		store.owned = map[int64]bool{1: true, 2: true}
		rec = call(h, "POST", "/v1/notifications/archive-read", "", "")
		if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"updated":2}` || len(*changes) != 1 {
			t.Fatalf("%d %s, changes %+v; want 200 {\"updated\":2} and an event", rec.Code, rec.Body.Bytes(), *changes)
		}
	})
}

func TestUnreadCountAnswer(t *testing.T) {
	h, _ := stateAPI(t, &stateStore{counts: herald.Counts{Unread: 5, Unseen: 3}})
	rec := call(h, "GET", "/v1/notifications/unread-count", "", "")
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"unread":5,"unseen":3}` {
		t.Fatalf("%d %s", rec.Code, rec.Body.Bytes())
	}
}

// TestInboxState: ?archived= selects the view, and every item says whether the caller has
// seen, read and archived it.
func TestInboxState(t *testing.T) {
	at := time.Date(2026, 12, 1, 2, 3, 4, 5000, time.UTC)
	store := &stateStore{page: herald.InboxPage{Notifications: []herald.Notification{
		{ID: 9, Type: "t", Data: json.RawMessage(`{}`), CreatedAt: at, Seen: true, ReadAt: at, ArchivedAt: at},
		{ID: 8, Type: "t", Data: json.RawMessage(`{}`), CreatedAt: at, User: "alice"},
	}}}
	h, _ := stateAPI(t, store)
	for _, tt := range []struct {
		query    string
		status   int
		archived bool
	}{
		{"", 200, false},
		{"?archived=true", 200, true},
		{"?archived=false", 200, false},
		{"?archived=1&unread=true", 200, true},
		{"?archived=maybe", 400, false},
	} {
		t.Run(tt.query, func(t *testing.T) {
			store.query = herald.InboxQuery{}
			rec := call(h, "GET", "/v1/notifications"+tt.query, "", "")
			if rec.Code != tt.status {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body.Bytes(), tt.status)
			}
			if tt.status == 200 && store.query.Archived != tt.archived {
				t.Fatalf("query %+v, want Archived %v", store.query, tt.archived)
			}
		})
	}
	rec := call(h, "GET", "/v1/notifications", "", "")
	want := `{"notifications":[` +
		`{"id":"9","type":"t","data":{},"created_at":"2026-12-01T02:03:04.000005Z","broadcast":true,"read":true,"read_at":"2026-12-01T02:03:04.000005Z","seen":true,"archived":true,"archived_at":"2026-12-01T02:03:04.000005Z"},` +
		`{"id":"8","type":"t","data":{},"created_at":"2026-12-01T02:03:04.000005Z","broadcast":false,"read":false,"read_at":null,"seen":false,"archived":false,"archived_at":null}` +
		`],"next_before":null}`
	if got := strings.TrimSpace(rec.Body.String()); got != want {
		t.Fatalf("inbox\n%s\nwant\n%s", got, want)
	}
}
