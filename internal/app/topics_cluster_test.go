package app

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestClusterTopic: a topic publish on one node reaches its subscribers' streams on every node
// through the bus, and the envelope another node writes still says the topic.
func TestClusterTopic(t *testing.T) {
	for _, bus := range buses {
		t.Run(bus, func(t *testing.T) {
			nodes := startCluster(t, bus, 2, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if status, body := nodes[0].topicCall(t, "POST", "/v1/topics/org%2Facme/subscribers", nil, `{"users":["alice","bob"]}`); status != 200 {
				t.Fatalf("subscribe: %d %s", status, body)
			}
			_, alice, err := nodes[1].openStream(ctx, "user=alice", "")
			if err != nil {
				t.Fatal(err)
			}
			next(t, alice, "alice") // herald.connected
			status, body := nodes[0].topicCall(t, "POST", "/v1/notifications", nil, `{"topic":"org/acme","exclude":["bob"],"type":"release","title":"v2"}`)
			if status != 201 || body != `{"notifications":[],"recipients":1}` {
				t.Fatalf("topic publish on node 0: %d %s", status, body)
			}
			ev := next(t, alice, "alice")
			var env map[string]json.RawMessage
			if err := json.Unmarshal([]byte(ev.Data), &env); err != nil {
				t.Fatalf("event %q: %v", ev.Data, err)
			}
			if ev.Type != "release" || string(env["topic"]) != `"org/acme"` || string(env["title"]) != `"v2"` {
				t.Fatalf("node 1's envelope: %s %s; want the topic and title of node 0's publish", ev.Type, ev.Data)
			}
		})
	}
}
