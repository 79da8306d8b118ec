package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/heraldhq/herald/internal/push"
	"github.com/heraldhq/herald/internal/testenv"
)

// TestBrowserPush runs test/browser/push.mjs in Debian's Chromium against a server with Web
// Push on: herald-sw.js shows a push delivered through the DevTools protocol, collapses by
// tag, and a click opens the url and marks the notification read; <herald-inbox> shows its
// push switch. It needs what TestBrowser needs.
func TestBrowserPush(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	_, err := os.Stat(chromium)
	testenv.Need(t, err == nil, "no Chromium at %s (apt-get install chromium, or set CHROMIUM)", chromium)
	node, err := exec.LookPath("node")
	testenv.Need(t, err == nil, "node is not installed (apt-get install nodejs npm)")
	_, err = os.Stat(filepath.Join(browserDir, "node_modules", "playwright-core"))
	testenv.Need(t, err == nil, "playwright-core is not installed (cd test/browser && npm ci)")

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
