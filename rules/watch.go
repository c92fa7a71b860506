package rules

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/edgeward/edgeward/internal/fswatch"
)

// DefaultDebounce is how long the watcher waits after the last change
// before reloading, so an editor's write-rename-chmod burst reloads once.
const DefaultDebounce = 250 * time.Millisecond

// Watcher reloads the rules when files in the rules directories change,
// including saves that rename a temporary file over the old one and
// ConfigMap updates (see internal/fswatch). A reload loads
// Options.Builtin (the embedded pack, which cannot change) and the user
// paths together, so user overrides of built-in rules and lists apply.
type Watcher struct {
	Dir      string   // a rules directory; may be empty when Paths is set
	Paths    []string // more rule files and directories, loaded after Dir
	Options  Options
	Engine   *Engine
	Logger   *slog.Logger // nil: discard
	Debounce time.Duration
	// reloaded, when set, is called after each reload attempt (tests).
	reloaded func(error)
}

// paths is Dir and Paths, in load order.
func (w *Watcher) paths() []string {
	if w.Dir == "" {
		return w.Paths
	}
	return append([]string{w.Dir}, w.Paths...)
}

// Run watches until ctx is done (see Watch).
func (w *Watcher) Run(ctx context.Context) error {
	return Watch(ctx, w.paths(), w.Debounce, w.Logger, func() (*Set, error) {
		// The loaded set, not Engine.Set: the engine installs it on its
		// own goroutine at its next flow.
		set, err := w.reload()
		if w.reloaded != nil {
			w.reloaded(err)
		}
		return set, err
	})
}

// Watch calls reload after files in paths (rule files or directories)
// change, until ctx is done, and logs what it returns: the rules loaded,
// or each problem of a rejected set. With no paths (only the built-in
// pack) there is nothing to watch and it waits for ctx. Any visible file
// in a watched directory counts, as does the directory itself (removed,
// it makes the reload fail, which the metrics show), and of a ConfigMap
// update the ..data swap that completes it. A directory created again,
// renamed over or switched to through a symlink is watched from then on
// (fswatch.Follow). debounce <= 0 is DefaultDebounce; log may be nil.
func Watch(ctx context.Context, paths []string, debounce time.Duration, log *slog.Logger, reload func() (*Set, error)) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(paths) == 0 {
		<-ctx.Done()
		return nil
	}
	log = log.With("component", "rules", "dirs", fswatch.Dirs(paths))
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	cfg := fswatch.Config{Delay: debounce, ConfigMap: fswatch.ConfigMapData, DirChanges: true, Logger: log}
	err := fswatch.Follow(ctx, cfg, func() []fswatch.Target { return watchTargets(paths) }, func([]fswatch.Target, []bool) {
		set, err := reload()
		if err == nil {
			log.Info("rules reloaded", "rules", len(set.Rules()))
			return
		}
		if ds, ok := err.(Diagnostics); ok {
			for _, d := range ds {
				log.Error("rules reload rejected, keeping the running rules", "problem", d.String())
			}
			return
		}
		log.Error("rules reload rejected, keeping the running rules", "err", err)
	})
	if err != nil {
		return fmt.Errorf("watching rules: %w", err)
	}
	return nil
}

// watchTargets is what Watch watches for paths now: each directory of
// them (fswatch.Dirs), and each path in its parent, so that a rules
// directory removed, created or switched to another is seen.
func watchTargets(paths []string) []fswatch.Target {
	ts := fswatch.Dirs(paths)
	for _, p := range paths {
		if t := fswatch.File(p); !slices.Contains(ts, t) {
			ts = append(ts, t)
		}
	}
	return ts
}

// Reload validates the complete rule set (the built-in pack, Dir and
// Paths) and, if it is valid, swaps it into the engine; otherwise the
// running set stays and the failure metric is set.
func (w *Watcher) Reload() error {
	_, err := w.reload()
	return err
}

func (w *Watcher) reload() (*Set, error) {
	m := w.Engine.Metrics()
	set, err := Load(w.paths(), w.Options)
	if err != nil {
		m.ReloadFailures.Inc()
		m.LastReloadSuccessful.Set(0)
		return nil, err
	}
	w.Engine.Swap(set)
	m.LastReloadSuccessful.Set(1)
	return set, nil
}
