package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/config"
)

// contentPublish is a notification with every content field, and text a client must show as
// text: markup, a line break, quotes, characters beyond ASCII.
var contentPublish = map[string]any{
	"to": []string{"alice"}, "type": "comment.created",
	"title": `Bob "B" commented <b>here</b>`, "body": "<script>alert(1)</script>\nsecond line é 🎉",
	"url": "https://example.com/p/42#c7", "icon": "/static/comment.svg", "avatar": "https://cdn.example.com/bob.png",
	"actions": []map[string]string{{"label": "Reply", "url": "/p/42#reply"}, {"label": "Mute", "url": "/mute?p=42"}},
	"group":   "post:42:comments", "data": map[string]any{"post": 42},
}

// contentFields is how the envelope and the inbox write contentPublish's content: between type
// and data, in this order, the body's markup as the characters it is.
const contentFields = `"title":"Bob \"B\" commented <b>here</b>","body":"<script>alert(1)</script>\nsecond line é 🎉",` +
	`"url":"https://example.com/p/42#c7","icon":"/static/comment.svg","avatar":"https://cdn.example.com/bob.png",` +
	`"actions":[{"label":"Reply","url":"/p/42#reply"},{"label":"Mute","url":"/mute?p=42"}],"group":"post:42:comments"`

// rawGet GETs path and returns the body as sent.
func (s *server) rawGet(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(s.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// createdAt reads a notification's created_at as the inbox writes it.
func (s *server) createdAt(t *testing.T, id string) string {
	t.Helper()
	var item struct {
		CreatedAt json.RawMessage `json:"created_at"`
	}
	if err := json.Unmarshal([]byte(s.rawGet(t, "/v1/notifications/"+id+"?user=alice")), &item); err != nil {
		t.Fatal(err)
	}
	return strings.Trim(string(item.CreatedAt), `"`)
}

// TestContentRoundTrip: content published with a notification reaches the user's stream live
// and in a replay, and the inbox, exactly as sent, in the envelope's order; a publisher that
// sends only data gets the envelope it got before content existed, byte for byte.
func TestContentRoundTrip(t *testing.T) {
	streamModes(t, func(t *testing.T) {
		s := startServer(t, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, live, err := s.openStream(ctx, "user=alice", "")
		if err != nil {
			t.Fatal(err)
		}
		next(t, live, "alice") // herald.connected

		old := s.mustPublish(t, map[string]any{"to": []string{"alice"}, "type": "old", "data": map[string]any{"a": []any{1, "x"}}})[0].ID
		withContent := s.mustPublish(t, contentPublish)[0].ID

		wantOld := `{"id":"` + old + `","type":"old","data":{"a":[1,"x"]},"created_at":"` + s.createdAt(t, old) + `","broadcast":false}`
		wantNew := `{"id":"` + withContent + `","type":"comment.created",` + contentFields + `,"data":{"post":42},"created_at":"` +
			s.createdAt(t, withContent) + `","broadcast":false}`
		if ev := next(t, live, "alice"); ev.Data != wantOld {
			t.Fatalf("a data-only publish's envelope:\n%s\nwant, as before content:\n%s", ev.Data, wantOld)
		}
		if ev := next(t, live, "alice"); ev.Data != wantNew || ev.Type != "comment.created" {
			t.Fatalf("live envelope:\n%s\nwant:\n%s", ev.Data, wantNew)
		}

		// A replay reads them from the store: the same bytes.
		_, replay, err := s.openStream(ctx, "user=alice", "0.0")
		if err != nil {
			t.Fatal(err)
		}
		if a, b := next(t, replay, "replay"), next(t, replay, "replay"); a.Data != wantOld || b.Data != wantNew {
			t.Fatalf("replayed envelopes:\n%s\n%s\nwant:\n%s\n%s", a.Data, b.Data, wantOld, wantNew)
		}

		// The inbox and a single read carry the same fields in the same place.
		item := s.rawGet(t, "/v1/notifications/"+withContent+"?user=alice")
		if !strings.HasPrefix(item, `{"id":"`+withContent+`","type":"comment.created",`+contentFields+`,"data":{"post":42},`) {
			t.Fatalf("GET /v1/notifications/%s = %s", withContent, item)
		}
		page := s.rawGet(t, "/v1/notifications?user=alice")
		if !strings.Contains(page, `"type":"comment.created",`+contentFields+`,"data":`) {
			t.Fatalf("the inbox lacks the content: %s", page)
		}
		if oldItem := s.rawGet(t, "/v1/notifications/"+old+"?user=alice"); strings.Contains(oldItem, "title") || strings.Contains(oldItem, "null,\"created_at") {
			t.Fatalf("a notification without content shows content fields: %s", oldItem)
		}
	})
}

// TestContentRefused: content a client could not safely show is refused with 400 naming the
// field, and nothing reaches the store or the user's stream.
func TestContentRefused(t *testing.T) {
	s := startServer(t, nil)
	for field, body := range map[string]map[string]any{
		`"url"`:              {"to": []string{"alice"}, "url": "javascript:alert(1)"},
		`"avatar"`:           {"to": []string{"alice"}, "avatar": "//evil.example/a.png"},
		`"title"`:            {"to": []string{"alice"}, "title": strings.Repeat("t", 201)},
		`"actions[0].url"`:   {"to": []string{"alice"}, "actions": []map[string]string{{"label": "x", "url": "data:text/html,x"}}},
		`notifications[1]: `: {"notifications": []map[string]any{{"to": []string{"alice"}}, {"to": []string{"alice"}, "url": " javascript:x"}}},
	} {
		path := "/v1/notifications"
		if _, ok := body["notifications"]; ok {
			path += "/batch"
		}
		status, _, raw := s.publish(t, path, body)
		e, _ := raw["error"].(map[string]any)
		if msg, _ := e["message"].(string); status != http.StatusBadRequest || e["code"] != "invalid" || !strings.Contains(msg, field) {
			t.Fatalf("%v: %d %v, want 400 invalid naming %s", body, status, raw, field)
		}
	}
	if page := s.rawGet(t, "/v1/notifications?user=alice"); page != `{"notifications":[],"next_before":null}`+"\n" {
		t.Fatalf("refused publishes stored something: %s", page)
	}
}

// TestClusterContent: content crosses the bus from the node a notification was published on to
// the user's stream on another node. Resync is slowed to minutes, so that the stream can only
// have the notification from the bus, and the bus message must have passed Decode.
func TestClusterContent(t *testing.T) {
	nodes := startCluster(t, "redis", 2, func(c *config.Config) { c.ResyncInterval = 10 * time.Minute })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, ch, err := nodes[1].openStream(ctx, "user=alice", "")
	if err != nil {
		t.Fatal(err)
	}
	next(t, ch, "node 1") // herald.connected
	id := nodes[0].mustPublish(t, contentPublish)[0].ID
	want := `{"id":"` + id + `","type":"comment.created",` + contentFields + `,"data":{"post":42},"created_at":"` +
		nodes[1].createdAt(t, id) + `","broadcast":false}`
	if ev := next(t, ch, "node 1"); ev.Data != want {
		t.Fatalf("node 1's stream got\n%s\nwant\n%s", ev.Data, want)
	}
	if n := counter(nodes[1], "herald_bus_decode_errors_total"); n != 0 {
		t.Fatalf("node 1 could not decode %v bus messages", n)
	}
	if n := counter(nodes[1], "herald_bus_received_total"); n < 1 {
		t.Fatal("node 1 received nothing from the bus")
	}
}
