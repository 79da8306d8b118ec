package herald

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on a notification's content. They are fixed, not configurable: clients lay content
// out by them (docs/api.md).
const (
	MaxTitleLen = 200  // characters of a title
	MaxBodyLen  = 2000 // characters of a body
	MaxLabelLen = 40   // characters of an action's label
	MaxActions  = 3    // actions of one notification
	MaxGroupLen = 128  // bytes of a group key
	MaxURLLen   = 2048 // bytes of a URL or path
)

// Content is what a notification says, in fields every client can show without knowing its
// type: a title and a body of plain text, a link, images, actions and a group key. Every field
// is optional; a notification without any has none (a nil *Content, on which every method
// works) and costs nothing more to store or send. It sits beside Data, which stays the
// publisher's free JSON for its own app.
//
// Text is text: it is stored and sent as the publisher wrote it, never read as HTML, and
// clients must render it as text. URLs are only ever http(s) URLs or paths of the server the
// client came from, so a client may put them in a link or an image as they are.
type Content struct {
	// Title is one line of plain text, at most MaxTitleLen characters.
	Title string `json:"title,omitempty"`
	// Body is plain text, at most MaxBodyLen characters; "\n" breaks its lines.
	Body string `json:"body,omitempty"`
	// URL is where the notification leads: an absolute http(s) URL, or a path starting with
	// "/" (see ValidateURL).
	URL string `json:"url,omitempty"`
	// Icon and Avatar are images: an https URL (http only on a loopback host), or a path.
	Icon   string `json:"icon,omitempty"`
	Avatar string `json:"avatar,omitempty"`
	// Actions are at most MaxActions buttons, each a label and where it leads.
	Actions []Action `json:"actions,omitempty"`
	// Group is a key of the notifications a client may show as one ("Bob and 3 others
	// commented"), such as "post:42:comments": 1-MaxGroupLen bytes of A-Z a-z 0-9 _ . : - /.
	// The server only carries it; collapsing is the client's.
	Group string `json:"group,omitempty"`
}

// Action is a button of a notification: a label of plain text and the URL it opens.
type Action struct {
	Label string `json:"label"`
	URL   string `json:"url"`
}

// IsZero reports whether c has no field: an empty string, like an absent field, is none.
func (c *Content) IsZero() bool {
	return c == nil || c.Title == "" && c.Body == "" && c.URL == "" && c.Icon == "" && c.Avatar == "" && len(c.Actions) == 0 && c.Group == ""
}

// Validate checks every field of c against its rules, wherever c comes from (a publish, a bus
// message). The error is invalid and names the field, as `"actions[1].url"`.
func (c *Content) Validate() error {
	if c == nil {
		return nil
	}
	if err := checkText("title", c.Title, MaxTitleLen, false); err != nil {
		return err
	}
	if err := checkText("body", c.Body, MaxBodyLen, true); err != nil {
		return err
	}
	for _, f := range []struct {
		name, url string
		image     bool
	}{{"url", c.URL, false}, {"icon", c.Icon, true}, {"avatar", c.Avatar, true}} {
		if f.url != "" {
			if err := checkURL(f.name, f.url, f.image); err != nil {
				return err
			}
		}
	}
	if len(c.Actions) > MaxActions {
		return Errorf(EINVALID, "\"actions\" holds at most %d actions, not %d", MaxActions, len(c.Actions))
	}
	for i, a := range c.Actions {
		field := "actions[" + strconv.Itoa(i) + "]"
		if a.Label == "" {
			return Errorf(EINVALID, "%q is required: every action has a label", field+".label")
		}
		if err := checkText(field+".label", a.Label, MaxLabelLen, false); err != nil {
			return err
		}
		if a.URL == "" {
			return Errorf(EINVALID, "%q is required: every action has a URL", field+".url")
		}
		if err := checkURL(field+".url", a.URL, false); err != nil {
			return err
		}
	}
	if c.Group != "" && !validGroup(c.Group) {
		return Errorf(EINVALID, "\"group\" must be 1-%d bytes of A-Z a-z 0-9 _ . : - /: %q", MaxGroupLen, truncate(strings.ToValidUTF8(c.Group, "\uFFFD"), 80))
	}
	return nil
}

// checkText checks a text field: valid UTF-8 of at most max characters, without control
// characters (but "\n" where multiline), line or paragraph separators, or bidi controls.
//
// Other invisible format characters are allowed, unlike in ids: text is read by people, and
// the zero-width joiner and non-joiner spell emoji sequences and several scripts. Bidi controls
// are not: they reorder the text after them, so that a title reads as something it does not
// say ("Trojan Source"). A client that lays out right-to-left text needs none of them.
func checkText(field, s string, max int, multiline bool) error {
	n := 0
	for i, r := range s {
		n++
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			return Errorf(EINVALID, "%q is not valid UTF-8", field)
		case r == '\n' && multiline:
		case r < 0x20 || (0x7f <= r && r <= 0x9f):
			if multiline {
				return Errorf(EINVALID, "%q holds the control character U+%04X; only \\n may break a line", field, r)
			}
			return Errorf(EINVALID, "%q holds the control character U+%04X; it is one line of text", field, r)
		case r == '\u2028' || r == '\u2029':
			return Errorf(EINVALID, "%q holds a line or paragraph separator (U+%04X); use \\n in a body", field, r)
		case bidiControl(r):
			return Errorf(EINVALID, "%q holds the bidi control U+%04X, which reorders the text around it", field, r)
		}
	}
	if n > max {
		return Errorf(EINVALID, "%q is %d characters; the limit is %d", field, n, max)
	}
	return nil
}

// bidiControl reports whether r is one of the characters that change the direction of the
// text around them: marks, embeddings, overrides and isolates.
func bidiControl(r rune) bool {
	return r == '\u061C' || r == '\u200E' || r == '\u200F' || ('\u202A' <= r && r <= '\u202E') || ('\u2066' <= r && r <= '\u2069')
}

// validGroup reports whether g is a group key: the characters of a type, and "/".
func validGroup(g string) bool {
	if len(g) == 0 || len(g) > MaxGroupLen {
		return false
	}
	for i := 0; i < len(g); i++ {
		switch c := g[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_', c == '.', c == ':', c == '-', c == '/':
		default:
			return false
		}
	}
	return true
}

// ValidateURL checks a URL a notification leads to: an absolute URL whose scheme is https: or
// http: (in lower case) with a host, or an absolute path on the client's own origin: "/" not
// followed by another "/".
//
// Clients put these in links as they are, so the check is made for how browsers read a URL,
// not for how Go does: a browser strips leading spaces and controls and removes tabs and line
// breaks anywhere (" javascript:", "java\tscript:" run script), and reads "\" as "/" ("/\host"
// is another site, like "//host"). So none of those characters is allowed at all, only the
// two schemes are, never by omission (a scheme-relative "//host"), and a user name in the
// authority ("https://bank.example@evil.example"), which reads as another host, is refused.
func ValidateURL(s string) error { return checkURL("url", s, false) }

// wantURL says what a URL must be.
const wantURL = "must be an https: or http: URL (in lower case) or a path starting with /"

// checkURL is ValidateURL for the field named field; image requires https, but for a loopback
// host (a page served over https blocks images over http, and an image fetched in the clear
// tells the network who reads what).
func checkURL(field, s string, image bool) error {
	bad := func(why string) error {
		return Errorf(EINVALID, "%q %s: %q", field, why, truncate(strings.ToValidUTF8(s, "\uFFFD"), 80))
	}
	if len(s) > MaxURLLen {
		return Errorf(EINVALID, "%q is %d bytes; the limit is %d", field, len(s), MaxURLLen)
	}
	if s == "" {
		return bad("is empty; " + wantURL)
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c <= ' ' || c == 0x7f:
				return bad("holds a space or a control character (percent-encode a space as %20)")
			case c == '\\':
				return bad("holds a backslash, which browsers read as /")
			case c == '"' || c == '<' || c == '>' || c == '`':
				return bad(fmt.Sprintf("holds %q; percent-encode it", c))
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return bad("is not valid UTF-8")
		}
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Z) {
			return bad("holds a space or an invisible character; percent-encode it")
		}
		i += n
	}
	var scheme string
	switch {
	case s[0] == '/':
		if len(s) > 1 && s[1] == '/' {
			return bad("leads to another host: a path must not start with //")
		}
	case strings.HasPrefix(s, "https://"):
		scheme = "https"
	case strings.HasPrefix(s, "http://"):
		scheme = "http"
	default:
		if i := strings.IndexAny(s, ":/?#"); i > 0 && s[i] == ':' {
			return bad(fmt.Sprintf("has the scheme %q, but %s", truncate(s[:i], 20), wantURL))
		}
		return bad(wantURL)
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("is not a valid URL")
	}
	if scheme == "" {
		if u.Scheme != "" || u.Host != "" || u.Opaque != "" {
			return bad(wantURL) // cannot happen for "/" not followed by "/"; kept as the rule
		}
		return nil
	}
	if u.User != nil {
		return bad("holds a user name (the part before @ reads as the host); leave it out")
	}
	host := u.Hostname()
	if host == "" {
		return bad("has no host")
	}
	if !validHost(u.Host, host) {
		return bad("does not have a valid host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("does not have a valid port")
		}
	}
	if image && scheme == "http" && !loopback(host) {
		return bad("must be an https: URL or a path: an image over http: is blocked on https: pages (http: is allowed on a loopback host only)")
	}
	return nil
}

// validHost reports whether host (the hostname of the authority authority) is a name or an IP
// address: letters (of any script: a browser turns them into punycode), digits, "-", "_" and
// ".", or an IPv6 address in brackets. Percent-escapes, which a browser decodes into anything,
// are not.
func validHost(authority, host string) bool {
	if strings.HasPrefix(authority, "[") {
		a, err := netip.ParseAddr(host)
		return err == nil && a.Is6() && a.Zone() == ""
	}
	for _, r := range host {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.M, r) || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// loopback reports whether host names this machine: localhost (or a name under it) or a
// loopback address.
func loopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// AppendJSONFields appends the fields c has as JSON object members, each preceded by a comma:
// `,"title":"…","url":"…"`, in the order of the struct. Absent fields are left out, not null,
// so that a notification without content encodes exactly as before content existed. Strings
// are escaped as JSON needs and no more: "<" stays "<", as the rest of the API writes it.
func (c *Content) AppendJSONFields(b []byte) []byte {
	if c == nil {
		return b
	}
	str := func(b []byte, name, v string) []byte {
		if v == "" {
			return b
		}
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		return appendJSONString(b, v)
	}
	b = str(b, "title", c.Title)
	b = str(b, "body", c.Body)
	b = str(b, "url", c.URL)
	b = str(b, "icon", c.Icon)
	b = str(b, "avatar", c.Avatar)
	if len(c.Actions) > 0 {
		b = append(b, `,"actions":[`...)
		for i, a := range c.Actions {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"label":`...)
			b = appendJSONString(b, a.Label)
			b = append(b, `,"url":`...)
			b = appendJSONString(b, a.URL)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return str(b, "group", c.Group)
}

// AppendJSON appends c as a JSON object of the fields it has ("{}" for none). It is the form
// stores keep and bus messages carry; encoding/json reads it back into a Content.
func (c *Content) AppendJSON(b []byte) []byte {
	start := len(b)
	b = c.AppendJSONFields(b)
	if len(b) == start {
		return append(b, "{}"...)
	}
	b[start] = '{' // the first member's comma
	return append(b, '}')
}

// Size is about the bytes AppendJSONFields appends (exactly, unless characters need escaping):
// what c adds to a notification's encoding.
func (c *Content) Size() int {
	if c == nil {
		return 0
	}
	n := 0
	str := func(name, v string) {
		if v != "" {
			n += len(`,"":""`) + len(name) + len(v)
		}
	}
	str("title", c.Title)
	str("body", c.Body)
	str("url", c.URL)
	str("icon", c.Icon)
	str("avatar", c.Avatar)
	str("group", c.Group)
	if len(c.Actions) > 0 {
		n += len(`,"actions":[]`) + len(c.Actions) - 1 // the brackets and the commas between actions
		for _, a := range c.Actions {
			n += len(`{"label":"","url":""}`) + len(a.Label) + len(a.URL)
		}
	}
	return n
}

// appendJSONString appends s as a JSON string. Valid content needs only quotes, backslashes
// and "\n" escaped; anything else JSON or JavaScript cannot hold as it is (controls, U+2028 and
// U+2029, invalid UTF-8) is escaped too, so that the output is valid JSON whatever s is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += n
			continue
		}
		i += n
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
