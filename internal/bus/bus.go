// Package bus holds what Herald's buses share: the wire format of a message. The buses
// themselves are internal/bus/memory (in process: tests, or several nodes in one process) and
// internal/bus/redis; internal/bus/bustest is the conformance suite they all pass.
//
// A message is JSON, so that an operator can read the channel with a stock client:
//
//	{"v":1,"n":[{"i":42,"u":"alice","s":7,"t":"comment","d":{"text":"hi"},"c":1795452000123456}]}
//	{"v":1,"r":[{"u":"alice","i":[42,43],"read":true,"c":5}]}
//
// n are notifications: i the id, u the stream (the user, "" for a broadcast), s the sequence
// number, t the type, d the data exactly as stored, c the commit time in unix microseconds.
// r are read-state changes: u the user, i the ids (absent with "all":true), read, and c the
// user's unread count after the change.
package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/heraldhq/herald"
)

// Version is the format of the messages this build writes and reads.
const Version = 1

// MaxMessage bounds a message's size: a commit larger than this is sent as several messages
// (some buses refuse large ones: NATS by default above 1 MiB). A single notification larger
// than this is sent alone.
const MaxMessage = 256 << 10

// Message is what a bus message carries.
type Message struct {
	Notifications []herald.Notification
	Reads         []herald.ReadChange
}

// EncodeNotifications turns committed notifications into messages of at most MaxMessage bytes
// each (unless a single notification is larger).
func EncodeNotifications(ns []herald.Notification) [][]byte {
	var msgs [][]byte
	var cur []byte
	open := func() { cur = append(make([]byte, 0, 1024), `{"v":1,"n":[`...) }
	closeMsg := func() { msgs = append(msgs, append(cur, "]}"...)) }
	open()
	count := 0
	for i := range ns {
		item := appendItem(nil, &ns[i])
		if count > 0 && len(cur)+1+len(item)+2 > MaxMessage {
			closeMsg()
			open()
			count = 0
		}
		if count > 0 {
			cur = append(cur, ',')
		}
		cur = append(cur, item...)
		count++
	}
	if count > 0 {
		closeMsg()
	}
	return msgs
}

func appendItem(b []byte, n *herald.Notification) []byte {
	b = append(b, `{"i":`...)
	b = strconv.AppendInt(b, n.ID, 10)
	b = append(b, `,"u":`...)
	b = strconv.AppendQuote(b, n.User)
	b = append(b, `,"s":`...)
	b = strconv.AppendUint(b, n.Seq, 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendQuote(b, n.Type) // types are plain ASCII; quoting costs nothing
	b = append(b, `,"d":`...)
	b = append(b, n.Data...)
	b = append(b, `,"c":`...)
	b = strconv.AppendInt(b, n.CreatedAt.UnixMicro(), 10)
	return append(b, '}')
}

type readJSON struct {
	U    string  `json:"u"`
	I    []int64 `json:"i,omitempty"`
	All  bool    `json:"all,omitempty"`
	Read bool    `json:"read"`
	C    int64   `json:"c"`
}

// EncodeRead makes the message of a read-state change.
func EncodeRead(rc herald.ReadChange) []byte {
	b, _ := json.Marshal(struct {
		V int        `json:"v"`
		R []readJSON `json:"r"`
	}{Version, []readJSON{{U: rc.User, I: rc.IDs, All: rc.All, Read: rc.Read, C: rc.Unread}}})
	return b
}

type message struct {
	V int        `json:"v"`
	R []readJSON `json:"r"`
	N []struct {
		I int64           `json:"i"`
		U *string         `json:"u"`
		S uint64          `json:"s"`
		T string          `json:"t"`
		D json.RawMessage `json:"d"`
		C int64           `json:"c"`
	} `json:"n"`
}

// Decode reads a message. A message of another version, or malformed, is an error: the caller
// drops it (the nodes repair what it carried from the store).
func Decode(b []byte) (Message, error) {
	var m message
	var out Message
	if err := json.Unmarshal(b, &m); err != nil {
		return out, fmt.Errorf("bus: malformed message: %w", err)
	}
	if m.V != Version {
		return out, fmt.Errorf("bus: message version %d, this build reads %d", m.V, Version)
	}
	if len(m.N) > 0 {
		out.Notifications = make([]herald.Notification, len(m.N))
	}
	for i, x := range m.N {
		if x.U == nil || x.S == 0 || x.I <= 0 || x.D == nil {
			return Message{}, errors.New("bus: malformed message: a notification lacks its id, stream, sequence or data")
		}
		out.Notifications[i] = herald.Notification{ID: x.I, User: *x.U, Seq: x.S, Type: x.T, Data: x.D, CreatedAt: time.UnixMicro(x.C).UTC()}
	}
	for _, r := range m.R {
		if r.U == "" || (!r.All && len(r.I) == 0) {
			return Message{}, errors.New("bus: malformed message: a read change lacks its user or ids")
		}
		out.Reads = append(out.Reads, herald.ReadChange{User: r.U, IDs: r.I, All: r.All, Read: r.Read, Unread: r.C})
	}
	return out, nil
}
