package httpapi

import (
	"bytes"
	"slices"
	"strconv"

	"github.com/heraldhq/herald"
)

// A topic publish is a notification per subscriber, each in its own stream with its own id, and
// the hub hands each stream its own event: encoded the ordinary way, each would cost a frame of
// its own (an envelope, two allocations, 0.5 to 1 µs), where a broadcast encodes one frame for
// all. But the frames of one topic publish differ only in the notification's id, the envelope's
// first field: everything else (type, content, data, time, topic, critical) is the draft's.
// So the first frame of a publish is cut around its id into a shared frame, and the others are
// written from it with only their id spliced in, as a broadcast's recipients add only their id
// line. The result is byte for byte what encodeNotification gives (TestSharedFrameEquivalence).

// sharedFrame is the encoding of the notifications that share everything but their id.
type sharedFrame struct {
	n     herald.Notification // the notification it was cut from: what the others must share
	named bool
	// The frame is head, the notification's id in decimal, tail.
	head, tail []byte
}

// newSharedFrame encodes n and cuts the frame around its id. It returns the frame, and the
// shared frame or nil if the frame is not as expected (it always is; the check keeps a change
// of the envelope from splicing ids in the wrong place).
func newSharedFrame(n *herald.Notification, named bool) ([]byte, *sharedFrame) {
	frame := encodeNotification(n, named)
	var scratch [128]byte // what the frame must begin with: on the stack, for a type of up to 64
	head := scratch[:0]
	if named && n.Type != "" {
		head = append(head, "event: "...)
		head = append(head, n.Type...)
		head = append(head, '\n')
	}
	head = append(head, `data: {"id":"`...)
	id := len(head)
	head = strconv.AppendInt(head, n.ID, 10)
	if !bytes.HasPrefix(frame, head) {
		return frame, nil
	}
	sf := &sharedFrame{n: *n, named: named, head: frame[:id:id], tail: frame[len(head):]}
	return frame, sf
}

// shares reports whether n's frame is sf's with n's id.
func (sf *sharedFrame) shares(n *herald.Notification, named bool) bool {
	m := &sf.n
	return named == sf.named && n.Type == m.Type && n.Topic == m.Topic && n.Critical == m.Critical &&
		n.Broadcast() == m.Broadcast() && n.CreatedAt.Equal(m.CreatedAt) &&
		bytes.Equal(n.Data, m.Data) && sameContent(n.Content, m.Content)
}

// append appends the frame of n, which sf shares.
func (sf *sharedFrame) append(dst []byte, n *herald.Notification) []byte {
	dst = append(dst, sf.head...)
	dst = strconv.AppendInt(dst, n.ID, 10)
	return append(dst, sf.tail...)
}

// sameContent reports whether a and b encode alike. The notifications of one publish share one
// Content, so the pointers are usually equal.
func sameContent(a, b *herald.Content) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return a.IsZero() && b.IsZero()
	}
	return a.Title == b.Title && a.Body == b.Body && a.URL == b.URL && a.Icon == b.Icon &&
		a.Avatar == b.Avatar && a.Group == b.Group && slices.Equal(a.Actions, b.Actions)
}

// appendTopicFrame appends the frame of a topic notification, through the shared frame of the
// publish it belongs to: the last one cut, or a new one cut from n. The writers of every stream
// share the last one (the shards' writers, and streams served by their own goroutine), so the
// 18,000 notifications of a publish are encoded about once, whichever stream writes them.
func (a *API) appendTopicFrame(dst []byte, n *herald.Notification, named bool) []byte {
	i := 0
	if named {
		i = 1
	}
	if sf := a.topicFrames[i].Load(); sf != nil && sf.shares(n, named) {
		return sf.append(dst, n)
	}
	frame, sf := newSharedFrame(n, named)
	if sf != nil {
		a.topicFrames[i].Store(sf)
	}
	return append(dst, frame...)
}
