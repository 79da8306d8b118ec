package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// topicCall sends a request with a JSON body (or none) and returns the status and the body.
func (s *server) topicCall(t *testing.T, method, path string, header http.Header, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.url+path, bytes.NewReader([]byte(body)))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(raw))
}

// TestTopicNotifyFollowers is the walk-through of docs/api.md: alice and bob follow an issue,
// bob acts and is excluded; alice's open stream gets the notification, marked with its topic,
// bob's gets nothing, and the 201 counts one recipient. A retry with the same key replays that
// answer and creates nothing.
func TestTopicNotifyFollowers(t *testing.T) {
	streamModes(t, func(t *testing.T) {
		s := startServer(t, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()

		if status, body := s.topicCall(t, "PUT", "/v1/topics/issue:42/subscribers/alice", nil, ""); status != 204 {
			t.Fatalf("subscribe alice: %d %s", status, body)
		}
		if status, body := s.topicCall(t, "POST", "/v1/topics/issue:42/subscribers", nil, `{"users":["alice","bob"]}`); status != 200 || body != `{"subscribed":1}` {
			t.Fatalf("subscribe alice and bob: %d %s", status, body)
		}
		if status, body := s.topicCall(t, "GET", "/v1/topics?user=bob", nil, ""); status != 200 || body != `{"topics":["issue:42"]}` {
			t.Fatalf("bob's topics: %d %s", status, body)
		}

		_, alice, err := s.openStream(ctx, "user=alice", "")
		if err != nil {
			t.Fatal(err)
		}
		_, bob, err := s.openStream(ctx, "user=bob", "")
		if err != nil {
			t.Fatal(err)
		}
		next(t, alice, "alice") // herald.connected
		next(t, bob, "bob")

		key := http.Header{"Idempotency-Key": {"comment-7"}}
		publish := `{"topic":"issue:42","exclude":["bob"],"type":"comment.created","data":{"comment":7}}`
		status, first := s.topicCall(t, "POST", "/v1/notifications", key, publish)
		if status != 201 || first != `{"notifications":[],"recipients":1}` {
			t.Fatalf("topic publish: %d %s", status, first)
		}
		ev := next(t, alice, "alice")
		var env map[string]json.RawMessage
		if err := json.Unmarshal([]byte(ev.Data), &env); err != nil {
			t.Fatalf("alice's event %q: %v", ev.Data, err)
		}
		if string(env["topic"]) != `"issue:42"` || string(env["data"]) != `{"comment":7}` || ev.Type != "comment.created" {
			t.Fatalf("alice's event: %s %s", ev.Type, ev.Data)
		}

		// Bob's next notification is one addressed to him afterwards: the topic's never came.
		marker := s.mustPublish(t, map[string]any{"to": []string{"bob"}, "type": "marker"})[0].ID
		if ev := next(t, bob, "bob"); ev.Env.ID != marker {
			t.Fatalf("bob got %s %s before the marker %s", ev.Type, ev.Data, marker)
		}

		// The retry replays the answer, however the subscribers changed, and creates nothing.
		s.topicCall(t, "PUT", "/v1/topics/issue:42/subscribers/carol", nil, "")
		req, _ := http.NewRequest("POST", s.url+"/v1/notifications", strings.NewReader(publish))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "comment-7")
		resp, err := s.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201 || strings.TrimSpace(string(again)) != first || resp.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("retry: %d %s (Idempotent-Replayed %q), want 201 %s replayed", resp.StatusCode, again, resp.Header.Get("Idempotent-Replayed"), first)
		}
		var page struct{ Notifications []json.RawMessage }
		s.getJSON(t, "/v1/notifications?user=carol", &page)
		if len(page.Notifications) != 0 {
			t.Fatalf("the retry created notifications for carol: %s", page.Notifications)
		}
		marker = s.mustPublish(t, map[string]any{"to": []string{"alice"}, "type": "marker"})[0].ID
		if ev := next(t, alice, "alice"); ev.Env.ID != marker {
			t.Fatalf("alice got %s %s after the retry, before the marker %s", ev.Type, ev.Data, marker)
		}
	})
}
