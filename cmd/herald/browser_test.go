package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/testenv"
)

// browserDir holds the browser test's script and its npm lockfile.
const browserDir = "../../test/browser"

// TestBrowser opens the demo page, built on <herald-inbox>, in Debian's Chromium
// (test/browser/inbox.mjs, driven by playwright-core): two tabs as alice get a notification
// within a second of its 201; opening the panel in one resets both badges (seen), reading,
// reading all and archiving there reach the other within a second, before and after a server
// restart that loses none of it; a notification published while the tabs reconnect reaches
// both, and a burst gets a few toasts, not one each. With auth: a reload keeps
// the session, two users in two tabs of one origin (one cookie) each see only their own feed,
// sign out, and an expired token brings the login form back. herald.js on its own: refused
// beyond --max-connections-per-user, it retries by itself and resumes with ?last_event_id=;
// close() and connect() while a refresh is in flight win over it; from another origin with
// tokenInQuery a stale cookie is not sent, and an expired token is refreshed without loss.
// The element itself (test/browser/component.mjs): an axe audit of every state, a keyboard-only
// run, hostile content left inert, and screenshots at 1280 and 390 px, light and dark, in
// test/browser/screenshots (ignored by git).
//
// It needs /usr/bin/chromium (or $CHROMIUM), node, and `npm ci` run in test/browser; .ci/run
// provides all three.
func TestBrowser(t *testing.T) {
	node, chromium := needBrowser(t, "playwright-core", "@axe-core/playwright")

	t.Run("dev mode", func(t *testing.T) {
		// A fixed address, so that the restarted server is where the tabs reconnect to. retry
		// 5s: the tabs wait that long before reconnecting, so the test publishes while they are
		// away. drain-window 0: the restart is prompt. Two streams per user: a third is refused.
		args := []string{"-store", "sqlite:" + filepath.Join(t.TempDir(), "h.db"), "-addr", freeAddr(t),
			"-retry", "5s", "-drain-window", "0", "-max-connections-per-user", "2"}
		runBrowserScript(t, node, chromium, "inbox.mjs", args, "MODE=dev")
	})
	t.Run("token", func(t *testing.T) {
		secret := strings.Repeat("s", 40)
		secretFile := filepath.Join(t.TempDir(), "secret")
		writeFile(t, secretFile, secret)
		var tok, keyOut strings.Builder
		if err := run(context.Background(), []string{"token", "-user", "alice", "-ttl", "10m", "-jwt-secret-file", secretFile}, &tok, io.Discard); err != nil {
			t.Fatal(err)
		}
		if err := run(context.Background(), []string{"keygen", "-name", "app"}, &keyOut, io.Discard); err != nil {
			t.Fatal(err)
		}
		var key, hash string
		for _, f := range strings.Fields(keyOut.String()) {
			switch {
			case strings.HasPrefix(f, "hk_"):
				key = f
			case strings.HasPrefix(f, "app=sha256:"):
				hash = f
			}
		}
		// The script serves a page at pageAddr, another origin that calls Herald with herald.js.
		// jwt-leeway 0: a token the script mints for a few seconds expires when it says.
		pageAddr := freeAddr(t)
		args := []string{"-store", "sqlite:" + filepath.Join(t.TempDir(), "h.db"), "-addr", freeAddr(t), "-drain-window", "0",
			"-jwt-secret-file", secretFile, "-publisher-keys", hash, "-jwt-leeway", "0",
			"-allow-query-token", "-cors-origins", "http://" + pageAddr}
		runBrowserScript(t, node, chromium, "inbox.mjs", args, "MODE=token", "HERALD_TOKEN="+strings.TrimSpace(tok.String()),
			"HERALD_SECRET="+secret, "HERALD_KEY="+key, "PAGE_ADDR="+pageAddr)
	})
	t.Run("component", func(t *testing.T) {
		args := []string{"-store", "sqlite:" + filepath.Join(t.TempDir(), "h.db"), "-addr", freeAddr(t), "-drain-window", "0"}
		runBrowserScript(t, node, chromium, "component.mjs", args)
	})
}

// freeAddr returns a loopback address that was free a moment ago, for a server that must come
// back at the same address after a restart, or one whose address must be known in advance.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// needBrowser skips t under -short, and where Chromium (/usr/bin/chromium, or $CHROMIUM), node
// or the npm packages of test/browser are missing, saying how to install them (a failure under
// CI=true); it returns node's path and Chromium's.
func needBrowser(t *testing.T, packages ...string) (node, chromium string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a browser")
	}
	chromium = os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	_, err := os.Stat(chromium)
	testenv.Need(t, err == nil, "no Chromium at %s (apt-get install chromium, or set CHROMIUM)", chromium)
	node, err = exec.LookPath("node")
	testenv.Need(t, err == nil, "node is not installed (apt-get install nodejs npm)")
	for _, pkg := range packages {
		_, err = os.Stat(filepath.Join(browserDir, "node_modules", pkg))
		testenv.Need(t, err == nil, "%s is not installed (cd test/browser && npm ci)", pkg)
	}
	return node, chromium
}

// runBrowserScript starts a server with args, runs script (in test/browser) against it with env,
// and restarts the server (same args) whenever the script asks.
func runBrowserScript(t *testing.T, node, chromium, script string, args []string, env ...string) {
	server := startProc(t, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	shots, err := filepath.Abs(filepath.Join(browserDir, "screenshots"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = browserDir
	cmd.Env = append(os.Environ(), "HERALD_URL="+server.url, "CHROMIUM="+chromium, "SCREENSHOT_DIR="+shots)
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	var out []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		out = append(out, line)
		t.Log(line)
		if line != "restart" {
			continue
		}
		restartedAt := time.Now()
		server.cmd.Process.Kill() // a crash, not a goodbye: the tabs see their streams cut
		<-server.done
		server.cmd.Wait()
		server = startProc(t, args...)
		t.Logf("server restarted in %s", time.Since(restartedAt).Round(time.Millisecond))
		if _, err := io.WriteString(stdin, "restarted\n"); err != nil {
			t.Fatalf("tell the script: %v", err)
		}
	}
	err = cmd.Wait()
	if err != nil || len(out) == 0 || out[len(out)-1] != "ok" {
		t.Fatalf("browser test failed (%v); screenshots in %s\nstderr:\n%s\nserver log:\n%s", err, shots, stderr.String(), server.logText())
	}
	if stderr.Len() > 0 {
		t.Errorf("the script wrote to stderr:\n%s", stderr.String())
	}
}
