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
	"sync/atomic"
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
	// dirGone, if set, is called when a watched directory is removed or
	// renamed away (Follow): its watch is dead, even if a new directory
	// of the same name reuses its inode number.
	dirGone func()
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
			if c.dirGone != nil && ev.Has(fsnotify.Remove|fsnotify.Rename) && c.isDir(ev.Name) {
				c.dirGone()
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

// isDir reports whether name is the directory of a target.
func (c *Config) isDir(name string) bool {
	name = filepath.Clean(name)
	return slices.ContainsFunc(c.Targets, func(t Target) bool { return t.Dir == name })
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

// missingDirPoll is how often Follow looks for a directory that did not
// exist when its watch was set up: nothing can watch for its creation.
const missingDirPoll = time.Second

// Follow is Run for targets whose directories may appear, go away or be
// replaced after start: a directory removed and created again, renamed
// over, or reached through a symlink that is switched to another one.
// A watch follows the directory it was set up on, not its name, so Follow
// calls targets again, and watches what it returns, whenever a watched
// directory was removed or renamed away (a new one of the same name may
// reuse its inode number), is no longer the one its name leads to, or did
// not exist and now does, or targets returns other targets (a path became
// a directory);
// the new watch starts with a load of every target, for the changes made
// while there was none. To see its directories go and come, targets
// should include each one's name in its parent (File). Directories that
// cannot be watched are logged and looked for every second, whatever
// cfg.SkipUnwatchable says; cfg.Targets and cfg.LoadAtStart apply to the
// first watch.
//
// load gets the targets of the watch that saw the changes.
func Follow(ctx context.Context, cfg Config, targets func() []Target, load func(targets []Target, changed []bool)) error {
	first := true
	for ctx.Err() == nil {
		c := cfg
		c.Targets, c.SkipUnwatchable = targets(), true
		c.LoadAtStart = cfg.LoadAtStart || !first
		first = false
		if err := follow(ctx, c, targets, load); err != nil {
			return err
		}
	}
	return nil
}

// follow runs one watch of c.Targets until ctx is done or they are stale.
func follow(ctx context.Context, c Config, targets func() []Target, load func([]Target, []bool)) error {
	dirs := statDirs(c.Targets)
	wctx, rewatch := context.WithCancel(ctx)
	defer rewatch()
	var gone atomic.Bool
	c.dirGone = func() { gone.Store(true) }
	stale := func() bool {
		if gone.Load() {
			return true
		}
		now := targets()
		return !slices.Equal(now, c.Targets) || dirs.changed(statDirs(now))
	}
	if dirs.missing() {
		go func() {
			tick := time.NewTicker(missingDirPoll)
			defer tick.Stop()
			for {
				select {
				case <-wctx.Done():
					return
				case <-tick.C:
					if stale() {
						rewatch()
						return
					}
				}
			}
		}()
	}
	return Run(wctx, c, func(changed []bool) {
		load(c.Targets, changed)
		if stale() {
			rewatch()
		}
	})
}

// dirState is each directory of a set of targets as its name led to it
// when the watch was set up; nil: it was not there.
type dirState map[string]os.FileInfo

func statDirs(ts []Target) dirState {
	s := dirState{}
	for _, t := range ts {
		if fi, err := os.Stat(t.Dir); err == nil && fi.IsDir() {
			s[t.Dir] = fi
		} else {
			s[t.Dir] = nil
		}
	}
	return s
}

// changed reports whether a directory of s appeared, went away or is
// another one in now.
func (s dirState) changed(now dirState) bool {
	for d, fi := range s {
		cur := now[d]
		if (fi == nil) != (cur == nil) || fi != nil && !os.SameFile(fi, cur) {
			return true
		}
	}
	return false
}

func (s dirState) missing() bool {
	for _, fi := range s {
		if fi == nil {
			return true
		}
	}
	return false
}
