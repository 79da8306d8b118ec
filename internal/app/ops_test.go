package app

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/config"
)

// scrape reads /metrics through the real listener.
func (s *server) scrape(t *testing.T) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams, string(raw)
}

// value returns the value of the series of name whose labels include want ("k=v" pairs).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
	total, found := 0.0, false
series:
	for _, m := range f.Metric {
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			if !slices.ContainsFunc(m.Label, func(l *dto.LabelPair) bool { return l.GetName() == k && l.GetValue() == v }) {
				continue series
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	if !found {
		t.Fatalf("no series of %s with %v", name, want)
	}
	return total
}

// TestMetrics drives every kind of traffic and reads the counts back from /metrics.
func TestMetrics(t *testing.T) {
	s := startServer(t, func(c *config.Config) { c.MaxConnectionsPerUser = 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, ch, err := s.openStream(ctx, "user=alice", "")
	if err != nil {
		t.Fatal(err)
	}
	<-ch // connected
	s.mustPublish(t, map[string]any{"to": []string{"alice"}})
	s.mustPublish(t, map[string]any{"to": []string{"alice", "bob"}})
	s.mustPublish(t, map[string]any{"broadcast": true})
	for got := 0; got < 3; got++ {
		<-ch
	}
	if status, _, _ := s.openStream(ctx, "user=alice", ""); status != 429 {
		t.Fatalf("second stream of alice: %d", status)
	}
	if status, _, _ := s.openStream(ctx, "", ""); status != 401 {
		t.Fatalf("stream without a user: %d", status)
	}
	// A replay of all three to bob's new stream.
	_, bobCh, err := s.openStream(ctx, "user=bob", "0.0")
	if err != nil {
		t.Fatal(err)
	}
	for got := 0; got < 2; got++ {
		<-bobCh
	}
	s.getJSON(t, "/healthz", &map[string]any{})

	waitFor(t, 5*time.Second, "delivery to be counted", func() bool {
		fams, _ := s.scrape(t)
		return value(t, fams, "herald_events_delivered_total") >= 3 && value(t, fams, "herald_events_replayed_total") >= 2
	})
	fams, raw := s.scrape(t)
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"herald_streams_open", nil, 2},
		{"herald_streams_opened_total", nil, 2},
		{"herald_streams_rejected_total", []string{"reason=rate_limited"}, 1},
		{"herald_streams_rejected_total", []string{"reason=unauthorized"}, 1},
		{"herald_notifications_published_total", []string{"kind=unicast"}, 1},
		{"herald_notifications_published_total", []string{"kind=multicast"}, 1},
		{"herald_notifications_published_total", []string{"kind=broadcast"}, 1},
		{"herald_events_delivered_total", nil, 3},
		{"herald_events_replayed_total", nil, 2},
		{"herald_delivery_latency_seconds", nil, 3},
		{"herald_publish_ack_seconds", nil, 3},
		{"herald_store_operation_seconds", []string{"op=append"}, 3},
		{"herald_http_requests_total", []string{"route=POST /v1/notifications", "code=201"}, 3},
		{"herald_http_requests_total", []string{"route=GET /v1/stream", "code=429"}, 1},
		{"herald_http_request_seconds", []string{"route=POST /v1/notifications"}, 3},
		{"herald_slow_consumer_disconnects_total", nil, 0},
		{"herald_stream_disconnects_total", []string{"reason=slow_consumer"}, 0},
		{"herald_stream_disconnects_total", []string{"reason=client_closed"}, 0},
		{"herald_hub_queue_overflows_total", nil, 0},
	}
	for _, c := range checks {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if value(t, fams, "process_resident_memory_bytes") <= 0 || value(t, fams, "go_goroutines") <= 0 {
		t.Error("process and runtime metrics missing")
	}
	for _, m := range fams["herald_http_request_seconds"].Metric {
		for _, l := range m.Label {
			if l.GetValue() == "GET /v1/stream" {
				t.Error("the stream route is in the request-duration histogram")
			}
		}
	}
	// No series is labelled with anything a user or publisher chose.
	if regexp.MustCompile(`\{[^}]*"(alice|bob)"`).MatchString(raw) {
		t.Error("a metric label carries a user id")
	}
}

// TestRequestIDsAndLogs: every request gets an id, in the response header and on its log line;
// a sane incoming id is kept; probes log at debug.
func TestRequestIDsAndLogs(t *testing.T) {
	s := startServer(t, nil)
	req, _ := http.NewRequest("POST", s.url+"/v1/notifications", strings.NewReader(`{"to":["alice"]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-ID", "from-the-proxy.42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-ID"); got != "from-the-proxy.42" {
		t.Fatalf("X-Request-ID %q, want the proxy's", got)
	}
	req, _ = http.NewRequest("GET", s.url+"/v1/notifications?user=alice", nil)
	req.Header.Set("X-Request-ID", "bad id with spaces; and {braces}")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	generated := resp.Header.Get("X-Request-ID")
	if generated == "" || strings.ContainsAny(generated, " \n") {
		t.Fatalf("generated X-Request-ID %q", generated)
	}
	logs := s.logBuf.String()
	for _, want := range []string{
		`msg=request request_id=from-the-proxy.42 method=POST path=/v1/notifications route="POST /v1/notifications" status=201`,
		`msg=request request_id=` + generated + ` method=GET path=/v1/notifications route="GET /v1/notifications" status=200`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

// TestGracefulDrain: on shutdown /readyz turns 503 and new streams are refused at once, while
// publishes are still served; the open streams are closed spread over the drain window; and
// every client, reconnecting to another server on the same store, resumes without loss or
// duplicate.
func TestGracefulDrain(t *testing.T) {
	const clients = 60
	window := 1500 * time.Millisecond
	dir := t.TempDir()
	store := "sqlite:" + dir + "/herald.db"
	a := startServer(t, func(c *config.Config) {
		c.Store = store
		c.DrainWindow = window
		c.MaxConnectionsPerUser = 0
	})

	type client struct {
		user   string
		ids    []string
		closed time.Time // when its stream on a ended
		last   string
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := make([]*client, clients)
	var wg sync.WaitGroup
	for i := range cs {
		c := &client{user: fmt.Sprintf("u%d", i%10)}
		cs[i] = c
		status, ch, err := a.openStream(ctx, "user="+c.user, "0.0")
		if err != nil || status != 200 {
			t.Fatalf("open: %d %v", status, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range ch {
				c.last = ev.Cursor
				if ev.Env.ID != "" {
					c.ids = append(c.ids, ev.Env.ID)
				}
			}
			c.closed = time.Now()
		}()
	}
	waitFor(t, 5*time.Second, "streams to open", func() bool { return a.Hub.Stats().Subscriptions == clients })

	// Publishers keep going on a, before and during the drain.
	var sent []string
	var sentMu sync.Mutex
	publish := func(s *server) {
		u := fmt.Sprintf("u%d", rand.IntN(10))
		body := map[string]any{"to": []string{u}}
		if rand.IntN(4) == 0 {
			body = map[string]any{"broadcast": true}
		}
		status, acks, _ := s.publish(t, "/v1/notifications", body)
		if status != 201 {
			t.Errorf("publish on a draining server: %d", status)
			return
		}
		sentMu.Lock()
		for _, ack := range acks {
			sent = append(sent, ack.ID+"@"+ack.User)
		}
		sentMu.Unlock()
	}
	for i := 0; i < 20; i++ {
		publish(a)
	}

	stopped := make(chan struct{})
	began := time.Now()
	go func() { a.stop(); close(stopped) }()
	waitFor(t, 2*time.Second, "readyz to turn 503", func() bool {
		resp, err := http.Get(a.url + "/readyz")
		if err != nil {
			return true // already gone
		}
		resp.Body.Close()
		return resp.StatusCode == 503
	})
	if status, _, _ := a.openStream(ctx, "user=late", ""); status != 503 && status != 0 {
		t.Errorf("a new stream during the drain: %d, want 503", status)
	}
	// Still serving publishes while the streams close.
	for i := 0; i < 10 && time.Since(began) < window/2; i++ {
		publish(a)
	}
	wg.Wait()
	<-stopped

	closes := make([]time.Duration, clients)
	for i, c := range cs {
		closes[i] = c.closed.Sub(began)
	}
	slices.Sort(closes)
	if spread := closes[3*clients/4] - closes[clients/4]; spread < window/4 {
		t.Errorf("the middle half of the closes spans %s of a %s window: not spread", spread, window)
	}
	if closes[clients-1] > window+time.Second {
		t.Errorf("the last stream closed %s after the drain began (window %s)", closes[clients-1], window)
	}

	// The clients reconnect to b, on the same store, which keeps publishing.
	b := startServer(t, func(c *config.Config) { c.Store = store; c.MaxConnectionsPerUser = 0 })
	for i := 0; i < 10; i++ {
		publish(b)
	}
	sentMu.Lock()
	expect := map[string][]string{} // user → ids, in order
	for _, s := range sent {
		id, user, _ := strings.Cut(s, "@")
		for u := 0; u < 10; u++ {
			name := fmt.Sprintf("u%d", u)
			if user == "" || user == name {
				expect[name] = append(expect[name], id)
			}
		}
	}
	sentMu.Unlock()
	for i, c := range cs {
		_, ch, err := b.openStream(ctx, "user="+c.user, c.last)
		if err != nil {
			t.Fatal(err)
		}
		for len(c.ids) < len(expect[c.user]) {
			select {
			case ev, ok := <-ch:
				if !ok {
					t.Fatalf("client %d: stream on b ended", i)
				}
				if ev.Env.ID != "" {
					c.ids = append(c.ids, ev.Env.ID)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("client %d: %d of %d notifications", i, len(c.ids), len(expect[c.user]))
			}
		}
		if !slices.Equal(c.ids, expect[c.user]) {
			t.Errorf("client %d (%s): got %v, want %v", i, c.user, c.ids, expect[c.user])
		}
	}
}

// TestMetricsOffTheAPIPortWithAuth: with auth on, /metrics on the API's port is a JSON 404 (it
// shows traffic and versions to whoever reaches the port) unless --metrics-public puts it back;
// in dev mode it stays, like everything else there.
func TestMetricsOffTheAPIPortWithAuth(t *testing.T) {
	tests := []struct {
		name   string
		start  func(t *testing.T) *server
		status int
	}{
		{"auth", func(t *testing.T) *server { return startAuthServer(t, nil).server }, http.StatusNotFound},
		{"dev mode", func(t *testing.T) *server { return startServer(t, nil) }, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.start(t)
			a := requestHost(t, s.url, "GET", "/metrics", "", "")
			if a.status != tt.status {
				t.Fatalf("/metrics on the API port: %d, want %d", a.status, tt.status)
			}
			if a.status == http.StatusNotFound && a.code != herald.ENOTFOUND {
				t.Fatalf("404 without the JSON error: %q", a.body)
			}
			if a.status == http.StatusOK && !strings.Contains(a.body, "herald_build_info") {
				t.Fatalf("/metrics without Herald's metrics: %.200q", a.body)
			}
		})
	}
}

// TestMetricsAddr: --metrics-addr serves /metrics, /healthz and /readyz on a listener of their
// own, JSON errors for anything else; --metrics-public puts /metrics back on the API's port;
// the listener follows the drain (/readyz 503) and its goroutines end with the server.
func TestMetricsAddr(t *testing.T) {
	before := runtime.NumGoroutine()
	tests := []struct {
		name      string
		public    bool
		apiStatus int
	}{
		{"private", false, http.StatusNotFound},
		{"public", true, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startAuthServer(t, func(c *config.Config) {
				c.MetricsAddr = "127.0.0.1:0"
				c.MetricsPublic = tt.public
			}).server
			ops := "http://" + s.MetricsAddr()
			if s.MetricsAddr() == "" || ops == s.url {
				t.Fatalf("metrics address %q, API %q", s.MetricsAddr(), s.url)
			}
			if a := requestHost(t, s.url, "GET", "/metrics", "", ""); a.status != tt.apiStatus {
				t.Errorf("/metrics on the API port: %d, want %d", a.status, tt.apiStatus)
			}
			checks := []struct {
				method, path string
				status       int
				want         string // in the body
			}{
				{"GET", "/metrics", 200, "herald_streams_open"},
				{"GET", "/healthz", 200, `"ok"`},
				{"GET", "/readyz", 200, `"ready"`},
				{"GET", "/v1/notifications", 404, herald.ENOTFOUND},
				{"GET", "/", 404, herald.ENOTFOUND},
				{"POST", "/metrics", 405, "method_not_allowed"},
			}
			for _, c := range checks {
				if a := requestHost(t, ops, c.method, c.path, "", ""); a.status != c.status || !strings.Contains(a.body, c.want) {
					t.Errorf("%s %s on the metrics listener: %d %.120q, want %d with %q", c.method, c.path, a.status, a.body, c.status, c.want)
				}
			}
			if !strings.Contains(s.logBuf.String(), "url="+ops+"/metrics") {
				t.Error("the metrics URL is not in the start-up log")
			}

			// Draining (as on SIGTERM), the node tells probes on the metrics listener too; then
			// the listener closes with the server.
			<-s.Hub.Drain(time.Second)
			if a := requestHost(t, ops, "GET", "/readyz", "", ""); a.status != http.StatusServiceUnavailable {
				t.Errorf("/readyz on the metrics listener of a draining node: %d", a.status)
			}
			s.stop()
			if c, err := net.Dial("tcp", s.MetricsAddr()); err == nil {
				c.Close()
				t.Error("the metrics listener is still open after shutdown")
			}
		})
	}
	http.DefaultClient.CloseIdleConnections()
	waitGoroutines(t, before+2, 10*time.Second)
}
