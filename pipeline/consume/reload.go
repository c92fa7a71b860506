package consume

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/edgeward/edgeward/rules"
)

// WatchRules reloads the rules when files in paths (rule files or
// directories) change, until ctx is done: every valid set replaces the
// running one (SetRules) in every partition's engines; an invalid one is
// logged, problem by problem, and counted, and the running set stays. Like
// rules.Watcher it watches directories, so editors that save by renaming
// are seen, and waits for a quiet 250ms before loading.
func (c *Consumer) WatchRules(ctx context.Context, paths []string, opts rules.Options) error {
	var dirs []string
	for _, p := range paths {
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			p = filepath.Dir(p)
		}
		if !slices.Contains(dirs, p) {
			dirs = append(dirs, p)
		}
	}
	if len(dirs) == 0 {
		<-ctx.Done()
		return nil
	}
	log := c.log.With("component", "rules", "dirs", dirs)
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching rules: %w", err)
	}
	defer fw.Close()
	for _, d := range dirs {
		if err := fw.Add(d); err != nil {
			return fmt.Errorf("watching rules directory %s: %w", d, err)
		}
	}
	timer := time.NewTimer(rules.DefaultDebounce)
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
				continue // editor swap and temporary files
			}
			timer.Reset(rules.DefaultDebounce)
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			log.Warn("rules watcher", "err", err)
		case <-timer.C:
			c.reload(paths, opts, log)
		}
	}
}

func (c *Consumer) reload(paths []string, opts rules.Options, log *slog.Logger) {
	set, err := rules.Load(paths, opts)
	if err == nil {
		err = c.SetRules(set)
	}
	if err != nil {
		c.m.reloadFailures.Inc()
		c.m.lastReloadOK.Set(0)
		if ds, ok := err.(rules.Diagnostics); ok {
			for _, d := range ds {
				log.Error("rules reload rejected, keeping the running rules", "problem", d.String())
			}
		} else {
			log.Error("rules reload rejected, keeping the running rules", "err", err)
		}
		return
	}
	c.m.lastReloadOK.Set(1)
	log.Info("rules reloaded", "rules", len(set.Rules()))
}
