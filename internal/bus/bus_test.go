package bus

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald"
)

func sample(n, size int) []herald.Notification {
	ns := make([]herald.Notification, n)
	for i := range ns {
		user := fmt.Sprintf("user-%d \"quoted\" é", i%7)
		if i%5 == 0 {
			user = herald.BroadcastStream
		}
		ns[i] = herald.Notification{ID: int64(1000 + i), User: user, Seq: uint64(i + 1), Type: "comment.created",
			Data:      json.RawMessage(`{"text":"` + strings.Repeat("x", size) + `","n":` + fmt.Sprint(i) + `}`),
			CreatedAt: time.UnixMicro(1795452000123456 + int64(i)).UTC()}
	}
	return ns
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		n, size  int
		wantMsgs int
	}{
		{"one", 1, 10, 1},
		{"small batch", 100, 10, 1},
		{"split", 1000, 1000, 5}, // about 1 MB: four full messages and a rest
		{"one larger than a message", 1, MaxMessage + 100, 1},
		{"none", 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := sample(tt.n, tt.size)
			msgs := EncodeNotifications(testOrigin, ns)
			if len(msgs) != tt.wantMsgs {
				t.Fatalf("%d messages, want %d", len(msgs), tt.wantMsgs)
			}
			var got []herald.Notification
			for _, m := range msgs {
				if len(m) > MaxMessage && tt.size < MaxMessage {
					t.Fatalf("a message of %d bytes", len(m))
				}
				part, err := Decode(m)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				got = append(got, part.Notifications...)
			}
			if len(got) != len(ns) {
				t.Fatalf("%d notifications back, want %d", len(got), len(ns))
			}
			for i := range ns {
				w, g := ns[i], got[i]
				if g.ID != w.ID || g.User != w.User || g.Seq != w.Seq || g.Type != w.Type || string(g.Data) != string(w.Data) || !g.CreatedAt.Equal(w.CreatedAt) {
					t.Fatalf("notification %d: got %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestReadRoundTrip(t *testing.T) {
	for _, rc := range []herald.ReadChange{
		{User: "alice", IDs: []int64{4, 5}, Read: true, Unread: 3},
		{User: "bob", All: true, Read: true},
		{User: "carol", IDs: []int64{9}, Read: false, Unread: 1},
	} {
		m, err := Decode(EncodeRead(testOrigin, rc))
		if err != nil || len(m.Reads) != 1 || len(m.Notifications) != 0 {
			t.Fatalf("Decode(EncodeRead(%+v)) = %+v, %v", rc, m, err)
		}
		got := m.Reads[0]
		if got.User != rc.User || got.All != rc.All || got.Read != rc.Read || got.Unread != rc.Unread || fmt.Sprint(got.IDs) != fmt.Sprint(rc.IDs) {
			t.Fatalf("round trip: %+v, want %+v", got, rc)
		}
	}
}

// testOrigin is a store's origin as herald.Identity.Origin writes it.
const testOrigin = "0123456789abcdef0123456789abcdef.5a3c01d2"

func TestDecodeRefuses(t *testing.T) {
	const o = `"o":"` + testOrigin + `"`
	tests := []struct{ name, msg string }{
		{"empty", ``},
		{"not json", `not json`},
		{"no version", `{` + o + `,"n":[]}`},
		{"version 1", `{"v":1,"n":[{"i":1,"u":"a","s":1,"t":"x","d":1,"c":0}]}`},
		{"unknown version", `{"v":3,` + o + `,"n":[{"i":1,"u":"a","s":1,"t":"x","d":1,"c":0}]}`},
		{"no origin", `{"v":2,"n":[{"i":1,"u":"a","s":1,"t":"x","d":1,"c":0}]}`},
		{"origin without epoch", `{"v":2,"o":"0123456789abcdef0123456789abcdef","n":[]}`},
		{"origin not hex", `{"v":2,"o":"0123456789abcdeX0123456789abcdef.5a3c01d2","n":[]}`},
		{"origin too short", `{"v":2,"o":"0123.5a3c01d2","n":[]}`},
		{"no stream", `{"v":2,` + o + `,"n":[{"i":1,"s":1,"t":"x","d":1,"c":0}]}`},
		{"sequence 0", `{"v":2,` + o + `,"n":[{"i":1,"u":"a","s":0,"t":"x","d":1,"c":0}]}`},
		{"sequence past MaxSeq", `{"v":2,` + o + `,"n":[{"i":1,"u":"a","s":9223372036854775808,"t":"x","d":1,"c":0}]}`},
		{"no data", `{"v":2,` + o + `,"n":[{"i":1,"u":"a","s":1,"t":"x","c":0}]}`},
		{"id 0", `{"v":2,` + o + `,"n":[{"i":0,"u":"a","s":1,"t":"x","d":1,"c":0}]}`},
		{"user with a control character", `{"v":2,` + o + `,"n":[{"i":1,"u":"a\u0007b","s":1,"t":"x","d":1,"c":0}]}`},
		{"user too long", `{"v":2,` + o + `,"n":[{"i":1,"u":"` + strings.Repeat("a", herald.MaxUserLen+1) + `","s":1,"t":"x","d":1,"c":0}]}`},
		{"type with a line break", `{"v":2,` + o + `,"n":[{"i":1,"u":"a","s":1,"t":"x\ny","d":1,"c":0}]}`},
		{"empty type", `{"v":2,` + o + `,"n":[{"i":1,"u":"a","s":1,"t":"","d":1,"c":0}]}`},
		{"reserved type", `{"v":2,` + o + `,"n":[{"i":1,"u":"a","s":1,"t":"herald.missed","d":1,"c":0}]}`},
		{"data not UTF-8", "{\"v\":2," + o + ",\"n\":[{\"i\":1,\"u\":\"a\",\"s\":1,\"t\":\"x\",\"d\":\"\xff\",\"c\":0}]}"},
		{"read without user", `{"v":2,` + o + `,"r":[{"read":true,"c":0,"i":[1]}]}`},
		{"read without ids", `{"v":2,` + o + `,"r":[{"u":"a","read":true,"c":0}]}`},
		{"read of id 0", `{"v":2,` + o + `,"r":[{"u":"a","read":true,"c":0,"i":[0]}]}`},
		{"read of a bad user", `{"v":2,` + o + `,"r":[{"u":"a\nb","read":true,"c":0,"i":[1]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if m, err := Decode([]byte(tt.msg)); err == nil {
				t.Errorf("Decode(%q) accepted it: %+v", tt.msg, m)
			}
		})
	}
}

func TestDecodeOrigin(t *testing.T) {
	m, err := Decode(EncodeNotifications(testOrigin, sample(1, 1))[0])
	if err != nil || m.Origin != testOrigin {
		t.Fatalf("Decode: origin %q, %v; want %q", m.Origin, err, testOrigin)
	}
	m, err = Decode(EncodeRead(testOrigin, herald.ReadChange{User: "a", All: true, Read: true}))
	if err != nil || m.Origin != testOrigin {
		t.Fatalf("Decode of a read change: origin %q, %v; want %q", m.Origin, err, testOrigin)
	}
}

func FuzzDecode(f *testing.F) {
	for _, m := range EncodeNotifications(testOrigin, sample(3, 5)) {
		f.Add(m)
	}
	f.Add([]byte(`{"v":2,"o":"` + testOrigin + `","n":[{"i":1,"u":"","s":1,"t":"x","d":null,"c":-1}]}`))
	f.Add(EncodeRead(testOrigin, herald.ReadChange{User: "alice", IDs: []int64{1}, Read: true, Unread: 2}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		for _, r := range m.Reads {
			if r.User == "" || (!r.All && len(r.IDs) == 0) {
				t.Fatalf("accepted %+v", r)
			}
		}
		if !validOrigin(m.Origin) {
			t.Fatalf("accepted origin %q", m.Origin)
		}
		for _, r := range m.Reads {
			if herald.ValidateUser(r.User) != nil {
				t.Fatalf("accepted user %q", r.User)
			}
		}
		for _, n := range m.Notifications {
			if n.ID <= 0 || n.Seq == 0 || n.Data == nil || !utf8.Valid(n.Data) {
				t.Fatalf("accepted %+v", n)
			}
			if (n.User != "" && herald.ValidateUser(n.User) != nil) || herald.ValidateType(n.Type) != nil {
				t.Fatalf("accepted user %q type %q", n.User, n.Type)
			}
		}
	})
}
