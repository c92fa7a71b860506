package rules

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/fswatch/fswatchtest"
)

const countRule = `- rule: burst
  title: Burst
  severity: low
  category: tunnel
  match: proto == "tcp"
  aggregate: {type: event_count, group_by: [src.ip], window: 1h, condition: {gte: 3}}
`

const udpRule = `- rule: udp
  title: UDP
  severity: low
  category: tunnel
  match: proto == "udp"
`

func tcpFlow(sec int, proto string) *Input {
	t := time.Unix(int64(1700000000+sec), 0)
	return &Input{Record: &flow.Record{Proto: proto, Start: t, End: t,
		Src: flow.Endpoint{IP: netip.MustParseAddr("10.0.0.1")}}}
}

// TestReloadKeepsOldSetAndWindows: a broken file is rejected and the old
// rules keep running; a good change takes effect and the window of the
// unchanged rule survives it.
func TestReloadKeepsOldSetAndWindows(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		// Save as editors do: write a temp file, rename it over.
		tmp := filepath.Join(dir, ".tmp-"+name)
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yml", countRule)
	reg := prometheus.NewRegistry()
	set, err := Load([]string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(set, EngineConfig{Registry: reg})
	var alerts []*Alert
	emit := func(a *Alert) { alerts = append(alerts, a) }
	e.Evaluate(tcpFlow(0, "tcp"), emit)
	e.Evaluate(tcpFlow(1, "tcp"), emit) // window holds 2 of 3

	reloads := make(chan error, 10)
	w := &Watcher{Dir: dir, Engine: e, Debounce: 50 * time.Millisecond, reloaded: func(err error) { reloads <- err }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	time.Sleep(100 * time.Millisecond) // let the watcher start
	wait := func() error {
		t.Helper()
		select {
		case err := <-reloads:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("no reload")
		}
		return nil
	}

	write("b.yml", "- rule: broken\n  match: proto ==\n")
	if err := wait(); err == nil {
		t.Fatal("broken file accepted")
	}
	if got := testutil.ToFloat64(e.Metrics().LastReloadSuccessful); got != 0 {
		t.Errorf("last_reload_successful = %v, want 0", got)
	}
	if got := testutil.ToFloat64(e.Metrics().ReloadFailures); got != 1 {
		t.Errorf("reload failures = %v, want 1", got)
	}
	e.Evaluate(tcpFlow(2, "udp"), emit) // old set: no udp rule
	if len(alerts) != 0 {
		t.Fatalf("alerts after broken reload: %d", len(alerts))
	}

	write("b.yml", udpRule)
	if err := wait(); err != nil {
		t.Fatalf("good reload rejected: %v", err)
	}
	e.Evaluate(tcpFlow(3, "udp"), emit) // new rule fires
	e.Evaluate(tcpFlow(4, "tcp"), emit) // third tcp flow: window survived
	ids := map[string]int{}
	for _, a := range alerts {
		ids[a.FindingInfo.Analytic.UID]++
	}
	if ids["udp"] != 1 || ids["burst"] != 1 {
		t.Errorf("alerts by rule %v, want udp:1 burst:1", ids)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestReloadOnConfigMapSwap updates a directory the way the kubelet
// updates a ConfigMap volume (fswatchtest.ConfigMap): only hidden names
// change, and the rules must still reload.
func TestReloadOnConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	cm := &fswatchtest.ConfigMap{Dir: dir}
	cm.Update(t, map[string]string{"custom.yml": countRule})
	set, err := Load([]string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(set, EngineConfig{})
	reloads := make(chan error, 10)
	w := &Watcher{Dir: dir, Engine: e, Debounce: 50 * time.Millisecond, reloaded: func(err error) { reloads <- err }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	time.Sleep(100 * time.Millisecond) // let the watcher start

	cm.Update(t, map[string]string{"custom.yml": countRule + udpRule})
	select {
	case err := <-reloads:
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reload after the ..data swap")
	}
	var got []string
	e.Evaluate(tcpFlow(0, "udp"), func(a *Alert) { got = append(got, a.FindingInfo.Analytic.UID) })
	if len(got) != 1 || got[0] != "udp" {
		t.Errorf("alerts %v after the swap, want the new udp rule", got)
	}
}

// TestWatcherReloadWhileEvaluating: the watcher reloads on its goroutine
// while the engine evaluates flows on another, as the pipeline runs them.
// Run with -race.
func TestWatcherReloadWhileEvaluating(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yml", countRule)
	set, err := Load([]string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(set, EngineConfig{})
	reloads := make(chan error, 10)
	w := &Watcher{Dir: dir, Engine: e, Debounce: 20 * time.Millisecond, reloaded: func(err error) { reloads <- err }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	time.Sleep(100 * time.Millisecond)
	writeFile(t, dir, "b.yml", udpRule)
	deadline := time.After(5 * time.Second)
	for i := 0; ; i++ {
		e.Evaluate(tcpFlow(i, "udp"), func(*Alert) {})
		select {
		case err := <-reloads:
			if err != nil {
				t.Fatal(err)
			}
			for j := range 10 {
				e.Evaluate(tcpFlow(i+j, "udp"), func(*Alert) {})
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			return
		case <-deadline:
			t.Fatal("no reload")
		default:
		}
	}
}
