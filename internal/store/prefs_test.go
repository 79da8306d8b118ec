package store

import (
	"slices"
	"testing"

	"github.com/heraldhq/herald"
)

// TestResultMuted: what a store keeps of a keyed draft's result reads back as the same receipt,
// muted count included, and a draft that muted nobody keeps the form older versions read.
func TestResultMuted(t *testing.T) {
	ns := []herald.Notification{{ID: 7, User: "bob"}, {ID: 8, User: "carol"}}
	named, topic := &herald.Draft{To: []string{"alice", "bob", "carol"}}, &herald.Draft{Topic: "issue:1"}
	tests := []struct {
		name   string
		d      *herald.Draft
		ns     []herald.Notification
		muted  int
		stored string
		want   herald.Receipt
	}{
		{"named, none muted", named, ns, 0, `[[7,"bob"],[8,"carol"]]`, herald.Receipt{Notifications: ns}},
		{"named, one muted", named, ns, 1, `{"notifications":[[7,"bob"],[8,"carol"]],"muted":1}`, herald.Receipt{Notifications: ns, Muted: 1}},
		{"named, all muted", named, nil, 3, `{"notifications":[],"muted":3}`, herald.Receipt{Notifications: []herald.Notification{}, Muted: 3}},
		{"topic, none muted", topic, ns, 0, `{"recipients":2,"first":7,"last":8}`, herald.Receipt{Recipients: 2, FirstID: 7, LastID: 8}},
		{"topic, some muted", topic, ns, 4, `{"recipients":2,"first":7,"last":8,"muted":4}`, herald.Receipt{Recipients: 2, FirstID: 7, LastID: 8, Muted: 4}},
		{"topic, all muted", topic, nil, 4, `{"recipients":0,"muted":4}`, herald.Receipt{Muted: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Result(tt.d, tt.ns, tt.muted)
			if got != tt.stored {
				t.Fatalf("Result = %s, want %s", got, tt.stored)
			}
			r, err := decodeReceipt(got)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Replayed || r.Muted != tt.want.Muted || r.Recipients != tt.want.Recipients || r.FirstID != tt.want.FirstID || r.LastID != tt.want.LastID || len(r.Notifications) != len(tt.want.Notifications) ||
				(tt.want.Notifications == nil) != (r.Notifications == nil) {
				t.Fatalf("decoded %+v, want %+v", r, tt.want)
			}
			for i := range r.Notifications {
				if r.Notifications[i].ID != tt.want.Notifications[i].ID || r.Notifications[i].User != tt.want.Notifications[i].User {
					t.Fatalf("decoded %+v, want %+v", r.Notifications, tt.want.Notifications)
				}
			}
		})
	}
}

// TestApplyMutes: recipients who muted a draft are dropped from a copy of it and counted;
// critical drafts, broadcasts, topic drafts (muted in their expansion) and replays are left.
func TestApplyMutes(t *testing.T) {
	drafts := []herald.Draft{
		{To: []string{"alice", "bob", "carol"}, Type: "marketing.weekly"},
		{To: []string{"alice"}, Type: "marketing.weekly", Critical: true},
		{Broadcast: true, Type: "marketing.weekly"},
		{To: []string{"alice"}, Type: "security"},
	}
	orig := slices.Clone(drafts[0].To)
	p, err := Resolve("p", drafts, func(string) (Stored, bool, error) { return Stored{}, false, nil })
	if err != nil {
		t.Fatal(err)
	}
	if got := p.MuteCandidates(); !slices.Equal(got, []string{"alice", "bob", "carol"}) {
		t.Fatalf("MuteCandidates = %q", got)
	}
	if got := p.MuteValues(); !slices.Equal(got, []string{"marketing.weekly", "marketing.weekl", "marketing.week", "marketing.wee", "marketing.we", "marketing.w",
		"marketing.", "marketing", "marketin", "marketi", "market", "marke", "mark", "mar", "ma", "m", "security", "securit", "securi", "secur", "secu", "sec", "se", "s"}) {
		t.Fatalf("MuteValues = %q", got)
	}
	p.ApplyMutes(map[string]*herald.Preferences{
		"alice": {Mutes: []herald.Mute{{Channel: herald.ChannelInApp, Kind: herald.MutePrefix, Value: "marketing."}}},
		"carol": {Mutes: []herald.Mute{{Channel: herald.ChannelInApp, Kind: herald.MuteType, Value: "marketing.weekly"}}},
	})
	if !slices.Equal(p.Drafts[0].To, []string{"bob"}) || p.Muted[0] != 2 {
		t.Fatalf("draft 0 to %q, muted %d", p.Drafts[0].To, p.Muted[0])
	}
	if !slices.Equal(drafts[0].To, orig) {
		t.Fatalf("the caller's draft changed: %q", drafts[0].To)
	}
	for i := 1; i < 4; i++ {
		if p.Muted[i] != 0 || !slices.Equal(p.Drafts[i].To, drafts[i].To) {
			t.Fatalf("draft %d to %q, muted %d", i, p.Drafts[i].To, p.Muted[i])
		}
	}
}
