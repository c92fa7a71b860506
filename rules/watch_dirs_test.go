package rules

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/edgeward/edgeward/internal/syncbuf"
)

// watchHarness runs a Watcher on paths and reports each reload.
type watchHarness struct {
	e       *Engine
	reloads chan error
	logs    *syncbuf.Buffer
}

func startWatcher(t *testing.T, w *Watcher) *watchHarness {
	t.Helper()
	set, err := Load(w.paths(), w.Options)
	if err != nil {
		t.Fatal(err)
	}
	h := &watchHarness{e: NewEngine(set, EngineConfig{}), reloads: make(chan error, 100), logs: &syncbuf.Buffer{}}
	w.Engine = h.e
	w.Logger = slog.New(slog.NewTextHandler(h.logs, nil))
	if w.Debounce == 0 {
		w.Debounce = 30 * time.Millisecond
	}
	w.reloaded = func(err error) { h.reloads <- err }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	time.Sleep(100 * time.Millisecond) // the watch is set up
	return h
}

// waitRules waits until a flow of proto raises an alert of rule id, feeding
// the engine flows (it installs a swapped set at its next flow).
func (h *watchHarness) waitRules(t *testing.T, what, proto, id string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; ; i++ {
		hit := false
		h.e.Evaluate(tcpFlow(i, proto), func(a *Alert) { hit = hit || a.FindingInfo.Analytic.UID == id })
		if hit {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: rule %s never ran; logs:\n%s", what, id, h.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const icmpRule = `- rule: icmp
  title: ICMP
  severity: low
  category: tunnel
  match: proto == "icmp"
`

// A rules directory removed and created again (a deploy script's rm -rf
// and copy, rsync --delete-after of the directory) keeps being watched:
// the rules written into the new directory run, as do later changes. Done
// at once, the new directory has the old one's inode number (ext4 reuses
// it), so only the removal tells them apart.
func TestReloadDirRecreated(t *testing.T) {
	for _, pause := range []time.Duration{100 * time.Millisecond, 0} {
		t.Run(pause.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "rules.d")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, dir, "a.yml", countRule)
			h := startWatcher(t, &Watcher{Dir: dir})
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			time.Sleep(pause)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, dir, "a.yml", udpRule)
			h.waitRules(t, "after the directory came back", "udp", "udp")
			time.Sleep(100 * time.Millisecond) // the reload's own re-watch is done
			writeFile(t, dir, "a.yml", icmpRule)
			h.waitRules(t, "a change in the new directory", "icmp", "icmp")
			if got := testutil.ToFloat64(h.e.Metrics().LastReloadSuccessful); got != 1 {
				t.Errorf("last_reload_successful = %v after the rules loaded again", got)
			}
		})
	}
}

// A rules path that is a symlink to a versioned directory, switched
// atomically to each new version (git-sync, Capistrano-style deploys,
// `ln -sfn` then rename), reloads on each switch.
func TestReloadSymlinkedDirSwitched(t *testing.T) {
	root := t.TempDir()
	link := filepath.Join(root, "current")
	version := func(n int, body string) {
		t.Helper()
		v := filepath.Join(root, "rev"+string(rune('0'+n)))
		if err := os.Mkdir(v, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, v, "a.yml", body)
		tmp := filepath.Join(root, ".current.tmp")
		if err := os.Symlink(v, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, link); err != nil {
			t.Fatal(err)
		}
	}
	version(1, countRule)
	h := startWatcher(t, &Watcher{Dir: link})
	version(2, udpRule)
	h.waitRules(t, "first switch", "udp", "udp")
	version(3, icmpRule)
	h.waitRules(t, "second switch", "icmp", "icmp")
}

// An invalid save keeps the old rules, logs the problem as file:line:col
// and sets the metric to failed; the fix loads and sets it to ok.
func TestReloadInvalidThenFixedLogsPosition(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yml", countRule)
	h := startWatcher(t, &Watcher{Dir: dir})
	writeFile(t, dir, "b.yml", "- rule: broken\n  title: B\n  severity: low\n  category: tunnel\n  match: proto ==\n")
	if err := <-h.reloads; err == nil {
		t.Fatal("broken set accepted")
	}
	// The watcher logs after the reload returns.
	for deadline := time.Now().Add(time.Second); !strings.Contains(h.logs.String(), filepath.Join(dir, "b.yml")+":5:"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the rejected reload's log does not say file:line:col:\n%s", h.logs)
		}
	}
	if got := testutil.ToFloat64(h.e.Metrics().LastReloadSuccessful); got != 0 {
		t.Errorf("last_reload_successful = %v, want 0", got)
	}
	writeFile(t, dir, "b.yml", udpRule)
	h.waitRules(t, "after the fix", "udp", "udp")
	if got := testutil.ToFloat64(h.e.Metrics().LastReloadSuccessful); got != 1 {
		t.Errorf("last_reload_successful = %v after the fix, want 1", got)
	}
}

// A list file beside the rules, changed alone, reloads the rules that use it.
func TestReloadListFileAlone(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "protos.txt", "udp\n")
	writeFile(t, dir, "a.yml", "- list: protos\n  file: protos.txt\n"+
		"- rule: listed\n  title: L\n  severity: low\n  category: tunnel\n  match: in_list(proto, protos)\n")
	h := startWatcher(t, &Watcher{Dir: dir})
	writeFile(t, dir, "protos.txt", "icmp\n")
	h.waitRules(t, "list changed", "icmp", "listed")
}

// A file deleted and created again, and one truncated then written, each
// reload to its final contents.
func TestReloadDeleteRecreateAndTruncate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.yml")
	writeFile(t, dir, "a.yml", countRule)
	h := startWatcher(t, &Watcher{Paths: []string{p}})
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	writeFile(t, dir, "a.yml", udpRule)
	h.waitRules(t, "re-created", "udp", "udp")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(icmpRule); err != nil {
		t.Fatal(err)
	}
	f.Close()
	h.waitRules(t, "truncated and written", "icmp", "icmp")
}

// A burst of writes closer together than the debounce reloads once.
func TestReloadDebouncesBurst(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yml", countRule)
	h := startWatcher(t, &Watcher{Dir: dir, Debounce: 200 * time.Millisecond})
	for i := range 20 {
		writeFile(t, dir, "b.yml", udpRule+strings.Repeat("\n", i))
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(600 * time.Millisecond)
	if n := len(h.reloads); n != 1 {
		t.Errorf("%d reloads for one burst, want 1", n)
	}
}

// Lint reports the problems of a rule whose id is taken along with the
// duplicate id: every problem at once, as documented.
func TestLintDuplicateRuleOwnProblems(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "x.yml", udpRule+"- rule: udp\n  title: U\n  severity: low\n  category: tunnel\n  match: proto == 1\n")
	ds := Lint([]string{p}, Options{})
	var got []string
	for _, d := range ds {
		got = append(got, d.String())
	}
	if len(ds) != 2 || !strings.Contains(got[0], "x.yml:6:9: rule udp already defined") || !strings.Contains(got[1], "x.yml:10:16: match: found no matching overload") {
		t.Errorf("diagnostics %q, want the duplicate id and its match's type error", got)
	}
}

// A changed rule starts with empty windows; an unchanged one keeps them.
func TestReloadChangedRuleResetsState(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yml", countRule)
	h := startWatcher(t, &Watcher{Dir: dir})
	emitted := 0
	emit := func(*Alert) { emitted++ }
	h.e.Evaluate(tcpFlow(0, "tcp"), emit)
	h.e.Evaluate(tcpFlow(1, "tcp"), emit)
	writeFile(t, dir, "a.yml", strings.Replace(countRule, "severity: low", "severity: medium", 1))
	if err := <-h.reloads; err != nil {
		t.Fatal(err)
	}
	h.e.Evaluate(tcpFlow(2, "tcp"), emit)
	if emitted != 0 {
		t.Fatalf("changed rule kept its window: %d alerts", emitted)
	}
	h.e.Evaluate(tcpFlow(3, "tcp"), emit)
	h.e.Evaluate(tcpFlow(4, "tcp"), emit)
	if emitted != 1 {
		t.Fatalf("%d alerts after three flows in the new window", emitted)
	}
}
