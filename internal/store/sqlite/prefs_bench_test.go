package sqlite

import (
	"context"
	"fmt"
	"testing"

	"github.com/heraldhq/herald"
)

// Preferences on the publish path. Run with:
//
//	go test -run '^$' -bench 'Muted' -benchtime 3s ./internal/store/sqlite/
//
// rules: none (no user has any), "5 each" (every recipient has five rules, none of which mutes
// the draft: the lookup finds and judges them), "10% muted" (as "5 each", and one recipient in
// ten mutes the draft's type).

var muteCases = []string{"none", "5 each", "10% muted"}

// setMuteRules gives users the rules of case c.
func setMuteRules(b *testing.B, s *Store, c string, users []string) {
	if c == "none" {
		return
	}
	for i, u := range users {
		p := herald.Preferences{Mutes: []herald.Mute{
			{Channel: herald.ChannelInApp, Kind: herald.MuteType, Value: "digest"},
			{Channel: herald.ChannelInApp, Kind: herald.MutePrefix, Value: "marketing."},
			{Channel: herald.ChannelInApp, Kind: herald.MuteTopic, Value: "issue:1"},
			{Channel: herald.ChannelPush, Kind: herald.MuteType, Value: "order.shipped"},
			{Channel: herald.ChannelPush, Kind: herald.MutePrefix, Value: "order."},
		}}
		if c == "10% muted" && i%10 == 0 {
			p.Mutes[0].Value = "order.shipped"
		}
		if err := s.SetPreferences(context.Background(), u, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendMuted: a batch of 1000 unicast drafts to 1000 users per op (the rules of all
// recipients are read in 4 statements), and one unicast per op.
func BenchmarkAppendMuted(b *testing.B) {
	for _, c := range muteCases {
		b.Run("batch1000/rules="+c, func(b *testing.B) {
			s := benchStore(b, SyncNormal)
			users := benchUsers(1000)
			setMuteRules(b, s, c, users)
			drafts := make([]herald.Draft, len(users))
			for i := range drafts {
				drafts[i] = herald.Draft{To: users[i : i+1], Type: "order.shipped", Data: benchData}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Append(context.Background(), "bench", drafts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(drafts))/b.Elapsed().Seconds(), "notifications/s")
		})
		b.Run("sequential/rules="+c, func(b *testing.B) {
			s := benchStore(b, SyncNormal)
			users := benchUsers(1000)
			setMuteRules(b, s, c, users)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				d := []herald.Draft{{To: users[i%len(users) : i%len(users)+1], Type: "order.shipped", Data: benchData}}
				if _, err := s.Append(context.Background(), "bench", d); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "acks/s")
		})
	}
}

// BenchmarkPublishTopicMuted: one topic publish per op to 10,000 subscribers, whose rules the
// expansion's statement judges.
func BenchmarkPublishTopicMuted(b *testing.B) {
	const size = 10_000
	for _, c := range muteCases {
		b.Run("rules="+c, func(b *testing.B) {
			s := benchStore(b, SyncNormal)
			users := make([]string, size)
			for i := range users {
				users[i] = fmt.Sprintf("user-%06d", i)
			}
			if _, err := s.Subscribe(context.Background(), "bench", users, herald.TopicLimits{}); err != nil {
				b.Fatal(err)
			}
			setMuteRules(b, s, c, users)
			d := []herald.Draft{{Topic: "bench", Type: "order.shipped", Data: benchData}}
			rows := 0
			for b.Loop() {
				rs, err := s.Append(context.Background(), "bench", d)
				if err != nil {
					b.Fatal(err)
				}
				rows += rs[0].Recipients
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
