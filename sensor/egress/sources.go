package egress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl"
)

// Config names the session sources a sensor reads; each is optional and
// several may run at once.
type Config struct {
	Feeds         []string // JSON-lines session feed files
	OpenVPNStatus []string // OpenVPN server status files
	WireGuard     []string // WireGuard interfaces on this host
	// PollInterval is how often WireGuard interfaces are read; zero means
	// DefaultPollInterval.
	PollInterval time.Duration
	// Location is the OpenVPN server's time zone, for status files that
	// write times without one (status-version 1); nil means local.
	Location *time.Location
	Store    StoreConfig
	Logger   *slog.Logger // nil discards
}

// Sources is a Store with the sources that fill it.
type Sources struct {
	store    *Store
	interval time.Duration
	log      *slog.Logger
	feeds    []*Feed
	openvpn  []*OpenVPN
	wg       []*WireGuard
	client   *wgctrl.Client
}

// Open creates the sources of cfg and loads each once, so the Store is
// filled before the first packet. Bad lines, and an OpenVPN status file
// that stays incomplete (being rewritten) for a moment, are returned,
// joined, with the Sources; an unreadable file or interface returns nil
// Sources. Call Run to follow changes and Close when done.
func Open(cfg Config) (*Sources, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sources{store: NewStore(cfg.Store), interval: cfg.PollInterval, log: log}
	var lineErrs []error
	loaded := func(err error) error {
		var es Errors
		if errors.As(err, &es) {
			lineErrs = append(lineErrs, es)
			return nil
		}
		return err
	}
	for _, p := range cfg.Feeds {
		f := NewFeed(p, s.store, log)
		if err := loaded(f.Load()); err != nil {
			return nil, err
		}
		s.feeds = append(s.feeds, f)
	}
	for _, p := range cfg.OpenVPNStatus {
		o := NewOpenVPN(p, s.store, cfg.Location, log)
		err := o.Load()
		for try := 0; errors.Is(err, ErrIncomplete) && try < 5; try++ {
			time.Sleep(50 * time.Millisecond) // OpenVPN is rewriting it
			err = o.Load()
		}
		if errors.Is(err, ErrIncomplete) { // Run reads it when the rewrite ends
			lineErrs = append(lineErrs, err)
			err = nil
		}
		if err := loaded(err); err != nil {
			return nil, err
		}
		s.openvpn = append(s.openvpn, o)
	}
	if len(cfg.WireGuard) > 0 {
		c, err := wgctrl.New()
		if err != nil {
			return nil, fmt.Errorf("WireGuard: %w", err)
		}
		s.client = c
		now := time.Now()
		for _, iface := range cfg.WireGuard {
			w := NewWireGuard(c, iface, s.store, log)
			if err := w.Poll(now); err != nil {
				c.Close()
				return nil, err
			}
			s.wg = append(s.wg, w)
		}
	}
	return s, errors.Join(lineErrs...)
}

// Store is where the sessions are.
func (s *Sources) Store() *Store { return s.store }

// Run follows every source (file changes, WireGuard polls) until ctx is
// done. A failing source is logged and retried; it does not stop the
// others.
func (s *Sources) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	report := func(err error) {
		if err != nil {
			s.log.Warn("session source stopped", "component", "egress", "error", err)
		}
	}
	for _, f := range s.feeds {
		wg.Go(func() { report(f.Run(ctx)) })
	}
	for _, o := range s.openvpn {
		wg.Go(func() { report(o.Run(ctx)) })
	}
	for _, w := range s.wg {
		wg.Go(func() { report(w.Run(ctx, s.interval)) })
	}
	wg.Wait()
	return nil
}

// Close releases the WireGuard client; call it after Run returns.
func (s *Sources) Close() error {
	if s.client != nil {
		return s.client.Close()
	}
	return nil
}
