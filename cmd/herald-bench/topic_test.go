package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apptest"
)

// TestTopicScenario runs the topic scenario small against a real Herald: every stream's user
// and more are subscribed, and every stream gets every round once.
func TestTopicScenario(t *testing.T) {
	cfg := apptest.Config(t)
	cfg.MaxConnectionsPerUser = 0
	srv := apptest.Start(t, cfg)
	o := options{
		targets: []string{srv.URL}, publishTo: srv.URL, pids: []int{os.Getpid()}, name: "test",
		streams: 60, users: 30, sources: 2, perProcess: 40, dials: 8, settle: 100 * time.Millisecond,
		rounds: 3, interval: 50 * time.Millisecond, topicSubscribers: 200,
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := run(ctx, o, "topic")
	if err != nil {
		t.Fatal(err)
	}
	if r.Open != o.streams || r.Delivered != 60*3 || len(r.LastDeliveryMs) != 3 {
		t.Errorf("opened %d, delivered %d, %d rounds; want 60, 180, 3", r.Open, r.Delivered, len(r.LastDeliveryMs))
	}
	if r.Missing+r.Duplicate+r.Unexpected+r.Closed > 0 {
		t.Errorf("missing %d, duplicate %d, unexpected %d, closed %d", r.Missing, r.Duplicate, r.Unexpected, r.Closed)
	}
}
