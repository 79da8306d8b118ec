package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// limitedCmd is herald serve args, run with its open-file limit (soft and hard) lowered to
// nofile by the shell, as `ulimit -n` does for an operator.
func limitedCmd(nofile int, args ...string) *exec.Cmd {
	script := "ulimit -n " + strconv.Itoa(nofile) + ` && exec "$0" "$@"`
	return exec.Command("sh", append([]string{"-c", script, serverBinary(), "serve", "-addr", "127.0.0.1:0"}, args...)...)
}

// TestIdleConnectionsUnderFDLimit is issue 15 §1: a server with an open-file limit of 512 gets
// three waves of 612 connections that never send a byte. Before, during and after each wave,
// /healthz on the metrics listener, a publish and a new stream on the API's port must each
// answer within 5 s of being asked. Without a connection limit below the open-file limit they
// waited about 10 s each time (accept failed with EMFILE until --read-header-timeout closed idle
// connections), and nothing was logged above debug level.
func TestIdleConnectionsUnderFDLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to lower the open-file limit with")
	}
	const nofile, wave = 512, 612
	metrics := freePort(t)
	p := startCmd(t, limitedCmd(nofile, "-store", "sqlite:"+filepath.Join(t.TempDir(), "h.db"), "-metrics-addr", metrics))
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.logText(), "url=http://"+metrics+"/metrics"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the metrics listener is not in the start-up log:\n%s", p.logText())
		}
	}
	if limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.cmd.Process.Pid)); err == nil &&
		!regexp.MustCompile(`Max open files +`+strconv.Itoa(nofile)+` `).Match(limits) {
		t.Fatalf("the server does not run with the lowered limit:\n%s", limits)
	}
	probes := func(phase string) {
		t.Helper()
		var wg sync.WaitGroup
		for _, pr := range []struct {
			name string
			do   func(ctx context.Context) error
		}{
			{"/healthz on the metrics listener", func(ctx context.Context) error {
				return expect(ctx, "GET", "http://"+metrics+"/healthz", "", 200)
			}},
			{"a publish", func(ctx context.Context) error {
				return expect(ctx, "POST", p.url+"/v1/notifications", `{"to":["alice"]}`, 201)
			}},
			{"a new stream", func(ctx context.Context) error {
				return expect(ctx, "GET", p.url+"/v1/stream?user=alice", "", 200)
			}},
		} {
			wg.Go(func() {
				// The deadline is generous; the point is that no probe waits for idle
				// connections' header timeout (10 s).
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				start := time.Now()
				if err := pr.do(ctx); err != nil {
					t.Errorf("%s: %s: %v after %s", phase, pr.name, err, time.Since(start).Round(time.Millisecond))
				}
			})
		}
		wg.Wait()
	}
	probes("before the waves")
	for i := 1; i <= 3; i++ {
		var conns []net.Conn
		for range wave {
			c, err := net.DialTimeout("tcp", p.url[len("http://"):], 5*time.Second)
			if err != nil {
				break // the accept backlog is full: the server is not accepting
			}
			conns = append(conns, c)
		}
		if len(conns) <= nofile {
			t.Errorf("wave %d: only %d connections opened", i, len(conns))
		}
		probes(fmt.Sprintf("during wave %d", i))
		for _, c := range conns {
			c.Close()
		}
		probes(fmt.Sprintf("after wave %d", i))
		if t.Failed() {
			break
		}
	}
	if t.Failed() {
		t.Logf("server log:\n%s", tail(p.logText(), 40))
		return
	}
	// The operator is told, once per interval, with counts.
	if !strings.Contains(p.logText(), "level=WARN msg=\"too many connections") {
		t.Errorf("no warning logged:\n%s", tail(p.logText(), 40))
	}
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, `herald_connections_dropped_total{listener="api",reason="evicted"} `) {
			if strings.HasSuffix(line, " 0") {
				t.Errorf("no eviction counted: %s", line)
			}
			return
		}
	}
	t.Errorf("no herald_connections_dropped_total in /metrics")
}

// expect does one request on a connection of its own and checks the status; a stream's body is
// read up to its first line, which the server flushes at once.
func expect(ctx context.Context, method, url, body string, status int) error {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != status {
		return fmt.Errorf("status %d, want %d", resp.StatusCode, status)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
			return fmt.Errorf("stream: %w", err)
		}
	}
	return nil
}

// TestStartupRefusesTooLowFDLimit: an open-file limit that leaves too few connections once the
// store, bus and metrics listener have their share stops the server at start, saying so.
func TestStartupRefusesTooLowFDLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to lower the open-file limit with")
	}
	cmd := limitedCmd(56, "-store", "sqlite:"+filepath.Join(t.TempDir(), "h.db"))
	cmd.Env = append(cmd.Environ(), "HERALD_TEST_BECOME_SERVER=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "open-file limit 56") || !strings.Contains(string(out), "ulimit -n") {
		t.Fatalf("start with an open-file limit of 56: %v\n%s", err, out)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
