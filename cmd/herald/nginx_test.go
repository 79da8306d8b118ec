package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/heraldhq/herald/internal/testenv"
)

// nginx is a real nginx running deploy/nginx.conf, rewritten only where a test must: its
// ports, its upstream, its log files, the stream's read timeout, and the TLS block switched on.
type nginx struct {
	http, https string // base URLs
	accessLog   string
	caPool      *x509.CertPool
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startNginx(t *testing.T, upstream, streamReadTimeout string) *nginx {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr == nil {
			bin, err = "/usr/sbin/nginx", nil
		}
	}
	testenv.Need(t, err == nil, "nginx is not installed (apt-get install nginx-light; .ci/run installs it)")

	dir := t.TempDir()
	os.Chmod(dir, 0o755) // nginx's workers drop root and must reach the files
	conf := readDeploy(t, "nginx.conf")
	locations := readDeploy(t, "herald-locations.conf")
	httpAddr, httpsAddr := freePort(t), freePort(t)
	certFile, keyFile, pool := selfSigned(t, dir)
	n := &nginx{http: "http://" + httpAddr, https: "https://" + httpsAddr, accessLog: filepath.Join(dir, "access.log"), caPool: pool}

	conf = replaceOnce(t, conf, "server herald-1:8080;", "server "+upstream+";")
	conf = replaceOnce(t, conf, "server herald-2:8080;", "")
	conf = replaceOnce(t, conf, "worker_processes auto;", "worker_processes 1;")
	conf = replaceOnce(t, conf, "listen 80;", "listen "+httpAddr+";")
	conf = strings.ReplaceAll(conf, "#tls ", "")
	conf = replaceOnce(t, conf, "listen 443 ssl http2;", "listen "+httpsAddr+" ssl http2;")
	conf = replaceOnce(t, conf, "/etc/nginx/tls/tls.crt", certFile)
	conf = replaceOnce(t, conf, "/etc/nginx/tls/tls.key", keyFile)
	conf = replaceOnce(t, conf, "access_log /dev/stdout herald;", "access_log "+n.accessLog+" herald;")
	conf = replaceOnce(t, conf, "error_log /dev/stderr warn;", "error_log "+filepath.Join(dir, "error.log")+" warn;")
	locations = replaceOnce(t, locations, "proxy_read_timeout 60s;", "proxy_read_timeout "+streamReadTimeout+";")
	write(t, filepath.Join(dir, "nginx.conf"), conf)
	write(t, filepath.Join(dir, "herald-locations.conf"), locations)

	cmd := exec.Command(bin, "-c", filepath.Join(dir, "nginx.conf"), "-p", dir+"/", "-e", filepath.Join(dir, "error.log"),
		"-g", "daemon off; pid "+filepath.Join(dir, "nginx.pid")+";")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", httpAddr); err == nil {
			c.Close()
			return n
		}
		select {
		case <-exited:
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %s\n%s", out.String(), errLog)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s: %s", httpAddr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readDeploy(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("deploy config: %q occurs %d times, want once (the test rewrites it)", old, n)
	}
	return strings.Replace(s, old, new, 1)
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "herald"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	write(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	write(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

type event struct {
	id, typ, data string
	at            time.Time
}

// stream opens an SSE stream and returns its events as they arrive, and the response (for its
// protocol). The channel closes when the stream ends.
func stream(t *testing.T, ctx context.Context, client *http.Client, url, lastID string) (<-chan event, *http.Response) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	ch := make(chan event, 64)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		for ev, err := range sse.Read(resp.Body, nil) {
			if err != nil {
				return
			}
			ch <- event{id: ev.LastEventID, typ: ev.Type, data: ev.Data, at: time.Now()}
		}
	}()
	return ch, resp
}

func post(t *testing.T, client *http.Client, url, body string) time.Time {
	t.Helper()
	resp, err := client.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("publish: %d", resp.StatusCode)
	}
	return time.Now()
}

// next waits for the next event of type typ, failing after within.
func next(t *testing.T, ch <-chan event, typ string, within time.Duration) event {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("the stream ended while waiting for %q", typ)
			}
			if ev.typ == typ {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %q event within %s", typ, within)
		}
	}
}

// TestNginx runs Herald behind a real nginx with deploy/nginx.conf and proves what a proxy in
// front of SSE must get right.
func TestNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nginx and a server")
	}
	// The heartbeat (300 ms) is well inside nginx's read timeout for streams (1 s in this test).
	p := startProc(t, "-store", "sqlite:"+filepath.Join(t.TempDir(), "h.db"), "-heartbeat", "300ms")
	u, _ := url.Parse(p.url)
	n := startNginx(t, u.Host, "1s")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	t.Run("events arrive promptly, unbuffered", func(t *testing.T) {
		ch, _ := stream(t, ctx, client, n.http+"/v1/stream?user=alice", "")
		next(t, ch, "herald.connected", 5*time.Second)
		for i := 0; i < 5; i++ {
			sent := post(t, client, n.http+"/v1/notifications", fmt.Sprintf(`{"to":["alice"],"type":"prompt","data":%d}`, i))
			ev := next(t, ch, "prompt", 2*time.Second)
			if lag := ev.at.Sub(sent); lag > 250*time.Millisecond {
				t.Errorf("event %d reached the client %s after its ack: held in a buffer?", i, lag)
			}
		}
	})

	t.Run("an idle stream outlives proxy_read_timeout thanks to heartbeats", func(t *testing.T) {
		ch, _ := stream(t, ctx, client, n.http+"/v1/stream?user=idle", "")
		next(t, ch, "herald.connected", 5*time.Second)
		time.Sleep(3 * time.Second) // three times nginx's read timeout, with nothing published
		post(t, client, n.http+"/v1/notifications", `{"to":["idle"],"type":"late"}`)
		next(t, ch, "late", 2*time.Second)
	})

	t.Run("reconnecting with Last-Event-ID resumes exactly", func(t *testing.T) {
		sctx, scancel := context.WithCancel(ctx)
		ch, _ := stream(t, sctx, client, n.http+"/v1/stream?user=bob", "")
		next(t, ch, "herald.connected", 5*time.Second)
		post(t, client, n.http+"/v1/notifications", `{"to":["bob"],"type":"n","data":1}`)
		last := next(t, ch, "n", 2*time.Second).id
		scancel() // the connection drops
		for i := 2; i <= 4; i++ {
			post(t, client, n.http+"/v1/notifications", fmt.Sprintf(`{"to":["bob"],"type":"n","data":%d}`, i))
		}
		ch, _ = stream(t, ctx, client, n.http+"/v1/stream?user=bob", last)
		for want := 2; want <= 4; want++ {
			ev := next(t, ch, "n", 2*time.Second)
			if !strings.Contains(ev.data, fmt.Sprintf(`"data":%d`, want)) {
				t.Fatalf("after resuming at %s: got %s, want data %d", last, ev.data, want)
			}
		}
	})

	t.Run("HTTPS with HTTP/2", func(t *testing.T) {
		h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: n.caPool}, ForceAttemptHTTP2: true}}
		defer h2.CloseIdleConnections()
		ch, resp := stream(t, ctx, h2, n.https+"/v1/stream?user=carol", "")
		if resp.ProtoMajor != 2 {
			t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
		}
		next(t, ch, "herald.connected", 5*time.Second)
		post(t, h2, n.https+"/v1/notifications", `{"to":["carol"],"type":"over-h2"}`)
		next(t, ch, "over-h2", 2*time.Second)
	})

	t.Run("/metrics is not proxied", func(t *testing.T) {
		// This Herald runs in dev mode, where /metrics is served on its port: nginx is what
		// keeps it from the public side. Prometheus scrapes --metrics-addr instead.
		resp, err := client.Get(n.http + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), `"code":"not_found"`) ||
			strings.Contains(string(b), "herald_") {
			t.Fatalf("/metrics through nginx: %d %.200q, want a JSON 404", resp.StatusCode, b)
		}
	})

	t.Run("the access log holds no query string", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, "GET", n.http+"/v1/notifications?user=dave&access_token=SECRET-IN-QUERY", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		time.Sleep(100 * time.Millisecond)
		b, _ := os.ReadFile(n.accessLog)
		if strings.Contains(string(b), "SECRET-IN-QUERY") || !strings.Contains(string(b), "/v1/notifications") {
			t.Fatalf("access log:\n%s", b)
		}
		// The request id nginx made is the one Herald logged.
		if id := resp.Header.Get("X-Request-ID"); id == "" || !strings.Contains(p.logText(), "request_id="+id) {
			t.Errorf("X-Request-ID %q is not in Herald's logs", id)
		}
	})
}

// TestNginxCutsStreamsWithoutHeartbeats is the control: with a heartbeat longer than nginx's
// read timeout, nginx ends an idle stream. So the heartbeat is what keeps the stream above open.
func TestNginxCutsStreamsWithoutHeartbeats(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nginx and a server")
	}
	p := startProc(t, "-store", "sqlite:"+filepath.Join(t.TempDir(), "h.db"), "-heartbeat", "1m")
	u, _ := url.Parse(p.url)
	n := startNginx(t, u.Host, "1s")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, _ := stream(t, ctx, http.DefaultClient, n.http+"/v1/stream?user=alice", "")
	next(t, ch, "herald.connected", 5*time.Second)
	start := time.Now()
	for range ch {
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the idle stream lasted %s behind a 1s proxy_read_timeout", d)
	}
}
