package rules

import (
	"context"
	"fmt"
	"log/slog"
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

// Run watches until ctx is done. With no user paths (only the built-in
// pack) there is nothing to watch and it waits for ctx. Any visible file
// in a watched directory counts, as does the directory itself (removed, it
// makes the reload fail, which the metrics show), and of a ConfigMap
// update the ..data swap that completes it.
func (w *Watcher) Run(ctx context.Context) error {
	log := w.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dirs := fswatch.Dirs(w.paths())
	log = log.With("component", "rules", "dirs", dirs)
	d := w.Debounce
	if d <= 0 {
		d = DefaultDebounce
	}
	cfg := fswatch.Config{Targets: dirs, Delay: d, ConfigMap: fswatch.ConfigMapData, DirChanges: true, Logger: log}
	if err := fswatch.Run(ctx, cfg, func([]bool) { w.reloadLogged(log) }); err != nil {
		return fmt.Errorf("watching rules: %w", err)
	}
	return nil
}

// reloadLogged is Reload for Run, which has no caller to return to.
func (w *Watcher) reloadLogged(log *slog.Logger) {
	err := w.Reload()
	if err != nil {
		if ds, ok := err.(Diagnostics); ok {
			for _, dg := range ds {
				log.Error("rules reload rejected, keeping the running rules", "problem", dg.String())
			}
		} else {
			log.Error("rules reload rejected, keeping the running rules", "err", err)
		}
	} else {
		log.Info("rules reloaded", "rules", len(w.Engine.Set().Rules()))
	}
	if w.reloaded != nil {
		w.reloaded(err)
	}
}

// Reload validates the complete rule set (the built-in pack, Dir and
// Paths) and, if it is valid, swaps it into the engine; otherwise the
// running set stays and the failure metric is set.
func (w *Watcher) Reload() error {
	m := w.Engine.Metrics()
	set, err := Load(w.paths(), w.Options)
	if err != nil {
		m.ReloadFailures.Inc()
		m.LastReloadSuccessful.Set(0)
		return err
	}
	w.Engine.Swap(set)
	m.LastReloadSuccessful.Set(1)
	return nil
}
