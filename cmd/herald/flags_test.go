package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apptest"
)

// runHerald runs the herald binary with args and env, and returns its stdout, stderr and exit
// status.
func runHerald(t *testing.T, env []string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, serverBinary(), args...)
	cmd.Env = append(os.Environ(), "HERALD_TEST_BECOME_SERVER=1")
	cmd.Env = append(cmd.Env, env...)
	cmd.Dir = t.TempDir() // a store named by a relative path is made here, not in the source tree
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		status = ee.ExitCode()
	case err != nil:
		t.Fatalf("herald %v: %v", args, err)
	}
	return out.String(), errOut.String(), status
}

// TestHelp: asking for help is not an error. Every command's -h (and --help) prints its usage to
// stdout and exits 0; "herald -h" and "herald help" print the same list of commands.
func TestHelp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	commands := []string{"serve", "token", "keygen", "vapid", "backup", "healthcheck", "send", "listen", "version"}
	for _, cmd := range commands {
		for _, h := range []string{"-h", "--help"} {
			t.Run(cmd+" "+h, func(t *testing.T) {
				stdout, stderr, status := runHerald(t, nil, cmd, h)
				if status != 0 || stderr != "" {
					t.Errorf("exit %d, stderr %q; want 0 and nothing", status, stderr)
				}
				if !strings.HasPrefix(stdout, "usage: herald "+cmd) {
					t.Errorf("stdout does not start with the usage of %s:\n%s", cmd, stdout)
				}
			})
		}
	}
	help, _, status := runHerald(t, nil, "help")
	if status != 0 {
		t.Fatalf("herald help: exit %d", status)
	}
	for _, cmd := range commands {
		if !strings.Contains(help, "herald "+cmd) {
			t.Errorf("herald help does not list %s:\n%s", cmd, help)
		}
	}
	sendHelp, _, _ := runHerald(t, nil, "send", "-h")
	if stdout, _, status := runHerald(t, nil, "help", "send"); status != 0 || stdout != sendHelp {
		t.Errorf("herald help send: exit %d, stdout\n%s\nwant what herald send -h prints", status, stdout)
	}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"-help"}} {
		stdout, stderr, status := runHerald(t, nil, args...)
		if status != 0 || stderr != "" || stdout != help {
			t.Errorf("herald %s: exit %d, stderr %q, stdout\n%s\nwant exit 0 and what herald help prints:\n%s", args[0], status, stderr, stdout, help)
		}
	}
}

// TestVersion: --version and -v print the version, as "herald version" does.
func TestVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	want, _, _ := runHerald(t, nil, "version")
	if !regexp.MustCompile(`^herald \S+ go\S+\n$`).MatchString(want) {
		t.Fatalf("herald version printed %q", want)
	}
	for _, arg := range []string{"--version", "-version", "-v"} {
		stdout, stderr, status := runHerald(t, nil, arg)
		if status != 0 || stderr != "" || stdout != want {
			t.Errorf("herald %s: exit %d, stdout %q, stderr %q; want exit 0 and %q", arg, status, stdout, stderr, want)
		}
	}
}

// TestFlagErrors: a mistake in a flag is one line on stderr, naming the flag (or the variable or
// line of the config file that set it) and what it takes; not the whole usage, not twice.
func TestFlagErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	conf := filepath.Join(t.TempDir(), "herald.conf")
	writeFile(t, conf, "# settings\nheartbeat soon\n")
	tests := []struct {
		name string
		env  []string
		args []string
		want []string // in the line, in this order
	}{
		{"not a number", nil, []string{"serve", "--max-body", "abc"}, []string{"herald serve: ", "--max-body", `"abc"`, "whole number"}},
		{"not a duration", nil, []string{"--heartbeat", "5"}, []string{"herald serve: ", "--heartbeat", `"5"`, "duration", "30s"}},
		{"not a bool", nil, []string{"serve", "--insecure=maybe"}, []string{"--insecure", `"maybe"`, "true or false"}},
		{"not a float", nil, []string{"serve", "--publish-rate", "fast"}, []string{"--publish-rate", `"fast"`, "number"}},
		{"no value", nil, []string{"serve", "--addr"}, []string{"--addr", "needs a value"}},
		{"unknown flag", nil, []string{"send", "--count", "3"}, []string{"herald send: ", "--count", "herald send -h"}},
		{"listen count", nil, []string{"listen", "--count", "x"}, []string{"herald listen: ", "--count", `"x"`, "whole number"}},
		{"token ttl", nil, []string{"token", "--user", "a", "--ttl", "1"}, []string{"herald token: ", "--ttl", "duration"}},
		{"from the environment", []string{"HERALD_HEARTBEAT=soon"}, []string{"serve"}, []string{"HERALD_HEARTBEAT", `"soon"`, "duration"}},
		{"from the config file", nil, []string{"serve", "--config", conf}, []string{conf, "line 2", "heartbeat", `"soon"`, "duration"}},
		{"unknown command", nil, []string{"serv"}, []string{`"serv"`, "herald help"}},
		{"invalid setting", nil, []string{"serve", "--queue-size", "0"}, []string{"herald serve: ", "queue-size"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, status := runHerald(t, tt.env, tt.args...)
			if status != 2 || stdout != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", status, stdout)
			}
			if strings.Count(stderr, "\n") != 1 {
				t.Fatalf("stderr is not one line:\n%s", stderr)
			}
			if regexp.MustCompile(`herald[^:]*: .*herald: `).MatchString(stderr) {
				t.Errorf("a doubled prefix: %s", stderr)
			}
			rest := stderr
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("stderr %q does not have %q (in order %q)", stderr, w, tt.want)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// TestStartErrors: when serve cannot start, it says why once, in the log's format, without
// repeating itself: an address in use, publisher keys that do not parse, a store directory that
// does not exist.
func TestStartErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	secret := "HERALD_JWT_SECRET=" + strings.Repeat("s", 40)
	tests := []struct {
		name   string
		env    []string
		args   []string
		want   []string
		unwant []string
	}{
		{"address in use", nil, []string{"--addr", taken.Addr().String(), "--store", "sqlite:h.db"},
			[]string{"addr " + taken.Addr().String() + " is in use"}, []string{"listen tcp", "bind:"}},
		{"publisher keys", []string{secret}, []string{"--publisher-keys", "nope", "--store", "sqlite:h.db"},
			[]string{"publisher-keys: ", "sha256"}, []string{"line 1", "publisher keys,"}},
		{"publisher key file", []string{secret}, []string{"--publisher-key-file", "FILE", "--store", "sqlite:h.db"},
			[]string{"publisher-key-file ", "line 2", "16 characters"}, []string{"publisher keys,"}},
		{"store directory", nil, []string{"--store", "sqlite:/nonexistent/dir/h.db"},
			[]string{"/nonexistent/dir", "does not exist"}, []string{"unable to open"}},
	}
	keyFile := filepath.Join(t.TempDir(), "keys")
	writeFile(t, keyFile, "# keys\nbilling=short\n")
	for _, tt := range tests {
		for _, format := range []string{"text", "json"} {
			t.Run(tt.name+" "+format, func(t *testing.T) {
				args := append([]string{"serve", "--log-format", format}, tt.args...)
				for i, a := range args {
					if a == "FILE" {
						args[i] = keyFile
					}
				}
				stdout, stderr, status := runHerald(t, tt.env, args...)
				if status != 2 || stdout != "" {
					t.Errorf("exit %d, stdout %q; want 2 and nothing", status, stdout)
				}
				var said []string
				for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
					if format == "json" && !json.Valid([]byte(line)) && !strings.HasPrefix(line, "herald serve: ") {
						t.Errorf("a line neither in the log's format nor a message of the command: %q", line)
					}
					if strings.Contains(line, tt.want[0]) {
						said = append(said, line)
					}
				}
				if len(said) != 1 {
					t.Fatalf("%d lines name %s, want 1:\n%s", len(said), tt.want[0], stderr)
				}
				for _, w := range tt.want {
					if !strings.Contains(said[0], w) {
						t.Errorf("%q does not say %q", said[0], w)
					}
				}
				for _, u := range tt.unwant {
					if strings.Contains(said[0], u) {
						t.Errorf("%q says %q", said[0], u)
					}
				}
			})
		}
	}
}

// TestClientEnvironment: of send's and listen's flags only --server and --token are read from
// HERALD_* variables: a HERALD_TO or HERALD_BROADCAST left in a shell must not pick recipients.
func TestClientEnvironment(t *testing.T) {
	s := apptest.Start(t, apptest.Config(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t.Setenv("HERALD_SERVER", s.URL)
	t.Setenv("HERALD_TO", "alice")
	t.Setenv("HERALD_BROADCAST", "true")
	if err := run(ctx, []string{"send", "--type", "x"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "give --to users, or --broadcast") {
		t.Errorf("send with HERALD_TO and HERALD_BROADCAST set and no flags: %v; want them ignored", err)
	}
	var out strings.Builder
	if err := run(ctx, []string{"send", "--to", "bob"}, &out, io.Discard); err != nil || !strings.Contains(out.String(), `"user":"bob"`) {
		t.Errorf("send --to bob with HERALD_SERVER set: %v, printed %q", err, out.String())
	}
}
