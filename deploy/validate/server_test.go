// Package validate checks what Herald ships for deployment beside the binary: the Helm chart
// (rendered through Helm's own Go packages, every object decoded strictly into its Kubernetes
// type), the Grafana dashboard and the alert rules (every PromQL expression parsed by
// Prometheus's parser, every metric checked against a running server), and the systemd unit
// (read, then checked by systemd-analyze verify and security).
//
// It is a module of its own so that Helm's and Kubernetes's dependencies stay out of Herald's
// go.mod; the root module's ./... does not reach it. Run it with
//
//	cd deploy/validate && go test ./...
package validate

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// need skips t, or fails it under CI=true, when ok is false: the rule of Herald's
// internal/testenv, which this module cannot import without taking Herald's requirements into
// its own module graph.
func need(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %s", msg)
	}
	t.Skip(msg)
}

var tmpDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "herald-validate-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmpDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// heraldBinary returns the server binary: $HERALD_BIN when set (.ci/run sets it to what
// deploy/build.sh built), else one built from ../../cmd/herald, once per test run.
func heraldBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if bin := os.Getenv("HERALD_BIN"); bin != "" {
			binPath = bin
			return
		}
		binPath = filepath.Join(tmpDir, "herald")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/herald")
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/herald: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// serveFlags returns the names of herald serve's flags, which are also its settings' names in
// HERALD_* variables and in the chart's config value.
func serveFlags(t *testing.T) map[string]bool {
	t.Helper()
	out, _ := exec.Command(heraldBinary(t), "serve", "-h").CombinedOutput()
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z][a-z0-9-]*)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if !flags["addr"] || !flags["metrics-addr"] || !flags["drain-window"] {
		t.Fatalf("herald serve -h lists no flags I know:\n%s", out)
	}
	return flags
}

// exported is what a server exports: the names a query may select (a histogram's as _bucket,
// _count and _sum), with the names of their labels and of the metric family they belong to.
type exported struct {
	labels map[string]map[string]bool
	family map[string]string
}

var (
	metricsOnce sync.Once
	metricsSet  exported
	metricsErr  error
)

// serverMetrics starts the real server, publishes one notification to a stream open on it,
// ends that stream, is refused one, then scrapes its metrics listener: labelled series exist
// once used.
func serverMetrics(t *testing.T) exported {
	t.Helper()
	bin := heraldBinary(t)
	metricsOnce.Do(func() { metricsSet, metricsErr = scrape(bin) })
	if metricsErr != nil {
		t.Fatal(metricsErr)
	}
	return metricsSet
}

func scrape(bin string) (exported, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
		"--store", "sqlite:"+filepath.Join(tmpDir, "herald.db"), "--web=false")
	// Only the flags above: no HERALD_* variable of the caller's.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HERALD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return exported{}, err
	}
	if err := cmd.Start(); err != nil {
		return exported{}, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	var logs strings.Builder
	var api, metrics string
	sc := bufio.NewScanner(stderr)
	url := regexp.MustCompile(`msg="(herald|metrics) listening" url=(http://\S+)`)
	for (api == "" || metrics == "") && sc.Scan() {
		logs.WriteString(sc.Text() + "\n")
		if m := url.FindStringSubmatch(sc.Text()); m != nil && m[1] == "herald" {
			api = m[2]
		} else if m != nil {
			metrics = m[2]
		}
	}
	if api == "" || metrics == "" {
		return exported{}, fmt.Errorf("herald serve did not start:\n%s", logs.String())
	}
	go io.Copy(io.Discard, stderr)

	if err := publishAndStream(ctx, api); err != nil {
		return exported{}, err
	}
	// A refused stream (dev mode needs ?user=) shows the rejection series.
	if resp, err := http.Get(api + "/v1/stream"); err == nil {
		resp.Body.Close()
	}
	// The ended stream is counted once the server has seen its client go.
	for {
		got, err := scrapeOnce(metrics)
		if err != nil {
			return exported{}, err
		}
		if got.labels["herald_streams_rejected_total"] != nil && got.labels["herald_stream_disconnects_total"] != nil {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return exported{}, fmt.Errorf("the server's metrics never showed the stream's end and refusal")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// publishAndStream opens alice's stream, publishes to her, reads the notification off the
// stream and closes it.
func publishAndStream(ctx context.Context, api string) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(sctx, "GET", api+"/v1/stream?user=alice", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("stream: %s", resp.Status)
	}
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() && !strings.HasPrefix(lines.Text(), "event: herald.connected") {
	}
	pub, err := http.Post(api+"/v1/notifications", "application/json",
		strings.NewReader(`{"to": ["alice"], "type": "comment", "data": {"text": "hi"}}`))
	if err != nil {
		return err
	}
	pub.Body.Close()
	if pub.StatusCode != http.StatusCreated {
		return fmt.Errorf("publish: %s", pub.Status)
	}
	for lines.Scan() {
		if lines.Text() == "event: comment" {
			return nil
		}
	}
	return fmt.Errorf("the stream ended before the notification: %v", lines.Err())
}

func scrapeOnce(url string) (exported, error) {
	resp, err := http.Get(url)
	if err != nil {
		return exported{}, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return exported{}, fmt.Errorf("%s: %v", url, err)
	}
	got := exported{labels: map[string]map[string]bool{}, family: map[string]string{}}
	add := func(series, family string, labels map[string]bool) {
		got.labels[series], got.family[series] = labels, family
	}
	for name, f := range fams {
		labels := map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			add(name+"_bucket", name, with(labels, "le"))
			add(name+"_count", name, labels)
			add(name+"_sum", name, labels)
		case dto.MetricType_SUMMARY:
			add(name, name, with(labels, "quantile"))
			add(name+"_count", name, labels)
			add(name+"_sum", name, labels)
		default:
			add(name, name, labels)
		}
	}
	return got, nil
}

func with(labels map[string]bool, name string) map[string]bool {
	out := map[string]bool{name: true}
	for l := range labels {
		out[l] = true
	}
	return out
}
