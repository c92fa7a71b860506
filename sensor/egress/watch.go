package egress

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/edgeward/edgeward/internal/fswatch"
)

// resync is how often a watched file is read even without a change event
// (see fswatch.Config.Resync).
const resync = 30 * time.Second

// watchFile calls load once at the start, then after changes to the file
// at path, at most once per delay (changes during the wait are folded
// into one call, so a file appended without pause still loads), and every
// resync, until ctx is done.
func watchFile(ctx context.Context, path string, delay time.Duration, log *slog.Logger, load func()) error {
	cfg := fswatch.Config{
		Targets:     []fswatch.Target{fswatch.File(path)},
		Delay:       delay,
		Throttle:    true,
		Resync:      resync,
		LoadAtStart: true,
		IgnoreChmod: true,
		Logger:      log,
	}
	if err := fswatch.Run(ctx, cfg, func([]bool) { load() }); err != nil {
		return fmt.Errorf("watching %s: %w", path, err)
	}
	return nil
}
