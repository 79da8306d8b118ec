package app

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/config"
)

// freshClient opens a new connection for every request, as a load balancer's probe or a
// publisher's first request does: what is tested is getting a connection admitted.
func freshClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
}

// idleConns opens n connections to addr that send nothing.
func idleConns(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	return conns
}

func mustStatus(t *testing.T, what string, want int, resp *http.Response, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s: %d, want %d", what, resp.StatusCode, want)
	}
}

// TestIdleConnectionsDoNotStarveRequests: with streams at --max-connections and the rest of
// --max-tcp-connections held by connections that never send a request, a publish, /healthz on
// both listeners and a stream request still get through (the idle ones make room), the streams
// keep receiving, and every connection's place is given back when it closes, parked or not.
func TestIdleConnectionsDoNotStarveRequests(t *testing.T) {
	streamModes(t, func(t *testing.T) {
		s := startServer(t, func(c *config.Config) {
			c.MaxTCPConnections, c.MaxConnections, c.MetricsAddr = 16, 8, "127.0.0.1:0"
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var streams []<-chan received
		for i := range 8 {
			status, ch, err := s.openStream(ctx, "user=u"+strconv.Itoa(i), "")
			if err != nil || status != 200 {
				t.Fatalf("stream %d: %d %v", i, status, err)
			}
			streams = append(streams, ch)
		}
		idle := idleConns(t, s.Addr(), 40)

		c := freshClient()
		resp, err := c.Post(s.url+"/v1/notifications", "application/json", strings.NewReader(`{"to":["u0"],"type":"through"}`))
		mustStatus(t, "publish", 201, resp, err)
		resp, err = c.Get(s.url + "/healthz")
		mustStatus(t, "/healthz on the API", 200, resp, err)
		resp, err = c.Get("http://" + s.MetricsAddr() + "/healthz")
		mustStatus(t, "/healthz on the metrics listener", 200, resp, err)
		resp, err = c.Get(s.url + "/v1/stream?user=u9")
		mustStatus(t, "a stream beyond --max-connections", 503, resp, err) // the hub's limit, not the listener's
		for ev := range streams[0] {
			if ev.Type == "through" {
				break
			}
		}
		if n := s.ln.Open(); n > 16 {
			t.Fatalf("%d connections open, limit 16", n)
		}
		resp, err = c.Get("http://" + s.MetricsAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `herald_connections_dropped_total{listener="api",reason="evicted"}`) ||
			strings.Contains(string(body), `herald_connections_dropped_total{listener="api",reason="evicted"} 0`) {
			t.Fatalf("no eviction counted:\n%s", body)
		}
		waitFor(t, 10*time.Second, "the warning", func() bool { return strings.Contains(s.logBuf.String(), "too many connections") })

		cancel()
		for _, c := range idle {
			c.Close()
		}
		waitFor(t, 10*time.Second, "every connection's place given back", func() bool { return s.ln.Open() == 0 })
	})
}

// TestConnectionLimitRefuses: when every connection serves a request (here, streams with no
// stream limit), a new one gets a plain 503 with the API's error body; the metrics listener,
// with places of its own, still answers.
func TestConnectionLimitRefuses(t *testing.T) {
	streamModes(t, func(t *testing.T) {
		s := startServer(t, func(c *config.Config) {
			c.MaxTCPConnections, c.MaxConnections, c.MetricsAddr = 16, 0, "127.0.0.1:0"
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		first, closeFirst := context.WithCancel(ctx)
		for i := range 16 {
			sctx := ctx
			if i == 0 {
				sctx = first
			}
			if status, _, err := s.openStream(sctx, "user=u"+strconv.Itoa(i), ""); err != nil || status != 200 {
				t.Fatalf("stream %d: %d %v", i, status, err)
			}
		}
		conn, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("a connection beyond the limit: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"code":"unavailable"`) {
			t.Fatalf("a connection beyond the limit: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		c := freshClient()
		resp, err = c.Get("http://" + s.MetricsAddr() + "/healthz")
		mustStatus(t, "/healthz on the metrics listener", 200, resp, err)

		closeFirst()
		waitFor(t, 10*time.Second, "a stream's place given back", func() bool { return s.ln.Open() < 16 })
		resp, err = c.Post(s.url+"/v1/notifications", "application/json", strings.NewReader(`{"to":["u1"]}`))
		mustStatus(t, "publish", 201, resp, err)
	})
}
