package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/push"
	"github.com/heraldhq/herald/internal/push/pushtest"
)

// pushDelay is the tests' push delay: short, so that they wait little for a fallback.
const pushDelay = 300 * time.Millisecond

// startPushServer starts Herald with Web Push on, a loopback push service, and a short delay.
func startPushServer(t *testing.T, mutate func(*config.Config)) (*server, *pushtest.Service) {
	t.Helper()
	keys, err := push.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	svc := pushtest.New(t, keys.Public)
	svc.Log = t.Logf
	s := startServer(t, func(c *config.Config) {
		c.VAPIDPrivateKey, c.VAPIDSubject = keys.Private, "mailto:ops@example.com"
		c.PushDelay, c.PushRetry, c.PushAllowLoopback = pushDelay, 20*time.Millisecond, true
		if mutate != nil {
			mutate(c)
		}
	})
	t.Cleanup(func() {
		if errs := svc.Errors(); len(errs) > 0 {
			t.Errorf("the push service refused pushes: %v", errs)
		}
	})
	return s, svc
}

// call sends a JSON request and returns the status and body.
func (s *server) pushCall(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s *server) registerPush(t *testing.T, user string, sub *pushtest.Subscription) {
	t.Helper()
	if status, body := s.pushCall(t, "POST", "/v1/push/subscriptions?user="+user, sub.JSON()); status != http.StatusCreated {
		t.Fatalf("register: %d %s", status, body)
	}
}

// waitUntil polls cond (a store read) until it holds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s", what)
		}
		<-tick.C
	}
}

func (s *server) outboxEmpty(t *testing.T) func() bool {
	return func() bool {
		st, err := s.Store.PushOutboxStats(context.Background())
		return err == nil && st.Pending == 0
	}
}

func TestPushEndToEnd(t *testing.T) {
	s, svc := startPushServer(t, nil)
	t.Run("no stream: pushed after the delay", func(t *testing.T) {
		sub := svc.Subscribe()
		s.registerPush(t, "alice", sub)
		start := time.Now()
		ns := s.mustPublish(t, map[string]any{"to": []string{"alice"}, "type": "comment", "title": "Bob commented",
			"body": "Nice work", "url": "https://app.example/posts/42"})
		svc.Wait(20*time.Second, "alice's push", func() bool { return len(svc.Delivered(sub)) == 1 })
		var p push.Payload
		if err := json.Unmarshal(svc.Delivered(sub)[0], &p); err != nil {
			t.Fatal(err)
		}
		if p.Title != "Bob commented" || p.URL != "https://app.example/posts/42" || p.Body != "Nice work" || ns[0].ID != itoa(p.ID) {
			t.Fatalf("payload %+v, notification %v", p, ns[0].ID)
		}
		if at := svc.Pushes(sub)[0].At; at.Sub(start) < pushDelay {
			t.Fatalf("pushed %s after the publish, before the delay of %s", at.Sub(start), pushDelay)
		}
	})
	t.Run("open stream: not pushed; after it closes: pushed", func(t *testing.T) {
		sub := svc.Subscribe()
		s.registerPush(t, "bob", sub)
		ctx, cancel := context.WithCancel(context.Background())
		_, events, err := s.openStream(ctx, "user=bob", "")
		if err != nil {
			t.Fatal(err)
		}
		<-events // herald.connected: the stream is subscribed
		s.mustPublish(t, map[string]any{"to": []string{"bob"}, "title": "seen live"})
		if ev := <-events; ev.Type != "notification" {
			t.Fatalf("live event %+v", ev)
		}
		waitUntil(t, "the outbox to empty", s.outboxEmpty(t))
		if n := len(svc.Pushes(sub)); n != 0 {
			t.Fatalf("%d pushes to a user with a stream open", n)
		}
		cancel()
		waitUntil(t, "bob's stream to close", func() bool { return s.Hub.Stats().Subscriptions == 0 })
		// Presence is recorded at most up to the close, which is before the next commit.
		s.mustPublish(t, map[string]any{"to": []string{"bob"}, "title": "missed"})
		svc.Wait(20*time.Second, "bob's push", func() bool { return len(svc.Delivered(sub)) == 1 })
	})
	t.Run("500: sent once, by the retry", func(t *testing.T) {
		sub := svc.Subscribe()
		s.registerPush(t, "carol", sub)
		svc.Answer(sub, pushtest.Answer{Status: 500})
		s.mustPublish(t, map[string]any{"to": []string{"carol"}, "title": "retried", "push": "always"})
		svc.Wait(20*time.Second, "carol's push", func() bool { return len(svc.Delivered(sub)) == 1 })
		waitUntil(t, "the outbox to empty", s.outboxEmpty(t))
		if ps := svc.Pushes(sub); len(ps) != 2 || ps[0].Status != 500 || ps[1].Status != 201 {
			t.Fatalf("pushes %+v, want a 500 and one 201", ps)
		}
	})
	t.Run("410: the subscription is removed", func(t *testing.T) {
		sub := svc.Subscribe()
		s.registerPush(t, "dave", sub)
		svc.Answer(sub, pushtest.Answer{Status: 410})
		s.mustPublish(t, map[string]any{"to": []string{"dave"}, "title": "gone", "push": "always"})
		waitUntil(t, "dave's subscription to go", func() bool {
			_, body := s.pushCall(t, "GET", "/v1/push/subscriptions?user=dave", "")
			return body == `{"subscriptions":[]}`+"\n"
		})
		waitUntil(t, "the outbox to empty", s.outboxEmpty(t))
		if n := len(svc.Pushes(sub)); n != 1 {
			t.Fatalf("%d pushes, want 1", n)
		}
	})
	t.Run("muted in push: not pushed, unless critical; kept in the inbox", func(t *testing.T) {
		sub := svc.Subscribe()
		s.registerPush(t, "erin", sub)
		if status, body := s.pushCall(t, "PUT", "/v1/preferences?user=erin", `{"mutes":{"push":{"prefixes":["marketing."]}}}`); status != http.StatusOK {
			t.Fatalf("preferences: %d %s", status, body)
		}
		s.mustPublish(t, map[string]any{"to": []string{"erin"}, "type": "marketing.promo", "title": "muted", "push": "always"})
		s.mustPublish(t, map[string]any{"to": []string{"erin"}, "type": "marketing.legal", "title": "critical", "push": "always", "critical": true})
		s.mustPublish(t, map[string]any{"to": []string{"erin"}, "type": "comment", "title": "other type", "push": "always"})
		waitUntil(t, "the outbox to empty", s.outboxEmpty(t))
		var titles []string
		for _, b := range svc.Delivered(sub) {
			var p push.Payload
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatal(err)
			}
			titles = append(titles, p.Title)
		}
		slices.Sort(titles)
		if !slices.Equal(titles, []string{"critical", "other type"}) {
			t.Fatalf("pushed %q, want the critical one and the other type", titles)
		}
		if _, body := s.pushCall(t, "GET", "/v1/notifications/unread-count?user=erin", ""); !strings.Contains(body, `"unread":3`) {
			t.Fatalf("unread count %s: a push mute keeps the notification in the inbox", body)
		}
	})
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestPushAPI(t *testing.T) {
	s, svc := startPushServer(t, func(c *config.Config) { c.PushMaxSubscriptions = 2 })
	sub := svc.Subscribe()
	var key struct {
		PublicKey string `json:"public_key"`
	}
	if status := s.getJSON(t, "/v1/push/key", &key); status != 200 || len(key.PublicKey) != 87 {
		t.Fatalf("GET /v1/push/key: %d %+v", status, key)
	}
	good := func(endpoint string) string {
		return `{"endpoint":"` + endpoint + `","expirationTime":null,"keys":{"p256dh":"` + sub.P256DH + `","auth":"` + sub.Auth + `"}}`
	}
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"register", "POST", "/v1/push/subscriptions?user=erin", sub.JSON(), 201, ""},
		{"again: updated", "POST", "/v1/push/subscriptions?user=erin", sub.JSON(), 200, ""},
		{"malformed", "POST", "/v1/push/subscriptions?user=erin", `{"endpoint":`, 400, "invalid"},
		{"unknown member", "POST", "/v1/push/subscriptions?user=erin", `{"endpoint":"x","extra":1}`, 400, "invalid"},
		{"http endpoint", "POST", "/v1/push/subscriptions?user=erin", good("http://fcm.googleapis.com/fcm/send/x"), 400, "invalid"},
		{"host not listed", "POST", "/v1/push/subscriptions?user=erin", good("https://evil.example/push"), 400, "invalid"},
		{"a port on a push service", "POST", "/v1/push/subscriptions?user=erin", good("https://fcm.googleapis.com:8443/x"), 400, "invalid"},
		{"listed host", "POST", "/v1/push/subscriptions?user=erin", good("https://fcm.googleapis.com/fcm/send/abc"), 201, ""},
		{"over the limit", "POST", "/v1/push/subscriptions?user=erin", good("https://updates.push.services.mozilla.com/wpush/v2/x"), 413, "too_large"},
		{"wildcard host", "POST", "/v1/push/subscriptions?user=frank", good("https://wns2-by3p.notify.windows.com/w/?token=x"), 201, ""},
		{"bad p256dh", "POST", "/v1/push/subscriptions?user=erin", `{"endpoint":"https://fcm.googleapis.com/x","keys":{"p256dh":"AAAA","auth":"` + sub.Auth + `"}}`, 400, "invalid"},
		{"no auth", "POST", "/v1/push/subscriptions?user=erin", `{"endpoint":"https://fcm.googleapis.com/x","keys":{"p256dh":"` + sub.P256DH + `"}}`, 400, "invalid"},
		{"delete another's", "DELETE", "/v1/push/subscriptions?user=frank", `{"endpoint":"` + sub.Endpoint + `"}`, 404, "not_found"},
		{"delete", "DELETE", "/v1/push/subscriptions?user=erin", `{"endpoint":"` + sub.Endpoint + `"}`, 204, ""},
		{"delete again", "DELETE", "/v1/push/subscriptions?user=erin", `{"endpoint":"` + sub.Endpoint + `"}`, 404, "not_found"},
		{"delete without endpoint", "DELETE", "/v1/push/subscriptions?user=erin", `{}`, 400, "invalid"},
		{"publish with a bad push", "POST", "/v1/notifications", `{"to":["erin"],"push":"sometimes"}`, 400, "invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := s.pushCall(t, tc.method, tc.path, tc.body)
			if status != tc.status || (tc.code != "" && !strings.Contains(body, `"code":"`+tc.code+`"`)) {
				t.Fatalf("%d %s; want %d %s", status, body, tc.status, tc.code)
			}
		})
	}
	var list struct {
		Subscriptions []struct {
			Endpoint  string `json:"endpoint"`
			CreatedAt string `json:"created_at"`
		} `json:"subscriptions"`
	}
	if status := s.getJSON(t, "/v1/push/subscriptions?user=erin", &list); status != 200 || len(list.Subscriptions) != 1 ||
		list.Subscriptions[0].Endpoint != "https://fcm.googleapis.com/fcm/send/abc" {
		t.Fatalf("list: %d %+v", status, list)
	}
}

func TestPushOff(t *testing.T) {
	s := startServer(t, nil)
	for _, path := range []string{"/v1/push/key", "/v1/push/subscriptions?user=a"} {
		resp, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || !bytes.Contains(b, []byte("not configured")) {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
}
