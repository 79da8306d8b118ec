package validate

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// promql parses expressions as a Prometheus server does by default: no experimental functions.
var promql = parser.NewParser(parser.Options{})

// synthetic are series Prometheus makes itself when it scrapes, not Herald.
var synthetic = map[string]bool{"up": true}

// scrapeLabels are labels Prometheus adds to every series it scrapes.
var scrapeLabels = map[string]bool{"job": true, "instance": true}

// checkExpr parses expr and checks every series it selects against what the server exports:
// the metric, and each label a matcher names. It returns the metric names.
func checkExpr(t *testing.T, where, expr string, known exported) []string {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %v\n\t%s", where, err, expr)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			t.Errorf("%s: a selector without a metric name: %s", where, vs)
			return nil
		}
		names = append(names, name)
		if synthetic[name] {
			return nil
		}
		lbls, ok := known.labels[name]
		if !ok {
			t.Errorf("%s: Herald exports no %s", where, name)
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name != labels.MetricName && !scrapeLabels[m.Name] && !lbls[m.Name] {
				t.Errorf("%s: %s has no label %q (it has %v)", where, name, m.Name, keys(lbls))
			}
		}
		return nil
	})
	return names
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestAlertRules: deploy/alerts.yaml loads as Prometheus loads a rule file (known fields,
// durations, annotation templates, every expression parsed), and every series it selects is
// one Herald exports, with the labels its matchers name.
func TestAlertRules(t *testing.T) {
	known := serverMetrics(t)
	groups, errs := rulefmt.ParseFile("../alerts.yaml", false, model.UTF8Validation, promql, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, err := range errs {
		t.Error(err)
	}
	if groups == nil {
		t.FailNow()
	}
	n := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q: every rule is an alert with a summary", r.Expr)
			}
			checkExpr(t, "alerts.yaml "+r.Alert, r.Expr, known)
		}
	}
	if n == 0 {
		t.Fatal("no rules")
	}
	t.Logf("%d alert rules checked", n)
}

// dashboard is the part of Grafana's dashboard model the checks read.
type dashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []dashPanel `json:"panels"`
}

type dashPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"` // a collapsed row's
}

// grafanaVars are the dashboard's variables and Grafana's own, replaced by values of their
// kind before an expression is parsed: durations for intervals, a regular expression for the
// selectors' =~ matchers.
var grafanaVars = regexp.MustCompile(`\$(__rate_interval|__interval|__range)\b|\$\{[a-zA-Z_]+(:[a-z]+)?\}|\$[a-zA-Z_]+`)

func substitute(expr string) string {
	return grafanaVars.ReplaceAllStringFunc(expr, func(v string) string {
		switch v {
		case "$__rate_interval", "$__interval", "$__range":
			return "5m"
		}
		return ".+"
	})
}

// TestDashboard: deploy/grafana/herald.json is a dashboard whose every query parses and selects
// series Herald exports, with a panel for every herald_ metric, laid out without overlaps.
func TestDashboard(t *testing.T) {
	known := serverMetrics(t)
	b, err := os.ReadFile("../grafana/herald.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("herald.json: %v", err)
	}
	if d.Title == "" || d.UID == "" {
		t.Error("the dashboard has no title or uid")
	}

	vars := map[string]bool{}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_]+)\)$`)
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		s, _ := q["query"].(string)
		m := labelValues.FindStringSubmatch(s)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, s)
			continue
		}
		for _, name := range checkExpr(t, "variable "+v.Name, substitute(m[1]), known) {
			if !known.labels[name][m[2]] && !scrapeLabels[m[2]] {
				t.Errorf("variable %s: %s has no label %s", v.Name, name, m[2])
			}
		}
	}
	for _, want := range []string{"datasource", "job", "instance"} {
		if !vars[want] {
			t.Errorf("no $%s variable", want)
		}
	}

	var all []dashPanel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	used := map[string]bool{}
	ids := map[int]bool{}
	type cell struct{ x, y int }
	grid := map[cell]string{}
	queries := 0
	for _, p := range all {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if ids[p.ID] || p.ID == 0 {
			t.Errorf("%s: id missing or used twice", where)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("%s: gridPos %+v is not within the 24 columns", where, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := grid[cell{x, y}]; ok {
					t.Errorf("%s overlaps %s", where, other)
					x, y = g.X+g.W, g.Y+g.H
				}
				grid[cell{x, y}] = where
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("%s: no title or no queries", where)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("%s: the data source is not the $datasource variable", where)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if refs[tg.RefID] || tg.RefID == "" {
				t.Errorf("%s: refId %q missing or used twice", where, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Expr == "" {
				t.Errorf("%s: query %s is empty", where, tg.RefID)
				continue
			}
			queries++
			if !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("%s: query %s ignores the $instance selection: %s", where, tg.RefID, tg.Expr)
			}
			for _, name := range checkExpr(t, where+" "+tg.RefID, substitute(tg.Expr), known) {
				used[name] = true
			}
		}
	}

	// Every herald_ metric has a panel, so that a new one is a decision, not an oversight; and
	// the Go runtime is there.
	shown := map[string]bool{}
	for name := range used {
		shown[known.family[name]] = true
	}
	var missing []string
	for _, family := range known.family {
		if strings.HasPrefix(family, "herald_") && !shown[family] {
			missing = append(missing, family)
		}
	}
	for _, family := range []string{"process_resident_memory_bytes", "go_goroutines", "go_gc_duration_seconds"} {
		if !shown[family] {
			missing = append(missing, family)
		}
	}
	slices.Sort(missing)
	if missing = slices.Compact(missing); len(missing) > 0 {
		t.Errorf("no panel shows %v", missing)
	}
	t.Logf("%d panels, %d queries, %d metrics", len(all), queries, len(used))
}
