package store

import (
	"testing"

	"github.com/heraldhq/herald"
)

// TestTopicResultSpan: a topic key keeps the span of its notifications' ids for a retry to
// announce them again; a key stored before spans, or with a span that makes no sense, replays
// its count with no span.
func TestTopicResultSpan(t *testing.T) {
	d := &herald.Draft{Topic: "issue:42"}
	tests := []struct {
		name            string
		stored          string
		recipients      int
		firstID, lastID int64
	}{
		{"written now", Result(d, []herald.Notification{{ID: 12}, {ID: 10}, {ID: 11}}, 0), 3, 10, 12},
		{"no one reached", Result(d, nil, 0), 0, 0, 0},
		{"before spans", `{"recipients":2}`, 2, 0, 0},
		{"span backwards", `{"recipients":2,"first":9,"last":3}`, 2, 0, 0},
		{"span negative", `{"recipients":2,"first":-1,"last":3}`, 2, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := decodeReceipt(tt.stored)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Replayed || r.Recipients != tt.recipients || r.FirstID != tt.firstID || r.LastID != tt.lastID || r.Notifications != nil {
				t.Fatalf("%s: %+v, want a replay of %d with span %d-%d", tt.stored, r, tt.recipients, tt.firstID, tt.lastID)
			}
		})
	}
}
