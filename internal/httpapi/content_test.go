package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
)

// TestPublishContent: a publish takes a notification's content beside its data, in a single
// publish and in a batch. Content a client could not safely show is refused with a 400 naming
// the field, and nothing is stored; text is taken as the characters it is, markup included.
func TestPublishContent(t *testing.T) {
	const one, batch = "/v1/notifications", "/v1/notifications/batch"
	ok := `{"to":["alice"],`
	tests := []struct {
		name, path, body string
		field            string          // "": accepted; else the field the 400 names
		want             *herald.Content // accepted: the draft's content
	}{
		{"data only", one, `{"to":["alice"],"data":{"a":1}}`, "", nil},
		{"every field", one, ok + `"title":"Bob commented","body":"Nice!\nShip it","url":"https://example.com/p/42#c7",` +
			`"icon":"/i.png","avatar":"https://cdn.example.com/bob.png","actions":[{"label":"Reply","url":"/p/42#reply"}],` +
			`"group":"post:42:comments","data":{"post":42}}`, "",
			&herald.Content{Title: "Bob commented", Body: "Nice!\nShip it", URL: "https://example.com/p/42#c7", Icon: "/i.png",
				Avatar: "https://cdn.example.com/bob.png", Actions: []herald.Action{{Label: "Reply", URL: "/p/42#reply"}}, Group: "post:42:comments"}},
		{"a body with a script is text", one, ok + `"body":"<script>alert(1)</script>"}`, "", &herald.Content{Body: "<script>alert(1)</script>"}},
		{"escaped markup is kept as written", one, ok + `"title":"\u003cb\u003e &amp;"}`, "", &herald.Content{Title: "<b> &amp;"}},
		{"empty and null fields are none", one, ok + `"title":"","body":null,"actions":[],"group":""}`, "", nil},
		{"a broadcast with content", one, `{"broadcast":true,"title":"v1.2","url":"/changelog"}`, "", &herald.Content{Title: "v1.2", URL: "/changelog"}},
		{"url javascript", one, ok + `"url":"javascript:alert(1)"}`, `"url"`, nil},
		{"url JaVaScRiPt", one, ok + `"url":"JaVaScRiPt:alert(1)"}`, `"url"`, nil},
		{"url javascript after a space", one, ok + `"url":" javascript:alert(1)"}`, `"url"`, nil},
		{"url data", one, ok + `"url":"data:text/html,<script>alert(1)</script>"}`, `"url"`, nil},
		{"url protocol-relative", one, ok + `"url":"//evil.example"}`, `"url"`, nil},
		{"url backslash", one, ok + `"url":"/\\evil.example"}`, `"url"`, nil},
		{"url https without host", one, ok + `"url":"https://"}`, `"url"`, nil},
		{"icon over http", one, ok + `"icon":"http://example.com/i.png"}`, `"icon"`, nil},
		{"avatar vbscript", one, ok + `"avatar":"vbscript:x"}`, `"avatar"`, nil},
		{"title of 201 characters", one, ok + `"title":"` + strings.Repeat("t", 201) + `"}`, `"title"`, nil},
		{"title with a bidi override", one, ok + `"title":"a\u202eb"}`, `"title"`, nil},
		{"body with a control character", one, ok + `"body":"a\u0007"}`, `"body"`, nil},
		{"four actions", one, ok + `"actions":[{"label":"a","url":"/"},{"label":"b","url":"/"},{"label":"c","url":"/"},{"label":"d","url":"/"}]}`, `"actions"`, nil},
		{"action with javascript", one, ok + `"actions":[{"label":"a","url":"/"},{"label":"b","url":"javascript:x"}]}`, `"actions[1].url"`, nil},
		{"action without a label", one, ok + `"actions":[{"url":"/"}]}`, `"actions[0].label"`, nil},
		{"action with an unknown field", one, ok + `"actions":[{"label":"a","url":"/","style":"red"}]}`, `"actions[0].style"`, nil},
		{"action not an object", one, ok + `"actions":["a"]}`, `"actions[0]"`, nil},
		{"actions not a list", one, ok + `"actions":{"label":"a","url":"/"}}`, `"actions"`, nil},
		{"title not a string", one, ok + `"title":5}`, `"title"`, nil},
		{"group with a space", one, ok + `"group":"post 42"}`, `"group"`, nil},
		{"content in a batch", batch, `{"notifications":[{"to":["a"]},{"to":["b"],"title":"hi","body":"<i>x</i>"}]}`, "",
			&herald.Content{Title: "hi", Body: "<i>x</i>"}},
		{"bad url in a batch", batch, `{"notifications":[{"to":["a"],"url":"/ok"},{"to":["b"],"url":"javascript:alert(1)"}]}`, `notifications[1]: "url"`, nil},
		{"bad action in a batch", batch, `{"notifications":[{"to":["a"],"actions":[{"label":1,"url":"/"}]}]}`, `"notifications[0].actions[0].label"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code, msg, drafts := postJSON(t, tt.path, tt.body)
			if tt.field != "" {
				if status != http.StatusBadRequest || code != herald.EINVALID || !strings.Contains(msg, tt.field) {
					t.Fatalf("got %d %q %q, want 400 invalid naming %s", status, code, msg, tt.field)
				}
				if len(drafts) > 0 {
					t.Fatalf("stored %+v", drafts)
				}
				return
			}
			if status != http.StatusCreated || len(drafts) == 0 {
				t.Fatalf("got %d %q %q, want 201", status, code, msg)
			}
			got := drafts[len(drafts)-1].Content
			if (got == nil) != (tt.want == nil) || !bytes.Equal(got.AppendJSON(nil), tt.want.AppendJSON(nil)) {
				t.Fatalf("content %s, want %s", got.AppendJSON(nil), tt.want.AppendJSON(nil))
			}
		})
	}
}

// TestEnvelopeContent: the envelope of a notification without content is byte for byte what it
// was before content existed, so old publishers' subscribers see no change. Content fields sit
// between type and data, only those present, and read the same as the inbox's.
func TestEnvelopeContent(t *testing.T) {
	n := herald.Notification{ID: 42, User: "alice", Seq: 7, Type: "comment.created", Data: json.RawMessage(`{"post":1}`),
		CreatedAt: time.Date(2026, 11, 23, 12, 25, 53, 446212000, time.UTC)}
	const old = `{"id":"42","type":"comment.created","data":{"post":1},"created_at":"2026-11-23T12:25:53.446212Z","broadcast":false}`
	if got := string(appendEnvelope(nil, &n)); got != old {
		t.Fatalf("envelope without content:\n%s\nwant, as before content:\n%s", got, old)
	}
	if got, want := string(encodeNotification(&n, true)), "event: comment.created\ndata: "+old+"\n\n"; got != want {
		t.Fatalf("frame without content %q, want %q", got, want)
	}

	n.Content = &herald.Content{Title: `Bob "B" <b>`, Body: "line 1\nline 2 \\ é", URL: "/p/1", Icon: "/i.png",
		Avatar: "https://cdn.example.com/a.png", Actions: []herald.Action{{Label: "Open", URL: "/p/1"}, {Label: "Mute", URL: "/m"}},
		Group: "post:1:comments"}
	const want = `{"id":"42","type":"comment.created","title":"Bob \"B\" <b>","body":"line 1\nline 2 \\ é","url":"/p/1","icon":"/i.png",` +
		`"avatar":"https://cdn.example.com/a.png","actions":[{"label":"Open","url":"/p/1"},{"label":"Mute","url":"/m"}],` +
		`"group":"post:1:comments","data":{"post":1},"created_at":"2026-11-23T12:25:53.446212Z","broadcast":false}`
	env := appendEnvelope(nil, &n)
	if string(env) != want {
		t.Fatalf("envelope with content:\n%s\nwant:\n%s", env, want)
	}
	if frame := encodeNotification(&n, false); bytes.Count(frame, []byte("\n")) != 2 {
		t.Fatalf("a body's line break must not break the SSE frame: %q", frame)
	}
	// The inbox item carries the same fields in the same order, and the same values.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // as writeJSON
	if err := enc.Encode(toItem(&n)); err != nil {
		t.Fatal(err)
	}
	item := strings.TrimSuffix(buf.String(), "\n")
	if !strings.HasPrefix(item, strings.TrimSuffix(want, `,"broadcast":false}`)) {
		t.Fatalf("inbox item\n%s\ndoes not start as the envelope\n%s", item, want)
	}
	n.Content = &herald.Content{Group: "g"}
	if got := string(appendEnvelope(nil, &n)); !strings.Contains(got, `"type":"comment.created","group":"g","data":`) || strings.Contains(got, "null") {
		t.Fatalf("absent fields must be left out, not null: %s", got)
	}
}
