package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/store/sqlite"
)

// TestBadInput: every kind of bad request gets its documented status and a JSON error, and the
// server keeps serving.
func TestBadInput(t *testing.T) {
	s := startServer(t, func(c *config.Config) {
		c.MaxPayload = 1024
		c.MaxBody = 4096
		c.MaxBatchBody = 8192
		c.MaxRecipients = 3
		c.MaxBatch = 2
	})
	const js = "application/json"
	long := strings.Repeat("x", 300)
	tests := []struct {
		name, method, path, ctype, body string
		header                          map[string]string
		status                          int
		code                            string
	}{
		{"malformed JSON", "POST", "/v1/notifications", js, `{"to":["a"`, nil, 400, "invalid"},
		{"not an object", "POST", "/v1/notifications", js, `[1,2]`, nil, 400, "invalid"},
		{"empty body", "POST", "/v1/notifications", js, ``, nil, 400, "invalid"},
		{"trailing data", "POST", "/v1/notifications", js, `{"to":["a"]} {}`, nil, 400, "invalid"},
		{"wrong content type", "POST", "/v1/notifications", "text/plain", `{"to":["a"]}`, nil, 415, "unsupported_media_type"},
		{"no content type", "POST", "/v1/notifications", "", `{"to":["a"]}`, nil, 415, "unsupported_media_type"},
		{"unknown field", "POST", "/v1/notifications", js, `{"to":["a"],"colour":"red"}`, nil, 400, "invalid"},
		{"field name in another case", "POST", "/v1/notifications", js, `{"TO":["a"]}`, nil, 400, "invalid"},
		{"field name given twice", "POST", "/v1/notifications", js, `{"to":["b"],"to":["a"]}`, nil, 400, "invalid"},
		{"invalid UTF-8 in a user", "POST", "/v1/notifications", js, "{\"to\":[\"a\xffb\"]}", nil, 400, "invalid"},
		{"invalid UTF-8 in data", "POST", "/v1/notifications", js, "{\"to\":[\"a\"],\"data\":{\"t\":\"\xfe\"}}", nil, 400, "invalid"},
		{"lone surrogate in data", "POST", "/v1/notifications", js, `{"to":["a"],"data":"\ud800"}`, nil, 400, "invalid"},
		{"name twice in data", "POST", "/v1/notifications", js, `{"to":["a"],"data":{"k":1,"k":2}}`, nil, 400, "invalid"},
		{"batch field name in another case", "POST", "/v1/notifications/batch", js, `{"notifications":[{"to":["a"]},{"To":["a"]}]}`, nil, 400, "invalid"},
		{"batch name twice", "POST", "/v1/notifications/batch", js, `{"notifications":[{"to":["a"],"type":"x","type":"y"}]}`, nil, 400, "invalid"},
		{"batch invalid UTF-8", "POST", "/v1/notifications/batch", js, "{\"notifications\":[{\"to\":[\"a\"]},{\"to\":[\"a\xffb\"]}]}", nil, 400, "invalid"},
		{"no recipients", "POST", "/v1/notifications", js, `{"type":"x"}`, nil, 400, "invalid"},
		{"empty to", "POST", "/v1/notifications", js, `{"to":[]}`, nil, 400, "invalid"},
		{"to and broadcast", "POST", "/v1/notifications", js, `{"to":["a"],"broadcast":true}`, nil, 400, "invalid"},
		{"broadcast false", "POST", "/v1/notifications", js, `{"broadcast":false}`, nil, 400, "invalid"},
		{"to not a list", "POST", "/v1/notifications", js, `{"to":"alice"}`, nil, 400, "invalid"},
		{"empty user", "POST", "/v1/notifications", js, `{"to":[""]}`, nil, 400, "invalid"},
		{"control char in user", "POST", "/v1/notifications", js, `{"to":["a\u0000b"]}`, nil, 400, "invalid"},
		{"user too long", "POST", "/v1/notifications", js, `{"to":["` + long + `"]}`, nil, 400, "invalid"},
		{"bidi override in user", "POST", "/v1/notifications", js, `{"to":["a\u202eb"]}`, nil, 400, "invalid"},
		{"bidi isolate in user", "POST", "/v1/notifications", js, "{\"to\":[\"a\u2066b\"]}", nil, 400, "invalid"},
		{"zero-width joiner in user", "POST", "/v1/notifications", js, `{"to":["a\u200d"]}`, nil, 400, "invalid"},
		{"BOM in user", "POST", "/v1/notifications", js, `{"to":["\ufeffa"]}`, nil, 400, "invalid"},
		{"line separator in user", "POST", "/v1/notifications", js, `{"to":["a\u2028"]}`, nil, 400, "invalid"},
		{"soft hyphen in key", "POST", "/v1/notifications", js, `{"to":["a"],"key":"k\u00ad1"}`, nil, 400, "invalid"},
		{"RLM in key header", "POST", "/v1/notifications", js, `{"to":["a"]}`, map[string]string{"Idempotency-Key": "k\u200f1"}, 400, "invalid"},
		{"too many recipients", "POST", "/v1/notifications", js, `{"to":["a","b","c","d"]}`, nil, 413, "too_large"},
		{"invalid type", "POST", "/v1/notifications", js, `{"to":["a"],"type":"has space"}`, nil, 400, "invalid"},
		{"type with newline", "POST", "/v1/notifications", js, `{"to":["a"],"type":"x\ndata: evil"}`, nil, 400, "invalid"},
		{"reserved type", "POST", "/v1/notifications", js, `{"to":["a"],"type":"herald.missed"}`, nil, 400, "invalid"},
		{"reserved type in upper case", "POST", "/v1/notifications", js, `{"to":["a"],"type":"HERALD.expired"}`, nil, 400, "invalid"},
		{"reserved type capitalised in a batch", "POST", "/v1/notifications/batch", js, `{"notifications":[{"to":["a"]},{"to":["a"],"type":"Herald.read"}]}`, nil, 400, "invalid"},
		{"empty type", "POST", "/v1/notifications", js, `{"to":["a"],"type":""}`, nil, 400, "invalid"},
		{"payload too large", "POST", "/v1/notifications", js, `{"to":["a"],"data":"` + strings.Repeat("y", 1100) + `"}`, nil, 413, "too_large"},
		{"body too large", "POST", "/v1/notifications", js, `{"to":["a"],"data":"` + strings.Repeat("y", 5000) + `"}`, nil, 413, "too_large"},
		{"empty key", "POST", "/v1/notifications", js, `{"to":["a"],"key":""}`, nil, 400, "invalid"},
		{"key differs from header", "POST", "/v1/notifications", js, `{"to":["a"],"key":"k1"}`, map[string]string{"Idempotency-Key": "k2"}, 400, "invalid"},
		{"batch empty", "POST", "/v1/notifications/batch", js, `{"notifications":[]}`, nil, 400, "invalid"},
		{"batch missing", "POST", "/v1/notifications/batch", js, `{}`, nil, 400, "invalid"},
		{"batch too many", "POST", "/v1/notifications/batch", js, `{"notifications":[{"to":["a"]},{"to":["a"]},{"to":["a"]}]}`, nil, 413, "too_large"},
		{"batch bad item", "POST", "/v1/notifications/batch", js, `{"notifications":[{"to":["a"]},{"type":"x"}]}`, nil, 400, "invalid"},
		{"batch with header key", "POST", "/v1/notifications/batch", js, `{"notifications":[{"to":["a"]}]}`, map[string]string{"Idempotency-Key": "k"}, 400, "invalid"},
		{"stream without user", "GET", "/v1/stream", "", "", nil, 401, "unauthorized"},
		{"stream bad cursor", "GET", "/v1/stream?user=a", "", "", map[string]string{"Last-Event-ID": "abc"}, 400, "invalid"},
		{"stream bad query cursor", "GET", "/v1/stream?user=a&last_event_id=1.2.3.4", "", "", nil, 400, "invalid"},
		{"stream cursor with a bad epoch", "GET", "/v1/stream?user=a&last_event_id=1.2.XYZ", "", "", nil, 400, "invalid"},
		{"inbox before with a bad epoch", "GET", "/v1/notifications?user=a&before=5.XYZ", "", "", nil, 400, "invalid"},
		{"inbox before of another epoch", "GET", "/v1/notifications?user=a&before=5.0badc0de", "", "", nil, 409, "conflict"},
		{"stream cursor beyond int64", "GET", "/v1/stream?user=a&last_event_id=9223372036854775808.0", "", "", nil, 400, "invalid"},
		{"stream negative cursor", "GET", "/v1/stream?user=a&last_event_id=-1.0", "", "", nil, 400, "invalid"},
		{"stream bad type filter", "GET", "/v1/stream?user=a&types=ok,not%20ok", "", "", nil, 400, "invalid"},
		{"stream empty type filter", "GET", "/v1/stream?user=a&types=,", "", "", nil, 400, "invalid"},
		{"stream reserved type filter in upper case", "GET", "/v1/stream?user=a&types=order.shipped,HERALD.missed", "", "", nil, 400, "invalid"},
		{"stream dev user with a bidi override", "GET", "/v1/stream?user=a%E2%80%AEb", "", "", nil, 400, "invalid"},
		{"inbox dev user with a zero-width space", "GET", "/v1/notifications?user=a%E2%80%8B", "", "", nil, 400, "invalid"},
		{"unread count dev user with a paragraph separator", "GET", "/v1/notifications/unread-count?user=a%E2%80%A9", "", "", nil, 400, "invalid"},
		{"inbox bad limit", "GET", "/v1/notifications?user=a&limit=0", "", "", nil, 400, "invalid"},
		{"inbox huge limit", "GET", "/v1/notifications?user=a&limit=100000", "", "", nil, 400, "invalid"},
		{"inbox bad before", "GET", "/v1/notifications?user=a&before=x", "", "", nil, 400, "invalid"},
		{"inbox bad unread", "GET", "/v1/notifications?user=a&unread=maybe", "", "", nil, 400, "invalid"},
		{"get malformed id", "GET", "/v1/notifications/abc?user=a", "", "", nil, 400, "invalid"},
		{"get unknown id", "GET", "/v1/notifications/999999?user=a", "", "", nil, 404, "not_found"},
		{"read unknown id", "POST", "/v1/notifications/999999/read?user=a", "", "", nil, 404, "not_found"},
		{"unread unknown id", "DELETE", "/v1/notifications/999999/read?user=a", "", "", nil, 404, "not_found"},
		{"unknown path", "GET", "/v2/whatever", "", "", nil, 404, "not_found"},
		{"wrong method", "PUT", "/v1/notifications", "", "", nil, 405, "method_not_allowed"},
		{"GET on batch", "GET", "/v1/notifications/batch?user=a", "", "", nil, 405, "method_not_allowed"},
		{"DELETE on read-all", "DELETE", "/v1/notifications/read-all/read?user=a", "", "", nil, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Bounded: a stream that opens when it should have been refused would never end.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, tt.method, s.url+tt.path, strings.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var body struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("body %q is not JSON: %v", raw, err)
			}
			if resp.StatusCode != tt.status || body.Error.Code != tt.code || body.Error.Message == "" {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, raw, tt.status, tt.code)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	// Still healthy, still publishing, and nothing bad was stored.
	var health map[string]string
	if status := s.getJSON(t, "/healthz", &health); status != 200 || health["status"] != "ok" {
		t.Fatalf("healthz: %d %v", status, health)
	}
	for _, user := range []string{"a", "b", "a\uFFFDb"} { // "a\xffb" would have become "a\uFFFDb"
		var unread map[string]int
		s.getJSON(t, "/v1/notifications/unread-count?user="+url.QueryEscape(user), &unread)
		if unread["unread"] != 0 {
			t.Errorf("bad requests stored %d notifications for %q", unread["unread"], user)
		}
	}
	s.mustPublish(t, map[string]any{"to": []string{"a"}})
}

// inboxPage is GET /v1/notifications.
type inboxPage struct {
	Notifications []struct {
		ID        string          `json:"id"`
		Type      string          `json:"type"`
		Data      json.RawMessage `json:"data"`
		Broadcast bool            `json:"broadcast"`
		Read      bool            `json:"read"`
		ReadAt    *time.Time      `json:"read_at"`
	} `json:"notifications"`
	NextBefore *string `json:"next_before"`
}

func (s *server) do(t *testing.T, method, path string) int {
	t.Helper()
	req, _ := http.NewRequest(method, s.url+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestInboxAndReadState(t *testing.T) {
	s := startServer(t, nil)
	// alice: 25 of her own, interleaved with 5 broadcasts; bob has his own too.
	var aliceIDs []string
	for i := 0; i < 30; i++ {
		switch {
		case i%6 == 5:
			aliceIDs = append(aliceIDs, s.mustPublish(t, map[string]any{"broadcast": true, "type": "news", "data": i})[0].ID)
		default:
			aliceIDs = append(aliceIDs, s.mustPublish(t, map[string]any{"to": []string{"alice"}, "type": "comment", "data": i})[0].ID)
		}
		s.mustPublish(t, map[string]any{"to": []string{"bob"}, "data": i})
	}

	t.Run("paging newest first", func(t *testing.T) {
		var got []string
		before := ""
		for pages := 0; pages < 10; pages++ {
			var p inboxPage
			path := "/v1/notifications?user=alice&limit=7"
			if before != "" {
				path += "&before=" + before
			}
			if status := s.getJSON(t, path, &p); status != 200 {
				t.Fatalf("status %d", status)
			}
			for _, n := range p.Notifications {
				got = append(got, n.ID)
			}
			if p.NextBefore == nil {
				break
			}
			before = *p.NextBefore
		}
		if len(got) != len(aliceIDs) {
			t.Fatalf("paged through %d notifications, want %d", len(got), len(aliceIDs))
		}
		for i := range got {
			if want := aliceIDs[len(aliceIDs)-1-i]; got[i] != want {
				t.Fatalf("item %d is %s, want %s (newest first, no gap, no overlap)", i, got[i], want)
			}
		}
	})
	t.Run("type filter", func(t *testing.T) {
		var p inboxPage
		s.getJSON(t, "/v1/notifications?user=alice&limit=100&types=news", &p)
		if len(p.Notifications) != 5 {
			t.Fatalf("%d news, want 5", len(p.Notifications))
		}
		for _, n := range p.Notifications {
			if n.Type != "news" || !n.Broadcast {
				t.Errorf("%+v", n)
			}
		}
	})
	t.Run("read state per user", func(t *testing.T) {
		broadcast := aliceIDs[5]
		own := aliceIDs[0]
		if status := s.do(t, "POST", "/v1/notifications/"+broadcast+"/read?user=alice"); status != 204 {
			t.Fatalf("mark broadcast read: %d", status)
		}
		if status := s.do(t, "POST", "/v1/notifications/"+own+"/read?user=alice"); status != 204 {
			t.Fatalf("mark own read: %d", status)
		}
		var n struct {
			Read   bool       `json:"read"`
			ReadAt *time.Time `json:"read_at"`
		}
		if s.getJSON(t, "/v1/notifications/"+broadcast+"?user=alice", &n); !n.Read || n.ReadAt == nil {
			t.Errorf("alice's broadcast not read: %+v", n)
		}
		if s.getJSON(t, "/v1/notifications/"+broadcast+"?user=bob", &n); n.Read {
			t.Errorf("alice reading a broadcast marked it read for bob")
		}
		var c map[string]int
		s.getJSON(t, "/v1/notifications/unread-count?user=alice", &c)
		if c["unread"] != 28 {
			t.Errorf("alice unread %d, want 28", c["unread"])
		}
		s.getJSON(t, "/v1/notifications/unread-count?user=bob", &c)
		if c["unread"] != 35 {
			t.Errorf("bob unread %d, want 35 (30 own + 5 broadcasts)", c["unread"])
		}
		var p inboxPage
		s.getJSON(t, "/v1/notifications?user=alice&unread=true&limit=100", &p)
		if len(p.Notifications) != 28 {
			t.Errorf("unread filter: %d, want 28", len(p.Notifications))
		}
		if status := s.do(t, "DELETE", "/v1/notifications/"+broadcast+"/read?user=alice"); status != 204 {
			t.Fatalf("mark unread: %d", status)
		}
		s.getJSON(t, "/v1/notifications/unread-count?user=alice", &c)
		if c["unread"] != 29 {
			t.Errorf("after unread: %d, want 29", c["unread"])
		}
	})
	t.Run("ownership", func(t *testing.T) {
		own := aliceIDs[0]
		for _, tc := range []struct{ method, path string }{
			{"GET", "/v1/notifications/" + own + "?user=bob"},
			{"POST", "/v1/notifications/" + own + "/read?user=bob"},
			{"DELETE", "/v1/notifications/" + own + "/read?user=bob"},
		} {
			if status := s.do(t, tc.method, tc.path); status != 404 {
				t.Errorf("%s %s as bob: %d, want 404", tc.method, tc.path, status)
			}
		}
	})
	t.Run("read all", func(t *testing.T) {
		req, _ := http.NewRequest("POST", s.url+"/v1/notifications/read-all?user=alice", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var r map[string]int
		json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if resp.StatusCode != 200 || r["updated"] != 29 {
			t.Errorf("read-all: %d %v, want 200 updated 29", resp.StatusCode, r)
		}
		var c map[string]int
		s.getJSON(t, "/v1/notifications/unread-count?user=alice", &c)
		if c["unread"] != 0 {
			t.Errorf("after read-all: %d unread", c["unread"])
		}
		s.getJSON(t, "/v1/notifications/unread-count?user=bob", &c)
		if c["unread"] != 35 {
			t.Errorf("alice's read-all changed bob's count to %d", c["unread"])
		}
	})
}

func TestIdempotentPublish(t *testing.T) {
	s := startServer(t, nil)
	post := func(body, key string) (int, string, http.Header) {
		req, _ := http.NewRequest("POST", s.url+"/v1/notifications", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	body := `{"to":["alice","bob"],"type":"comment","data":{"x":1}}`
	s1, r1, _ := post(body, "order-42")
	s2, r2, h2 := post(body, "order-42")
	if s1 != 201 || s2 != 201 || r1 != r2 {
		t.Fatalf("retry: %d %s / %d %s; want both 201 with the same result", s1, r1, s2, r2)
	}
	if h2.Get("Idempotent-Replayed") != "true" {
		t.Error("a replayed publish is not marked Idempotent-Replayed")
	}
	// The key in the body is the same key.
	if s3, r3, _ := post(`{"to":["alice","bob"],"type":"comment","data":{"x":1},"key":"order-42"}`, ""); s3 != 201 || r3 != r1 {
		t.Errorf("body key: %d %s", s3, r3)
	}
	if s4, r4, _ := post(`{"to":["alice"],"data":{"x":2}}`, "order-42"); s4 != 409 || !strings.Contains(r4, `"conflict"`) {
		t.Errorf("same key, other notification: %d %s; want 409 conflict", s4, r4)
	}
	var c map[string]int
	s.getJSON(t, "/v1/notifications/unread-count?user=alice", &c)
	if c["unread"] != 1 {
		t.Errorf("alice has %d notifications, want 1", c["unread"])
	}
	// Concurrent retries of one key create one notification.
	var wg sync.WaitGroup
	results := make([]string, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i], _ = post(`{"to":["carol"]}`, "race")
		}()
	}
	wg.Wait()
	for _, r := range results[1:] {
		if r != results[0] {
			t.Fatalf("concurrent retries answered differently: %v", results)
		}
	}
	s.getJSON(t, "/v1/notifications/unread-count?user=carol", &c)
	if c["unread"] != 1 {
		t.Errorf("carol has %d notifications, want 1", c["unread"])
	}
}

// TestShutdown: on shutdown open streams end, publishes in flight either complete (and are then
// stored) or are refused, Run returns nil, and the store is closed cleanly.
func TestShutdown(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, func(c *config.Config) { c.Store = "sqlite:" + dir + "/h.db" })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, ch, err := s.openStream(ctx, "user=alice", "")
	if err != nil {
		t.Fatal(err)
	}
	<-ch

	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				b := fmt.Sprintf(`{"to":["alice"],"data":%d}`, i*100+j)
				resp, err := http.Post(s.url+"/v1/notifications", "application/json", strings.NewReader(b))
				if err != nil {
					return // the listener is gone
				}
				var r struct{ Notifications []published }
				json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				if resp.StatusCode == 201 {
					mu.Lock()
					acked = append(acked, r.Notifications[0].ID)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	stopped := make(chan struct{})
	go func() { s.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(15 * time.Second):
		t.Fatal("shutdown did not finish")
	}
	for range ch {
		// The open stream must end.
	}
	wg.Wait()

	store, err := sqlite.Open(context.Background(), dir+"/h.db", sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, id := range acked {
		var n int64
		fmt.Sscan(id, &n)
		if _, err := store.Get(context.Background(), "alice", n); err != nil {
			t.Errorf("acknowledged %s not stored: %v", id, err)
		}
	}
	t.Logf("%d publishes acknowledged before shutdown, all stored", len(acked))
}

// TestWebPage: the demo page and herald.js are served at a few fixed paths; everything else is
// the API's, and --web=false leaves only the API.
func TestWebPage(t *testing.T) {
	on := startServer(t, nil)
	off := startServer(t, func(c *config.Config) { c.Web = false })
	tests := []struct {
		name   string
		s      *server
		method string
		path   string
		status int
		ctype  string
	}{
		{"page", on, "GET", "/", 200, "text/html; charset=utf-8"},
		{"page HEAD", on, "HEAD", "/", 200, "text/html; charset=utf-8"},
		{"page with a query", on, "GET", "/?user=alice", 200, "text/html; charset=utf-8"},
		{"client", on, "GET", "/herald.js", 200, "text/javascript; charset=utf-8"},
		{"POST to the page", on, "POST", "/", 404, "application/json"},
		{"unknown file", on, "GET", "/index.html", 404, "application/json"},
		{"API still there", on, "GET", "/healthz", 200, "application/json"},
		{"off: page", off, "GET", "/", 404, "application/json"},
		{"off: client", off, "GET", "/herald.js", 404, "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, tt.s.url+tt.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.ctype) {
				t.Errorf("%s %s: %d %q, want %d %q", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), tt.status, tt.ctype)
			}
		})
	}
}
