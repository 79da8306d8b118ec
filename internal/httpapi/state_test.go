package httpapi

import (
	"testing"

	"github.com/heraldhq/herald"
)

// TestStateFrame: each kind of state change is its own event, whose data says what changed and
// the counts after it; herald.read keeps the fields it had before seen and archived state.
func TestStateFrame(t *testing.T) {
	tests := []struct {
		name string
		sc   herald.StateChange
		want string
	}{
		{"read", herald.StateChange{Kind: herald.StateRead, IDs: []int64{12, 1 << 53}, On: true, Counts: herald.Counts{Unread: 4, Unseen: 1}},
			"event: herald.read\ndata: {\"ids\":[\"12\",\"9007199254740992\"],\"all\":false,\"read\":true,\"unread\":4,\"unseen\":1}\n\n"},
		{"read all", herald.StateChange{Kind: herald.StateRead, All: true, On: true},
			"event: herald.read\ndata: {\"ids\":[],\"all\":true,\"read\":true,\"unread\":0,\"unseen\":0}\n\n"},
		{"unread, unseen unknown", herald.StateChange{Kind: herald.StateRead, IDs: []int64{3}, Counts: herald.Counts{Unread: 2, Unseen: -1}},
			"event: herald.read\ndata: {\"ids\":[\"3\"],\"all\":false,\"read\":false,\"unread\":2}\n\n"},
		{"seen", herald.StateChange{Kind: herald.StateSeen, On: true, SeenUpTo: 41, Counts: herald.Counts{Unread: 5}},
			"event: herald.seen\ndata: {\"up_to\":\"41\",\"unread\":5,\"unseen\":0}\n\n"},
		{"archived", herald.StateChange{Kind: herald.StateArchived, IDs: []int64{7}, On: true, Counts: herald.Counts{Unread: 1, Unseen: 1}},
			"event: herald.archived\ndata: {\"ids\":[\"7\"],\"all\":false,\"archived\":true,\"unread\":1,\"unseen\":1}\n\n"},
		{"unarchived", herald.StateChange{Kind: herald.StateArchived, IDs: []int64{7}, Counts: herald.Counts{Unread: 2, Unseen: 1}},
			"event: herald.archived\ndata: {\"ids\":[\"7\"],\"all\":false,\"archived\":false,\"unread\":2,\"unseen\":1}\n\n"},
		{"read ones archived", herald.StateChange{Kind: herald.StateArchived, All: true, On: true, Counts: herald.Counts{Unread: 2, Unseen: 1}},
			"event: herald.archived\ndata: {\"ids\":[],\"all\":true,\"archived\":true,\"unread\":2,\"unseen\":1}\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.sc.User = "alice"
			if got := string(StateFrame(tt.sc)); got != tt.want {
				t.Errorf("StateFrame = %q\nwant          %q", got, tt.want)
			}
		})
	}
}
