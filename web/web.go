// Package web serves from the binary the browser client herald.js, the <herald-inbox> element
// built on it (herald-inbox.js: a bell, a badge of unseen notifications, an inbox panel and
// toasts), both for apps to import, the service worker of Web Push (herald-sw.js), and the demo
// page built on the element. There is no build
// step: the files in static/ are what browsers get.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"
)

//go:embed static
var static embed.FS

// Config is what the page needs to know about the server.
type Config struct {
	// Dev: the server runs without auth; the page lets anyone pick a user and shows the send form.
	Dev bool `json:"dev"`
	// Cookie is the name of the cookie the server reads a subscriber token from.
	Cookie string `json:"cookie"`
	// Push: Web Push is configured; the page's inbox offers its push switch.
	Push bool `json:"push"`
}

// Paths are the paths the handler serves (GET and HEAD); everything else is the API's.
var Paths = []string{"/", "/herald.js", "/herald-inbox.js", "/herald-sw.js", "/app.js", "/style.css"}

// file is one served file, rendered once at startup.
type file struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves Paths. Files are rendered once; each response carries a strong ETag so that
// browsers revalidate cheaply (Cache-Control: no-cache) and never run a stale herald.js after an
// upgrade.
type Handler struct {
	files map[string]file
}

// csp allows the page nothing but its own origin (and data: images, for inline icons): its scripts are files (the config block is
// JSON, which a browser never executes), and it talks only to the API it is served by.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// New renders the files for cfg.
func New(cfg Config) (*Handler, error) {
	tmpl, err := template.ParseFS(static, "static/index.html")
	if err != nil {
		return nil, fmt.Errorf("web: parse index.html: %w", err)
	}
	var index bytes.Buffer
	// In a <script type="application/json"> block html/template writes cfg as escaped JSON.
	if err := tmpl.Execute(&index, cfg); err != nil {
		return nil, fmt.Errorf("web: render index.html: %w", err)
	}
	h := &Handler{files: map[string]file{}}
	for _, p := range Paths {
		var body []byte
		name := path.Base(p)
		if p == "/" {
			name, body = "index.html", index.Bytes()
		} else if body, err = fs.ReadFile(static, "static/"+name); err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		sum := sha256.Sum256(body)
		h.files[p] = file{
			body:  body,
			ctype: mime.TypeByExtension(path.Ext(name)),
			etag:  `"` + hex.EncodeToString(sum[:12]) + `"`,
		}
	}
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := h.files[r.URL.Path]
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r) // not reached: the caller routes only Paths here
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", f.ctype)
	hdr.Set("ETag", f.etag)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	if r.URL.Path == "/" {
		hdr.Set("Content-Security-Policy", csp)
		hdr.Set("X-Frame-Options", "DENY")
	}
	if r.URL.Path == "/herald.js" || r.URL.Path == "/herald-inbox.js" {
		// Apps on other origins import them as modules, which browsers fetch with CORS (and
		// herald-inbox.js imports herald.js). Public code: no credentials, nothing to protect.
		hdr.Set("Access-Control-Allow-Origin", "*")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
