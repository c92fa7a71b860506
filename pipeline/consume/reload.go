package consume

import (
	"context"

	"github.com/edgeward/edgeward/rules"
)

// WatchRules reloads the rules when files in paths (rule files or
// directories) change, until ctx is done, as rules.Watch does: every valid
// set replaces the running one (SetRules) in every partition's engines; an
// invalid one is logged, problem by problem, and counted, and the running
// set stays.
func (c *Consumer) WatchRules(ctx context.Context, paths []string, opts rules.Options) error {
	return rules.Watch(ctx, paths, rules.DefaultDebounce, c.log, func() (*rules.Set, error) {
		set, err := rules.Load(paths, opts)
		if err == nil {
			err = c.SetRules(set)
		}
		if err != nil {
			c.m.reloadFailures.Inc()
			c.m.lastReloadOK.Set(0)
			return nil, err
		}
		c.m.lastReloadOK.Set(1)
		return set, nil
	})
}
