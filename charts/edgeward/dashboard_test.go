package chart_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	sigsjson "sigs.k8s.io/json"
)

// metrics are the Prometheus metrics the daemons export, as the metric
// contract names them (and, for rules and enrich, as the code registers
// them today). The dashboard may use no other edgeward_ metric.
// TODO(lead): once the daemons register theirs, compare this list with a
// registry's Gather instead.
var metrics = []string{
	// sensor
	"edgeward_packets_total",
	"edgeward_bytes_total",
	"edgeward_decode_errors_total",
	"edgeward_capture_drops_total",
	"edgeward_flows_total",
	"edgeward_flow_table_entries",
	"edgeward_export_records_total",
	"edgeward_export_errors_total",
	"edgeward_export_batches_total",
	"edgeward_spool_bytes",
	"edgeward_spool_segments",
	"edgeward_spool_dropped_records_total",
	"edgeward_spool_replayed_records_total",
	// pipeline
	"edgeward_consumed_records_total",
	"edgeward_dlq_records_total",
	"edgeward_consumer_lag",
	"edgeward_alerts_total",
	"edgeward_alerts_published_total",
	"edgeward_rules_evaluations_total",
	// pipeline/enrich (registered in pipeline/enrich/metrics.go)
	"edgeward_enrich_lookups_total",
	"edgeward_enrich_cache_hits_total",
	"edgeward_enrich_database_lookups_total",
	"edgeward_enrich_reloads_total",
	"edgeward_enrich_database_build_epoch_seconds",
	"edgeward_enrich_intel_entries",
	"edgeward_enrich_intel_skipped_entries",
	// rules (registered in rules/state.go)
	"edgeward_rules_matches_total",
	"edgeward_rules_alerts_total",
	"edgeward_rules_folded_total",
	"edgeward_rules_eval_errors_total",
	"edgeward_rules_state_evictions_total",
	"edgeward_rules_loaded",
	"edgeward_rules_reload_failures_total",
	"edgeward_rules_last_reload_successful",
}

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
			if err := checkExpr(q.Expr, vars); err != nil {
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
// parser: it uses edgeward metrics, only known ones, only defined
// variables, and its brackets and quotes balance.
func checkExpr(expr string, vars map[string]bool) error {
	if strings.TrimSpace(expr) == "" {
		return errors.New("empty expr")
	}
	names := metricName.FindAllString(expr, -1)
	if len(names) == 0 {
		return fmt.Errorf("%s: uses no edgeward metric", expr)
	}
	var errs []error
	for _, n := range names {
		if !slices.Contains(metrics, n) {
			errs = append(errs, fmt.Errorf("%s: unknown metric %s", expr, n))
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
