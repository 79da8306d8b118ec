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
		if i%3 == 1 {
			ns[i].Content = &herald.Content{Title: fmt.Sprintf("n°%d", i), Body: "<b>a</b>\n\"b\"", URL: "https://example.com/x",
				Icon: "/i.png", Avatar: "/a.png", Actions: []herald.Action{{Label: "Open", URL: "/o"}}, Group: "post:1"}
		}
		if i%4 == 2 && user != herald.BroadcastStream {
			ns[i].Topic = fmt.Sprintf("org/acme/issue:%d", i)
		}
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
				if g.ID != w.ID || g.User != w.User || g.Seq != w.Seq || g.Type != w.Type || string(g.Data) != string(w.Data) || !g.CreatedAt.Equal(w.CreatedAt) ||
					string(g.Content.AppendJSON(nil)) != string(w.Content.AppendJSON(nil)) || g.Topic != w.Topic {
					t.Fatalf("notification %d: got %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestStateRoundTrip(t *testing.T) {
	for _, sc := range []herald.StateChange{
		{User: "alice", Kind: herald.StateRead, IDs: []int64{4, 5}, On: true, Counts: herald.Counts{Unread: 3, Unseen: 1}},
		{User: "bob", Kind: herald.StateRead, All: true, On: true},
		{User: "carol", Kind: herald.StateRead, IDs: []int64{9}, Counts: herald.Counts{Unread: 1, Unseen: 1}},
		{User: "dave", Kind: herald.StateRead, IDs: []int64{9}, Counts: herald.Counts{Unread: 1, Unseen: -1}},
		{User: "alice", Kind: herald.StateSeen, On: true, SeenUpTo: 1 << 40, Counts: herald.Counts{Unread: 3}},
		{User: "alice", Kind: herald.StateArchived, IDs: []int64{7}, On: true, Counts: herald.Counts{Unread: 2, Unseen: 2}},
		{User: "alice", Kind: herald.StateArchived, IDs: []int64{7, 8}, Counts: herald.Counts{Unread: 4, Unseen: 1}},
		{User: "bob", Kind: herald.StateArchived, All: true, On: true, Counts: herald.Counts{Unread: 4, Unseen: 1}},
	} {
		m, err := Decode(EncodeState(testOrigin, sc))
		if err != nil || len(m.States) != 1 || len(m.Notifications) != 0 {
			t.Fatalf("Decode(EncodeState(%+v)) = %+v, %v", sc, m, err)
		}
		if got := m.States[0]; fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", sc) {
			t.Fatalf("round trip: %+v, want %+v", got, sc)
		}
	}
}

// TestStateForOlderNodes: nodes of version 2 from before seen and archived state read only r
// (and ignore keys they do not know). They must get read changes as before, and nothing else
// must look like one to them.
func TestStateForOlderNodes(t *testing.T) {
	type older struct {
		R []struct {
			U    string  `json:"u"`
			I    []int64 `json:"i"`
			All  bool    `json:"all"`
			Read bool    `json:"read"`
			C    int64   `json:"c"`
		} `json:"r"`
	}
	read := herald.StateChange{User: "alice", Kind: herald.StateRead, IDs: []int64{4}, On: true, Counts: herald.Counts{Unread: 3, Unseen: 1}}
	var m older
	if err := json.Unmarshal(EncodeState(testOrigin, read), &m); err != nil || len(m.R) != 1 || m.R[0].U != "alice" || !m.R[0].Read || m.R[0].C != 3 {
		t.Fatalf("an older node reads a read change as %+v, %v", m, err)
	}
	for _, sc := range []herald.StateChange{
		{User: "alice", Kind: herald.StateSeen, On: true, SeenUpTo: 4},
		{User: "alice", Kind: herald.StateArchived, IDs: []int64{4}, On: false},
	} {
		var m older
		if err := json.Unmarshal(EncodeState(testOrigin, sc), &m); err != nil || len(m.R) != 0 {
			t.Fatalf("an older node reads %+v as %+v, %v; want no read change", sc, m, err)
		}
	}
	// And a read change of theirs, without cs, has an unknown unseen count here.
	got, err := Decode([]byte(`{"v":2,"o":"` + testOrigin + `","r":[{"u":"alice","i":[4],"read":true,"c":3}]}`))
	if err != nil || len(got.States) != 1 || got.States[0].Counts != (herald.Counts{Unread: 3, Unseen: -1}) {
		t.Fatalf("an older node's read change decodes as %+v, %v; want unseen -1", got, err)
	}
}

// testOrigin is a store's origin as herald.Identity.Origin writes it.
const testOrigin = "0123456789abcdef0123456789abcdef.5a3c01d2"

// TestPreferencesAndCritical: a change of preferences names its user, and a critical
// notification says so; one that is not critical is encoded as before the flag existed.
func TestPreferencesAndCritical(t *testing.T) {
	m, err := Decode(EncodePreferences(testOrigin, "alice"))
	if err != nil || m.Origin != testOrigin || len(m.Preferences) != 1 || m.Preferences[0] != "alice" || len(m.Notifications) != 0 || len(m.States) != 0 {
		t.Fatalf("Decode(EncodePreferences) = %+v, %v", m, err)
	}
	ns := sample(2, 10)
	ns[0].Critical = true
	msgs := EncodeNotifications(testOrigin, ns)
	if strings.Count(string(msgs[0]), `"cr"`) != 1 {
		t.Fatalf("message %s: want one critical flag", msgs[0])
	}
	m, err = Decode(msgs[0])
	if err != nil || !m.Notifications[0].Critical || m.Notifications[1].Critical {
		t.Fatalf("Decode = %+v, %v", m.Notifications, err)
	}
}

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
		{"preferences of an empty user", `{"v":2,` + o + `,"p":[""]}`},
		{"preferences of a bad user", `{"v":2,` + o + `,"p":["a\u202eb"]}`},
		{"read with a negative count", `{"v":2,` + o + `,"r":[{"u":"a","read":true,"c":-1,"i":[1]}]}`},
		{"read with more unseen than unread", `{"v":2,` + o + `,"r":[{"u":"a","read":true,"c":1,"cs":2,"i":[1]}]}`},
		{"state of an unknown kind", `{"v":2,` + o + `,"s":[{"u":"a","k":"snoozed","i":[1],"on":true,"c":0,"cs":0}]}`},
		{"read as a state", `{"v":2,` + o + `,"s":[{"u":"a","k":"read","i":[1],"on":true,"c":0,"cs":0}]}`},
		{"state without a kind", `{"v":2,` + o + `,"s":[{"u":"a","i":[1],"on":true,"c":0,"cs":0}]}`},
		{"state without user", `{"v":2,` + o + `,"s":[{"k":"archived","i":[1],"on":true,"c":0,"cs":0}]}`},
		{"state of a bad user", `{"v":2,` + o + `,"s":[{"u":"a\u202eb","k":"archived","i":[1],"on":true,"c":0,"cs":0}]}`},
		{"state without counts", `{"v":2,` + o + `,"s":[{"u":"a","k":"archived","i":[1],"on":true}]}`},
		{"state without unseen", `{"v":2,` + o + `,"s":[{"u":"a","k":"archived","i":[1],"on":true,"c":1}]}`},
		{"state with negative counts", `{"v":2,` + o + `,"s":[{"u":"a","k":"archived","i":[1],"on":true,"c":-1,"cs":-1}]}`},
		{"state with more unseen than unread", `{"v":2,` + o + `,"s":[{"u":"a","k":"seen","up":3,"on":true,"c":1,"cs":2}]}`},
		{"seen without a mark", `{"v":2,` + o + `,"s":[{"u":"a","k":"seen","on":true,"c":0,"cs":0}]}`},
		{"seen of mark 0", `{"v":2,` + o + `,"s":[{"u":"a","k":"seen","up":0,"on":true,"c":0,"cs":0}]}`},
		{"seen backwards", `{"v":2,` + o + `,"s":[{"u":"a","k":"seen","up":5,"c":0,"cs":0}]}`},
		{"seen with ids", `{"v":2,` + o + `,"s":[{"u":"a","k":"seen","up":5,"i":[5],"on":true,"c":0,"cs":0}]}`},
		{"archived without ids", `{"v":2,` + o + `,"s":[{"u":"a","k":"archived","on":true,"c":0,"cs":0}]}`},
		{"archived of id 0", `{"v":2,` + o + `,"s":[{"u":"a","k":"archived","i":[0],"on":true,"c":0,"cs":0}]}`},
		{"all unarchived", `{"v":2,` + o + `,"s":[{"u":"a","k":"archived","all":true,"c":0,"cs":0}]}`},
		{"all archived with ids", `{"v":2,` + o + `,"s":[{"u":"a","k":"archived","all":true,"i":[1],"on":true,"c":0,"cs":0}]}`},
		{"archived with a mark", `{"v":2,` + o + `,"s":[{"u":"a","k":"archived","i":[1],"up":1,"on":true,"c":0,"cs":0}]}`},
		{"content not an object", `{"v":2,` + o + `,"n":[{"i":1,"u":"a","s":1,"t":"x","ct":"hi","d":1,"c":0}]}`},
		{"content with a javascript url", `{"v":2,` + o + `,"n":[{"i":1,"u":"a","s":1,"t":"x","ct":{"url":"javascript:alert(1)"},"d":1,"c":0}]}`},
		{"content with a protocol-relative icon", `{"v":2,` + o + `,"n":[{"i":1,"u":"a","s":1,"t":"x","ct":{"icon":"//evil.example/i.png"},"d":1,"c":0}]}`},
		{"content with an action's data url", `{"v":2,` + o + `,"n":[{"i":1,"u":"a","s":1,"t":"x","ct":{"actions":[{"label":"a","url":"data:text/html,x"}]},"d":1,"c":0}]}`},
		{"content with four actions", `{"v":2,` + o + `,"n":[{"i":1,"u":"a","s":1,"t":"x","ct":{"actions":[{"label":"a","url":"/"},{"label":"a","url":"/"},{"label":"a","url":"/"},{"label":"a","url":"/"}]},"d":1,"c":0}]}`},
		{"content with a title too long", `{"v":2,` + o + `,"n":[{"i":1,"u":"a","s":1,"t":"x","ct":{"title":"` + strings.Repeat("t", herald.MaxTitleLen+1) + `"},"d":1,"c":0}]}`},
		{"content with a bidi override", `{"v":2,` + o + `,"n":[{"i":1,"u":"a","s":1,"t":"x","ct":{"body":"a\u202eb"},"d":1,"c":0}]}`},
		{"content with a bad group", `{"v":2,` + o + `,"n":[{"i":1,"u":"a","s":1,"t":"x","ct":{"group":"a b"},"d":1,"c":0}]}`},
		{"good content beside bad content", `{"v":2,` + o + `,"n":[{"i":1,"u":"a","s":1,"t":"x","ct":{"title":"ok"},"d":1,"c":0},{"i":2,"u":"a","s":2,"t":"x","ct":{"url":" javascript:x"},"d":1,"c":0}]}`},
		{"topic not a string", `{"v":2,` + o + `,"n":[{"i":1,"u":"a","s":1,"t":"x","tp":42,"d":1,"c":0}]}`},
		{"topic empty", `{"v":2,` + o + `,"n":[{"i":1,"u":"a","s":1,"t":"x","tp":"","d":1,"c":0}]}`},
		{"topic with a space", `{"v":2,` + o + `,"n":[{"i":1,"u":"a","s":1,"t":"x","tp":"issue 42","d":1,"c":0}]}`},
		{"topic too long", `{"v":2,` + o + `,"n":[{"i":1,"u":"a","s":1,"t":"x","tp":"` + strings.Repeat("t", herald.MaxTopicLen+1) + `","d":1,"c":0}]}`},
		{"topic with a line break", `{"v":2,` + o + `,"n":[{"i":1,"u":"a","s":1,"t":"x","tp":"a\nb","d":1,"c":0}]}`},
		{"broadcast with a topic", `{"v":2,` + o + `,"n":[{"i":1,"u":"","s":1,"t":"x","tp":"issue:42","d":1,"c":0}]}`},
		{"a good read beside a bad state", `{"v":2,` + o + `,"r":[{"u":"a","read":true,"c":0,"i":[1]}],"s":[{"u":"","k":"seen","up":1,"on":true,"c":0,"cs":0}]}`},
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
	for _, sc := range []herald.StateChange{
		{User: "a", Kind: herald.StateRead, All: true, On: true},
		{User: "a", Kind: herald.StateSeen, On: true, SeenUpTo: 1},
	} {
		m, err = Decode(EncodeState(testOrigin, sc))
		if err != nil || m.Origin != testOrigin {
			t.Fatalf("Decode of a state change: origin %q, %v; want %q", m.Origin, err, testOrigin)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, m := range EncodeNotifications(testOrigin, sample(3, 5)) {
		f.Add(m)
	}
	f.Add([]byte(`{"v":2,"o":"` + testOrigin + `","n":[{"i":1,"u":"","s":1,"t":"x","d":null,"c":-1}]}`))
	f.Add([]byte(`{"v":2,"o":"` + testOrigin + `","n":[{"i":1,"u":"a","s":1,"t":"x","ct":{"title":"t","url":"//evil","actions":[{"label":"l","url":"/"}]},"d":1,"c":0}]}`))
	f.Add([]byte(`{"v":2,"o":"` + testOrigin + `","n":[{"i":1,"u":"a","s":1,"t":"x","ct":{"body":"a\nb","icon":"http://localhost/i","group":"g/1"},"d":1,"c":0}]}`))
	f.Add([]byte(`{"v":2,"o":"` + testOrigin + `","n":[{"i":1,"u":"a","s":1,"t":"x","tp":"issue:42","d":1,"c":0}]}`))
	f.Add(EncodeState(testOrigin, herald.StateChange{User: "alice", Kind: herald.StateRead, IDs: []int64{1}, On: true, Counts: herald.Counts{Unread: 2, Unseen: 1}}))
	f.Add(EncodePreferences(testOrigin, "alice"))
	f.Add(EncodeState(testOrigin, herald.StateChange{User: "alice", Kind: herald.StateSeen, On: true, SeenUpTo: 9, Counts: herald.Counts{Unread: 2}}))
	f.Add(EncodeState(testOrigin, herald.StateChange{User: "alice", Kind: herald.StateArchived, All: true, On: true, Counts: herald.Counts{Unread: 2}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		if !validOrigin(m.Origin) {
			t.Fatalf("accepted origin %q", m.Origin)
		}
		for _, sc := range m.States {
			if herald.ValidateUser(sc.User) != nil {
				t.Fatalf("accepted user %q", sc.User)
			}
			if sc.Counts.Unread < 0 || sc.Counts.Unseen < -1 || sc.Counts.Unseen > sc.Counts.Unread {
				t.Fatalf("accepted counts %+v", sc.Counts)
			}
			for _, id := range sc.IDs {
				if id <= 0 {
					t.Fatalf("accepted id %d", id)
				}
			}
			switch sc.Kind {
			case herald.StateRead, herald.StateArchived:
				if !sc.All && len(sc.IDs) == 0 {
					t.Fatalf("accepted %+v", sc)
				}
			case herald.StateSeen:
				if sc.SeenUpTo <= 0 || len(sc.IDs) > 0 {
					t.Fatalf("accepted %+v", sc)
				}
			default:
				t.Fatalf("accepted kind %d", sc.Kind)
			}
		}
		for _, n := range m.Notifications {
			if n.ID <= 0 || n.Seq == 0 || n.Data == nil || !utf8.Valid(n.Data) {
				t.Fatalf("accepted %+v", n)
			}
			if (n.User != "" && herald.ValidateUser(n.User) != nil) || herald.ValidateType(n.Type) != nil {
				t.Fatalf("accepted user %q type %q", n.User, n.Type)
			}
			if err := n.Content.Validate(); err != nil {
				t.Fatalf("accepted content %+v: %v", n.Content, err)
			}
			if n.Topic != "" && (n.User == "" || herald.ValidateTopic(n.Topic) != nil) {
				t.Fatalf("accepted topic %q of stream %q", n.Topic, n.User)
			}
		}
	})
}
