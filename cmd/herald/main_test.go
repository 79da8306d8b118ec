package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/client"
)

// TestMain lets the test binary act as the herald binary, so subprocess tests run the real
// main without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("HERALD_TEST_BECOME_SERVER") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// serverBinary is the herald the subprocess tests run: $HERALD_BIN when set (CI sets it to what
// deploy/build.sh built, the binary the container image ships), else this test binary, which
// becomes the server through TestMain.
func serverBinary() string {
	if bin := os.Getenv("HERALD_BIN"); bin != "" {
		return bin
	}
	return os.Args[0]
}

type proc struct {
	cmd  *exec.Cmd
	url  string
	logs *strings.Builder
	mu   *sync.Mutex
	done chan struct{}
}

// startProc runs herald serve as a subprocess and waits for it to listen.
func startProc(t testing.TB, args ...string) *proc {
	t.Helper()
	return startCmd(t, exec.Command(serverBinary(), append([]string{"serve", "-addr", "127.0.0.1:0"}, args...)...))
}

// startCmd runs cmd, a herald serve (perhaps through a wrapper), and waits for it to listen.
func startCmd(t testing.TB, cmd *exec.Cmd) *proc {
	t.Helper()
	cmd.Env = append(os.Environ(), "HERALD_TEST_BECOME_SERVER=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: &strings.Builder{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	urls := make(chan string, 1)
	go func() {
		defer close(p.done)
		re := regexp.MustCompile(`url=(http://\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	select {
	case p.url = <-urls:
	case <-time.After(20 * time.Second):
		t.Fatalf("server did not start; logs:\n%s", p.logs)
	}
	return p
}

// TestDurableAck proves invariant 1: a 201 is sent only after the notification is durable, so
// SIGKILL in the middle of a stream of publishes loses none that were acknowledged.
func TestDurableAck(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	dir := t.TempDir()
	store := "sqlite:" + filepath.Join(dir, "herald.db")
	p := startProc(t, "-store", store)

	users := []string{"alice", "bob", "carol"}
	var mu sync.Mutex
	acked := map[string]string{} // id → user ("" for broadcast)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pub, err := client.New(p.url)
			if err != nil {
				panic(err)
			}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				m := client.Message{To: []string{users[(g+i)%len(users)]}, Data: map[string]int{"g": g, "i": i}}
				if i%7 == 0 {
					m = client.Message{Broadcast: true, Data: map[string]int{"g": g, "i": i}}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				receipts, err := pub.Publish(ctx, m)
				cancel()
				var he *client.Error
				if errors.As(err, &he) {
					continue // refused: not acknowledged
				}
				if err != nil {
					return // killed
				}
				mu.Lock()
				for _, n := range receipts {
					acked[n.ID] = n.User
				}
				mu.Unlock()
			}
		}()
	}
	// Kill while publishes are in flight.
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 500 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	p.cmd.Wait()
	<-p.done

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d notifications acknowledged before SIGKILL", len(acked))

	// Restart on the same file: every acknowledged notification is replayed to its users, in a
	// gap-free sequence.
	p2 := startProc(t, "-store", store)
	for _, user := range users {
		got := replayAll(t, p2.url, user)
		for id, to := range acked {
			if (to == user || to == "") && !got[id] {
				t.Errorf("%s: acknowledged notification %s lost", user, id)
			}
		}
	}
	// And the sequences go on from where they were.
	resp, err := http.Post(p2.url+"/v1/notifications", "application/json", strings.NewReader(`{"to":["alice"]}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("publish after restart: %v %v", err, resp)
	}
	resp.Body.Close()
}

// replayAll reads user's whole feed from cursor 0.0 and checks each stream's sequence has no
// gap. It returns the notification ids seen.
func replayAll(t *testing.T, base, user string) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := client.New(base, client.WithUser(user))
	if err != nil {
		t.Fatal(err)
	}
	// The replay is written at once; stop reading once it has gone quiet.
	quiet := time.AfterFunc(2*time.Second, cancel)
	ids := map[string]bool{}
	var prevU, prevB uint64
	for ev, err := range c.Subscribe(ctx, client.SubscribeOptions{LastEventID: "0.0"}) {
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		quiet.Reset(500 * time.Millisecond)
		if ev.Control() {
			t.Errorf("%s: unexpected %s %s", user, ev.Type, ev.Data)
			continue
		}
		ids[ev.Notification.ID] = true
		var u, b uint64
		fmt.Sscanf(ev.Cursor, "%d.%d", &u, &b)
		if (ev.Notification.Broadcast && (b != prevB+1 || u != prevU)) || (!ev.Notification.Broadcast && (u != prevU+1 || b != prevB)) {
			t.Errorf("%s: cursor %s after %d.%d is not the next step", user, ev.Cursor, prevU, prevB)
		}
		prevU, prevB = u, b
	}
	return ids
}

// TestStartupRefusesNonLoopbackInDevMode: without auth the server will not listen on a public
// address unless told --insecure, and says why.
func TestStartupRefusesNonLoopbackInDevMode(t *testing.T) {
	var stderr strings.Builder
	err := run(context.Background(), []string{"serve", "-addr", "0.0.0.0:0", "-store", "sqlite:" + filepath.Join(t.TempDir(), "h.db")}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "loopback") || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("err = %v; want a refusal that names loopback and --insecure", err)
	}
}

// TestGracefulStopExitsZero: SIGTERM ends the process with status 0 within a bounded time.
func TestGracefulStopExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	p := startProc(t, "-store", "sqlite:"+filepath.Join(t.TempDir(), "h.db"), "-drain-window", "1s")
	// An open stream must not hold shutdown up beyond the drain window.
	req, _ := http.NewRequest("GET", p.url+"/v1/stream?user=alice", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v; logs:\n%s", err, p.logs)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not exit within 15s of SIGTERM")
	}
	io.Copy(io.Discard, resp.Body) // the stream ends
}

// TestTokenAndKeygen: what the CLI mints is what a server with the same configuration accepts.
func TestTokenAndKeygen(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	secret := strings.Repeat("k", 40)
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte(secret+"\n"), 0o600)

	var keyOut strings.Builder
	if err := run(context.Background(), []string{"keygen", "-name", "billing"}, &keyOut, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(keyOut.String())
	var key, hash string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "hk_"):
			key = l
		case strings.HasPrefix(l, "billing=sha256:"):
			hash = l
		}
	}
	if key == "" || hash == "" {
		t.Fatalf("keygen printed %q", keyOut.String())
	}

	var tokOut strings.Builder
	args := []string{"token", "-user", "alice", "-ttl", "10m", "-jwt-secret-file", secretFile, "-jwt-issuer", "me"}
	if err := run(context.Background(), args, &tokOut, io.Discard); err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(tokOut.String())
	if err := run(context.Background(), []string{"token", "-user", "alice"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("token without a secret: %v", err)
	}

	p := startProc(t, "-store", "sqlite:"+filepath.Join(t.TempDir(), "h.db"), "-jwt-secret-file", secretFile,
		"-jwt-issuer", "me", "-publisher-keys", hash)
	for i := 0; i < 100 && !strings.Contains(p.logText(), "auth:"); i++ {
		time.Sleep(20 * time.Millisecond) // logged just after the URL startProc waits for
	}
	if !strings.Contains(p.logText(), "auth:") || strings.Contains(p.logText(), "dev mode") {
		t.Fatalf("start-up log does not state the auth mode:\n%s", p.logText())
	}
	do := func(method, path, cred, body string) int {
		req, _ := http.NewRequest(method, p.url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+cred)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := do("POST", "/v1/notifications", key, `{"to":["alice"]}`); status != 201 {
		t.Fatalf("publish with the generated key: %d", status)
	}
	if status := do("GET", "/v1/notifications/unread-count", token, ""); status != 200 {
		t.Fatalf("inbox with the minted token: %d", status)
	}
	if status := do("POST", "/v1/notifications", token, `{"to":["bob"]}`); status != 403 {
		t.Fatalf("publish with a subscriber token: %d", status)
	}
	for _, secretText := range []string{secret, key, token} {
		if strings.Contains(p.logText(), secretText) {
			t.Fatal("the server logged a secret")
		}
	}
}

func (p *proc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// TestHealthcheck: the container's HEALTHCHECK command finds the server its settings describe.
func TestHealthcheck(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	p := startProc(t, "-store", "sqlite:"+filepath.Join(t.TempDir(), "h.db"))
	u, _ := url.Parse(p.url)
	var out strings.Builder
	if err := run(context.Background(), []string{"healthcheck", "-addr", "0.0.0.0:" + u.Port()}, &out, io.Discard); err != nil || strings.TrimSpace(out.String()) != "ok" {
		t.Fatalf("healthcheck of a running server: %v, %q", err, out.String())
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	if err := run(context.Background(), []string{"healthcheck", "-addr", addr, "-timeout", "1s"}, io.Discard, io.Discard); err == nil {
		t.Fatal("healthcheck of nothing succeeded")
	}
}

// TestHealthcheckMetricsAddr: with --metrics-addr the probe asks the metrics listener, which
// answers even when the API's port cannot: here the API's address is a closed port.
func TestHealthcheckMetricsAddr(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	metrics := freePort(t)
	p := startProc(t, "-store", "sqlite:"+filepath.Join(t.TempDir(), "h.db"), "-metrics-addr", metrics)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(p.logText(), "url=http://"+metrics+"/metrics"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the metrics URL is not in the start-up log:\n%s", p.logText())
		}
	}
	closed := freePort(t)
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"the metrics listener", []string{"-addr", closed, "-metrics-addr", metrics}, true},
		{"all interfaces, probed on loopback", []string{"-addr", closed, "-metrics-addr", "0.0.0.0:" + metrics[strings.LastIndex(metrics, ":")+1:]}, true},
		{"a metrics port nobody listens on", []string{"-addr", p.url[len("http://"):], "-metrics-addr", closed}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			err := run(context.Background(), append([]string{"healthcheck", "-timeout", "1s"}, tt.args...), &out, io.Discard)
			if ok := err == nil && strings.TrimSpace(out.String()) == "ok"; ok != tt.ok {
				t.Fatalf("healthcheck %v: %v, %q; want ok=%v", tt.args, err, out.String(), tt.ok)
			}
		})
	}
}

// TestBackupCommand copies the store a running server writes to.
func TestBackupCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	dir := t.TempDir()
	store := "sqlite:" + filepath.Join(dir, "h.db")
	p := startProc(t, "-store", store)
	resp, err := http.Post(p.url+"/v1/notifications", "application/json", strings.NewReader(`{"to":["alice"]}`))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("publish: %v %v", resp, err)
	}
	resp.Body.Close()
	out := filepath.Join(dir, "copy.db")
	if err := run(context.Background(), []string{"backup", "-store", store, out}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	q := startProc(t, "-store", "sqlite:"+out)
	resp, err = http.Get(q.url + "/v1/notifications/unread-count?user=alice")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(b)) != `{"unread":1,"unseen":1}` {
		t.Fatalf("a server on the copy counts %s", b)
	}
	if err := run(context.Background(), []string{"backup", "-store", store}, io.Discard, io.Discard); err == nil {
		t.Fatal("backup without an output file succeeded")
	}
}
