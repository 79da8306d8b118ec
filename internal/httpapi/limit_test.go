package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
)

// answer is one publish answer as a client sees it.
type answer struct {
	status     int
	code, msg  string
	retryAfter string
}

// post sends body to h as a publisher would.
func post(t *testing.T, h http.Handler, path, body string) answer {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var got struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Errorf("answer %q is not JSON: %v", rec.Body.Bytes(), err) // Errorf: post also runs on other goroutines
	}
	return answer{rec.Code, got.Error.Code, got.Error.Message, rec.Header().Get("Retry-After")}
}

func handler(t *testing.T, opts Options) http.Handler {
	t.Helper()
	opts.Auth, opts.NoPark = anyPublisher{}, true
	h, err := New(opts).Handler()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// batchOf is a batch body of one notification per list of users; "*" is a broadcast.
func batchOf(lists ...string) string {
	items := make([]string, len(lists))
	for i, l := range lists {
		if l == "*" {
			items[i] = `{"broadcast":true}`
			continue
		}
		items[i] = `{"to":["` + strings.ReplaceAll(l, ",", `","`) + `"]}`
	}
	return `{"notifications":[` + strings.Join(items, ",") + `]}`
}

// TestRequestRecipientLimit: the users one request names, all its notifications together, are
// bounded (a broadcast counts one); a request over the limit gets 413 naming the limit and its
// flag, stores nothing, and is refused while it is decoded: the rest of the body is not read,
// so what follows the name that crosses the limit, even malformed JSON, does not matter.
func TestRequestRecipientLimit(t *testing.T) {
	tests := []struct {
		name, path, body string
		status           int
	}{
		{"one notification at the limit", "/v1/notifications", `{"to":["a","b","c"]}`, 201},
		{"a batch at the limit", "/v1/notifications/batch", batchOf("a,b,c", "d,e"), 201},
		{"a batch over the limit", "/v1/notifications/batch", batchOf("a,b,c", "d,e,f"), 413},
		{"many small notifications over the limit", "/v1/notifications/batch", batchOf("a", "b", "c", "d", "e", "f"), 413},
		{"duplicates count as named", "/v1/notifications/batch", batchOf("a,a,a", "a,a,a"), 413},
		{"broadcasts count one each", "/v1/notifications/batch", batchOf("*", "*", "*", "*", "*"), 201},
		{"broadcasts over the limit", "/v1/notifications/batch", batchOf("a,b", "*", "*", "*", "*"), 413},
		{"refused before the rest is read", "/v1/notifications/batch", `{"notifications":[{"to":["a","b","c"]},{"to":["d","e","f"]},{"to":[!!! not JSON`, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &draftStore{}
			h := handler(t, Options{Store: store, MaxRecipients: 3, MaxBatch: 10, MaxRequestRecipients: 5})
			got := post(t, h, tt.path, tt.body)
			if got.status != tt.status {
				t.Fatalf("got %+v, want %d", got, tt.status)
			}
			if tt.status == 201 {
				return
			}
			if got.code != herald.ETOOLARGE || !strings.Contains(got.msg, "5") || !strings.Contains(got.msg, "--max-request-recipients") {
				t.Errorf("got %+v, want too_large naming the limit 5 and --max-request-recipients", got)
			}
			if len(store.drafts) > 0 {
				t.Errorf("stored %d drafts", len(store.drafts))
			}
		})
	}
}

// TestPublishRateCountsNotifications: the rate limit counts the notifications a request creates
// (one per user, one per broadcast), not requests; Retry-After is the time until the bucket holds
// what this request needs; a request larger than the burst, which no wait would let through, gets
// 413 naming --publish-burst rather than a 429 to retry for ever. The steps run in order against
// one publisher's bucket, at a rate slow enough (one token every 100 s) that refilling during the
// test does not count.
func TestPublishRateCountsNotifications(t *testing.T) {
	h := handler(t, Options{Store: &draftStore{}, Limiter: NewLimiter(0.01, 10)})
	steps := []struct {
		name, path, body string
		status           int
		retryAfter       string
	}{
		{"over the burst with a full bucket", "/v1/notifications/batch", batchOf("a,b,c,d,e,f", "g,h,i,j,k"), 413, ""},
		{"six users of ten tokens", "/v1/notifications/batch", batchOf("a,b,c", "d,e,f"), 201, ""},
		{"duplicates are one notification", "/v1/notifications", `{"to":["a","a","b"]}`, 201, ""},
		{"two short: 200 s", "/v1/notifications", `{"to":["a","b","c","d"]}`, 429, "200"},
		{"two broadcasts are two", "/v1/notifications/batch", batchOf("*", "*"), 201, ""},
		{"empty: refused before reading, until the next token", "/v1/notifications", `{"broadcast":true}`, 429, "100"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			got := post(t, h, st.path, st.body)
			if got.status != st.status || got.retryAfter != st.retryAfter {
				t.Fatalf("got %+v, want %d with Retry-After %q", got, st.status, st.retryAfter)
			}
			if st.status == 413 && !strings.Contains(got.msg, "--publish-burst") {
				t.Errorf("message %q does not name --publish-burst", got.msg)
			}
		})
	}
}

// gatedStore holds the first Append until it is opened, telling when that Append has begun; the
// others pass.
type gatedStore struct {
	draftStore
	mu      sync.Mutex
	calls   int
	entered chan struct{}
	open    chan struct{}
}

func (s *gatedStore) Append(ctx context.Context, scope string, drafts []herald.Draft) ([]herald.Receipt, error) {
	s.mu.Lock()
	s.calls++
	first := s.calls == 1
	s.mu.Unlock()
	if first {
		close(s.entered)
		<-s.open
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draftStore.Append(ctx, scope, drafts)
}

// TestPublishInflightLimit: while a request's commit is under way, the notifications it holds
// count against the server's in-flight limit: a second request that does not fit is refused with
// 503 and Retry-After once its short wait is over, naming --max-publish-inflight, and stores
// nothing; one that fits goes through (the limit weighs notifications, not requests); and once
// the first is answered the room is back.
func TestPublishInflightLimit(t *testing.T) {
	store := &gatedStore{entered: make(chan struct{}), open: make(chan struct{})}
	h := handler(t, Options{Store: store, Inflight: NewInflight(10, 20*time.Millisecond)})
	big := func(prefix string, n int) string {
		users := make([]string, n)
		for i := range users {
			users[i] = fmt.Sprintf("%s%d", prefix, i)
		}
		return batchOf(strings.Join(users[:n/2], ","), strings.Join(users[n/2:], ","))
	}
	first := make(chan answer, 1)
	go func() { first <- post(t, h, "/v1/notifications/batch", big("a", 8)) }()
	select {
	case <-store.entered:
	case got := <-first:
		t.Fatalf("the first request was answered before its commit: %+v", got)
	}

	got := post(t, h, "/v1/notifications/batch", big("b", 4))
	if got.status != 503 || got.code != herald.EUNAVAILABLE || got.retryAfter == "" || !strings.Contains(got.msg, "--max-publish-inflight") {
		t.Errorf("a request that does not fit: %+v, want 503 unavailable with Retry-After naming --max-publish-inflight", got)
	}
	if got := post(t, h, "/v1/notifications", `{"to":["c0","c1"]}`); got.status != 201 {
		t.Errorf("a request that fits: %+v, want 201", got)
	}

	close(store.open)
	if got := <-first; got.status != 201 {
		t.Fatalf("the first request: %+v", got)
	}
	if got := post(t, h, "/v1/notifications/batch", big("b", 4)); got.status != 201 {
		t.Errorf("the refused request again, once the first is answered: %+v", got)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if want := 8 + 2 + 4; countUsers(store.drafts) != want {
		t.Errorf("stored %d recipients, want %d", countUsers(store.drafts), want)
	}
}

func countUsers(drafts []herald.Draft) int {
	n := 0
	for _, d := range drafts {
		n += len(d.To)
	}
	return n
}

// TestInflightReleases: the room a request held is given back when it is released, once, and a
// request larger than the whole limit is capped to it rather than refused for ever.
func TestInflightReleases(t *testing.T) {
	f := NewInflight(10, time.Millisecond)
	release, ok := f.Acquire(context.Background(), 25)
	if !ok || f.Held() != 10 {
		t.Fatalf("Acquire(25) of 10: ok %v, held %d", ok, f.Held())
	}
	if _, ok := f.Acquire(context.Background(), 1); ok {
		t.Fatal("acquired beyond the limit")
	}
	release()
	release()
	if f.Held() != 0 {
		t.Fatalf("held %d after release", f.Held())
	}
	if r, ok := f.Acquire(context.Background(), 10); !ok {
		t.Fatal("the room was not given back")
	} else {
		r()
	}
}
