package app

import (
	"context"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/testenv"
)

// buses are the buses a cluster test runs on, each against its real broker.
var buses = []string{"redis", "nats", "rabbitmq"}

// busURL returns the URL of a real broker of kind.
func busURL(t testing.TB, kind string) string {
	switch kind {
	case "nats":
		return testenv.NATS(t)
	case "rabbitmq":
		return testenv.RabbitMQ(t)
	}
	return testenv.Redis(t)
}

// startCluster starts n in-process nodes sharing a fresh PostgreSQL schema and a bus channel of
// their own.
func startCluster(t *testing.T, busKind string, n int, mutate func(*config.Config)) []*server {
	t.Helper()
	store, bus, channel := testenv.Postgres(t), busURL(t, busKind), testenv.Name("herald")
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
	for _, bus := range buses {
		t.Run(bus, func(t *testing.T) { testClusterDelivery(t, bus) })
	}
}

func testClusterDelivery(t *testing.T, bus string) {
	nodes := startCluster(t, bus, 3, nil)
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
	for _, bus := range buses {
		t.Run(bus, func(t *testing.T) {
			nodes := startCluster(t, bus, 3, func(c *config.Config) {
				c.QueueSize = 8
				c.MaxConnectionsPerUser = 64
				c.ReplayPage = 7
			})
			runFeedChaos(t, nodes, nil)
		})
	}
}
