package egress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// DefaultPollInterval is how often a WireGuard interface is read.
const DefaultPollInterval = 10 * time.Second

// WireGuardDevices reads a WireGuard interface; *wgctrl.Client implements
// it, reaching the kernel implementation over netlink and userspace ones
// (wireguard-go, boringtun) over their UAPI sockets.
type WireGuardDevices interface {
	Device(name string) (*wgtypes.Device, error)
}

// wgPeer is what a WireGuard source remembers of a peer between polls.
type wgPeer struct {
	endpoint netip.AddrPort
	inner    []netip.Addr
	first    time.Time
}

// WireGuardStats counts what a WireGuard source did.
type WireGuardStats struct {
	Polls    uint64
	Errors   uint64 // polls that failed
	Peers    uint64 // peers with a session at the last poll
	Sessions uint64 // sessions opened so far (first sightings and endpoint changes)
}

// WireGuard keeps a Store up to date from one WireGuard interface on this
// host. Each peer with an endpoint and a handshake is a session per host
// address of its allowed IPs (a /32 or /128: a subnet is a site, not a
// device); when its endpoint or addresses change the session closes and a
// new one opens, and when the peer goes away it closes.
type WireGuard struct {
	dev   WireGuardDevices
	iface string
	store *Store
	log   *slog.Logger

	// Only Poll touches these.
	peers    map[wgtypes.Key]*wgPeer
	lastPoll time.Time

	polls, errs, npeers, opened atomic.Uint64
}

// NewWireGuard returns a source for interface iface, read through dev.
func NewWireGuard(dev WireGuardDevices, iface string, store *Store, log *slog.Logger) *WireGuard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &WireGuard{dev: dev, iface: iface, store: store, peers: map[wgtypes.Key]*wgPeer{},
		log: log.With("component", "egress", "source", SourceWireGuard, "interface", iface)}
}

// Stats returns the counters so far; safe to call concurrently with Poll.
func (w *WireGuard) Stats() WireGuardStats {
	return WireGuardStats{Polls: w.polls.Load(), Errors: w.errs.Load(), Peers: w.npeers.Load(), Sessions: w.opened.Load()}
}

// Poll reads the interface once; now is the time of the read. A peer seen
// for the first time dates its session from its last handshake when that
// falls after the previous poll (or there was none): the session existed
// at least since then.
func (w *WireGuard) Poll(now time.Time) error {
	w.polls.Add(1)
	d, err := w.dev.Device(w.iface)
	if errors.Is(err, os.ErrNotExist) {
		w.errs.Add(1)
		return fmt.Errorf("reading WireGuard interface %s: no such interface in the kernel, nor a userspace one's socket in /var/run/wireguard: %w", w.iface, err)
	}
	if err != nil {
		w.errs.Add(1)
		return fmt.Errorf("reading WireGuard interface %s: %w", w.iface, err)
	}
	var add []Session
	seen := make(map[wgtypes.Key]bool, len(d.Peers))
	for i := range d.Peers {
		p := &d.Peers[i]
		if p.Endpoint == nil || p.LastHandshakeTime.IsZero() {
			continue // never connected: a configured endpoint says nothing of where the peer is
		}
		ep := p.Endpoint.AddrPort()
		ep = netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port())
		inner := hostAddrs(p.AllowedIPs)
		if len(inner) == 0 || !ep.Addr().IsValid() {
			continue
		}
		seen[p.PublicKey] = true
		peer := p.PublicKey.String()
		st := w.peers[p.PublicKey]
		if st != nil && (st.endpoint != ep || !slices.Equal(st.inner, inner)) {
			add = w.close(add, peer, st)
			st = nil
		}
		if st == nil {
			first := now
			if hs := p.LastHandshakeTime; hs.Before(now) && (w.lastPoll.IsZero() || hs.After(w.lastPoll)) {
				first = hs
			}
			st = &wgPeer{endpoint: ep, inner: inner, first: first}
			w.peers[p.PublicKey] = st
			w.opened.Add(uint64(len(inner)))
		}
		for _, a := range inner {
			add = append(add, Session{Inner: a, Outer: ep, Peer: peer, Source: SourceWireGuard,
				FirstSeen: st.first, LastSeen: p.LastHandshakeTime, Active: true})
		}
	}
	for k, st := range w.peers {
		if !seen[k] {
			add = w.close(add, k.String(), st)
			delete(w.peers, k)
		}
	}
	w.store.Add(add...)
	w.lastPoll = now
	w.npeers.Store(uint64(len(w.peers)))
	return nil
}

// close ends a peer's sessions at the last poll that still showed them.
func (w *WireGuard) close(add []Session, peer string, st *wgPeer) []Session {
	end := w.lastPoll
	if end.Before(st.first) {
		end = st.first
	}
	for _, a := range st.inner {
		add = append(add, Session{Inner: a, Outer: st.endpoint, Peer: peer, Source: SourceWireGuard,
			FirstSeen: st.first, LastSeen: end})
	}
	return add
}

// hostAddrs returns the single addresses among allowed IPs, sorted.
func hostAddrs(nets []net.IPNet) []netip.Addr {
	var out []netip.Addr
	for _, n := range nets {
		ones, bits := n.Mask.Size()
		if ones != bits || bits == 0 {
			continue
		}
		if a, ok := netip.AddrFromSlice(n.IP); ok {
			out = append(out, a.Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// Run polls the interface every interval (zero: DefaultPollInterval) until
// ctx is done, starting at once. Failed polls are logged; the sessions
// already known stay.
func (w *WireGuard) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		if err := w.Poll(time.Now()); err != nil {
			if !failing {
				w.log.Warn("polling WireGuard failed; keeping the sessions already known", "error", err)
			}
			failing = true
		} else if failing {
			w.log.Info("polling WireGuard works again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
