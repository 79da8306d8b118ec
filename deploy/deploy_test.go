// Package deploy holds the container and proxy files; its tests parse them, since no Docker
// engine runs where the tests do. nginx.conf is tested for real by cmd/herald's nginx tests.
package deploy

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/heraldhq/herald/internal/apptest"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/push"
)

// flagOf maps HERALD_MAX_PAYLOAD to max-payload, the way the server reads its environment.
func flagOf(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "HERALD_")), "_", "-")
}

// checkSetting fails unless name is a HERALD_* variable the server understands and value
// parses as that flag's value ("${...}" interpolations are taken as given).
func checkSetting(t *testing.T, where, name, value string) {
	t.Helper()
	if !strings.HasPrefix(name, "HERALD_") {
		return
	}
	c := config.Default()
	fs := c.FlagSet("herald")
	f := fs.Lookup(flagOf(name))
	if f == nil {
		t.Errorf("%s: %s is not a setting of herald serve", where, name)
		return
	}
	if strings.Contains(value, "${") {
		return
	}
	if err := f.Value.Set(value); err != nil {
		t.Errorf("%s: %s=%q: %v", where, name, value, err)
	}
}

type service struct {
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Image           string            `yaml:"image"`
	Command         []string          `yaml:"command"`
	Environment     map[string]string `yaml:"environment"`
	Volumes         []string          `yaml:"volumes"`
	Ports           []string          `yaml:"ports"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
	DependsOn       map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Restart     string         `yaml:"restart"`
	Healthcheck map[string]any `yaml:"healthcheck"`
}

type compose struct {
	XHerald  service            `yaml:"x-herald"`
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

// TestComposeFile: two Herald nodes, built from the repository, configured with settings the
// server knows, on the PostgreSQL and Redis services of the file, waited for by nginx.
func TestComposeFile(t *testing.T) {
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true) // a misspelt key is an error, not something compose would ignore
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	nodes := 0
	for name, h := range c.Services {
		if !strings.HasPrefix(name, "herald") {
			continue
		}
		nodes++
		if h.Build == nil {
			t.Fatalf("%s is not built from the repository", name)
		}
		if _, err := os.Stat(filepath.Join(h.Build.Context, h.Build.Dockerfile)); err != nil {
			t.Errorf("%s's Dockerfile: %v", name, err)
		}
		for k, v := range h.Environment {
			checkSetting(t, "compose.yaml "+name, k, v)
		}
		cfg := config.Default()
		cfg.Store, cfg.Bus = h.Environment["HERALD_STORE"], h.Environment["HERALD_BUS"]
		if cfg.StoreKind() != "postgres" || cfg.BusKind() != "redis" {
			t.Errorf("%s: store %q and bus %q do not make a cluster", name, cfg.Store, cfg.Bus)
		}
		for _, dep := range []string{"postgres", "redis"} {
			if !strings.Contains(cfg.Store+cfg.Bus, dep+":") {
				t.Errorf("%s does not use the %s service", name, dep)
			}
			if h.DependsOn[dep].Condition != "service_healthy" {
				t.Errorf("%s does not wait for %s to be healthy", name, dep)
			}
		}
		if d, err := time.ParseDuration(h.Environment["HERALD_DRAIN_WINDOW"]); err == nil {
			cfg.DrainWindow = d
		}
		grace, err := time.ParseDuration(h.StopGracePeriod)
		if err != nil || grace < cfg.DrainWindow+cfg.ShutdownTimeout {
			t.Errorf("%s: stop_grace_period %q is shorter than the drain window and shutdown timeout (%s)", name, h.StopGracePeriod, cfg.DrainWindow+cfg.ShutdownTimeout)
		}
	}
	if nodes < 2 {
		t.Errorf("%d Herald nodes, want a cluster of at least 2", nodes)
	}
	n, ok := c.Services["nginx"]
	if !ok {
		t.Fatal("no nginx service")
	}
	for name := range c.Services {
		if strings.HasPrefix(name, "herald") && n.DependsOn[name].Condition != "service_healthy" {
			t.Errorf("nginx does not wait for %s", name)
		}
	}
	for _, v := range n.Volumes {
		src := strings.Split(v, ":")[0]
		if strings.HasPrefix(src, ".") {
			if _, err := os.Stat(src); err != nil {
				t.Errorf("nginx volume %s: %v", v, err)
			}
		}
	}
	conf, _ := os.ReadFile("nginx.conf")
	for name := range c.Services {
		if strings.HasPrefix(name, "herald") && !strings.Contains(string(conf), "server "+name+":8080;") {
			t.Errorf("nginx.conf's upstream does not list %s", name)
		}
	}
	for _, s := range c.Services {
		for _, v := range s.Volumes {
			name := strings.Split(v, ":")[0]
			if _, ok := c.Volumes[name]; !ok && !strings.HasPrefix(name, ".") {
				t.Errorf("volume %s is not declared", name)
			}
		}
	}
}

func TestDockerfile(t *testing.T) {
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		stages                       int
		built, healthcheck, nonroot  bool
		entrypointHerald, serveByCMD bool
	)
	sc := bufio.NewScanner(f)
	var line string
	for sc.Scan() {
		// Join continuation lines.
		if l := strings.TrimSpace(sc.Text()); strings.HasSuffix(l, "\\") {
			line += strings.TrimSuffix(l, "\\") + " "
			continue
		} else {
			line += l
		}
		l := line
		line = ""
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			stages++
		case "RUN":
			if strings.Contains(rest, "deploy/build.sh") {
				built = true
			}
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				checkSetting(t, "Dockerfile ENV", k, v)
			}
		case "USER":
			nonroot = !strings.HasPrefix(rest, "0") && !strings.HasPrefix(rest, "root")
		case "HEALTHCHECK":
			healthcheck = strings.Contains(rest, `"healthcheck"`)
		case "ENTRYPOINT":
			entrypointHerald = strings.Contains(rest, `"herald"`)
		case "CMD":
			serveByCMD = strings.Contains(rest, `"serve"`)
		case "COPY":
			fields := strings.Fields(rest)
			if !strings.HasPrefix(fields[0], "--from") {
				for _, src := range fields[:len(fields)-1] {
					if _, err := os.Stat(filepath.Join("..", src)); err != nil {
						t.Errorf("COPY %s: %v", src, err)
					}
				}
			}
		}
	}
	switch {
	case stages < 2:
		t.Error("not a multi-stage build")
	case !built:
		t.Error("the image is not built by deploy/build.sh, the script CI tests")
	case !nonroot:
		t.Error("the image runs as root")
	case !healthcheck:
		t.Error("no HEALTHCHECK running herald healthcheck")
	case !entrypointHerald || !serveByCMD:
		t.Error("the image does not run herald serve")
	}
}

// TestMetricsStayOffTheProxy: with auth on, /metrics is served on --metrics-addr, which every
// node of compose.yaml and the image set, which compose does not publish, and which nginx does not
// proxy (a location = /metrics without proxy_pass); the real nginx test checks the answer.
func TestMetricsStayOffTheProxy(t *testing.T) {
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	for name, h := range c.Services {
		if !strings.HasPrefix(name, "herald") {
			continue
		}
		addr := h.Environment["HERALD_METRICS_ADDR"]
		if addr == "" {
			t.Errorf("%s: no HERALD_METRICS_ADDR: with auth on, its metrics are served nowhere", name)
			continue
		}
		port := addr[strings.LastIndex(addr, ":")+1:]
		for _, p := range h.Ports {
			if strings.HasSuffix(strings.Split(p, "/")[0], ":"+port) {
				t.Errorf("%s publishes the metrics port: %s", name, p)
			}
		}
	}
	docker, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^\s*HERALD_METRICS_ADDR=:\d+`).Match(docker) {
		t.Error("the Dockerfile does not set HERALD_METRICS_ADDR")
	}

	conf, err := os.ReadFile("herald-locations.conf")
	if err != nil {
		t.Fatal(err)
	}
	loc := regexp.MustCompile(`(?s)location\s+(=\s*)?/metrics\s*\{(.*?)\}`).FindSubmatch(conf)
	switch {
	case loc == nil:
		t.Error("herald-locations.conf has no location = /metrics: location / would proxy it")
	case strings.Contains(string(loc[2]), "proxy_pass"):
		t.Error("herald-locations.conf proxies /metrics")
	}
}

// TestAlertRules: the example rules parse, and every herald_ or process_ metric they name exists.
func TestAlertRules(t *testing.T) {
	b, err := os.ReadFile("alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	known := metricNames(t)
	name := regexp.MustCompile(`\b(herald|process)_[a-z_]+\b`)
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || r.Expr == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v lacks a name, an expression or a summary", r)
			}
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
			}
			for _, m := range name.FindAllString(r.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")
				if !known[base] {
					t.Errorf("%s: metric %s does not exist", r.Alert, m)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no rules")
	}
}

// TestOperationsDocumentsEveryMetric: docs/operations.md names every herald_ metric the server
// exports.
func TestOperationsDocumentsEveryMetric(t *testing.T) {
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for m := range metricNames(t) {
		if strings.HasPrefix(m, "herald_") && !strings.Contains(string(doc), "`"+m+"`") {
			t.Errorf("docs/operations.md does not document %s", m)
		}
	}
}

// metricNames starts a server and returns the names of what it exports.
func metricNames(t *testing.T) map[string]bool {
	t.Helper()
	cfg := apptest.Config(t)
	keys, err := push.GenerateKeys() // with Web Push on, whose metrics exist only then
	if err != nil {
		t.Fatal(err)
	}
	cfg.VAPIDPrivateKey, cfg.VAPIDSubject = keys.Private, "mailto:ops@example.com"
	a := apptest.Start(t, cfg)
	// Series of labelled metrics appear once used: one refused stream shows both the request
	// and the rejection metrics.
	if resp, err := http.Get(a.URL + "/v1/stream"); err == nil {
		resp.Body.Close()
	}
	fams, err := a.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
	}
	return names
}
