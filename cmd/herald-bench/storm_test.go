package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestStormRestart: the storm with the server SIGKILLed while the streams are away and started
// again on the same file, whose recent windows are then filled from it
// (internal/store/sqlite/warm.go): every stream resumes and gets exactly what it missed, in
// order, once. Retention runs on the restarted server (every 50 ms, keeping far more than the
// storm publishes), so prunes that remove nothing interleave with the resumes.
func TestStormRestart(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "herald")
	if out, err := exec.Command("go", "build", "-o", bin, "../herald").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	o := options{
		targets: []string{"http://" + addr}, publishTo: "http://" + addr, pids: []int{os.Getpid()}, name: "test",
		streams: 60, users: 60, sources: 2, perProcess: 40, dials: 8, settle: 100 * time.Millisecond,
		rounds: 3, interval: 50 * time.Millisecond, rate: 200, duration: time.Second, publishers: 4,
	}
	o.storm.handshakes, o.storm.wait, o.storm.restart = 8, 30*time.Second, true
	o.storm.serve = fmt.Sprintf("%s -addr %s -store sqlite:%s -max-connections-per-user 0 -log-level warn -prune-interval 50ms",
		bin, addr, filepath.Join(dir, "herald.db"))
	o.storm.serveLog = filepath.Join(dir, "server.log")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := run(ctx, o, "storm")
	if err != nil {
		log, _ := os.ReadFile(o.storm.serveLog)
		t.Fatalf("%v\nserver log:\n%s", err, log)
	}
	st := r.Storm
	if st == nil || !st.Restarted || st.AwayEvents != 4 || r.Delivered != 60*4 {
		t.Fatalf("storm result %+v, delivered %d; want 4 events caught up by each of 60 streams after a restart", st, r.Delivered)
	}
	if st.NotCaughtUp+st.Reordered+st.ResumeFailed > 0 || r.Missing+r.Duplicate > 0 {
		t.Errorf("storm result %+v, missing %d, duplicate %d", st, r.Missing, r.Duplicate)
	}
}
