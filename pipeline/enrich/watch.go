package enrich

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/edgeward/edgeward/internal/fswatch"
)

// targetIntel is the reload target of the intel lists; database targets
// are role indexes.
const targetIntel = len(roles)

// watchSet is what one watch covers: the targets, the reload target each
// stands for, and each watched directory as it was when the watch was set
// up (nil: it did not exist, so it could not be watched).
type watchSet struct {
	targets []fswatch.Target
	reload  []int
	dirs    map[string]os.FileInfo
}

// watches is the files and directories to watch now. An intel directory is
// watched for the lists in it and, in its parent, for itself, so that its
// removal or creation is seen.
func (e *Enricher) watches() watchSet {
	var w watchSet
	add := func(t fswatch.Target, target int) {
		w.targets, w.reload = append(w.targets, t), append(w.reload, target)
	}
	for i := range roles {
		if p := e.path(i); p != "" {
			add(fswatch.File(p), i)
		}
	}
	for _, p := range e.cfg.Intel {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			add(fswatch.Target{Dir: filepath.Clean(p)}, targetIntel)
		}
		add(fswatch.File(p), targetIntel)
	}
	w.dirs = map[string]os.FileInfo{}
	for _, t := range w.targets {
		if fi, err := os.Stat(t.Dir); err == nil && fi.IsDir() {
			w.dirs[t.Dir] = fi
		} else {
			w.dirs[t.Dir] = nil
		}
	}
	return w
}

// stale reports whether w no longer watches what it should: a directory
// appeared, went away or was replaced, or an intel path became or stopped
// being a directory.
func (w *watchSet) stale(now watchSet) bool {
	if !slices.Equal(w.targets, now.targets) {
		return true
	}
	for d, fi := range w.dirs {
		cur := now.dirs[d]
		if (fi == nil) != (cur == nil) || fi != nil && !os.SameFile(fi, cur) {
			return true
		}
	}
	return false
}

// missing reports whether a directory of w could not be watched.
func (w *watchSet) missing() bool {
	for _, fi := range w.dirs {
		if fi == nil {
			return true
		}
	}
	return false
}

// missingDirPoll is how often Run looks for a directory that did not exist
// when it was last set up: no event says that it was created.
const missingDirPoll = time.Second

// Run watches the directories of the databases and intel lists and
// reloads what changed, after Config.Debounce of quiet, until ctx is done.
// It reloads everything once when it starts, for what changed since New.
// A directory that does not exist yet is watched once it appears, and one
// removed and created again is watched again. A reload that fails keeps
// what was loaded before; the failure is logged and counted.
func (e *Enricher) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if err := e.watch(ctx); err != nil {
			return fmt.Errorf("enrich: watching databases: %w", err)
		}
	}
	return nil
}

// watch runs one watch of what watches returns until ctx is done or the
// directories to watch change.
func (e *Enricher) watch(ctx context.Context) error {
	w := e.watches()
	wctx, rewatch := context.WithCancel(ctx)
	defer rewatch()
	if w.missing() {
		go func() {
			t := time.NewTicker(missingDirPoll)
			defer t.Stop()
			for {
				select {
				case <-wctx.Done():
					return
				case <-t.C:
					if w.stale(e.watches()) {
						rewatch()
						return
					}
				}
			}
		}()
	}
	cfg := fswatch.Config{Targets: w.targets, Delay: e.cfg.Debounce, LoadAtStart: true, IgnoreChmod: true, SkipUnwatchable: true, Logger: e.log}
	return fswatch.Run(wctx, cfg, func(changed []bool) {
		var dirty [targetIntel + 1]bool
		for i, c := range changed {
			if c {
				dirty[w.reload[i]] = true
			}
		}
		e.reloadDirty(dirty)
		if w.stale(e.watches()) {
			rewatch()
		}
	})
}

func (e *Enricher) reloadDirty(dirty [targetIntel + 1]bool) {
	for t, d := range dirty {
		if !d {
			continue
		}
		if t == targetIntel {
			e.reloadIntel()
		} else {
			e.reloadDatabase(t)
		}
	}
}

// reloadDatabase reopens the database of role index i if its file changed.
func (e *Enricher) reloadDatabase(i int) {
	role, path := roles[i], e.path(i)
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := e.state.Load()
	old := cur.db[i]
	fi, err := os.Stat(path)
	if err == nil && old.sameFile(fi) {
		return // touched, not changed
	}
	if errors.Is(err, fs.ErrNotExist) && old == nil {
		return // still missing
	}
	var d *database
	if err == nil {
		d, err = openDatabase(role, path)
	}
	if err != nil {
		e.m.reloads.WithLabelValues(role, "error").Inc()
		msg := "database reload failed; keeping the one in use"
		if old == nil {
			msg = "database reload failed; its fields stay absent"
		}
		e.log.Warn(msg, "database", role, "path", path, "err", err)
		return
	}
	next := *cur
	next.db[i] = d
	e.swap(&next)
	e.m.reloads.WithLabelValues(role, "ok").Inc()
	e.loaded(d)
}

// reloadIntel reloads the intel lists if any file changed, appeared or
// went away.
func (e *Enricher) reloadIntel() {
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := e.state.Load()
	if files, err := e.intelFiles(); err == nil && sameFiles(cur.intel.files, files) {
		return
	}
	set, missing, problems, err := loadIntel(e.cfg.Intel)
	if err != nil {
		e.m.reloads.WithLabelValues(roleIntel, "error").Inc()
		e.log.Warn("intel lists reload failed; keeping the lists in use", "err", err)
		return
	}
	// A list that was loaded and went away stays in use, as a database
	// does: a file briefly absent while it is replaced must not disable it.
	for _, p := range missing {
		if slices.Contains(cur.intel.found, p) {
			e.m.reloads.WithLabelValues(roleIntel, "error").Inc()
			e.log.Warn("intel lists reload failed; keeping the lists in use", "err", fmt.Errorf("intel list %s: %w", p, fs.ErrNotExist))
			return
		}
		e.log.Warn("intel list not found", "path", p)
	}
	next := *cur
	next.intel = set
	e.swap(&next)
	e.m.reloads.WithLabelValues(roleIntel, "ok").Inc()
	e.intelLoaded(set, problems)
}

// intelFiles lists the files the intel paths stand for now.
func (e *Enricher) intelFiles() ([]string, error) {
	var out []string
	for _, p := range e.cfg.Intel {
		files, err := intelFiles(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, files...)
	}
	return out, nil
}

// swap makes next the state in use under a new generation, which
// invalidates every cached address. Called with mu held.
func (e *Enricher) swap(next *state) {
	e.gen++
	next.gen = e.gen
	e.state.Store(next)
}
