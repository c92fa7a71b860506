package rules

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long the watcher waits after the last change
// before reloading, so an editor's write-rename-chmod burst reloads once.
const DefaultDebounce = 250 * time.Millisecond

// Watcher reloads the rules when files in the rules directories change.
// It watches directories, not files, so editors that save by writing a
// temporary file and renaming it over the old one are seen. A reload loads
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

// watchDirs is the directories to watch: each path that is a directory,
// and the directory of each file.
func (w *Watcher) watchDirs() []string {
	var dirs []string
	for _, p := range w.paths() {
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			p = filepath.Dir(p)
		}
		if !slices.Contains(dirs, p) {
			dirs = append(dirs, p)
		}
	}
	return dirs
}

// configMapData is the link the kubelet swaps (renames a new ..data_tmp
// over it) to update every file of a ConfigMap volume at once; the visible
// names are links through it and never change themselves.
const configMapData = "..data"

// Run watches until ctx is done. With no user paths (only the built-in
// pack) there is nothing to watch and it waits for ctx.
func (w *Watcher) Run(ctx context.Context) error {
	log := w.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dirs := w.watchDirs()
	log = log.With("component", "rules", "dirs", dirs)
	d := w.Debounce
	if d <= 0 {
		d = DefaultDebounce
	}
	if len(dirs) == 0 {
		<-ctx.Done()
		return nil
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching rules: %w", err)
	}
	defer fw.Close()
	for _, dir := range dirs {
		if err := fw.Add(dir); err != nil {
			return fmt.Errorf("watching rules directory %s: %w", dir, err)
		}
	}
	timer := time.NewTimer(d)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if base := filepath.Base(ev.Name); len(base) > 0 && base[0] == '.' && base != configMapData {
				continue // editor swap and temp files
			}
			timer.Reset(d)
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			log.Warn("rules watcher error", "err", err)
		case <-timer.C:
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
