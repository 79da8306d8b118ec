package main

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rssKB reads a process's resident set size from /proc.
func rssKB(b *testing.B, pid int) int {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(v)[0])
			return kb
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// BenchmarkIdleStreamMemory measures the server's resident memory per open, idle stream: a
// server subprocess, N raw SSE connections from this process, RSS before and after. One op is
// measured once, whatever b.N: run it with -benchtime 1x. (The load generator will measure
// this at scale, across processes.)
func BenchmarkIdleStreamMemory(b *testing.B) {
	for _, n := range []int{2000} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			p := startProc(b, "-store", "sqlite:"+filepath.Join(b.TempDir(), "h.db"), "-max-connections-per-user", "0")
			u, _ := url.Parse(p.url)
			time.Sleep(200 * time.Millisecond)
			before := rssKB(b, p.cmd.Process.Pid)
			conns := make([]net.Conn, 0, n)
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			buf := make([]byte, 4096)
			for i := 0; i < n; i++ {
				c, err := net.Dial("tcp", u.Host)
				if err != nil {
					b.Fatal(err)
				}
				fmt.Fprintf(c, "GET /v1/stream?user=u%d HTTP/1.1\r\nHost: localhost\r\n\r\n", i)
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Read(buf); err != nil { // the headers and the opening comment
					b.Fatal(err)
				}
				conns = append(conns, c)
			}
			time.Sleep(time.Second) // let the runtime settle (GC, idle connection buffers)
			after := rssKB(b, p.cmd.Process.Pid)
			b.ReportMetric(float64(after-before)/float64(n), "KB/stream")
			b.ReportMetric(float64(after)/1024, "MB-RSS")
		})
	}
}
