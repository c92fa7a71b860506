package chart_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	sigsjson "sigs.k8s.io/json"
)

// registeredMetrics reads the metrics the daemons register, with their
// labels, from the metrics reference in docs/operations.md. That table is
// generated from the daemons' own collectors (TestMetricsDoc in
// cmd/edgeward builds them as the daemons do and fails when the table is
// stale), so the dashboard is checked against what the code registers.
func registeredMetrics() (map[string][]string, error) {
	const begin, end = "<!-- BEGIN metrics", "<!-- END metrics -->"
	src, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		return nil, err
	}
	_, s, ok1 := strings.Cut(string(src), begin)
	s, _, ok2 := strings.Cut(s, end)
	if !ok1 || !ok2 {
		return nil, errors.New("docs/operations.md has no generated metrics reference")
	}
	metrics := map[string][]string{}
	for _, line := range strings.Split(s, "\n") {
		m := metricRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var labels []string
		for _, l := range strings.Split(m[2], ",") {
			if l = strings.Trim(strings.TrimSpace(l), "`"); l != "" {
				labels = append(labels, l)
			}
		}
		metrics[m[1]] = labels
	}
	if len(metrics) == 0 {
		return nil, errors.New("docs/operations.md: no metrics in the generated reference")
	}
	return metrics, nil
}

var metricRow = regexp.MustCompile("^\\| `(edgeward_[a-z0-9_]+)` \\| [a-z]+ \\| ([^|]*) \\|")

// targetLabels are the labels Prometheus adds to every series it scrapes.
var targetLabels = []string{"instance", "job"}

// dashboard is the part of a Grafana dashboard the checks read.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    *gridPos    `json:"gridPos"`
	Targets    []target    `json:"targets"`
	Panels     []panel     `json:"panels"` // a collapsed row's
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type gridPos struct{ H, W, X, Y int }

type target struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Datasource *datasource `json:"datasource"`
}

var (
	metricName = regexp.MustCompile(`\bedgeward_[a-zA-Z0-9_:]+`)
	variable   = regexp.MustCompile(`\$\{?(\w+)`)
	grouping   = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	matcher    = regexp.MustCompile(`[{,]\s*(\w+)\s*(?:=~|!~|!=|=)`)
)

// TestDashboard checks the Grafana dashboard the chart ships: every panel
// queries the dashboard's Prometheus data source with expressions that
// use only metrics the daemons export, the layout has no overlaps, and
// the panels are there.
func TestDashboard(t *testing.T) {
	src, err := os.ReadFile("dashboards/edgeward.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if strict, err := sigsjson.UnmarshalStrict(src, &raw, sigsjson.DisallowDuplicateFields); err != nil || len(strict) > 0 {
		t.Fatalf("dashboards/edgeward.json: %v", errors.Join(append(strict, err)...))
	}
	var d dashboard
	if err := json.Unmarshal(src, &d); err != nil {
		t.Fatalf("dashboards/edgeward.json: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("the dashboard needs a uid and a title (got %q, %q)", d.UID, d.Title)
	}
	metrics, err := registeredMetrics()
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{"__rate_interval": true, "__range": true, "__interval": true}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	if !vars["datasource"] {
		t.Errorf("no datasource variable: the dashboard must not hard-code a data source")
	}

	var all []panel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	ids := map[int]string{}
	var exprs []string
	var grid [][24]string // grid[y][x]: the panel covering the cell
	for _, p := range all {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if other, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("%s: id not unique (also %q)", where, other)
		}
		ids[p.ID] = p.Title
		if g := p.GridPos; g == nil || g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("%s: gridPos %+v outside the 24-column grid", where, p.GridPos)
		} else {
			for y := g.Y; y < g.Y+g.H; y++ {
				for len(grid) <= y {
					grid = append(grid, [24]string{})
				}
				for x := g.X; x < g.X+g.W; x++ {
					if grid[y][x] != "" {
						t.Errorf("%s overlaps %s at x=%d y=%d", where, grid[y][x], x, y)
					}
					grid[y][x] = where
				}
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
			t.Errorf("%s: datasource %+v, want {prometheus ${datasource}}", where, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no queries", where)
		}
		refs := map[string]bool{}
		for _, q := range p.Targets {
			qwhere := fmt.Sprintf("%s query %s", where, q.RefID)
			if q.RefID == "" || refs[q.RefID] {
				t.Errorf("%s: refId empty or repeated", qwhere)
			}
			refs[q.RefID] = true
			if q.Datasource != nil && *q.Datasource != *p.Datasource {
				t.Errorf("%s: datasource %+v differs from the panel's", qwhere, q.Datasource)
			}
			if err := checkExpr(q.Expr, vars, metrics); err != nil {
				t.Errorf("%s: %v", qwhere, err)
			}
			exprs = append(exprs, q.Expr)
		}
	}

	// The panels the issue asks for.
	for _, want := range []struct{ what, re string }{
		{"packets", `rate\(edgeward_packets_total`},
		{"drops", `rate\(edgeward_capture_drops_total`},
		{"flows", `rate\(edgeward_flows_total`},
		{"spool", `edgeward_spool_bytes`},
		{"export errors", `rate\(edgeward_export_errors_total`},
		{"consumer lag", `edgeward_consumer_lag`},
		{"alerts by rule", `by \(rule\) \(rate\(edgeward_alerts_total`},
		{"alerts by category", `by \(category\) \(rate\(edgeward_alerts_total`},
		{"rules reload status", `edgeward_rules_last_reload_successful`},
		{"enrichment reload status", `edgeward_enrich_reloads_total`},
	} {
		re := regexp.MustCompile(want.re)
		if !slices.ContainsFunc(exprs, re.MatchString) {
			t.Errorf("no panel shows %s (no query matches %s)", want.what, want.re)
		}
	}
}

// checkExpr checks a PromQL expression as far as it can without a PromQL
// parser: it uses edgeward metrics, only known ones, only labels they
// have, only defined variables, and its brackets and quotes balance.
func checkExpr(expr string, vars map[string]bool, metrics map[string][]string) error {
	if strings.TrimSpace(expr) == "" {
		return errors.New("empty expr")
	}
	names := metricName.FindAllString(expr, -1)
	if len(names) == 0 {
		return fmt.Errorf("%s: uses no edgeward metric", expr)
	}
	var errs []error
	labels := slices.Clone(targetLabels)
	for _, n := range names {
		l, ok := metrics[n]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: unknown metric %s", expr, n))
		}
		labels = append(labels, l...)
	}
	var used []string
	for _, m := range grouping.FindAllStringSubmatch(expr, -1) {
		used = append(used, strings.Split(m[1], ",")...)
	}
	for _, m := range matcher.FindAllStringSubmatch(expr, -1) {
		used = append(used, m[1])
	}
	for _, l := range used {
		if l = strings.TrimSpace(l); l != "" && !slices.Contains(labels, l) {
			errs = append(errs, fmt.Errorf("%s: label %s is not a label of %v", expr, l, names))
		}
	}
	for _, m := range variable.FindAllStringSubmatch(expr, -1) {
		if !vars[m[1]] {
			errs = append(errs, fmt.Errorf("%s: undefined variable $%s", expr, m[1]))
		}
	}
	var stack []rune
	inQuote := false
	for _, r := range expr {
		switch {
		case r == '"':
			inQuote = !inQuote
		case inQuote:
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case r == ')' || r == ']' || r == '}':
			open := map[rune]rune{')': '(', ']': '[', '}': '{'}[r]
			if len(stack) == 0 || stack[len(stack)-1] != open {
				return errors.Join(append(errs, fmt.Errorf("%s: unbalanced %c", expr, r))...)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if inQuote || len(stack) > 0 {
		errs = append(errs, fmt.Errorf("%s: unclosed quote or bracket", expr))
	}
	return errors.Join(errs...)
}

func TestCheckExpr(t *testing.T) {
	metrics := map[string][]string{"edgeward_flows_total": {"end_reason"}, "edgeward_packets_total": nil}
	vars := map[string]bool{"instance": true, "__rate_interval": true}
	for _, tc := range []struct{ name, expr, want string }{
		{"good", `sum by (instance, end_reason) (rate(edgeward_flows_total{instance=~"$instance", end_reason="idle"}[$__rate_interval]))`, ""},
		{"unknown metric", `rate(edgeward_flow_total[5m])`, "unknown metric edgeward_flow_total"},
		{"label of another metric", `sum by (end_reason) (rate(edgeward_packets_total[5m]))`, "label end_reason is not a label of"},
		{"misspelled matcher label", `rate(edgeward_flows_total{endreason="idle"}[5m])`, "label endreason"},
		{"undefined variable", `rate(edgeward_flows_total{instance=~"$node"}[5m])`, "undefined variable $node"},
		{"unbalanced", `sum(rate(edgeward_flows_total[5m])`, "unclosed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExpr(tc.expr, vars, metrics)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("%v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
