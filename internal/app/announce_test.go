package app

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/store/postgres"
	"github.com/heraldhq/herald/internal/testenv"
)

// TestRetryAnnouncesAgain: a node killed after its commit and before its bus publish leaves a
// notification that no node delivers until a resync. Its publisher retries on another node with
// the same key, gets the stored result, and publishes a broadcast next: every node's stream of
// the user gets the retried notification first, then the broadcast, as they were published
// (issue 19). The kill is a commit through a store handle of the test's own, with no bus; the
// periodic resync is out of reach, so only the retry can bring the notification.
func TestRetryAnnouncesAgain(t *testing.T) {
	tests := []struct {
		name  string
		topic bool
	}{
		{"named", false},
		{"topic", true},
	}
	for _, bus := range buses {
		t.Run(bus, func(t *testing.T) {
			nodes := startCluster(t, bus, 2, func(c *config.Config) { c.ResyncInterval = time.Hour })
			killed, err := postgres.Open(context.Background(), nodes[0].cfg.Store, postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { killed.Close() })
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					testRetryAnnouncesAgain(t, nodes, killed, tt.topic)
				})
			}
		})
	}
}

func testRetryAnnouncesAgain(t *testing.T, nodes []*server, killed herald.Store, topic bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	user, key := testenv.Name("alice"), testenv.Name("key")
	// Streams on both nodes: the retry's node and another.
	var streams []<-chan received
	for _, s := range nodes {
		_, ch, err := s.openStream(ctx, "user="+user, "")
		if err != nil {
			t.Fatal(err)
		}
		if ev := <-ch; ev.Type != "herald.connected" {
			t.Fatalf("first event %+v, want herald.connected", ev)
		}
		streams = append(streams, ch)
	}
	draft := herald.Draft{To: []string{user}, Type: "first", Data: json.RawMessage(`{"n":1}`), Key: key}
	body := map[string]any{"to": []string{user}, "type": "first", "data": map[string]int{"n": 1}, "key": key}
	if topic {
		name := testenv.Name("topic")
		if _, err := killed.Subscribe(ctx, name, []string{user}, herald.TopicLimits{}); err != nil {
			t.Fatal(err)
		}
		draft = herald.Draft{Topic: name, Type: "first", Data: json.RawMessage(`{"n":1}`), Key: key}
		body = map[string]any{"topic": name, "type": "first", "data": map[string]int{"n": 1}, "key": key}
	}
	// The node that committed it dies before its bus publish.
	if _, err := killed.Append(ctx, "", []herald.Draft{draft}); err != nil {
		t.Fatal(err)
	}
	// The publisher retries on a live node, is answered from the key, and moves on.
	status, _, raw := nodes[1].publish(t, "/v1/notifications", body)
	if status != http.StatusCreated {
		t.Fatalf("retry: status %d %v", status, raw)
	}
	nodes[1].mustPublish(t, map[string]any{"broadcast": true, "type": "next", "data": 2})
	for i, ch := range streams {
		for _, want := range []string{"first", "next"} {
			select {
			case ev := <-ch:
				if ev.Type != want {
					t.Fatalf("node %d's stream got %q (cursor %s), want %q: the retried notification must come before what its publisher sent next", i, ev.Type, ev.Cursor, want)
				}
			case <-ctx.Done():
				t.Fatalf("node %d's stream: no %q event", i, want)
			}
		}
	}
}
