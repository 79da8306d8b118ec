package main

import (
	"path/filepath"
	"testing"
)

// TestBrowserPreferences opens the demo page in Debian's Chromium (test/browser/prefs.mjs,
// driven by playwright-core) and uses the settings view of <herald-inbox> as a user would: with
// the keyboard it mutes a type prefix, sees the muted broadcasts leave the list in two tabs (and
// new ones not arrive, but a critical one), gets a refusal said in the view, and unmutes; the
// push rules it does not show survive its saves; axe finds no serious or critical violation in
// the view, light, dark and as the 390 px sheet; screenshots go to test/browser/screenshots.
//
// It needs /usr/bin/chromium (or $CHROMIUM), node, and `npm ci` run in test/browser.
func TestBrowserPreferences(t *testing.T) {
	node, chromium := needBrowser(t, "playwright-core", "@axe-core/playwright")
	args := []string{"-store", "sqlite:" + filepath.Join(t.TempDir(), "h.db"), "-addr", freeAddr(t), "-drain-window", "0"}
	runBrowserScript(t, node, chromium, "prefs.mjs", args)
}
