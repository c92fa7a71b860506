package rules

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long the watcher waits after the last change
// before reloading, so an editor's write-rename-chmod burst reloads once.
const DefaultDebounce = 250 * time.Millisecond

// Watcher reloads the rules when files in the rules directory change. It
// watches the directory, not the files, so editors that save by writing a
// temporary file and renaming it over the old one are seen.
type Watcher struct {
	Dir      string
	Options  Options
	Engine   *Engine
	Logger   *slog.Logger // nil: discard
	Debounce time.Duration
	// reloaded, when set, is called after each reload attempt (tests).
	reloaded func(error)
}

// Run watches until ctx is done.
func (w *Watcher) Run(ctx context.Context) error {
	log := w.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "rules", "dir", w.Dir)
	d := w.Debounce
	if d <= 0 {
		d = DefaultDebounce
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching rules: %w", err)
	}
	defer fw.Close()
	if err := fw.Add(w.Dir); err != nil {
		return fmt.Errorf("watching rules directory %s: %w", w.Dir, err)
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
			if base := filepath.Base(ev.Name); len(base) > 0 && base[0] == '.' {
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

// Reload validates the complete rule set in Dir and, if it is valid,
// swaps it into the engine; otherwise the running set stays and the
// failure metric is set.
func (w *Watcher) Reload() error {
	m := w.Engine.Metrics()
	set, err := Load([]string{w.Dir}, w.Options)
	if err != nil {
		m.ReloadFailures.Inc()
		m.LastReloadSuccessful.Set(0)
		return err
	}
	w.Engine.Swap(set)
	m.LastReloadSuccessful.Set(1)
	return nil
}
