package hub

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
)

// sized is a notification of stream whose event costs exactly size bytes of buffer.
func sized(stream string, seq uint64, size int) herald.Notification {
	n := fake(stream, seq)
	n.Data = json.RawMessage(`"` + strings.Repeat("x", size-eventOverhead-len(n.Type)-2) + `"`)
	return n
}

// TestBufferBytes: a subscription's buffer is bounded in bytes: what is queued, what is held
// back for it, and what its owner took and its client has not (Unwritten). An event that does
// not fit overflows the queue, which is dropped.
func TestBufferBytes(t *testing.T) {
	const budget, size = 10 << 10, 1 << 10
	tests := []struct {
		name      string
		unwritten int // reported by the owner before the events come
		events    int
		sizeOf    int
		overflow  bool
	}{
		{"fits exactly", 0, budget / size, size, false},
		{"one byte too many", 0, budget / size, size + 1, true},
		{"what the client has not taken counts", 3 * size, budget/size - 2, size, true},
		{"and leaves room when taken", 3 * size, budget/size - 3, size, false},
		{"an event larger than the buffer fits alone", 0, 1, 2 * budget, false},
		{"but not beside anything", 1, 1, 2 * budget, true},
		{"nor after another", 0, 2, budget, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHub(t, Options{GapTimeout: never, QueueSize: 1000, BufferBytes: budget})
			sub := subscribe(t, h, "alice")
			sub.Unwritten(tt.unwritten)
			for seq := uint64(1); seq <= uint64(tt.events); seq++ {
				h.Publish([]herald.Notification{sized("alice", seq, tt.sizeOf)})
			}
			evs, overflowed := sub.Take(nil)
			if overflowed != tt.overflow {
				t.Fatalf("overflowed = %v, want %v", overflowed, tt.overflow)
			}
			want := seqRange(1, uint64(tt.events))
			if tt.overflow {
				want = nil // dropped: the store has them
			}
			if got := seqs(evs, "alice"); !slices.Equal(got, want) {
				t.Fatalf("took %v, want %v", got, want)
			}
		})
	}
}

// TestHeldEventsCountAgainstTheBuffer: events held back for a subscription (its other stream
// waits for a gap) are part of its buffer: beyond it they go to the queue, which overflows.
func TestHeldEventsCountAgainstTheBuffer(t *testing.T) {
	const budget, size = 10 << 10, 1 << 10
	h := newHub(t, Options{GapTimeout: never, QueueSize: 1000, BufferBytes: budget})
	sub := subscribe(t, h, "alice")
	h.Publish([]herald.Notification{fake("alice", 1), fake("alice", 3)}) // alice's #2 is missing
	take(sub)
	// Broadcasts after alice's #3 are held back for her, until they fill her buffer.
	for seq := uint64(1); seq <= budget/size+1; seq++ {
		n := sized(herald.BroadcastStream, seq, size)
		n.ID = int64(100 + seq)
		h.Publish([]herald.Notification{n})
	}
	if _, overflowed := sub.Take(nil); !overflowed {
		t.Fatal("held broadcasts beyond the buffer did not overflow it")
	}
}

// TestEventSizeCountsContent: a notification's content fields are part of what its frame costs a
// stream's buffer, so a title and body cannot slip past the byte budget.
func TestEventSizeCountsContent(t *testing.T) {
	plain := &Event{Notification: herald.Notification{Type: "t", Data: []byte(`{}`)}}
	c := &herald.Content{Title: strings.Repeat("t", 200), Body: strings.Repeat("b", 2000)}
	rich := &Event{Notification: herald.Notification{Type: "t", Data: []byte(`{}`), Content: c}}
	if got, want := rich.Size()-plain.Size(), c.Size(); got != want || want < 2200 {
		t.Fatalf("content adds %d bytes to an event's size, want %d (>= 2200)", got, want)
	}
}
