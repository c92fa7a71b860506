// Package fswatch calls a load function when watched files change: the one
// loop behind every hot reload (rules, enrichment databases and intel
// lists, the inventory, the VPN session feed and OpenVPN status files).
// The reloads differ in what counts as a change and how long they wait;
// Config says which.
//
// It watches directories, never the files themselves: an editor or
// config-management tool that saves by writing a temporary file and
// renaming it over the old one replaces the inode a file watch would
// follow, and a Kubernetes ConfigMap volume never changes its visible
// files at all. The kubelet writes a new timestamped directory, points a
// new ..data_tmp link at it and renames that over ..data; the visible
// names are links through ..data. Only the directory sees all of that.
package fswatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// A Target is a file, or every visible file of a directory, whose changes
// the caller reloads.
type Target struct {
	Dir  string // the directory watched, as filepath.Clean returns it
	Base string // the file's name in Dir; "" = any name without a leading dot
}

// File is the target for the file at path.
func File(path string) Target {
	path = filepath.Clean(path)
	return Target{Dir: filepath.Dir(path), Base: filepath.Base(path)}
}

// Dirs is a directory target for each of paths that is a directory and
// for the directory of each other path (a file, or one not there yet), each
// directory once, in the order of paths.
func Dirs(paths []string) []Target {
	var ts []Target
	for _, p := range paths {
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			p = filepath.Dir(p)
		}
		if t := (Target{Dir: filepath.Clean(p)}); !slices.Contains(ts, t) {
			ts = append(ts, t)
		}
	}
	return ts
}

func (t Target) String() string {
	if t.Base == "" {
		return t.Dir
	}
	return filepath.Join(t.Dir, t.Base)
}

// ConfigMap says which of the hidden names the kubelet uses to update a
// ConfigMap volume (see the package comment) count as a change to every
// target in their directory.
type ConfigMap int

const (
	// ConfigMapAll counts every name that starts with "..": the
	// timestamped directory, ..data_tmp and ..data. An update is several
	// events, which the delay folds into one load unless the kubelet is
	// slower than it.
	ConfigMapAll ConfigMap = iota
	// ConfigMapData counts only ..data, whose rename completes an update.
	ConfigMapData
)

// configMapData is the link the kubelet renames a new ..data_tmp over.
const configMapData = "..data"

// Config says what Run watches and when it calls load.
type Config struct {
	Targets []Target
	// Delay is how long Run waits after a change before it calls load,
	// so that a burst of changes (an editor's write-rename-chmod, a file
	// truncated then written) loads once.
	Delay time.Duration
	// Throttle starts the wait at the first change instead of restarting
	// it on every change: later changes fold into the same load, and a
	// file that is written without pause (a session feed being appended
	// to) still loads every Delay instead of never.
	Throttle bool
	// Resync, if positive, also calls load every Resync while no load is
	// pending, for file systems that deliver no change events (NFS, some
	// bind mounts).
	Resync time.Duration
	// LoadAtStart calls load once, with every target changed, as soon as
	// the directories are watched: a change between the caller's first
	// load and the watch is otherwise lost.
	LoadAtStart bool
	// IgnoreChmod does not count an event that is only a mode or
	// timestamp change (touch, chmod) as a change.
	IgnoreChmod bool
	ConfigMap   ConfigMap
	// DirChanges counts a change to a watched directory itself (removed,
	// renamed, its mode changed) as a change to every target in it.
	DirChanges bool
	// SkipUnwatchable logs a directory that cannot be watched (one that
	// does not exist yet) and watches the others, instead of failing Run.
	SkipUnwatchable bool
	Logger          *slog.Logger // nil discards
}

// Run calls load as Config says until ctx is done, each time with which
// of cfg.Targets changed since the last call (the slice is reused after
// load returns). load runs on Run's goroutine, so calls never overlap.
// Watch errors (a full kernel event queue) are logged and Run goes on.
// With no targets Run waits for ctx.
func Run(ctx context.Context, cfg Config, load func(changed []bool)) error {
	if len(cfg.Targets) == 0 {
		<-ctx.Done()
		return nil
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("creating a watcher: %w", err)
	}
	defer fw.Close()
	var added []string
	for _, t := range cfg.Targets {
		if slices.Contains(added, t.Dir) {
			continue
		}
		added = append(added, t.Dir)
		if err := fw.Add(t.Dir); err != nil {
			if !cfg.SkipUnwatchable {
				return fmt.Errorf("directory %s: %w", t.Dir, err)
			}
			log.Warn("cannot watch directory; changes there are not reloaded", "dir", t.Dir, "err", err)
		}
	}
	return cfg.loop(ctx, fw.Events, fw.Errors, log, load)
}

// loop is Run after the watch is set up, on any source of events.
func (c *Config) loop(ctx context.Context, events <-chan fsnotify.Event, errs <-chan error, log *slog.Logger, load func([]bool)) error {
	changed := make([]bool, len(c.Targets))
	loadAll := func() {
		for i := range changed {
			changed[i] = true
		}
		load(changed)
		clear(changed)
	}
	if c.LoadAtStart {
		loadAll()
	}
	timer := time.NewTimer(c.Delay)
	timer.Stop()
	defer timer.Stop()
	var resync <-chan time.Time
	if c.Resync > 0 {
		tick := time.NewTicker(c.Resync)
		defer tick.Stop()
		resync = tick.C
	}
	pending := false
	schedule := func() {
		if !pending || !c.Throttle {
			timer.Reset(c.Delay)
		}
		pending = true
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			if c.mark(ev, changed) {
				schedule()
			}
		case err, ok := <-errs:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// The kernel's queue overflowed: events were lost, and any
				// target may have changed without one.
				log.Warn("file watch events lost, loading everything", "err", err)
				for i := range changed {
					changed[i] = true
				}
				schedule()
				continue
			}
			log.Warn("file watch error", "err", err)
		case <-timer.C:
			pending = false
			load(changed)
			clear(changed)
		case <-resync:
			if !pending {
				loadAll()
			}
		}
	}
}

// mark records in changed the targets ev concerns and reports whether
// there were any.
func (c *Config) mark(ev fsnotify.Event, changed []bool) bool {
	if c.IgnoreChmod && ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Clean(ev.Name)
	hit := false
	for i, t := range c.Targets {
		if c.concerns(t, name) {
			changed[i] = true
			hit = true
		}
	}
	return hit
}

// concerns reports whether a change to name concerns t. Hidden names are
// editor swap and temporary files unless t is one of them or they are
// the ConfigMap's.
func (c *Config) concerns(t Target, name string) bool {
	if name == t.Dir {
		return c.DirChanges
	}
	base := filepath.Base(name)
	switch {
	case filepath.Dir(name) != t.Dir:
		return false
	case t.Base != "" && base == t.Base:
		return true
	case strings.HasPrefix(base, ".."):
		return c.ConfigMap == ConfigMapAll || c.ConfigMap == ConfigMapData && base == configMapData
	case t.Base == "":
		return !strings.HasPrefix(base, ".")
	}
	return false
}
