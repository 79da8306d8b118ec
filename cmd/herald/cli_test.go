package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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
		{"send", "--server", p.url, "--broadcast", "--type", "maintenance"},
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
		{"cursor": "1.1", "type": "maintenance", "data": nil, "broadcast": true},
		{"cursor": "1.1", "event": "herald.read", "data": map[string]any{"ids": []any{receipts.Notifications[0].ID}, "all": false, "read": true, "unread": float64(1)}},
	}
	if len(lines) != len(want) {
		t.Fatalf("listen printed %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, line := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
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
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no recipients", []string{"send", "--type", "x"}, "give --to users, or --broadcast"},
		{"both", []string{"send", "--to", "a", "--broadcast"}, "give --to users, or --broadcast"},
		{"bad data", []string{"send", "--to", "a", "--data", "{nope"}, "--data is not valid JSON"},
		{"bad server", []string{"send", "--server", "localhost:1", "--to", "a"}, "not an http(s) URL"},
		{"no credentials", []string{"send", "--server", authed.url, "--to", "a"}, "401 unauthorized"},
		{"listen without credentials", []string{"listen", "--server", authed.url, "--quiet"}, "401 unauthorized"},
		{"listen with a bad token", []string{"listen", "--server", authed.url, "--token", "x.y.z", "--quiet"}, "401 unauthorized"},
		{"stray argument", []string{"listen", "alice"}, "unexpected arguments"},
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
