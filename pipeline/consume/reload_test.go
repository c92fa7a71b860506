package consume

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeward/edgeward/internal/findingtest"
	"github.com/edgeward/edgeward/internal/fswatch/fswatchtest"
	"github.com/edgeward/edgeward/pipeline"
	"github.com/edgeward/edgeward/rules"
)

const ruleSSH = `
- rule: ssh_out
  title: SSH
  severity: low
  category: remote_access
  match: dst.port == 22
`

const ruleWeb = `
- rule: web_by_egress
  title: Web through one egress
  severity: low
  category: laptop_farm
  match: dst.port == 443 && present(egress.ip)
  suppress: {key: [egress.ip], for: 24h}
`

// TestHotReload changes the rules under a running consumer: a new rule,
// repartitioned by its key, runs on the next flows; an invalid file is
// rejected, counted, and the running rules stay.
func TestHotReload(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yml")
	os.WriteFile(path, []byte(ruleSSH), 0o644)
	schema, _ := pipeline.Schema()
	opts := rules.Options{Schema: schema}
	set, err := rules.Load([]string{dir}, opts)
	if err != nil {
		t.Fatal(err)
	}
	h.set = set
	in := h.start(h.config(nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go in.c.WatchRules(ctx, []string{dir}, opts)

	recs := testFlows(20)
	h.produce(recs[:len(recs)/2])
	h.waitDone(30 * time.Second)
	if n := countRule(h.published(), "web_by_egress"); n != 0 {
		t.Fatalf("%d web_by_egress alerts before the rule exists", n)
	}

	os.WriteFile(path, []byte(ruleSSH+ruleWeb), 0o644)
	waitMetric(t, in.reg, "edgeward_rules_loaded 2")
	h.produce(recs[len(recs)/2:])
	h.waitDone(30 * time.Second)
	if n := countRule(h.published(), "web_by_egress"); n != 2 { // two home addresses
		t.Errorf("%d web_by_egress findings after the reload, want 2\n%s", n, gather(t, in.reg))
	}

	os.WriteFile(path, []byte(ruleSSH+ruleWeb+"\n- rule: broken\n  match: nope(\n"), 0o644)
	waitMetric(t, in.reg, "edgeward_rules_reload_failures_total 1")
	if m := gather(t, in.reg); !strings.Contains(m, "edgeward_rules_last_reload_successful 0") || !strings.Contains(m, "edgeward_rules_loaded 2") {
		t.Errorf("after a bad reload:\n%s", m)
	}
}

func countRule(alerts []*rules.Alert, id string) int {
	n := 0
	for _, f := range findingtest.Fold(alerts) {
		if f.Rule == id {
			n++
		}
	}
	return n
}

func waitMetric(t *testing.T, reg *prometheus.Registry, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(gather(t, reg), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in\n%s", want, gather(t, reg))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWatchRulesConfigMap updates the rules the way the kubelet updates a
// ConfigMap volume (fswatchtest.ConfigMap): only hidden names change, and
// the update is loaded.
func TestWatchRulesConfigMap(t *testing.T) {
	dir := t.TempDir()
	cm := &fswatchtest.ConfigMap{Dir: dir}
	cm.Update(t, map[string]string{"rules.yml": ruleSSH})
	schema, _ := pipeline.Schema()
	opts := rules.Options{Schema: schema}
	set, err := rules.Load([]string{dir}, opts)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c, err := New(Config{Brokers: []string{"127.0.0.1:1"}, Rules: set, Registry: reg, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.WatchRules(ctx, []string{dir}, opts)
	// The watch starts in the background: update until it is seen.
	for i := 0; !strings.Contains(gather(t, reg), "edgeward_rules_loaded 2"); i++ {
		if i == 50 {
			t.Fatalf("the ..data swap was not loaded:\n%s", gather(t, reg))
		}
		cm.Update(t, map[string]string{"rules.yml": ruleSSH + ruleWeb})
		time.Sleep(400 * time.Millisecond)
	}
}
