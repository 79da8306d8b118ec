package storetest

import (
	"context"
	"testing"

	"github.com/heraldhq/herald"
)

// testAnnounce: what a retried publish re-reads to announce again (issue 19). Notifications
// reads by ids whatever streams they are in; a replayed topic draft tells the span of its ids,
// and TopicNotifications reads the topic's notifications in it, page by page.
func testAnnounce(t *testing.T, s herald.Store) {
	ctx := context.Background()
	content := &herald.Content{Title: "Hello"}
	d := uni("u", `{"n":1}`, "alice", "bob")
	d.Content = content
	rs := appendOK(t, s, scope, d, bcast("b", `{"n":2}`), uni("u", `{"n":3}`, "carol"))
	var all []herald.Notification
	for _, r := range rs {
		all = append(all, r.Notifications...)
	}

	t.Run("by ids", func(t *testing.T) {
		tests := []struct {
			name string
			ids  []int64
			want []herald.Notification
		}{
			{"none", nil, nil},
			{"all, out of order", []int64{all[3].ID, all[0].ID, all[2].ID, all[1].ID}, all},
			{"a broadcast and a user's", []int64{all[2].ID, all[1].ID}, all[1:3]},
			{"unknown ids left out", []int64{all[0].ID, all[3].ID + 1000, -1}, all[:1]},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.Notifications(ctx, tt.ids)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(tt.want) {
					t.Fatalf("got %d notifications, want %d", len(got), len(tt.want))
				}
				for i := range got {
					sameNotification(t, got[i], tt.want[i])
				}
			})
		}
	})

	t.Run("many ids", func(t *testing.T) {
		// More ids than one statement takes (SQLite bounds its parameters).
		to := make([]string, 600)
		for i := range to {
			to[i] = "many-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		}
		ns := appendOK(t, s, scope, uni("u", `{}`, to...))[0].Notifications
		ids := make([]int64, len(ns))
		for i := range ns {
			ids[len(ns)-1-i] = ns[i].ID
		}
		got, err := s.Notifications(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(ns) {
			t.Fatalf("got %d notifications, want %d", len(got), len(ns))
		}
		for i := range got {
			sameNotification(t, got[i], ns[i])
		}
	})

	t.Run("topic span", func(t *testing.T) {
		subscribe(t, s, "issue:7", "alice", "bob", "carol", "dave")
		td := keyed(topicDraft("issue:7", `{"n":4}`, "carol"), "span")
		first := appendOK(t, s, scope, td)[0].Notifications
		appendOK(t, s, scope, topicDraft("issue:8", `{}`)) // another topic, after it
		again := appendOK(t, s, scope, td)[0]
		if !again.Replayed || again.FirstID != first[0].ID || again.LastID != first[len(first)-1].ID {
			t.Fatalf("replay: replayed %v, span %d-%d; want %d-%d", again.Replayed, again.FirstID, again.LastID, first[0].ID, first[len(first)-1].ID)
		}
		var got []herald.Notification
		for after := again.FirstID - 1; ; {
			page, err := s.TopicNotifications(ctx, "issue:7", after, again.LastID, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			after = page[len(page)-1].ID
		}
		if len(got) != len(first) {
			t.Fatalf("read %d of the topic's notifications, want %d", len(got), len(first))
		}
		for i := range got {
			sameNotification(t, got[i], first[i])
			if got[i].Topic != "issue:7" {
				t.Fatalf("notification %d: topic %q", got[i].ID, got[i].Topic)
			}
		}
		// Same key twice in one request: the second is a replay with the first's span.
		rs := appendOK(t, s, scope, keyed(topicDraft("issue:7", `{}`), "twice"), keyed(topicDraft("issue:7", `{}`), "twice"))
		ns := rs[0].Notifications
		if !rs[1].Replayed || rs[1].FirstID != ns[0].ID || rs[1].LastID != ns[len(ns)-1].ID {
			t.Fatalf("duplicate in a request: %+v", rs[1])
		}
	})

	t.Run("topic without subscribers", func(t *testing.T) {
		td := keyed(topicDraft("nobody", `{}`), "empty")
		appendOK(t, s, scope, td)
		r := appendOK(t, s, scope, td)[0]
		if !r.Replayed || r.Recipients != 0 || r.FirstID != 0 || r.LastID != 0 {
			t.Fatalf("replay of a publish that reached no one: %+v", r)
		}
	})
}
