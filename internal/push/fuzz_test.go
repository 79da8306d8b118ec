package push_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/push"
)

// FuzzEndpointCheck: a subscription's endpoint comes from any client. Whatever Check accepts is
// an https URL of a listed host (or, with Loopback, an http(s) URL of a loopback address), so
// that the server never posts anywhere else.
func FuzzEndpointCheck(f *testing.F) {
	for _, s := range []string{"https://fcm.googleapis.com/fcm/send/x", "https://a.notify.windows.com/w", "http://127.0.0.1:9/p",
		"https://fcm.googleapis.com.evil.example/x", "https://evil.example/.notify.windows.com", "https://user@fcm.googleapis.com/",
		"https://[::1]/x", "https://notify.windows.com/", "javascript:alert(1)", "//fcm.googleapis.com/x", "https://fcm.googleapis.com:444/"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	hosts, _ := push.ParseHosts(push.DefaultHosts)
	f.Fuzz(func(t *testing.T, endpoint string, loopback bool) {
		e := push.Endpoints{Hosts: hosts, Loopback: loopback}
		if e.Check(endpoint) != nil {
			return
		}
		u, err := url.Parse(endpoint)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse", endpoint)
		}
		host := strings.ToLower(u.Hostname())
		isLoop := host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
		switch {
		case loopback && isLoop && (u.Scheme == "http" || u.Scheme == "https"):
		case u.Scheme != "https":
			t.Fatalf("accepted %q: not https", endpoint)
		case host != "fcm.googleapis.com" && host != "updates.push.services.mozilla.com" && host != "web.push.apple.com" &&
			!strings.HasSuffix(host, ".notify.windows.com"):
			t.Fatalf("accepted %q: host %q is not listed", endpoint, host)
		}
	})
}

// FuzzPayload: whatever a notification holds, its push is JSON within MaxPayload.
func FuzzPayload(f *testing.F) {
	f.Add("title", "body", "https://x.example/", `{"text":"hi"}`, 100)
	f.Add("", "", "", `"just a string"`, 4000)
	f.Fuzz(func(t *testing.T, title, body, link, data string, n int) {
		if n < 0 || n > 5000 {
			return
		}
		if !json.Valid([]byte(data)) {
			data = "null"
		}
		body = strings.Repeat(body, n/(len(body)+1)+1)
		nt := herald.Notification{ID: 1, Type: "t", Data: json.RawMessage(data), Content: &herald.Content{Title: title, Body: body, URL: link}}
		b, err := push.NewPayload(&nt)
		if err != nil {
			if utf8.ValidString(title + body + link) {
				t.Fatalf("NewPayload: %v", err)
			}
			return
		}
		if len(b) > push.MaxPayload || !json.Valid(b) {
			t.Fatalf("payload of %d bytes, valid %v", len(b), json.Valid(b))
		}
	})
}
