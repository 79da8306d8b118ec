package httpapi

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/hub"
)

// randomPublish returns a topic notification with random shared fields: type, content (with
// characters JSON must escape, line breaks, actions), data (sometimes not compact: line breaks
// split an SSE data field), time, topic, critical.
func randomPublish(r *rand.Rand) herald.Notification {
	pick := func(vs ...string) string { return vs[r.IntN(len(vs))] }
	n := herald.Notification{
		Type:      pick("notification", "comment.created", "a", "x:y-z_1.2"),
		Data:      []byte(pick(`{}`, `null`, `{"a":1,"b":"c\"d"}`, `[1,2,3]`, "{\"a\":\n1}", `"\u2028<>&"`)),
		CreatedAt: time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(time.FixedZone("x", r.IntN(3600))),
		Topic:     pick("issue:42", "org/acme", "t"),
		Critical:  r.IntN(2) == 0,
	}
	if r.IntN(3) > 0 {
		c := &herald.Content{Title: pick("", "Bob commented", `quote " and \ slash`), Body: pick("", "line\nbreak", "tab\tand \u00e9"),
			URL: pick("", "/posts/1#c", "https://example.com/a?b=c&d"), Icon: pick("", "/i.png"), Avatar: pick("", "https://a.example/b.png"),
			Group: pick("", "post:1:comments")}
		for range r.IntN(3) {
			c.Actions = append(c.Actions, herald.Action{Label: pick("Open", "Reply \"now\""), URL: pick("/a", "/b")})
		}
		n.Content = c
	}
	return n
}

// recipient is n for another subscriber: its own id, stream and sequence number. Sometimes it
// carries copies of the shared fields (as notifications read back from a bus or the store do),
// and sometimes one of them differs, which must not share the frame.
func recipient(r *rand.Rand, n herald.Notification) herald.Notification {
	n.ID = r.Int64N(1 << 62)
	if r.IntN(10) == 0 {
		n.ID = r.Int64N(10)
	}
	n.User = fmt.Sprintf("u%d", r.IntN(1000))
	n.Seq = r.Uint64N(1 << 40)
	if r.IntN(4) == 0 {
		n.Data = bytes.Clone(n.Data)
		if n.Content != nil {
			c := *n.Content
			n.Content = &c
		}
	}
	switch r.IntN(20) {
	case 0:
		n.Type += "2"
	case 1:
		n.Data = []byte(`{"other":true}`)
	case 2:
		n.CreatedAt = n.CreatedAt.Add(time.Nanosecond)
	case 3:
		n.Topic += "2"
	case 4:
		n.Critical = !n.Critical
	case 5:
		c := herald.Content{Title: "other"}
		if n.Content != nil {
			c = *n.Content
			c.Actions = append(c.Actions[:len(c.Actions):len(c.Actions)], herald.Action{Label: "More", URL: "/m"})
		}
		n.Content = &c
	case 6:
		n.Content = &herald.Content{} // no field: encodes as no content
	case 7:
		n.User = herald.BroadcastStream
	}
	return n
}

// TestSharedFrameEquivalence: a topic notification written through the shared frame of its
// publish is byte for byte the frame encodeNotification gives it, for random notifications,
// interleaved publishes, and recipients whose fields differ from the frame's.
func TestSharedFrameEquivalence(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	a := &API{}
	for range 300 {
		pubs := []herald.Notification{randomPublish(r), randomPublish(r)}
		for range 50 {
			n := recipient(r, pubs[r.IntN(len(pubs))])
			for _, named := range []bool{false, true} {
				prefix := []byte("id: 1.2\n")
				got := a.appendTopicFrame(bytes.Clone(prefix), &n, named)
				want := append(bytes.Clone(prefix), encodeNotification(&n, named)...)
				if !bytes.Equal(got, want) {
					t.Fatalf("named %v, notification %+v (content %+v):\n got %q\nwant %q", named, n, n.Content, got, want)
				}
				// The next recipient of the same publish takes the shared path.
				i := map[bool]int{false: 0, true: 1}[named]
				if sf := a.topicFrames[i].Load(); sf == nil || !sf.shares(&n, named) {
					t.Fatalf("no shared frame kept for %+v", n)
				}
			}
		}
	}
}

// TestSharedFrameAllocs: a recipient of a publish whose frame is shared costs no allocation.
func TestSharedFrameAllocs(t *testing.T) {
	a := &API{}
	n := randomPublish(rand.New(rand.NewPCG(5, 6)))
	n.ID, n.User, n.Seq = 1, "u1", 1
	buf := a.appendTopicFrame(nil, &n, true)
	if allocs := testing.AllocsPerRun(100, func() {
		n.ID++
		buf = a.appendTopicFrame(buf[:0], &n, true)
	}); allocs != 0 {
		t.Errorf("%v allocations per recipient, want 0", allocs)
	}
}

// TestDeliverTopicFrames: a stream delivers topic notifications as it delivers the others, id
// lines, type filter and unnamed streams included.
func TestDeliverTopicFrames(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	a := &API{epoch: "5a3c01d2"}
	for range 200 {
		named := r.IntN(2) == 0
		var filter map[string]bool
		if r.IntN(2) == 0 {
			filter = map[string]bool{"comment.created": true, "a": true}
		}
		c := &conn{api: a, user: "u1", named: named, filter: filter, pos: herald.Cursor{User: 10, Broadcast: 3}}
		c.park.shard = &shard{} // parked: deliver only buffers
		pub := randomPublish(r)
		var events []*hub.Event
		want := []byte(nil)
		pos := c.pos
		for i := range 20 {
			n := recipient(r, pub)
			if n.User == herald.BroadcastStream {
				n.User = "other"
			}
			n.User, n.Seq = "u1", uint64(11+i)
			if r.IntN(4) == 0 {
				n.Topic = "" // addressed by name: the ordinary path
			}
			events = append(events, &hub.Event{Notification: n})
			pos.User = n.Seq
			if filter == nil || filter[n.Type] {
				want = append(want, "id: "...)
				want = pos.AppendIn(want, a.epoch)
				want = append(want, '\n')
				want = append(want, encodeNotification(&n, named)...)
			}
		}
		if gap, err := c.deliver(events); gap || err != nil {
			t.Fatalf("deliver: gap %v, err %v", gap, err)
		}
		if !bytes.Equal(c.buf, want) {
			t.Fatalf("named %v, filter %v:\n got %q\nwant %q", named, filter, c.buf, want)
		}
	}
}

// FuzzSharedFrame holds the shared frame to encodeNotification for any notification, and for
// a second one that shares the first's fields but its id.
func FuzzSharedFrame(f *testing.F) {
	f.Add("comment.created", `{"a":1}`, "issue:42", "title", "body\nline", int64(7), int64(1234), int64(1e9), true, true)
	f.Add("", "", "", "", "", int64(0), int64(-1), int64(0), false, false)
	f.Fuzz(func(t *testing.T, typ, data, topic, title, body string, id1, id2, unixNano int64, critical, named bool) {
		n := herald.Notification{ID: id1, User: "u", Seq: 1, Type: typ, Data: []byte(data), Topic: topic,
			CreatedAt: time.Unix(0, unixNano), Critical: critical}
		if title != "" || body != "" {
			n.Content = &herald.Content{Title: title, Body: body}
		}
		a := &API{}
		m := n
		m.ID = id2
		for _, x := range []*herald.Notification{&n, &m} {
			if got, want := a.appendTopicFrame(nil, x, named), encodeNotification(x, named); !bytes.Equal(got, want) {
				t.Fatalf("got %q\nwant %q", got, want)
			}
		}
	})
}
