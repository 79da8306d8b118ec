package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/push"
	"github.com/heraldhq/herald/internal/push/pushtest"
	"github.com/heraldhq/herald/internal/testenv"
)

func TestVapidCommand(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"vapid"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(out.String())
	var keys []string
	for _, f := range fields {
		if len(f) == 43 || len(f) == 87 { // 32 bytes and 65 bytes in base64url
			keys = append(keys, f)
		}
	}
	if len(keys) != 2 {
		t.Fatalf("vapid printed %q", out.String())
	}
	k, err := push.ParsePrivateKey(keys[0])
	if err != nil || k.Public != keys[1] {
		t.Fatalf("the printed public key is not the private key's: %v", err)
	}

	file := filepath.Join(t.TempDir(), "vapid.key")
	out.Reset()
	if err := run(context.Background(), []string{"vapid", "-o", file}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(file)
	if k, err := push.ParsePrivateKey(string(b)); err != nil || !strings.Contains(out.String(), k.Public) || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file %v mode %v, output %q", err, fi.Mode(), out.String())
	}
	if strings.Contains(out.String(), strings.TrimSpace(string(b))) {
		t.Fatal("the private key written to a file was also printed")
	}
	if err := run(context.Background(), []string{"vapid", "-o", file}, io.Discard, io.Discard); err == nil {
		t.Fatal("an existing key file was overwritten")
	}
}

// pushNodeArgs are the flags of a node with Web Push on, sending to the loopback service.
func pushNodeArgs(keyFile, store string) []string {
	return []string{"-store", store, "-vapid-private-key-file", keyFile, "-vapid-subject", "mailto:ops@example.com",
		"-push-delay", "3s", "-push-allow-loopback", "-push-lease", "2s", "-push-retry", "100ms"}
}

// TestPushSurvivesSIGKILL: pushes pending in the outbox of a node killed with SIGKILL are sent,
// each exactly once, by the node restarted on the same SQLite file, and in a cluster by another
// node of the same PostgreSQL database. The push service counts what it accepts.
func TestPushSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			keys, err := push.GenerateKeys()
			if err != nil {
				t.Fatal(err)
			}
			keyFile := filepath.Join(t.TempDir(), "vapid.key")
			os.WriteFile(keyFile, []byte(keys.Private+"\n"), 0o600)
			svc := pushtest.New(t, keys.Public)
			store := "sqlite:" + filepath.Join(t.TempDir(), "h.db")
			if kind == "postgres" {
				store = testenv.Postgres(t)
			}
			args := pushNodeArgs(keyFile, store)
			a := startProc(t, args...)
			var other *proc
			if kind == "postgres" {
				other = startProc(t, args...)
			}
			const users = 20
			subs := make([]*pushtest.Subscription, users)
			for i := range subs {
				subs[i] = svc.Subscribe()
				status := pushPost(t, a.url+"/v1/push/subscriptions?user=u"+strconv.Itoa(i), subs[i].JSON())
				if status != http.StatusCreated {
					t.Fatalf("register: %d", status)
				}
			}
			for i := range subs {
				body := fmt.Sprintf(`{"to":["u%d"],"title":"for u%d"}`, i, i)
				if status := pushPost(t, a.url+"/v1/notifications", body); status != http.StatusCreated {
					t.Fatalf("publish: %d", status)
				}
			}
			// Killed before the pushes are due (3s after their commit).
			if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			a.cmd.Wait()
			sentBefore := 0
			for _, s := range subs {
				sentBefore += len(svc.Pushes(s))
			}
			t.Logf("%d pushes sent before the kill", sentBefore)
			if other == nil {
				other = startProc(t, args...) // restarted on the same file
			}
			svc.Wait(30*time.Second, "every push", func() bool {
				for _, s := range subs {
					if len(svc.Delivered(s)) == 0 {
						return false
					}
				}
				return true
			})
			// The outbox is empty: nothing is left to send a second time.
			waitMetric(t, other.url, "herald_push_outbox_pending", 0)
			for i, s := range subs {
				got := svc.Delivered(s)
				if len(got) != 1 || !strings.Contains(string(got[0]), fmt.Sprintf(`"title":"for u%d"`, i)) {
					t.Fatalf("u%d received %q, want its push exactly once", i, got)
				}
			}
			if errs := svc.Errors(); len(errs) > 0 {
				t.Fatalf("the push service refused pushes: %v", errs)
			}
		})
	}
}

func pushPost(t *testing.T, url, body string) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitMetric polls a node's /metrics until the gauge has the value.
func waitMetric(t *testing.T, base, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		got := -1.0
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
				got, _ = strconv.ParseFloat(v, 64)
			}
		}
		resp.Body.Close()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v, want %v", name, got, want)
		}
		time.Sleep(50 * time.Millisecond) // a poll of another process's state
	}
}
