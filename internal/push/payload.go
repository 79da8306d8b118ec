package push

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald"
)

// MaxPayload bounds a push's JSON before encryption. RFC 8291 with one 4096-byte record (what
// webpush-go sends, padded so the push service cannot tell a short message from a long one)
// leaves 3993 bytes of plaintext; a margin keeps clear of it.
const MaxPayload = 3800

// Payload is what the service worker (herald-sw.js) receives: what to show, and how to mark
// it read.
type Payload struct {
	// ID is the notification's id: the worker marks it read (POST /v1/notifications/{id}/read).
	ID    int64  `json:"id"`
	Type  string `json:"type"`
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
	URL   string `json:"url,omitempty"`
	Icon  string `json:"icon,omitempty"`
	// Tag collapses notifications on the device: the content's group, or the notification's
	// own id.
	Tag       string    `json:"tag"`
	CreatedAt time.Time `json:"created_at"`
}

// NewPayload takes a notification's content, or without content the string "text" (or
// "title") of its data, and cuts the body (then the title) to fit MaxPayload.
func NewPayload(n *herald.Notification) ([]byte, error) {
	p := Payload{ID: n.ID, Type: n.Type, Tag: "herald-" + strconv.FormatInt(n.ID, 10), CreatedAt: n.CreatedAt}
	if c := n.Content; c != nil {
		p.Title, p.Body, p.URL, p.Icon = c.Title, c.Body, c.URL, c.Icon
		if p.Icon == "" {
			p.Icon = c.Avatar
		}
		if c.Group != "" {
			p.Tag = c.Group
		}
	}
	if p.Title == "" && p.Body == "" {
		var d struct {
			Title string `json:"title"`
			Text  string `json:"text"`
		}
		// Data is any JSON: an object with string fields of these names is used, anything else
		// is not (the worker then shows a generic title).
		if json.Unmarshal(n.Data, &d) == nil {
			p.Title, p.Body = d.Title, d.Text
		}
	}
	for {
		b, err := json.Marshal(&p)
		if err != nil || len(b) <= MaxPayload {
			return b, err
		}
		over := len(b) - MaxPayload
		switch {
		case len(p.Body) > 0:
			p.Body = cut(p.Body, len(p.Body)-over-3)
		case len(p.Title) > 0:
			p.Title = cut(p.Title, len(p.Title)-over-3)
		case p.Icon != "":
			p.Icon = ""
		default:
			p.URL = "" // a URL of over 3 KB: the worker opens the inbox instead
		}
	}
}

// cut shortens s to at most n bytes at a rune boundary, with an ellipsis; "" when n < 1.
func cut(s string, n int) string {
	if n < 1 {
		return ""
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
