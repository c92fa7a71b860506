package consume

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestEngineMetrics: the partitions' engine counters are summed by label
// set, a released partition's counts stay in the sums, and per-engine
// gauges and reload metrics are left to the consumer's own.
func TestEngineMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	engine := func(matches float64, reloadFailures float64) *prometheus.Registry {
		r := m.engines.registry()
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeward_rules_matches_total", Help: "Matches."}, []string{"rule", "mode"})
		c.WithLabelValues("a", "alert").Add(matches)
		c.WithLabelValues("b", "shadow").Add(1)
		f := prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_rules_reload_failures_total", Help: "x"})
		f.Add(reloadFailures)
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgeward_rules_loaded", Help: "x"})
		g.Set(99)
		r.MustRegister(c, f, g)
		return r
	}
	ra := engine(2, 3)
	engine(5, 4)
	want := []string{
		`edgeward_rules_matches_total{mode="alert",rule="a"} 7`,
		`edgeward_rules_matches_total{mode="shadow",rule="b"} 2`,
		"edgeward_rules_reload_failures_total 0",
		"edgeward_rules_loaded 0",
	}
	check := func(when string) {
		t.Helper()
		got := gather(t, reg)
		for _, w := range want {
			if !strings.Contains(got, w+"\n") && !strings.HasSuffix(got, w) {
				t.Errorf("%s: metrics lack %q:\n%s", when, w, got)
			}
		}
	}
	check("two partitions")
	m.engines.release(ra)
	m.engines.release(ra) // twice is harmless
	check("one released")
}
