package egress

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// resync is how often a watched file is read even without a change event,
// for file systems that do not deliver them (NFS, some bind mounts).
const resync = 30 * time.Second

// watchFile calls load once at the start, then after changes to the file
// at path, at most once per delay (changes during the wait are folded
// into one call), and every resync, until ctx is done. It watches the
// directory, so atomic renames over the file and Kubernetes ConfigMap
// symlink swaps ("..data") are seen.
func watchFile(ctx context.Context, path string, delay time.Duration, log *slog.Logger, load func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching %s: %w", path, err)
	}
	defer w.Close()
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watching directory %s: %w", dir, err)
	}
	timer := time.NewTimer(delay)
	timer.Stop()
	defer timer.Stop()
	tick := time.NewTicker(resync)
	defer tick.Stop()
	load() // what changed before the watch began
	pending := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			name := filepath.Base(ev.Name)
			if name != base && !strings.HasPrefix(name, "..") || ev.Op == fsnotify.Chmod {
				continue
			}
			if !pending {
				pending = true
				timer.Reset(delay)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			log.Warn("file watch error", "error", err)
		case <-timer.C:
			pending = false
			load()
		case <-tick.C:
			if !pending {
				load()
			}
		}
	}
}
