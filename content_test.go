package herald

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestContentValidate: every field of content is checked, and a refusal is invalid and names
// the field at fault. Text is text: markup in it is accepted as the characters it is.
func TestContentValidate(t *testing.T) {
	tests := []struct {
		name  string
		c     Content
		field string // "": valid; else the field the error must name
	}{
		{"none", Content{}, ""},
		{"every field", Content{Title: "Bob commented", Body: "Nice!\nSee you", URL: "https://example.com/p/42?c=7#c7",
			Icon: "https://cdn.example.com/i.png", Avatar: "/avatars/bob.png",
			Actions: []Action{{"Reply", "/p/42#reply"}, {"Mute", "https://example.com/mute"}, {"Open", "http://example.com"}},
			Group:   "post:42:comments"}, ""},
		{"markup in a body is text", Content{Body: `<script>alert(1)</script><b onclick="x">&amp;`}, ""},
		{"markup in a title is text", Content{Title: `<img src=x onerror=alert(1)>`}, ""},
		{"title of 200 characters", Content{Title: strings.Repeat("é", MaxTitleLen)}, ""},
		{"title of 201 characters", Content{Title: strings.Repeat("a", MaxTitleLen+1)}, `"title"`},
		{"body of 2000 characters", Content{Body: strings.Repeat("日", MaxBodyLen)}, ""},
		{"body of 2001 characters", Content{Body: strings.Repeat("a", MaxBodyLen+1)}, `"body"`},
		{"emoji joined by ZWJ", Content{Title: "👨\u200d👩\u200d👧 family", Body: "می\u200cخواهم"}, ""},
		{"right-to-left text", Content{Title: "שלום עולם", Body: "مرحبا"}, ""},
		{"title with a line break", Content{Title: "a\nb"}, `"title"`},
		{"title with a tab", Content{Title: "a\tb"}, `"title"`},
		{"body with CR", Content{Body: "a\r\nb"}, `"body"`},
		{"body with NUL", Content{Body: "a\x00"}, `"body"`},
		{"body with DEL", Content{Body: "a\x7f"}, `"body"`},
		{"body with NEL", Content{Body: "a\u0085b"}, `"body"`},
		{"body with a line separator", Content{Body: "a\u2028b"}, `"body"`},
		{"title with a right-to-left override", Content{Title: "invoice\u202eexe.pdf"}, `"title"`},
		{"title with an isolate", Content{Title: "a\u2067b\u2069"}, `"title"`},
		{"body with a right-to-left mark", Content{Body: "a\u200fb"}, `"body"`},
		{"title not UTF-8", Content{Title: "a\xffb"}, `"title"`},
		{"title with U+FFFD is fine", Content{Title: "a\uFFFDb"}, ""},
		{"url javascript", Content{URL: "javascript:alert(1)"}, `"url"`},
		{"url JaVaScRiPt", Content{URL: "JaVaScRiPt:alert(1)"}, `"url"`},
		{"url javascript after a space", Content{URL: " javascript:alert(1)"}, `"url"`},
		{"url javascript with a tab", Content{URL: "java\tscript:alert(1)"}, `"url"`},
		{"url javascript after NUL", Content{URL: "\x00javascript:alert(1)"}, `"url"`},
		{"url data", Content{URL: "data:text/html,<script>alert(1)</script>"}, `"url"`},
		{"url vbscript", Content{URL: "vbscript:msgbox(1)"}, `"url"`},
		{"url file", Content{URL: "file:///etc/passwd"}, `"url"`},
		{"url mailto", Content{URL: "mailto:a@example.com"}, `"url"`},
		{"url protocol-relative", Content{URL: "//evil.example"}, `"url"`},
		{"url backslash host", Content{URL: `/\evil.example`}, `"url"`},
		{"url backslashes", Content{URL: `\\evil.example`}, `"url"`},
		{"url backslash after https", Content{URL: `https:\\evil.example`}, `"url"`},
		{"url https without host", Content{URL: "https://"}, `"url"`},
		{"url https with empty host and a path", Content{URL: "https:///a"}, `"url"`},
		{"url https with only a port", Content{URL: "https://:443/"}, `"url"`},
		{"url https without slashes", Content{URL: "https:example.com"}, `"url"`},
		{"url HTTPS", Content{URL: "HTTPS://example.com"}, `"url"`},
		{"url with credentials", Content{URL: "https://bank.example@evil.example/"}, `"url"`},
		{"url relative", Content{URL: "evil.example/x"}, `"url"`},
		{"url dot relative", Content{URL: "./x"}, `"url"`},
		{"url with a space", Content{URL: "/a b"}, `"url"`},
		{"url with a trailing newline", Content{URL: "/a\n"}, `"url"`},
		{"url with an ideographic space", Content{URL: "/a\u3000b"}, `"url"`},
		{"url with a bidi override", Content{URL: "https://example.com/\u202egnp.exe"}, `"url"`},
		{"url with a quote", Content{URL: `/a"onclick=x`}, `"url"`},
		{"url with angle brackets", Content{URL: "/<x>"}, `"url"`},
		{"url with a bad escape", Content{URL: "/a%zz"}, `"url"`},
		{"url with a percent-encoded host", Content{URL: "https://evil%2eexample/"}, `"url"`},
		{"url with a bad port", Content{URL: "https://example.com:99999/"}, `"url"`},
		{"url too long", Content{URL: "/" + strings.Repeat("a", MaxURLLen)}, `"url"`},
		{"url of 2048 bytes", Content{URL: "/" + strings.Repeat("a", MaxURLLen-1)}, ""},
		{"url root path", Content{URL: "/"}, ""},
		{"url path with a query", Content{URL: "/inbox?x=1&y=%20#top"}, ""},
		{"url path with a scheme-like segment", Content{URL: "/javascript:alert(1)"}, ""},
		{"url IPv6 host", Content{URL: "https://[2001:db8::1]:8443/x"}, ""},
		{"url IDN host", Content{URL: "https://例え.jp/パス"}, ""},
		{"url http", Content{URL: "http://example.com"}, ""},
		{"icon https", Content{Icon: "https://cdn.example.com/i.svg"}, ""},
		{"icon path", Content{Icon: "/static/icon.png"}, ""},
		{"icon http", Content{Icon: "http://cdn.example.com/i.png"}, `"icon"`},
		{"icon http on localhost", Content{Icon: "http://localhost:8080/i.png"}, ""},
		{"icon http on 127.0.0.1", Content{Icon: "http://127.0.0.1:8080/i.png"}, ""},
		{"icon http on ::1", Content{Icon: "http://[::1]/i.png"}, ""},
		{"icon data", Content{Icon: "data:image/svg+xml,<svg onload=alert(1)>"}, `"icon"`},
		{"avatar http", Content{Avatar: "http://example.com/a.png"}, `"avatar"`},
		{"avatar protocol-relative", Content{Avatar: "//evil.example/a.png"}, `"avatar"`},
		{"avatar javascript", Content{Avatar: "javascript:alert(1)"}, `"avatar"`},
		{"three actions", Content{Actions: []Action{{"a", "/a"}, {"b", "/b"}, {"c", "/c"}}}, ""},
		{"four actions", Content{Actions: []Action{{"a", "/a"}, {"b", "/b"}, {"c", "/c"}, {"d", "/d"}}}, `"actions"`},
		{"action without a label", Content{Actions: []Action{{"", "/a"}}}, `"actions[0].label"`},
		{"action without a url", Content{Actions: []Action{{"a", "/a"}, {"b", ""}}}, `"actions[1].url"`},
		{"action with javascript", Content{Actions: []Action{{"a", "/a"}, {"b", "javascript:alert(1)"}}}, `"actions[1].url"`},
		{"action label of 40 characters", Content{Actions: []Action{{strings.Repeat("é", MaxLabelLen), "/a"}}}, ""},
		{"action label of 41 characters", Content{Actions: []Action{{strings.Repeat("a", MaxLabelLen+1), "/a"}}}, `"actions[0].label"`},
		{"action label on two lines", Content{Actions: []Action{{"a\nb", "/a"}}}, `"actions[0].label"`},
		{"group of 128 bytes", Content{Group: strings.Repeat("g", MaxGroupLen)}, ""},
		{"group of 129 bytes", Content{Group: strings.Repeat("g", MaxGroupLen+1)}, `"group"`},
		{"group with a slash", Content{Group: "org/acme:issue.42_x-y"}, ""},
		{"group with a space", Content{Group: "post 42"}, `"group"`},
		{"group with a letter not ASCII", Content{Group: "café"}, `"group"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate(%+v) = %v, want nil", tt.c, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate(%+v) = nil, want an error naming %s", tt.c, tt.field)
			}
			if code := ErrorCode(err); code != EINVALID {
				t.Fatalf("ErrorCode = %q, want %q", code, EINVALID)
			}
			msg := ErrorMessage(err)
			if !strings.HasPrefix(msg, tt.field+" ") && !strings.HasPrefix(msg, tt.field+":") {
				t.Fatalf("message %q does not start with the field %s", msg, tt.field)
			}
			if len(msg) > 400 || strings.ContainsAny(msg, "\r\n") || !utf8.ValidString(msg) {
				t.Fatalf("message %q: not one bounded line of UTF-8", msg)
			}
		})
	}
}

// TestContentJSON: the JSON form holds only the fields present, reads back as the same
// content, and stays valid JSON whatever the strings hold.
func TestContentJSON(t *testing.T) {
	tests := []struct {
		name string
		c    Content
		want string
	}{
		{"none", Content{}, `{}`},
		{"title", Content{Title: "hi"}, `{"title":"hi"}`},
		{"all in order", Content{Group: "g", Actions: []Action{{"A", "/a"}}, Avatar: "/av", Icon: "/i", URL: "/u", Body: "b", Title: "t"},
			`{"title":"t","body":"b","url":"/u","icon":"/i","avatar":"/av","actions":[{"label":"A","url":"/a"}],"group":"g"}`},
		{"escapes only what JSON needs", Content{Title: `"q" \ <b>&`, Body: "l1\nl2"}, `{"title":"\"q\" \\ <b>&","body":"l1\nl2"}`},
		{"invalid input stays valid JSON", Content{Body: "\x00\r\t\x1f\u2028\u2029\xff"}, `{"body":"\u0000\r\t\u001f\u2028\u2029\ufffd"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.c.AppendJSON([]byte("prefix"))
			if !bytes.HasPrefix(got, []byte("prefix")) || string(got[6:]) != tt.want {
				t.Fatalf("AppendJSON = %s, want prefix%s", got, tt.want)
			}
			if fields := tt.c.AppendJSONFields(nil); len(fields) > 0 && string(fields[1:]) != tt.want[1:len(tt.want)-1] {
				t.Fatalf("AppendJSONFields = %s, want the members of %s", fields, tt.want)
			}
			if n := len(tt.c.AppendJSONFields(nil)); !strings.Contains(tt.want, `\`) && tt.c.Size() != n {
				t.Fatalf("Size() = %d for %d bytes of members without escapes", tt.c.Size(), n)
			}
			var back Content
			if err := json.Unmarshal(got[6:], &back); err != nil {
				t.Fatalf("read back: %v", err)
			}
			if strings.ContainsAny(tt.c.Body, "\x00\xff") {
				return // invalid input is not read back as it was
			}
			if !equalContent(back, tt.c) {
				t.Fatalf("read back %+v, want %+v", back, tt.c)
			}
		})
	}
}

func equalContent(a, b Content) bool {
	x, y := a.AppendJSON(nil), b.AppendJSON(nil)
	return bytes.Equal(x, y)
}

// TestDraftFingerprintContent: a key retried with different content is a conflict, and a draft
// without content keeps the fingerprint it had before content existed, so that keys stored then
// still replay.
func TestDraftFingerprintContent(t *testing.T) {
	base := Draft{To: []string{"alice"}, Type: "comment", Data: json.RawMessage(`1`)}
	// SHA-256 of the length-prefixed fields 0x00, "alice", "comment", "1": the fingerprint of
	// this draft before content existed.
	const before = "5a4461b92b99234da57c364f6351076a320520775b65d47476ed9543e03ece97"
	if got := hex.EncodeToString(base.Fingerprint()); got != before {
		t.Fatalf("fingerprint of a draft without content is %s, was %s", got, before)
	}
	with := func(c Content) Draft { d := base; d.Content = &c; return d }
	if empty := with(Content{}); !bytes.Equal(empty.Fingerprint(), base.Fingerprint()) {
		t.Fatal("a draft with empty content fingerprints differently from one without")
	}
	seen := map[string]string{string(base.Fingerprint()): "no content"}
	for name, d := range map[string]Draft{
		"title":          with(Content{Title: "t"}),
		"title changed":  with(Content{Title: "u"}),
		"body":           with(Content{Body: "t"}),
		"url":            with(Content{URL: "/t"}),
		"icon":           with(Content{Icon: "/t"}),
		"avatar":         with(Content{Avatar: "/t"}),
		"group":          with(Content{Group: "t"}),
		"action":         with(Content{Actions: []Action{{"a", "/b"}}}),
		"action swapped": with(Content{Actions: []Action{{"b", "/a"}}}),
		"two actions":    with(Content{Actions: []Action{{"a", "/b"}, {"a", "/b"}}}),
		// Without the flag the content's field would read as data with one recipient more.
		"content shifted into data": {To: []string{"alice", "comment"}, Type: "1", Data: json.RawMessage(`{"title":"t"}`)},
	} {
		fp := string(d.Fingerprint())
		if other, ok := seen[fp]; ok {
			t.Fatalf("%s: fingerprint equals that of %s", name, other)
		}
		seen[fp] = name
	}
	if a, b := with(Content{Title: "t", Group: "g"}), with(Content{Group: "g", Title: "t"}); !bytes.Equal(a.Fingerprint(), b.Fingerprint()) {
		t.Fatal("the same content fingerprints differently")
	}
}

// urlAcceptable says what ValidateURL must never accept, as the fuzz target's oracle: a
// URL a browser could read with another scheme or host than it shows.
func urlAcceptable(s string) bool {
	if s == "" || len(s) > MaxURLLen || !utf8.ValidString(s) || strings.ContainsAny(s, "\\\"<>` ") {
		return false
	}
	for _, r := range s {
		if r < 0x20 || (0x7f <= r && r <= 0x9f) || bidiControl(r) {
			return false
		}
	}
	switch {
	case strings.HasPrefix(s, "https://"), strings.HasPrefix(s, "http://"):
		u, err := url.Parse(s)
		return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Hostname() != "" && u.User == nil
	case strings.HasPrefix(s, "/"):
		return !strings.HasPrefix(s, "//")
	}
	return false
}

func FuzzValidateURL(f *testing.F) {
	for _, s := range []string{
		"https://example.com/a?b#c", "http://localhost:8080/", "/", "/a/b", "//evil.example", `/\evil.example`,
		"javascript:alert(1)", " javascript:alert(1)", "JaVaScRiPt:x", "data:text/html,x", "https://", "https://a@b/",
		"https://[::1]/", "https://例え.jp/", "/a%zz", "java\tscript:x", "https:evil", "HTTP://x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateURL(s)
		if err == nil && !urlAcceptable(s) {
			t.Fatalf("ValidateURL(%q) accepted it", s)
		}
		if err != nil {
			if code := ErrorCode(err); code != EINVALID {
				t.Fatalf("ErrorCode = %q, want %q", code, EINVALID)
			}
			if msg := ErrorMessage(err); len(msg) > 600 || strings.ContainsAny(msg, "\r\n") || !utf8.ValidString(msg) || !strings.HasPrefix(msg, `"url" `) {
				t.Fatalf("message %q", msg)
			}
		}
		// An icon is a URL too, with a stricter scheme.
		if icon := (Content{Icon: s}); s != "" && icon.Validate() == nil && err != nil {
			t.Fatalf("%q is refused as a url but accepted as an icon", s)
		}
	})
}

// TestNilContent: no content is a nil *Content, on which every method works as on an empty one.
func TestNilContent(t *testing.T) {
	var c *Content
	if !c.IsZero() || c.Validate() != nil || string(c.AppendJSON(nil)) != "{}" || len(c.AppendJSONFields(nil)) != 0 || c.Size() != 0 {
		t.Fatal("a nil *Content is not no content")
	}
}
