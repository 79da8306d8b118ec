package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestWebHandler(t *testing.T) {
	h, err := New(Config{Dev: true, Cookie: "herald_token"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path  string
		ctype string
		cors  bool
		csp   bool
	}{
		{"/", "text/html; charset=utf-8", false, true},
		{"/herald.js", "text/javascript; charset=utf-8", true, false},
		{"/herald-inbox.js", "text/javascript; charset=utf-8", true, false},
		{"/herald-sw.js", "text/javascript; charset=utf-8", false, false},
		{"/app.js", "text/javascript; charset=utf-8", false, false},
		{"/style.css", "text/css; charset=utf-8", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", tt.path, nil))
			if w.Code != 200 || w.Body.Len() == 0 {
				t.Fatalf("status %d, %d bytes", w.Code, w.Body.Len())
			}
			hdr := w.Header()
			if hdr.Get("Content-Type") != tt.ctype || hdr.Get("X-Content-Type-Options") != "nosniff" || hdr.Get("Cache-Control") != "no-cache" {
				t.Errorf("headers %v", hdr)
			}
			if got := hdr.Get("Access-Control-Allow-Origin") == "*"; got != tt.cors {
				t.Errorf("CORS header %q", hdr.Get("Access-Control-Allow-Origin"))
			}
			if got := hdr.Get("Content-Security-Policy") != ""; got != tt.csp {
				t.Errorf("CSP %q", hdr.Get("Content-Security-Policy"))
			}
			// Revalidation: the same ETag gets a 304 and no body.
			etag := hdr.Get("ETag")
			req := httptest.NewRequest("GET", tt.path, nil)
			req.Header.Set("If-None-Match", etag)
			w = httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if etag == "" || w.Code != http.StatusNotModified || w.Body.Len() != 0 {
				t.Errorf("If-None-Match %s: status %d, %d bytes", etag, w.Code, w.Body.Len())
			}
		})
	}
}

// TestWebIndexConfig: the page learns the server's mode from a JSON block, escaped so that no
// value can end the script element; the CSP forbids inline scripts, so the block must be data.
func TestWebIndexConfig(t *testing.T) {
	re := regexp.MustCompile(`(?s)<script type="application/json" id="herald-config">(.*?)</script>`)
	for _, cfg := range []Config{{Dev: true, Cookie: "herald_token"}, {Dev: false, Cookie: "</script><script>alert(1)</script>"}} {
		h, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		body := w.Body.String()
		m := re.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no config block in %s", body)
		}
		var got Config
		if err := json.Unmarshal([]byte(m[1]), &got); err != nil || got != cfg {
			t.Errorf("config %q decodes to %+v (%v), want %+v", m[1], got, err, cfg)
		}
		if strings.Count(body, "<script") != 3 || strings.Contains(body, "alert(1)</script>") {
			t.Errorf("the config escaped its block:\n%s", body)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Error("the CSP allows inline scripts")
	}
}
