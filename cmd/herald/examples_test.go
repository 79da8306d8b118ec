package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/testenv"
)

// examplesDir holds the example backends of docs/security.md: an app's server that mints
// subscriber tokens, sets the cookie and publishes.
const examplesDir = "../../examples"

// TestExamples runs each example backend (examples/node, examples/python) as a team would: on
// its own port of the host Herald runs on, Herald with auth on (an HS256 secret, a publisher
// key, an issuer and audience, the app's origin in --cors-origins). In Debian's Chromium
// (test/browser/examples.mjs) alice signs in to the example and its <herald-inbox> goes live on
// the cookie the example set (HttpOnly, SameSite=Strict, Path=/, expiring with the token); bob
// comments on her post through the example, which publishes with its key, and the comment shows
// in alice's inbox; past the token's expiry the cookie has been renewed (the page's timer and the
// element's refresh hook) and the next comment arrives; arriving from another site's link still
// works; signing out leaves no cookie.
//
// It needs what TestBrowser needs, plus `npm ci` in examples/node and python3-jwt (Debian's
// PyJWT); .ci/run provides them.
func TestExamples(t *testing.T) {
	node, chromium := needBrowser(t, "playwright-core")

	t.Run("node", func(t *testing.T) {
		_, err := os.Stat(filepath.Join(examplesDir, "node", "node_modules", "jose"))
		testenv.Need(t, err == nil, "jose is not installed (cd examples/node && npm ci)")
		runExample(t, node, chromium, "node", node, "server.js")
	})
	t.Run("python", func(t *testing.T) {
		python := pythonWithJWT()
		testenv.Need(t, python != "", "no python3 with PyJWT (apt-get install python3-jwt)")
		runExample(t, node, chromium, "python", python, "server.py")
	})
}

// pythonWithJWT returns a python3 that imports jwt: $PYTHON, Debian's (where python3-jwt
// installs), or the one on PATH; "" if none does.
func pythonWithJWT() string {
	candidates := []string{os.Getenv("PYTHON"), "/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, c := range candidates {
		if c != "" && exec.Command(c, "-c", "import jwt").Run() == nil {
			return c
		}
	}
	return ""
}

// runExample starts Herald with auth on and the example in examples/name (argv, run in that
// directory) configured for it, and runs test/browser/examples.mjs against both.
func runExample(t *testing.T, node, chromium, name string, argv ...string) {
	const (
		ttl      = "12" // seconds: the test waits past a token's expiry
		issuer   = "https://app.example.test"
		audience = "herald"
	)
	secret := strings.Repeat("e", 40)
	secretFile := filepath.Join(t.TempDir(), "secret")
	writeFile(t, secretFile, secret)
	var keyOut strings.Builder
	if err := run(context.Background(), []string{"keygen", "-name", "example"}, &keyOut, io.Discard); err != nil {
		t.Fatal(err)
	}
	var key, hash string
	for _, f := range strings.Fields(keyOut.String()) {
		switch {
		case strings.HasPrefix(f, "hk_"):
			key = f
		case strings.HasPrefix(f, "example=sha256:"):
			hash = f
		}
	}
	heraldAddr, appAddr := freeAddr(t), freeAddr(t)
	appURL := "http://" + appAddr

	var out bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = filepath.Join(examplesDir, name)
	cmd.Env = append(os.Environ(), "ADDR="+appAddr, "PUBLIC_URL="+appURL, "HERALD_URL=http://"+heraldAddr,
		"HERALD_JWT_SECRET="+secret, "HERALD_PUBLISHER_KEY="+key, "HERALD_JWT_ISSUER="+issuer,
		"HERALD_JWT_AUDIENCE="+audience, "HERALD_AUTH_COOKIE=herald_token", "COOKIE_DOMAIN=", "TOKEN_TTL="+ttl)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() { cmd.Process.Kill(); <-exited }
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("the %s example's output:\n%s", name, out.String())
		}
	})
	for deadline := time.Now().Add(15 * time.Second); ; {
		resp, err := http.Get(appURL + "/app.js")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("the %s example exited", name)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %s example did not answer at %s: %v", name, appURL, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// jwt-leeway 0: a token stops being accepted when its exp says, within the test's wait.
	args := []string{"-store", "sqlite:" + filepath.Join(t.TempDir(), "h.db"), "-addr", heraldAddr, "-drain-window", "0",
		"-jwt-secret-file", secretFile, "-publisher-keys", hash, "-jwt-leeway", "0",
		"-jwt-issuer", issuer, "-jwt-audience", audience, "-cors-origins", appURL}
	runBrowserScript(t, node, chromium, "examples.mjs", args, "APP_URL="+appURL, "EXAMPLE="+name,
		"TOKEN_TTL="+ttl, "JWT_ISSUER="+issuer, "JWT_AUDIENCE="+audience)
}
