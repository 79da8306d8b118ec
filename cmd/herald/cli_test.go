package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/client"
	"github.com/heraldhq/herald/internal/apptest"
)

// lockedBuffer is a strings.Builder safe to write from one goroutine and read from another.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSendAndListen: herald listen prints what herald send publishes, one JSON object per line,
// control events included, and exits after --count.
func TestSendAndListen(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	p := startProc(t, "-store", "sqlite:"+filepath.Join(t.TempDir(), "h.db"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var out, errOut lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"listen", "--server", p.url, "--user", "alice", "--count", "3"}, &out, &errOut)
	}()
	for !strings.Contains(errOut.String(), "live") {
		if ctx.Err() != nil {
			t.Fatalf("listen never went live: %s", errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var sent strings.Builder
	for _, args := range [][]string{
		{"send", "--server", p.url, "--to", "alice, bob", "--type", "comment", "--data", `{"text":"hi"}`},
		{"send", "--server", p.url, "--broadcast", "--type", "maintenance", "--title", "Down at 02:00 <UTC>", "--body", "line 1\nline 2", "--url", "/status"},
	} {
		if err := run(ctx, args, &sent, io.Discard); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	var receipts struct {
		Notifications []struct{ ID, User string }
	}
	if err := json.NewDecoder(strings.NewReader(sent.String())).Decode(&receipts); err != nil || len(receipts.Notifications) != 2 {
		t.Fatalf("send printed %q (%v)", sent.String(), err)
	}
	resp, err := http.Post(p.url+"/v1/notifications/"+receipts.Notifications[0].ID+"/read?user=alice", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
	case <-ctx.Done():
		t.Fatalf("listen did not exit after 3 events; printed:\n%s", out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []map[string]any{
		{"cursor": "1.0", "id": receipts.Notifications[0].ID, "type": "comment", "data": map[string]any{"text": "hi"}, "broadcast": false},
		{"cursor": "1.1", "type": "maintenance", "title": "Down at 02:00 <UTC>", "body": "line 1\nline 2", "url": "/status", "data": nil, "broadcast": true},
		{"cursor": "1.1", "event": "herald.read", "data": map[string]any{"ids": []any{receipts.Notifications[0].ID}, "all": false, "read": true, "unread": float64(1), "unseen": float64(1)}},
	}
	if len(lines) != len(want) {
		t.Fatalf("listen printed %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, line := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
		}
		// Cursors end in the store's epoch, which differs with every store.
		if c, ok := got["cursor"].(string); ok && strings.Count(c, ".") == 2 {
			got["cursor"] = c[:strings.LastIndexByte(c, '.')]
		}
		for k, v := range want[i] {
			if gb, _ := json.Marshal(got[k]); string(gb) != string(must(json.Marshal(v))) {
				t.Errorf("line %d: %s = %s, want %s (%s)", i, k, gb, must(json.Marshal(v)), line)
			}
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestClientCommandErrors: mistakes are reported, not sent.
func TestClientCommandErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	secret := filepath.Join(t.TempDir(), "secret")
	writeFile(t, secret, strings.Repeat("s", 40))
	authed := startProc(t, "-store", "sqlite:"+filepath.Join(t.TempDir(), "h.db"), "-jwt-secret-file", secret)
	dev := apptest.Start(t, apptest.Config(t))
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no recipients", []string{"send", "--type", "x"}, "give --to users, or --broadcast"},
		{"both", []string{"send", "--to", "a", "--broadcast"}, "give --to users, or --broadcast"},
		{"bad data", []string{"send", "--to", "a", "--data", "{nope"}, "--data is not valid JSON"},
		{"bad server", []string{"send", "--server", "localhost:1", "--to", "a"}, "not an http(s) URL"},
		{"bad url", []string{"send", "--server", dev.URL, "--to", "a", "--url", "javascript:alert(1)"}, `400 invalid: "url"`},
		{"no credentials", []string{"send", "--server", authed.url, "--to", "a"}, "401 unauthorized"},
		{"listen without credentials", []string{"listen", "--server", authed.url, "--quiet"}, "401 unauthorized"},
		{"listen with a bad token", []string{"listen", "--server", authed.url, "--token", "x.y.z", "--quiet"}, "401 unauthorized"},
		{"stray argument", []string{"listen", "alice"}, "unexpected arguments"},
		{"listen in dev mode without --user", []string{"listen", "--server", dev.URL, "--quiet"}, "pass --user"},
		{"listen with auth and no token", []string{"listen", "--server", authed.url, "--quiet"}, "pass a subscriber token with --token or HERALD_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, tt.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestListenOptions: what listen is given reaches the server as meant — a type list written
// with spaces after the commas, --count — and every line it prints is one JSON object, also
// for control events whose data is not JSON (a proxy's doing, a newer server).
func TestListenOptions(t *testing.T) {
	s := apptest.Start(t, apptest.Config(t))
	pub, err := client.New(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("types with spaces", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, typ := range []string{"comment", "other", "like"} {
			if _, err := pub.Publish(ctx, client.Message{To: []string{"bob"}, Type: typ}); err != nil {
				t.Fatal(err)
			}
		}
		var out, errOut lockedBuffer
		err := run(ctx, []string{"listen", "--server", s.URL, "--user", "bob", "--last-event-id", "0.0", "--types", "comment, like ,", "--count", "2"}, &out, &errOut)
		if err != nil {
			t.Fatalf("listen: %v; stderr: %s", err, errOut.String())
		}
		var types []string
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var l struct{ Type string }
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			types = append(types, l.Type)
		}
		if strings.Join(types, ",") != "comment,like" {
			t.Errorf("printed types %v, want comment and like", types)
		}
	})
	t.Run("odd control events", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: herald.read\ndata:\n\nevent: herald.future\ndata: not json\n\nevent: herald.read\ndata: {\"unread\":1}\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}))
		defer srv.Close()
		defer srv.CloseClientConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var out lockedBuffer
		if err := run(ctx, []string{"listen", "--server", srv.URL, "--quiet", "--count", "2"}, &out, io.Discard); err != nil {
			t.Fatalf("listen: %v; printed %s", err, out.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		// An event without data is not dispatched (the SSE specification), so it is not printed.
		want := []string{`{"cursor":"","event":"herald.future","data":"not json"}`, `{"cursor":"","event":"herald.read","data":{"unread":1}}`}
		if !slices.Equal(lines, want) {
			t.Errorf("printed\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
	})
}

// TestListenProcess runs herald listen as a program: each event is on stdout as soon as it
// arrives (not held in a buffer), the connection's state goes to stderr, Ctrl-C ends it with
// status 0, and an error that retrying cannot fix ends it with status 2 and a message.
func TestListenProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	s := apptest.Start(t, apptest.Config(t))
	secret := strings.Repeat("s", 40)
	authCfg := apptest.Config(t)
	authCfg.JWTSecret = secret
	authed := apptest.Start(t, authCfg)
	command := func(args ...string) (*exec.Cmd, *lockedBuffer) {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "HERALD_TEST_BECOME_SERVER=1")
		var stderr lockedBuffer
		cmd.Stderr = &stderr
		return cmd, &stderr
	}

	t.Run("live lines and Ctrl-C", func(t *testing.T) {
		cmd, stderr := command("listen", "--server", s.URL, "--user", "carol")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stderr.String(), "live"); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("never live; stderr: %s", stderr.String())
			}
		}
		lines := make(chan string, 10)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		pub, _ := client.New(s.URL)
		for i := range 2 {
			r, err := pub.Publish(context.Background(), client.Message{To: []string{"carol"}, Type: "ping", Data: i})
			if err != nil {
				t.Fatal(err)
			}
			select {
			case line := <-lines:
				if !strings.Contains(line, `"id":"`+r[0].ID+`"`) {
					t.Errorf("line %q, want notification %s", line, r[0].ID)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("notification %d not printed while listen runs", i)
			}
		}
		cmd.Process.Signal(os.Interrupt)
		exited := make(chan error, 1)
		go func() {
			for range lines {
			}
			exited <- cmd.Wait()
		}()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("exit after Ctrl-C: %v; stderr: %s", err, stderr.String())
			}
		case <-time.After(5 * time.Second):
			t.Fatal("listen did not exit after Ctrl-C")
		}
	})

	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"listen without credentials", []string{"listen", "--server", authed.URL}, "401 unauthorized"},
		{"listen with a bad cursor", []string{"listen", "--server", s.URL, "--user", "carol", "--last-event-id", "x"}, "400 invalid"},
		{"send without recipients", []string{"send", "--server", s.URL}, "give --to users, or --broadcast"},
		{"send to a server with auth", []string{"send", "--server", authed.URL, "--to", "a"}, "401 unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, stderr := command(tt.args...)
			var stdout lockedBuffer
			cmd.Stdout = &stdout
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 2 {
					t.Errorf("exit %v, want status 2", err)
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("did not exit; stderr: %s", stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) || stdout.String() != "" {
				t.Errorf("stderr %q, stdout %q; want %q on stderr only", stderr.String(), stdout.String(), tt.stderr)
			}
		})
	}
}

// TestListenRetries: listen started while the server is down says once that it is retrying, and
// where, rather than a line per attempt; then that it is connected. The same when a live
// connection is lost.
func TestListenRetries(t *testing.T) {
	s := apptest.Start(t, apptest.Config(t))
	target, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.FlushInterval = -1
	var attempts atomic.Int32
	var cut atomic.Bool
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Down for the first three attempts, and while cut: the connection closes unanswered.
		if n := attempts.Add(1); n <= 3 || cut.Load() {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"listen", "--server", front.URL, "--user", "alice"}, &out, &errOut)
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("%s: never; stderr:\n%s", what, errOut.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("live", func() bool { return strings.Contains(errOut.String(), "live") })
	if n := attempts.Load(); n < 4 {
		t.Fatalf("%d attempts before live, want 4", n)
	}
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	retrying := 0
	for _, l := range lines {
		if strings.Contains(l, "retrying") {
			retrying++
			if !strings.Contains(l, front.URL) {
				t.Errorf("%q does not say where it is retrying", l)
			}
		}
	}
	if retrying != 1 || !strings.Contains(lines[len(lines)-1], "live") {
		t.Errorf("after 3 failed attempts and a connection, stderr is\n%s\nwant one line saying it is retrying, then one saying it is live", errOut.String())
	}

	// The connection is lost: again one line, however many attempts fail, then live again.
	before := len(lines)
	cut.Store(true)
	front.CloseClientConnections()
	failedFrom := attempts.Load()
	waitFor("two failed reconnections", func() bool { return attempts.Load() >= failedFrom+2 })
	cut.Store(false)
	waitFor("live again", func() bool { return strings.Count(errOut.String(), "live") == 2 })
	lines = strings.Split(strings.TrimSpace(errOut.String()), "\n")
	if len(lines) != before+2 || !strings.Contains(lines[before], "retrying") || !strings.Contains(lines[before], front.URL) {
		t.Errorf("after a lost connection and two failed attempts, stderr is\n%s\nwant one line saying it is retrying, then one saying it is live", errOut.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("listen: %v", err)
	}
}
