package fswatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/edgeward/edgeward/internal/fswatch/fswatchtest"
)

func TestMark(t *testing.T) {
	file := File("/etc/edgeward/inventory.csv")
	dir := Target{Dir: "/etc/edgeward/rules"}
	write := func(name string) fsnotify.Event { return fsnotify.Event{Name: name, Op: fsnotify.Write} }
	tests := []struct {
		name string
		cfg  Config
		ev   fsnotify.Event
		want bool
	}{
		{"the file", Config{Targets: []Target{file}}, write("/etc/edgeward/inventory.csv"), true},
		{"another file", Config{Targets: []Target{file}}, write("/etc/edgeward/other.csv"), false},
		{"editor temp file", Config{Targets: []Target{file}}, write("/etc/edgeward/.inventory.csv.swp"), false},
		{"ConfigMap ..data", Config{Targets: []Target{file}}, write("/etc/edgeward/..data"), true},
		{"ConfigMap version dir", Config{Targets: []Target{file}}, write("/etc/edgeward/..2026_11_21_10_00_00.1"), true},
		{"the file, dirty name", Config{Targets: []Target{file}}, write("/etc/edgeward//inventory.csv"), true},
		{"relative file", Config{Targets: []Target{File("sessions.jsonl")}}, write("./sessions.jsonl"), true},
		{"hidden file watched", Config{Targets: []Target{File("/run/.sessions")}}, write("/run/.sessions"), true},
		{"chmod", Config{Targets: []Target{file}}, fsnotify.Event{Name: "/etc/edgeward/inventory.csv", Op: fsnotify.Chmod}, true},
		{"chmod ignored", Config{Targets: []Target{file}, IgnoreChmod: true}, fsnotify.Event{Name: "/etc/edgeward/inventory.csv", Op: fsnotify.Chmod}, false},
		{"the directory itself", Config{Targets: []Target{file}}, fsnotify.Event{Name: "/etc/edgeward", Op: fsnotify.Remove}, false},

		{"file in directory", Config{Targets: []Target{dir}}, write("/etc/edgeward/rules/a.yml"), true},
		{"editor temp file in directory", Config{Targets: []Target{dir}}, write("/etc/edgeward/rules/.a.yml.swp"), false},
		{"file in subdirectory", Config{Targets: []Target{dir}}, write("/etc/edgeward/rules/sub/a.yml"), false},
		{"directory ..data_tmp", Config{Targets: []Target{dir}}, write("/etc/edgeward/rules/..data_tmp"), true},
		{"ConfigMapData ..data", Config{Targets: []Target{dir}, ConfigMap: ConfigMapData}, write("/etc/edgeward/rules/..data"), true},
		{"ConfigMapData ..data_tmp", Config{Targets: []Target{dir}, ConfigMap: ConfigMapData}, write("/etc/edgeward/rules/..data_tmp"), false},
		{"the directory itself", Config{Targets: []Target{dir}}, fsnotify.Event{Name: "/etc/edgeward/rules", Op: fsnotify.Remove}, false},
		{"DirChanges", Config{Targets: []Target{dir}, DirChanges: true}, fsnotify.Event{Name: "/etc/edgeward/rules", Op: fsnotify.Remove}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			changed := make([]bool, len(tc.cfg.Targets))
			if got := tc.cfg.mark(tc.ev, changed); got != tc.want || changed[0] != tc.want {
				t.Errorf("mark(%v) = %v, changed %v; want %v", tc.ev, got, changed, tc.want)
			}
		})
	}
}

// TestMarkTargets: a change marks the targets it concerns and only those;
// a ConfigMap update marks every target in its directory.
func TestMarkTargets(t *testing.T) {
	cfg := Config{Targets: []Target{File("/db/country.mmdb"), File("/db/asn.mmdb"), {Dir: "/intel"}}}
	for _, tc := range []struct {
		name string
		want []bool
	}{
		{"/db/asn.mmdb", []bool{false, true, false}},
		{"/db/..data", []bool{true, true, false}},
		{"/intel/tor.txt", []bool{false, false, true}},
	} {
		changed := make([]bool, len(cfg.Targets))
		cfg.mark(fsnotify.Event{Name: tc.name, Op: fsnotify.Create}, changed)
		if !slices.Equal(changed, tc.want) {
			t.Errorf("%s: changed %v, want %v", tc.name, changed, tc.want)
		}
	}
}

func TestDirs(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	got := Dirs([]string{sub, filepath.Join(dir, "a.yml"), filepath.Join(sub, "missing.yml"), sub + "/"})
	want := []Target{{Dir: sub}, {Dir: dir}}
	if !slices.Equal(got, want) {
		t.Errorf("Dirs = %v, want %v", got, want)
	}
}

// TestDebounce feeds changes to the loop at the given offsets (fake time)
// and checks when it loads.
func TestDebounce(t *testing.T) {
	const ms = time.Millisecond
	every100 := []time.Duration{0, 100 * ms, 200 * ms, 300 * ms, 400 * ms, 500 * ms}
	tests := []struct {
		name     string
		throttle bool
		changes  []time.Duration
		loads    []time.Duration
	}{
		{"quiet folds a burst", false, []time.Duration{0, 100 * ms, 200 * ms}, []time.Duration{450 * ms}},
		{"quiet loads after each pause", false, []time.Duration{0, 300 * ms}, []time.Duration{250 * ms, 550 * ms}},
		{"quiet waits out a stream", false, every100, []time.Duration{750 * ms}},
		{"throttle folds a burst", true, []time.Duration{0, 100 * ms, 200 * ms}, []time.Duration{250 * ms}},
		{"throttle loads during a stream", true, every100, []time.Duration{250 * ms, 550 * ms}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Targets: []Target{File("/d/f")}, Delay: 250 * ms, Throttle: tc.throttle}
			got := fakeRun(t, cfg, tc.changes, time.Second)
			if !slices.Equal(got, tc.loads) {
				t.Errorf("loads at %v, want %v", got, tc.loads)
			}
		})
	}
}

// TestResync: with Resync, load runs at the start and then periodically,
// but not while a load after a change is pending.
func TestResync(t *testing.T) {
	const s = time.Second
	cfg := Config{Targets: []Target{File("/d/f")}, Delay: s / 10, Throttle: true, Resync: 30 * s, LoadAtStart: true}
	got := fakeRun(t, cfg, []time.Duration{60*s - s/20}, 100*s)
	want := []time.Duration{0, 30 * s, 60*s + s/20, 90 * s}
	if !slices.Equal(got, want) {
		t.Errorf("loads at %v, want %v", got, want)
	}
}

// TestOverflow: when the kernel's event queue overflows, every target is
// loaded after the delay, since any of them may have changed unseen.
func TestOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{Targets: []Target{File("/d/f"), {Dir: "/e"}}, Delay: time.Second}
		errs := make(chan error)
		loads := make(chan []bool, 4)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go cfg.loop(ctx, nil, errs, slog.New(slog.DiscardHandler), func(changed []bool) {
			loads <- slices.Clone(changed)
		})
		errs <- fmt.Errorf("reading events: %w", fsnotify.ErrEventOverflow)
		errs <- errors.New("some other error") // logged only
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if len(loads) != 1 {
			t.Fatalf("%d loads after an overflow, want 1", len(loads))
		}
		if c := <-loads; !c[0] || !c[1] {
			t.Errorf("load after an overflow: changed %v, want every target", c)
		}
	})
}

// fakeRun runs the loop in a synctest bubble, sends a change to the
// watched file at each offset in changes, stops at end and returns when
// load ran. Every load must report the target changed.
func fakeRun(t *testing.T, cfg Config, changes []time.Duration, end time.Duration) []time.Duration {
	t.Helper()
	var loads []time.Duration
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		events := make(chan fsnotify.Event)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() {
			done <- cfg.loop(ctx, events, nil, slog.New(slog.DiscardHandler), func(changed []bool) {
				if !changed[0] {
					t.Errorf("load at %v without a change", time.Since(start))
				}
				loads = append(loads, time.Since(start))
			})
		}()
		for _, at := range changes {
			time.Sleep(at - time.Since(start))
			events <- fsnotify.Event{Name: cfg.Targets[0].String(), Op: fsnotify.Write}
		}
		time.Sleep(end - time.Since(start))
		cancel()
		if err := <-done; err != nil {
			t.Errorf("loop: %v", err)
		}
	})
	return loads
}

// watching runs Run on cfg with LoadAtStart, waits for that first load
// (the watch is in place) and returns a channel of what each later load
// was told changed. Run stops, and must return nil, when the test ends.
func watching(t *testing.T, cfg Config) <-chan []bool {
	t.Helper()
	cfg.LoadAtStart = true
	loads := make(chan []bool, 16)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, func(changed []bool) { loads <- slices.Clone(changed) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	nextLoad(t, loads)
	return loads
}

func nextLoad(t *testing.T, loads <-chan []bool) []bool {
	t.Helper()
	select {
	case c := <-loads:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no load")
		return nil
	}
}

// noLoad checks that nothing loads for a while: long against the delay,
// short for a test.
func noLoad(t *testing.T, loads <-chan []bool) {
	t.Helper()
	select {
	case c := <-loads:
		t.Errorf("unexpected load, changed %v", c)
	case <-time.After(200 * time.Millisecond):
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRenameOver saves the way editors and config management do: write a
// hidden temporary file, rename it over the watched one. That is one load;
// writing the temporary file alone is none.
func TestRenameOver(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inventory.csv")
	writeFile(t, path, "v1")
	loads := watching(t, Config{Targets: []Target{File(path)}, Delay: 20 * time.Millisecond, IgnoreChmod: true})

	tmp := filepath.Join(dir, ".inventory.csv.tmp")
	writeFile(t, tmp, "v2")
	noLoad(t, loads)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if c := nextLoad(t, loads); !c[0] {
		t.Errorf("load after the rename: changed %v", c)
	}
	noLoad(t, loads)
}

// TestConfigMapSwap updates a directory the way the kubelet updates a
// ConfigMap volume (fswatchtest.ConfigMap): only hidden names change.
func TestConfigMapSwap(t *testing.T) {
	tests := []struct {
		name   string
		target func(dir string) Target
		cm     ConfigMap
	}{
		{"file", func(dir string) Target { return File(filepath.Join(dir, "custom.yml")) }, ConfigMapAll},
		{"directory", func(dir string) Target { return Target{Dir: dir} }, ConfigMapAll},
		{"directory, ..data only", func(dir string) Target { return Target{Dir: dir} }, ConfigMapData},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cm := &fswatchtest.ConfigMap{Dir: dir}
			cm.Update(t, map[string]string{"custom.yml": "v1"})
			loads := watching(t, Config{Targets: []Target{tc.target(dir)}, Delay: 20 * time.Millisecond, ConfigMap: tc.cm})

			cm.Update(t, map[string]string{"custom.yml": "v2"})
			if c := nextLoad(t, loads); !c[0] {
				t.Errorf("load after the swap: changed %v", c)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	for _, tc := range []struct {
		name    string
		targets []Target
	}{
		{"watching", []Target{{Dir: t.TempDir()}}},
		{"nothing to watch", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- Run(ctx, Config{Targets: tc.targets}, func([]bool) {}) }()
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v after cancel", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
		})
	}
}

// TestUnwatchable: a directory that does not exist fails Run, unless
// SkipUnwatchable, which logs it and watches the rest.
func TestUnwatchable(t *testing.T) {
	dir := t.TempDir()
	missing := File(filepath.Join(dir, "missing", "anon.mmdb"))
	err := Run(t.Context(), Config{Targets: []Target{missing}}, func([]bool) { t.Error("load") })
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "directory "+missing.Dir) {
		t.Errorf("Run = %v, want the missing directory", err)
	}

	var logs bytes.Buffer
	present := File(filepath.Join(dir, "country.mmdb"))
	loads := watching(t, Config{Targets: []Target{missing, present}, SkipUnwatchable: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if l := logs.String(); !strings.Contains(l, "cannot watch directory") || !strings.Contains(l, missing.Dir) {
		t.Errorf("log:\n%s", l)
	}
	writeFile(t, present.String(), "db")
	if c := nextLoad(t, loads); !slices.Equal(c, []bool{false, true}) {
		t.Errorf("load after a write: changed %v", c)
	}
}

// TestFollow: a directory that does not exist when Follow starts is
// watched once it appears (found by polling: its parent is missing too),
// and one removed and created again is watched again.
func TestFollow(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "rules")
	targets := func() []Target { return []Target{{Dir: dir}, File(dir)} }
	loads := make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- Follow(ctx, Config{Delay: 20 * time.Millisecond, DirChanges: true}, targets, func([]Target, []bool) { loads <- struct{}{} })
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	wait := func(what string) {
		t.Helper()
		select {
		case <-loads:
		case <-time.After(5 * time.Second):
			t.Fatalf("no load: %s", what)
		}
	}
	drain := func() {
		time.Sleep(100 * time.Millisecond)
		for len(loads) > 0 {
			<-loads
		}
	}
	time.Sleep(100 * time.Millisecond) // the first watch is set up
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wait("the directory appeared")
	drain()
	writeFile(t, filepath.Join(dir, "a.yml"), "1")
	wait("a file in the directory that appeared")
	drain()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	wait("the directory went away")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	drain()
	writeFile(t, filepath.Join(dir, "b.yml"), "2")
	wait("a file in the directory created again")
}
