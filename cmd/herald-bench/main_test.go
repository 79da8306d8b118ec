package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apptest"
)

// The generator starts its workers as "<itself> worker"; under go test, itself is the test
// binary, which must then be a worker.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		if err := runWorker(); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestScenarios runs each scenario small against a real Herald, in two worker processes, and
// checks that the generator counts what it should: every stream opened, every event delivered
// once, nothing missing.
func TestScenarios(t *testing.T) {
	cfg := apptest.Config(t)
	cfg.MaxConnectionsPerUser = 0
	// Small buffers, so that the stall scenario's stalled streams are cut within a few rounds.
	cfg.MaxPayload, cfg.StreamBuffer = 8<<10, 16<<10
	srv := apptest.Start(t, cfg)
	base := options{
		targets: []string{srv.URL}, publishTo: srv.URL, pids: []int{os.Getpid()}, name: "test",
		streams: 60, users: 60, sources: 2, perProcess: 40, dials: 8, settle: 100 * time.Millisecond,
		rounds: 3, interval: 50 * time.Millisecond, rate: 200, duration: time.Second,
		publishers: 4,
	}
	tests := []struct {
		scenario string
		mutate   func(*options)
		check    func(t *testing.T, r *result)
	}{
		{"idle", nil, func(t *testing.T, r *result) {
			if r.KBPerStream == 0 && r.RSSAfterMB == 0 {
				t.Error("no memory figures")
			}
		}},
		{"broadcast", nil, func(t *testing.T, r *result) {
			if want := 60 * 3; r.Delivered != want {
				t.Errorf("delivered %d, want %d", r.Delivered, want)
			}
			if len(r.LastDeliveryMs) != 3 {
				t.Errorf("last delivery of %d rounds, want 3", len(r.LastDeliveryMs))
			}
		}},
		{"unicast", nil, func(t *testing.T, r *result) {
			if r.Published < 50 || r.Delivered != r.Published {
				t.Errorf("published %d, delivered %d", r.Published, r.Delivered)
			}
		}},
		{"stall", func(o *options) { o.stallEvery, o.payload, o.rounds = 10, 4<<10, 40 }, func(t *testing.T, r *result) {
			if r.Stalled != 6 || r.StalledCut != 6 || r.ServerSlowCuts != 6 || r.StalledResumed != 6 {
				t.Errorf("stalled %d, cut %d (the server counted %v), resumed %d; want 6 each", r.Stalled, r.StalledCut, r.ServerSlowCuts, r.StalledResumed)
			}
			if r.StalledMissing+r.StalledDuplicate > 0 {
				t.Errorf("the stalled streams, resumed, missed %d and got %d twice", r.StalledMissing, r.StalledDuplicate)
			}
			if want := 54 * 40; r.Delivered != want {
				t.Errorf("delivered %d to the steady streams, want %d", r.Delivered, want)
			}
		}},
		{"storm", func(o *options) { o.storm.handshakes, o.storm.wait = 8, 30*time.Second }, func(t *testing.T, r *result) {
			st := r.Storm
			if st == nil || st.AwayEvents != 4 || r.Delivered != 60*4 {
				t.Fatalf("storm result %+v, delivered %d; want 4 events caught up by each of 60 streams", st, r.Delivered)
			}
			if st.ReconnectAllSec <= 0 || st.CaughtUpAllSec < st.CaughtUp.P50/1000 || st.NotCaughtUp+st.Reordered+st.ResumeFailed > 0 {
				t.Errorf("storm result %+v", st)
			}
		}},
		{"publish", func(o *options) { o.batch = 10 }, func(t *testing.T, r *result) {
			if r.Published == 0 || r.Published%10 != 0 || r.AckLatency == nil {
				t.Errorf("published %d in batches of 10, latency %v", r.Published, r.AckLatency)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			o := base
			if tt.mutate != nil {
				tt.mutate(&o)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			r, err := run(ctx, o, tt.scenario)
			if err != nil {
				t.Fatal(err)
			}
			if tt.scenario != "publish" && r.Open != o.streams {
				t.Errorf("opened %d of %d", r.Open, o.streams)
			}
			if r.Missing+r.Duplicate+r.Unexpected+r.Closed > 0 {
				t.Errorf("missing %d, duplicate %d, unexpected %d, closed %d", r.Missing, r.Duplicate, r.Unexpected, r.Closed)
			}
			tt.check(t, r)
		})
	}
}
