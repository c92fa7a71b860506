package inventory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/edgeward/edgeward/internal/fswatch"
)

// Config says which file a Store serves and how it reports reloads.
type Config struct {
	Path string
	// Debounce is how long the file must be quiet before it is reloaded,
	// so an editor's write-truncate-write or a rename burst loads once.
	// Zero means 250ms.
	Debounce time.Duration
	Logger   *slog.Logger // nil discards
	// OnReload, if set, is called after every load attempt with the table
	// now in use and the load's error (nil, an Errors, or a fatal error
	// after which the previous table stays in use); for metrics.
	OnReload func(t *Table, err error)
}

// Store serves the current inventory to lock-free readers and replaces it
// atomically when the file changes.
type Store struct {
	cfg  Config
	log  *slog.Logger
	cur  atomic.Pointer[Table]
	last []byte // contents of the file last loaded; only Run touches it
}

// NewStore loads cfg.Path, with errors as LoadFile's: a nil Store means
// the file could not be loaded at all; a Store with an error (an Errors)
// serves the devices that loaded, and the error lists every one skipped
// with its file:line, for the caller to report. Run logs those of later
// loads.
func NewStore(cfg Config) (*Store, error) {
	if cfg.Debounce <= 0 {
		cfg.Debounce = 250 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{cfg: cfg, log: log.With("component", "inventory")}
	skipped, err := s.load()
	if err != nil {
		return nil, err
	}
	if len(skipped) > 0 {
		return s, skipped
	}
	return s, nil
}

// Table is the inventory in use now.
func (s *Store) Table() *Table { return s.cur.Load() }

// Match is Table().Match: lock-free and allocation-free.
func (s *Store) Match(mac [6]byte, hostname string, ip netip.Addr) (*Device, MatchedBy) {
	return s.cur.Load().Match(mac, hostname, ip)
}

// ByID is Table().ByID.
func (s *Store) ByID(id string) *Device { return s.cur.Load().ByID(id) }

// ByWireGuardKey is Table().ByWireGuardKey.
func (s *Store) ByWireGuardKey(key string) *Device { return s.cur.Load().ByWireGuardKey(key) }

// ByVPNPeer is Table().ByVPNPeer.
func (s *Store) ByVPNPeer(name string) *Device { return s.cur.Load().ByVPNPeer(name) }

// load reads the file and swaps the table in unless nothing loaded. It
// returns the devices skipped, or the error that loaded nothing.
func (s *Store) load() (Errors, error) {
	src, err := os.ReadFile(s.cfg.Path)
	if err != nil {
		err = fmt.Errorf("reading inventory: %w", err)
		s.report(err)
		return nil, err
	}
	if s.cur.Load() != nil && bytes.Equal(src, s.last) {
		return nil, nil // touched, not changed
	}
	t, err := Parse(s.cfg.Path, src)
	if t == nil {
		s.report(err)
		return nil, err
	}
	s.last = src
	s.cur.Store(t)
	var es Errors
	errors.As(err, &es)
	if s.cfg.OnReload != nil {
		s.cfg.OnReload(t, err)
	}
	return es, nil
}

// reload is load for Run, which has no caller to report to: skipped
// devices are logged, each with its file:line.
func (s *Store) reload() error {
	old := s.cur.Load()
	es, err := s.load()
	if err != nil {
		return err
	}
	for _, e := range es {
		s.log.Warn("skipped inventory device", "error", e.Error())
	}
	if t := s.cur.Load(); t != old {
		s.log.Info("inventory loaded", "path", s.cfg.Path, "devices", t.Len(), "skipped", len(es))
	}
	return nil
}

func (s *Store) report(err error) {
	if s.cfg.OnReload != nil {
		s.cfg.OnReload(s.cur.Load(), err)
	}
}

// Run reloads the file, after Debounce of quiet, whenever it changes
// (including a rename over it and a ConfigMap update), until ctx is done.
// It also reloads once when the watch starts, so that a change made
// between NewStore and Run is not missed (an unchanged file costs a read).
// A file that fails to load leaves the previous inventory in use; the
// failure is logged, not returned.
func (s *Store) Run(ctx context.Context) error {
	cfg := fswatch.Config{Targets: []fswatch.Target{fswatch.File(s.cfg.Path)}, Delay: s.cfg.Debounce, LoadAtStart: true, IgnoreChmod: true, Logger: s.log}
	err := fswatch.Run(ctx, cfg, func([]bool) {
		if err := s.reload(); err != nil {
			s.log.Warn("inventory reload failed; keeping the previous inventory", "error", err)
		}
	})
	if err != nil {
		return fmt.Errorf("watching inventory: %w", err)
	}
	return nil
}
