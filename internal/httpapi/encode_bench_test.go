package httpapi

import (
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/hub"
)

// BenchmarkEncode measures the two halves of putting a notification on the wire: encoding its
// frame, done once per event whatever the number of recipients, and each recipient's part (its
// id line and a copy of the shared frame into its write buffer), done once per delivery.
func BenchmarkEncode(b *testing.B) {
	n := herald.Notification{
		ID: 123456, Seq: 789, User: herald.BroadcastStream, Type: "comment.created",
		Data:      []byte(`{"post":"p-1842","by":"Bob","text":"Nice work on the release notes!","bt":1795000000000000000,"bn":42}`),
		CreatedAt: time.Date(2026, 11, 23, 18, 36, 30, 70424000, time.UTC),
	}
	b.Run("frame", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ev := &hub.Event{Notification: n}
			_ = ev.Frame(true, encodeNotification)
		}
	})
	// The same notification with a title, a body and a link, the usual content.
	withContent := n
	withContent.Content = &herald.Content{Title: "Bob commented on your post", Body: "Nice work on the release notes!\nShip it.",
		URL: "/posts/1842#comment-7", Group: "post:1842:comments"}
	b.Run("frame-with-content", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ev := &hub.Event{Notification: withContent}
			_ = ev.Frame(true, encodeNotification)
		}
	})
	// A recipient of a topic publish: an event of its own, whose frame is the publish's shared
	// frame with its id (frame.go), against encoding its frame as the event's own.
	topic := withContent
	topic.User, topic.Topic = "u17", "post:1842"
	for _, shared := range []bool{false, true} {
		name := "topic-recipient-own-frame"
		if shared {
			name = "topic-recipient-shared-frame"
		}
		b.Run(name, func(b *testing.B) {
			c := &conn{api: &API{epoch: "5a3c01d2"}, named: true, user: "u17"}
			c.park.shard = &shard{}
			b.ReportAllocs()
			for b.Loop() {
				topic.ID++
				topic.Seq = c.pos.User + 1
				ev := &hub.Event{Notification: topic}
				c.buf, c.live = c.buf[:0], c.live[:0]
				if shared {
					_, _ = c.deliver([]*hub.Event{ev})
				} else {
					c.pos.User = topic.Seq
					c.buf = c.appendEvent(c.buf, ev.Frame(c.named, encodeNotification))
				}
			}
		})
	}
	b.Run("per-recipient", func(b *testing.B) {
		ev := &hub.Event{Notification: n}
		events := []*hub.Event{ev}
		c := &conn{api: &API{epoch: "5a3c01d2"}, named: true, pos: herald.Cursor{User: 17, Broadcast: 788}}
		c.park.shard = &shard{} // parked: deliver only buffers
		b.ReportAllocs()
		for b.Loop() {
			c.buf, c.live = c.buf[:0], c.live[:0]
			c.pos.Broadcast = 788
			if gap, _ := c.deliver(events); gap || len(c.buf) == 0 {
				b.Fatal("not delivered")
			}
		}
	})
}
