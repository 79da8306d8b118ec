package hub

import (
	"context"
	"slices"
	"testing"

	"github.com/heraldhq/herald"
)

// TestHoldMergesStreamsInPublishOrder: after the bus resubscribes, a user's notification it lost
// must not be overtaken by a broadcast published after it that the bus brings: the hub holds the
// broadcast until the resync has read the lost notification, then delivers both in id order.
func TestHoldMergesStreamsInPublishOrder(t *testing.T) {
	for _, hold := range []bool{true} {
		store := openStore(t)
		h := newHub(t, Options{Source: store})
		sub := subscribe(t, h, "alice")
		base := append(appendTo(t, store, "alice", 1), appendTo(t, store, herald.BroadcastStream, 1)...)
		h.Publish(base)
		collect(t, sub, 2)

		if hold {
			h.Hold() // the bus (re)subscribed: what it brings waits for the resync
		}
		lost := appendTo(t, store, "alice", 2)                // published while the bus was down
		live := appendTo(t, store, herald.BroadcastStream, 1) // published after: the bus brings it
		h.Publish(live)
		if err := h.Resync(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		evs := collect(t, sub, 3)
		var got, want []int64
		for _, ev := range evs {
			got = append(got, ev.ID)
		}
		for _, n := range append(lost, live...) {
			want = append(want, n.ID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("hold %v: delivered ids %v (%v), want %v", hold, got, describe(evs), want)
		}
	}
}
