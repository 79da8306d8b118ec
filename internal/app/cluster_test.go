package app

import (
	"context"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/testenv"
)

// startCluster starts n in-process nodes sharing a fresh PostgreSQL schema and a Redis channel
// of their own.
func startCluster(t *testing.T, n int, mutate func(*config.Config)) []*server {
	t.Helper()
	store, bus, channel := testenv.Postgres(t), testenv.Redis(t), testenv.Name("herald")
	var nodes []*server
	for i := 0; i < n; i++ {
		nodes = append(nodes, startServer(t, func(c *config.Config) {
			c.Store, c.Bus, c.BusChannel = store, bus, channel
			c.ResyncInterval = time.Second
			if mutate != nil {
				mutate(c)
			}
		}))
	}
	for _, s := range nodes {
		waitFor(t, 10*time.Second, "the bus subscription", func() bool { return s.Metrics != nil && busReady(s) })
	}
	return nodes
}

// busReady reports whether a node has subscribed to the bus (its first reconnect counts it).
func busReady(s *server) bool {
	fams, err := s.Metrics.Registry.Gather()
	if err != nil {
		return false
	}
	for _, f := range fams {
		if f.GetName() == "herald_bus_reconnects_total" {
			return f.Metric[0].GetCounter().GetValue() >= 1
		}
	}
	return false
}

// TestClusterDelivery: a notification published on one node reaches the user's streams on every
// node, promptly.
func TestClusterDelivery(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var chans []<-chan received
	for _, s := range nodes {
		_, ch, err := s.openStream(ctx, "user=alice", "")
		if err != nil {
			t.Fatal(err)
		}
		<-ch // connected
		chans = append(chans, ch)
	}
	for i, s := range nodes {
		start := time.Now()
		s.mustPublish(t, map[string]any{"to": []string{"alice"}, "type": "hello", "data": i})
		for j, ch := range chans {
			select {
			case ev := <-ch:
				if ev.Type != "hello" || string(ev.Env.Data) != string(rune('0'+i)) {
					t.Fatalf("node %d got %+v", j, ev)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("published on node %d, node %d's stream got nothing", i, j)
			}
		}
		t.Logf("published on node %d: every node's stream had it within %s", i, time.Since(start).Round(time.Microsecond))
	}
}

// TestClusterGaplessFeed is the gapless-feed scenario across three nodes: publishers on every
// node, clients reconnecting to random nodes with their last event id.
func TestClusterGaplessFeed(t *testing.T) {
	nodes := startCluster(t, 3, func(c *config.Config) {
		c.QueueSize = 8
		c.MaxConnectionsPerUser = 64
		c.ReplayPage = 7
	})
	runFeedChaos(t, nodes, nil)
}
