package consume

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/edgeward/edgeward/internal/fswatch"
	"github.com/edgeward/edgeward/rules"
)

// WatchRules reloads the rules when files in paths (rule files or
// directories) change, until ctx is done: every valid set replaces the
// running one (SetRules) in every partition's engines; an invalid one is
// logged, problem by problem, and counted, and the running set stays. Like
// rules.Watcher it watches directories, so editors that save by renaming
// and ConfigMap updates (the ..data swap) are seen, and waits for a quiet
// 250ms before loading.
func (c *Consumer) WatchRules(ctx context.Context, paths []string, opts rules.Options) error {
	dirs := fswatch.Dirs(paths)
	log := c.log.With("component", "rules", "dirs", dirs)
	cfg := fswatch.Config{Targets: dirs, Delay: rules.DefaultDebounce, ConfigMap: fswatch.ConfigMapData, DirChanges: true, Logger: log}
	if err := fswatch.Run(ctx, cfg, func([]bool) { c.reload(paths, opts, log) }); err != nil {
		return fmt.Errorf("watching rules: %w", err)
	}
	return nil
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
