// Package bus holds what Herald's buses share: the wire format of a message. The buses
// themselves are internal/bus/memory (in process: tests, or several nodes in one process) and
// internal/bus/redis; internal/bus/bustest is the conformance suite they all pass.
//
// A message is JSON, so that an operator can read the channel with a stock client:
//
//	{"v":2,"o":"9f0c…e1.5a3c01d2","n":[{"i":42,"u":"alice","s":7,"t":"comment","d":{"text":"hi"},"c":1795452000123456}]}
//	{"v":2,"o":"9f0c…e1.5a3c01d2","n":[{"i":43,"u":"","s":3,"t":"release","ct":{"title":"v1.2","url":"/changelog"},"d":null,"c":1795452000123999}]}
//	{"v":2,"o":"9f0c…e1.5a3c01d2","n":[{"i":44,"u":"bob","s":8,"t":"comment","tp":"issue:42","d":{},"c":1795452000124001}]}
//	{"v":2,"o":"9f0c…e1.5a3c01d2","r":[{"u":"alice","i":[42,43],"read":true,"c":5,"cs":1}]}
//	{"v":2,"o":"9f0c…e1.5a3c01d2","s":[{"u":"alice","k":"seen","up":43,"c":5,"cs":0}]}
//	{"v":2,"o":"9f0c…e1.5a3c01d2","s":[{"u":"alice","k":"archived","i":[42],"on":true,"c":4,"cs":0}]}
//	{"v":2,"o":"9f0c…e1.5a3c01d2","p":["alice"]}
//
// o is the origin: the identity and epoch of the store the message's commits belong to
// (herald.Identity.Origin). Sequence numbers only mean something in their store's history, so a
// node drops every message of another origin: another deployment sharing the broker and the
// channel, or a node still running on a history that was replaced.
//
// A message is input from outside this process: Decode checks it as the HTTP API checks a
// publish (user ids, types, content, data) before anything of it reaches a stream.
//
// n are notifications: i the id, u the stream (the user, "" for a broadcast), s the sequence
// number, t the type, ct the content (herald.Content.AppendJSON; absent when it has none), d
// the data exactly as stored, c the commit time in unix microseconds, tp the topic it was
// published to (absent when none), cr true when it is critical (absent otherwise: a node from
// before it takes a critical broadcast for an ordinary one, which a user's mutes may leave out of
// that node's streams until it is upgraded). Content and topics came without a new version: a
// node from before them ignores ct and tp and shows the notification without them until it is
// upgraded, which is what a rolling upgrade costs.
// r are read-state changes: u the user, i the ids (absent with "all":true), read, and the user's
// counts after the change: c unread, cs unseen. s are the other changes of a user's state: k the
// kind, "seen" (up: the user's seen mark after it) or "archived" (i the ids, or "all":true for
// every read one; on: archived, or back in the inbox), and c and cs as in r.
//
// p are users whose preferences changed in the store: their streams reload them. A node from
// before preferences ignores the key.
//
// Read changes keep their own key, and the others have a new one, so that nodes of the same
// version from before seen and archived state (which read r, and ignore keys they do not know)
// keep showing read changes and never take another change for one; they ignore cs too. From
// such a node a read change comes without cs: its unseen count is unknown (-1).
package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald"
)

// Version is the format of the messages this build writes and reads. Version 2 added the origin;
// a node of version 1 and one of version 2 ignore each other's messages (counted as decode
// errors) and deliver each other's commits by resync.
const Version = 2

// MaxMessage bounds a message's size: a commit larger than this is sent as several messages
// (some buses refuse large ones: NATS by default above 1 MiB). A single notification larger
// than this is sent alone.
const MaxMessage = 256 << 10

// Message is what a bus message carries.
type Message struct {
	// Origin is the identity of the store the message comes from (herald.Identity.Origin).
	Origin        string
	Notifications []herald.Notification
	// States are the changes of users' state of notifications, read changes first.
	States []herald.StateChange
	// Preferences are the users whose preferences changed.
	Preferences []string
}

// EncodeNotifications turns notifications committed in the store of origin into messages of at
// most MaxMessage bytes each (unless a single notification is larger).
func EncodeNotifications(origin string, ns []herald.Notification) [][]byte {
	var msgs [][]byte
	var cur []byte
	open := func() {
		cur = append(make([]byte, 0, 1024), `{"v":2,"o":`...)
		cur = strconv.AppendQuote(cur, origin)
		cur = append(cur, `,"n":[`...)
	}
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
	if !n.Content.IsZero() {
		b = append(b, `,"ct":`...)
		b = n.Content.AppendJSON(b)
	}
	if n.Topic != "" {
		b = append(b, `,"tp":`...)
		b = strconv.AppendQuote(b, n.Topic) // topics are plain ASCII, as types are
	}
	b = append(b, `,"d":`...)
	b = append(b, n.Data...)
	b = append(b, `,"c":`...)
	b = strconv.AppendInt(b, n.CreatedAt.UnixMicro(), 10)
	if n.Critical {
		b = append(b, `,"cr":true`...)
	}
	return append(b, '}')
}

type readJSON struct {
	U    string  `json:"u"`
	I    []int64 `json:"i,omitempty"`
	All  bool    `json:"all,omitempty"`
	Read bool    `json:"read"`
	C    int64   `json:"c"`
	CS   *int64  `json:"cs,omitempty"`
}

type stateJSON struct {
	U   string  `json:"u"`
	K   string  `json:"k"`
	I   []int64 `json:"i,omitempty"`
	All bool    `json:"all,omitempty"`
	On  bool    `json:"on,omitempty"`
	Up  int64   `json:"up,omitempty"`
	C   *int64  `json:"c"`
	CS  *int64  `json:"cs"`
}

// kindName names the state changes carried in s.
func kindName(k herald.StateKind) string {
	if k == herald.StateSeen {
		return "seen"
	}
	return "archived"
}

// EncodeState makes the message of a change of a user's state in the store of origin.
func EncodeState(origin string, sc herald.StateChange) []byte {
	m := struct {
		V int         `json:"v"`
		O string      `json:"o"`
		R []readJSON  `json:"r,omitempty"`
		S []stateJSON `json:"s,omitempty"`
	}{V: Version, O: origin}
	if sc.Kind == herald.StateRead {
		var cs *int64
		if sc.Counts.Unseen >= 0 {
			cs = &sc.Counts.Unseen
		}
		m.R = []readJSON{{U: sc.User, I: sc.IDs, All: sc.All, Read: sc.On, C: sc.Counts.Unread, CS: cs}}
	} else {
		m.S = []stateJSON{{U: sc.User, K: kindName(sc.Kind), I: sc.IDs, All: sc.All, On: sc.On, Up: sc.SeenUpTo, C: &sc.Counts.Unread, CS: &sc.Counts.Unseen}}
	}
	b, _ := json.Marshal(m)
	return b
}

// EncodePreferences makes the message that user's preferences changed in the store of origin.
func EncodePreferences(origin, user string) []byte {
	b, _ := json.Marshal(struct {
		V int      `json:"v"`
		O string   `json:"o"`
		P []string `json:"p"`
	}{Version, origin, []string{user}})
	return b
}

type message struct {
	V int         `json:"v"`
	O string      `json:"o"`
	R []readJSON  `json:"r"`
	S []stateJSON `json:"s"`
	P []string    `json:"p"`
	N []struct {
		I  int64           `json:"i"`
		U  *string         `json:"u"`
		S  uint64          `json:"s"`
		T  string          `json:"t"`
		CT *herald.Content `json:"ct"`
		TP *string         `json:"tp"`
		D  json.RawMessage `json:"d"`
		C  int64           `json:"c"`
		CR bool            `json:"cr"`
	} `json:"n"`
}

// Decode reads a message and checks everything in it. A message of another version, malformed,
// or carrying a value the HTTP API would refuse is an error: the caller drops it (the nodes
// repair what it carried from the store). Decode does not judge the origin; the caller compares
// it with its own store's.
func Decode(b []byte) (Message, error) {
	var m message
	var out Message
	if !utf8.Valid(b) {
		return out, errors.New("bus: malformed message: not UTF-8")
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return out, fmt.Errorf("bus: malformed message: %w", err)
	}
	if m.V != Version {
		return out, fmt.Errorf("bus: message version %d, this build reads %d", m.V, Version)
	}
	if !validOrigin(m.O) {
		return out, errors.New("bus: malformed message: no valid origin")
	}
	out.Origin = m.O
	if len(m.N) > 0 {
		out.Notifications = make([]herald.Notification, len(m.N))
	}
	for i, x := range m.N {
		if x.U == nil || x.S == 0 || x.S > herald.MaxSeq || x.I <= 0 || x.D == nil {
			return Message{}, errors.New("bus: malformed message: a notification lacks its id, stream, sequence or data")
		}
		if *x.U != herald.BroadcastStream {
			if err := herald.ValidateUser(*x.U); err != nil {
				return Message{}, fmt.Errorf("bus: malformed message: %w", err)
			}
		}
		if err := herald.ValidateType(x.T); err != nil {
			return Message{}, fmt.Errorf("bus: malformed message: %w", err)
		}
		n := herald.Notification{ID: x.I, User: *x.U, Seq: x.S, Type: x.T, Data: x.D, CreatedAt: time.UnixMicro(x.C).UTC(), Critical: x.CR}
		if x.TP != nil {
			// A topic's notifications are a user's own: a broadcast never has one, and a topic
			// says what the envelope and the inbox show, so it passes the publish's check.
			if *x.U == herald.BroadcastStream {
				return Message{}, errors.New("bus: malformed message: a broadcast with a topic")
			}
			if err := herald.ValidateTopic(*x.TP); err != nil {
				return Message{}, fmt.Errorf("bus: malformed message: %w", err)
			}
			n.Topic = *x.TP
		}
		// What clients put in links and show as text: checked as a publish's content is.
		if err := x.CT.Validate(); err != nil {
			return Message{}, fmt.Errorf("bus: malformed message: content: %w", err)
		}
		if !x.CT.IsZero() {
			n.Content = x.CT
		}
		out.Notifications[i] = n
	}
	for _, r := range m.R {
		if r.U == "" || (!r.All && len(r.I) == 0) {
			return Message{}, errors.New("bus: malformed message: a read change lacks its user or ids")
		}
		if err := checkChange(r.U, r.I, r.C, r.CS); err != nil {
			return Message{}, err
		}
		unseen := int64(-1)
		if r.CS != nil {
			unseen = *r.CS
		}
		out.States = append(out.States, herald.StateChange{User: r.U, Kind: herald.StateRead, IDs: r.I, All: r.All, On: r.Read,
			Counts: herald.Counts{Unread: r.C, Unseen: unseen}})
	}
	for _, x := range m.S {
		if x.C == nil || x.CS == nil {
			return Message{}, errors.New("bus: malformed message: a state change lacks its counts")
		}
		sc := herald.StateChange{User: x.U, IDs: x.I, All: x.All, On: x.On, SeenUpTo: x.Up, Counts: herald.Counts{Unread: *x.C, Unseen: *x.CS}}
		switch x.K {
		case "seen":
			// A seen mark only moves forward, to a notification's id.
			if x.Up <= 0 || len(x.I) > 0 || x.All || !x.On {
				return Message{}, errors.New("bus: malformed message: a seen change needs a positive mark and nothing else")
			}
			sc.Kind = herald.StateSeen
		case "archived":
			// Only archiving covers all (the read ones); bringing back is one by one.
			if x.Up != 0 || (x.All && (len(x.I) > 0 || !x.On)) || (!x.All && len(x.I) == 0) {
				return Message{}, errors.New("bus: malformed message: an archive change needs its ids, or all (archiving)")
			}
			sc.Kind = herald.StateArchived
		default:
			return Message{}, fmt.Errorf("bus: malformed message: unknown state change %q", truncateKind(x.K))
		}
		if err := checkChange(x.U, x.I, *x.C, x.CS); err != nil {
			return Message{}, err
		}
		out.States = append(out.States, sc)
	}
	for _, u := range m.P {
		if err := herald.ValidateUser(u); err != nil {
			return Message{}, fmt.Errorf("bus: malformed message: preferences: %w", err)
		}
		out.Preferences = append(out.Preferences, u)
	}
	return out, nil
}

// checkChange checks what every state change carries: a valid user, positive ids, and counts
// that can be (unseen ones are unread, so at most as many).
func checkChange(user string, ids []int64, unread int64, unseen *int64) error {
	if err := herald.ValidateUser(user); err != nil {
		return fmt.Errorf("bus: malformed message: %w", err)
	}
	for _, id := range ids {
		if id <= 0 {
			return errors.New("bus: malformed message: a state change names an id that is not positive")
		}
	}
	if unread < 0 || (unseen != nil && (*unseen < 0 || *unseen > unread)) {
		return errors.New("bus: malformed message: a state change's counts are negative, or more unseen than unread")
	}
	return nil
}

func truncateKind(k string) string {
	if len(k) > 16 || !utf8.ValidString(k) {
		return "…"
	}
	return k
}

// validOrigin reports whether o has the form of herald.Identity.Origin: "<id>.<epoch>", both hex.
func validOrigin(o string) bool {
	id, epoch, ok := strings.Cut(o, ".")
	if !ok || len(id) < 16 || len(id) > 64 || !herald.ValidEpoch(epoch) {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
