// Package validate checks what Herald ships for deployment beside the binary: the Helm chart
// (rendered through Helm's own Go packages, every object decoded strictly into its Kubernetes
// type).
//
// It is a module of its own so that Helm's and Kubernetes's dependencies stay out of Herald's
// go.mod; the root module's ./... does not reach it. Run it with
//
//	cd deploy/validate && go test ./...
package validate

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
)

// need skips t, or fails it under CI=true, when ok is false: the rule of Herald's
// internal/testenv, which this module cannot import without taking Herald's requirements into
// its own module graph.
func need(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %s", msg)
	}
	t.Skip(msg)
}

var tmpDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "herald-validate-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmpDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// heraldBinary returns the server binary: $HERALD_BIN when set (.ci/run sets it to what
// deploy/build.sh built), else one built from ../../cmd/herald, once per test run.
func heraldBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if bin := os.Getenv("HERALD_BIN"); bin != "" {
			binPath = bin
			return
		}
		binPath = filepath.Join(tmpDir, "herald")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/herald")
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/herald: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// serveFlags returns the names of herald serve's flags, which are also its settings' names in
// HERALD_* variables and in the chart's config value.
func serveFlags(t *testing.T) map[string]bool {
	t.Helper()
	out, _ := exec.Command(heraldBinary(t), "serve", "-h").CombinedOutput()
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z][a-z0-9-]*)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if !flags["addr"] || !flags["metrics-addr"] || !flags["drain-window"] {
		t.Fatalf("herald serve -h lists no flags I know:\n%s", out)
	}
	return flags
}
