package bus

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

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
			msgs := EncodeNotifications(ns)
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
		m, err := Decode(EncodeRead(rc))
		if err != nil || len(m.Reads) != 1 || len(m.Notifications) != 0 {
			t.Fatalf("Decode(EncodeRead(%+v)) = %+v, %v", rc, m, err)
		}
		got := m.Reads[0]
		if got.User != rc.User || got.All != rc.All || got.Read != rc.Read || got.Unread != rc.Unread || fmt.Sprint(got.IDs) != fmt.Sprint(rc.IDs) {
			t.Fatalf("round trip: %+v, want %+v", got, rc)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, m := range []string{
		``, `not json`, `{"v":2,"n":[]}`, `{"n":[]}`,
		`{"v":1,"n":[{"i":1,"s":1,"t":"x","d":1,"c":0}]}`, // no stream
		`{"v":1,"n":[{"i":1,"u":"a","s":0,"t":"x","d":1,"c":0}]}`,
		`{"v":1,"n":[{"i":1,"u":"a","s":1,"t":"x","c":0}]}`,
		`{"v":1,"r":[{"read":true,"c":0,"i":[1]}]}`, // no user
		`{"v":1,"r":[{"u":"a","read":true,"c":0}]}`, // no ids, not all
	} {
		if _, err := Decode([]byte(m)); err == nil {
			t.Errorf("Decode(%q) accepted it", m)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, m := range EncodeNotifications(sample(3, 5)) {
		f.Add(m)
	}
	f.Add([]byte(`{"v":1,"n":[{"i":1,"u":"","s":1,"t":"x","d":null,"c":-1}]}`))
	f.Add(EncodeRead(herald.ReadChange{User: "alice", IDs: []int64{1}, Read: true, Unread: 2}))
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
		for _, n := range m.Notifications {
			if n.ID <= 0 || n.Seq == 0 || n.Data == nil {
				t.Fatalf("accepted %+v", n)
			}
		}
	})
}
