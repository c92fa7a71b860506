package enrich

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/edgeward/edgeward/internal/fswatch"
)

// targetIntel is the reload target of the intel lists; database targets
// are role indexes.
const targetIntel = len(roles)

// watchTargets is what to watch now: each database file and intel list
// file, and each intel directory with, in its parent, its own name, so that
// its removal or creation is seen.
func (e *Enricher) watchTargets() []fswatch.Target {
	var ts []fswatch.Target
	for i := range roles {
		if p := e.path(i); p != "" {
			ts = append(ts, fswatch.File(p))
		}
	}
	for _, p := range e.cfg.Intel {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			ts = append(ts, fswatch.Target{Dir: filepath.Clean(p)})
		}
		ts = append(ts, fswatch.File(p))
	}
	return ts
}

// reloadTarget is what a change to t reloads: a database's role index, or
// targetIntel.
func (e *Enricher) reloadTarget(t fswatch.Target) int {
	for i := range roles {
		if p := e.path(i); p != "" && fswatch.File(p) == t {
			return i
		}
	}
	return targetIntel
}

// Run watches the directories of the databases and intel lists and
// reloads what changed, after Config.Debounce of quiet, until ctx is done.
// It reloads everything once when it starts, for what changed since New.
// A directory that does not exist yet is watched once it appears, and one
// removed and created again, or renamed over, is watched again
// (fswatch.Follow). A reload that fails keeps what was loaded before; the
// failure is logged and counted.
func (e *Enricher) Run(ctx context.Context) error {
	cfg := fswatch.Config{Delay: e.cfg.Debounce, LoadAtStart: true, IgnoreChmod: true, Logger: e.log}
	err := fswatch.Follow(ctx, cfg, e.watchTargets, func(ts []fswatch.Target, changed []bool) {
		var dirty [targetIntel + 1]bool
		for i, c := range changed {
			if c {
				dirty[e.reloadTarget(ts[i])] = true
			}
		}
		e.reloadDirty(dirty)
	})
	if err != nil {
		return fmt.Errorf("enrich: watching databases: %w", err)
	}
	return nil
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
