package enrich

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// targetIntel is the reload target of the intel lists; database targets
// are role indexes.
const targetIntel = len(roles)

// watch says which changes in a directory concern a reload target.
type watch struct {
	dir    string
	base   string // the file's name; "" = any visible file (an intel directory)
	target int
}

func (w watch) matches(dir, base string) bool {
	if dir != w.dir {
		return false
	}
	// Kubernetes mounts a ConfigMap as links through ..data, which it
	// swaps atomically: a change to it is a change to every file.
	if strings.HasPrefix(base, "..") {
		return true
	}
	if w.base == "" {
		return !strings.HasPrefix(base, ".")
	}
	return base == w.base
}

func (e *Enricher) watches() []watch {
	var ws []watch
	for i := range roles {
		if p := e.path(i); p != "" {
			p = filepath.Clean(p)
			ws = append(ws, watch{filepath.Dir(p), filepath.Base(p), i})
		}
	}
	for _, p := range e.cfg.Intel {
		p = filepath.Clean(p)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			ws = append(ws, watch{p, "", targetIntel})
		} else {
			ws = append(ws, watch{filepath.Dir(p), filepath.Base(p), targetIntel})
		}
	}
	return ws
}

// Run watches the directories of the databases and intel lists and
// reloads what changed, after Config.Debounce of quiet, until ctx is done.
// It watches directories, not files, so that a file renamed over the old
// one and a Kubernetes ConfigMap update are seen. A reload that fails
// keeps what was loaded before; the failure is logged and counted.
func (e *Enricher) Run(ctx context.Context) error {
	ws := e.watches()
	if len(ws) == 0 {
		<-ctx.Done()
		return nil
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("enrich: watching databases: %w", err)
	}
	defer fw.Close()
	added := map[string]bool{}
	for _, w := range ws {
		if added[w.dir] {
			continue
		}
		added[w.dir] = true
		if err := fw.Add(w.dir); err != nil {
			e.log.Warn("cannot watch directory; changes there are not reloaded", "dir", w.dir, "err", err)
		}
	}
	// Anything that changed between New and now was not seen by the
	// watcher.
	var dirty [targetIntel + 1]bool
	for _, w := range ws {
		dirty[w.target] = true
	}
	e.reloadDirty(&dirty)

	timer := time.NewTimer(e.cfg.Debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			name := filepath.Clean(ev.Name)
			dir, base := filepath.Dir(name), filepath.Base(name)
			for _, w := range ws {
				if w.matches(dir, base) {
					dirty[w.target] = true
					timer.Reset(e.cfg.Debounce)
				}
			}
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			e.log.Warn("watcher error", "err", err)
		case <-timer.C:
			e.reloadDirty(&dirty)
		}
	}
}

func (e *Enricher) reloadDirty(dirty *[targetIntel + 1]bool) {
	for t, d := range dirty {
		if !d {
			continue
		}
		dirty[t] = false
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
	for _, p := range missing {
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
