package main

import (
	"path/filepath"
	"testing"

	"github.com/heraldhq/herald/internal/push"
)

// TestBrowserPush runs test/browser/push.mjs in Debian's Chromium against a server with Web
// Push on: herald-sw.js shows a push delivered through the DevTools protocol, collapses by
// tag, and a click opens the url and marks the notification read; <herald-inbox> shows its
// push switch. It needs what TestBrowser needs.
func TestBrowserPush(t *testing.T) {
	node, chromium := needBrowser(t, "playwright-core")

	keys, err := push.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "vapid.key")
	writeFile(t, keyFile, keys.Private)
	args := []string{"-store", "sqlite:" + filepath.Join(t.TempDir(), "h.db"), "-addr", freeAddr(t), "-drain-window", "0",
		"-vapid-private-key-file", keyFile, "-vapid-subject", "mailto:ops@example.com"}
	runBrowserScript(t, node, chromium, "push.mjs", args)
}
