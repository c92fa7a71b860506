// Package egress owns VPN egress sessions: which public (outer) address a
// remote device's tunnel comes from, for which tunnel (inner) address, and
// when. Sources read them from the VPN itself: WireGuard peers through
// wgctrl (kernel or userspace), an OpenVPN status file, or a JSON-lines
// session feed any VPN or ZTNA product can write. A Store holds them by
// inner address with time ranges, so a flow is attributed to the session
// valid at its start even when the address has since gone to another peer.
//
// The sensor attaches sessions to flows (sensor/identity) because it runs
// on the VPN gateway, where this state lives; records leave the sensor
// already attributed, so every consumer sees the same egress. See
// docs/egress.md.
package egress

import (
	"cmp"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Sources, as they appear in Session.Source and the record's egress.source.
const (
	SourceWireGuard = "wireguard"
	SourceOpenVPN   = "openvpn"
	SourceFeed      = "feed"
)

// Session is one VPN session: a peer reached the VPN from Outer and used
// Inner inside the tunnel from FirstSeen on.
type Session struct {
	Inner  netip.Addr     // tunnel address the device uses inside the VPN
	Outer  netip.AddrPort // public address the session comes from; port 0 when unknown
	Peer   string         // the VPN's name for the peer: WireGuard public key, OpenVPN common name, the feed's peer
	Device string         // inventory device id, when the VPN knows it
	Source string         // SourceWireGuard, SourceOpenVPN or SourceFeed
	// FirstSeen is when the session started (or was first observed).
	FirstSeen time.Time
	// LastSeen is the last time the session was known to be up. An Active
	// session is valid from FirstSeen on, whatever LastSeen says; a closed
	// one until LastSeen.
	LastSeen time.Time
	Active   bool // still connected
}

// DefaultSkew is how far outside a session's time range a flow start may
// lie and still be attributed to it, when no session contains it exactly:
// it absorbs clock differences between the VPN and the capture and the
// polling interval of the sources (an OpenVPN status file is rewritten
// every minute by default).
const DefaultSkew = 2 * time.Minute

// DefaultMaxSessions bounds a Store.
const DefaultMaxSessions = 1 << 16

// maxPerAddr bounds the history kept for one inner address; the oldest
// sessions go first.
const maxPerAddr = 32

// StoreConfig bounds a Store.
type StoreConfig struct {
	// Skew is the tolerance of Lookup; zero means DefaultSkew, negative
	// means exact ranges only.
	Skew time.Duration
	// MaxSessions bounds the sessions held; beyond it the sessions that
	// ended longest ago are dropped. Zero means DefaultMaxSessions.
	MaxSessions int
}

// entry is a session with its range in Unix nanoseconds, for cheap
// comparisons on the lookup path.
type entry struct {
	first, last int64
	s           Session
}

// Store holds sessions by inner address. It is safe for concurrent use:
// sources add sessions while the packet path looks them up.
type Store struct {
	skew int64
	max  int

	mu     sync.RWMutex
	byAddr map[addrKey][]entry // sorted by first
	n      int
}

// addrKey is an inner address packed for the map: pointer-free, IPv4 in
// its IPv4-mapped form, zones dropped.
type addrKey [16]byte

func keyFor(a netip.Addr) addrKey { return a.Unmap().As16() }

// NewStore returns an empty Store.
func NewStore(cfg StoreConfig) *Store {
	s := &Store{skew: int64(cfg.Skew), max: cfg.MaxSessions, byAddr: map[addrKey][]entry{}}
	switch {
	case cfg.Skew == 0:
		s.skew = int64(DefaultSkew)
	case cfg.Skew < 0:
		s.skew = 0
	}
	if s.max <= 0 {
		s.max = DefaultMaxSessions
	}
	return s
}

// Len is the number of sessions held.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.n
}

// same reports whether a and b are the same session: updates (a later
// LastSeen, the session closing) replace it.
func same(a, b *Session) bool {
	return a.Source == b.Source && a.Peer == b.Peer && a.Outer == b.Outer && a.FirstSeen.Equal(b.FirstSeen)
}

// Add adds sessions, or updates those already held (same inner address,
// source, peer, outer address and FirstSeen). Sessions without a valid
// inner or outer address, or with times outside validTime, are ignored.
func (s *Store) Add(sessions ...Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range sessions {
		ss := sessions[i]
		ss.Inner = ss.Inner.Unmap()
		ss.Outer = netip.AddrPortFrom(ss.Outer.Addr().Unmap(), ss.Outer.Port())
		if !ss.Inner.IsValid() || !ss.Outer.Addr().IsValid() || !validTime(ss.FirstSeen) || !ss.LastSeen.IsZero() && !validTime(ss.LastSeen) {
			continue
		}
		e := entry{first: ss.FirstSeen.UnixNano(), last: ss.LastSeen.UnixNano(), s: ss}
		if ss.LastSeen.IsZero() || e.last < e.first {
			e.last = e.first
		}
		k := keyFor(ss.Inner)
		list := s.byAddr[k]
		if i := slices.IndexFunc(list, func(o entry) bool { return same(&o.s, &ss) }); i >= 0 {
			list[i] = e
			continue
		}
		i, _ := slices.BinarySearchFunc(list, e.first, func(o entry, t int64) int { return cmp.Compare(o.first, t+1) })
		list = slices.Insert(list, i, e)
		s.n++
		if len(list) > maxPerAddr {
			list = slices.Delete(list, 0, 1)
			s.n--
		}
		s.byAddr[k] = list
	}
	if s.n > s.max {
		s.evict()
	}
}

// evict drops about an eighth of the sessions: closed ones that ended
// longest ago first, then active ones that started longest ago.
func (s *Store) evict() {
	key := func(e *entry) int64 {
		if e.s.Active {
			return math.MaxInt64/2 + e.first/2
		}
		return e.last / 2
	}
	keys := make([]int64, 0, s.n)
	for _, list := range s.byAddr {
		for i := range list {
			keys = append(keys, key(&list[i]))
		}
	}
	slices.Sort(keys)
	// Drop exactly the excess over the kept share: every session below the
	// cut, and as many of those tied at it as are needed. Sessions often
	// tie (closed in the same read of a status file, started in the same
	// second); dropping all of a tie empties the store, dropping none
	// leaves it over its bound.
	keep := max(s.max*7/8, 1)
	cut := keys[len(keys)-keep]
	ties := len(keys) - keep - slices.Index(keys, cut)
	drop := func(e entry) bool {
		k := key(&e)
		if k == cut && ties > 0 {
			ties--
			return true
		}
		return k < cut
	}
	for addr, list := range s.byAddr {
		kept := slices.DeleteFunc(list, drop)
		s.n -= len(list) - len(kept)
		if len(kept) == 0 {
			delete(s.byAddr, addr)
		} else {
			s.byAddr[addr] = kept
		}
	}
}

// validTime bounds session times to what Unix nanoseconds hold, with
// room: 1970 to 2200.
func validTime(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 1970 && y <= 2200
}

// Lookup returns the session of inner address addr valid at t: the latest
// started one whose range contains t, else the nearest within the skew
// tolerance. It does not allocate.
func (s *Store) Lookup(addr netip.Addr, t time.Time) (Session, bool) {
	k := keyFor(addr)
	tn := t.UnixNano()
	s.mu.RLock()
	defer s.mu.RUnlock()
	list := s.byAddr[k]
	if len(list) == 0 {
		return Session{}, false
	}
	for i := len(list) - 1; i >= 0; i-- {
		e := &list[i]
		if e.first <= tn && (e.s.Active || tn <= e.last) {
			return e.s, true
		}
	}
	best, bestDist := -1, s.skew
	for i := range list {
		e := &list[i]
		var d int64
		switch {
		case tn < e.first:
			d = e.first - tn
		case tn > e.last:
			d = tn - e.last
		}
		if d <= bestDist {
			best, bestDist = i, d
		}
	}
	if best < 0 {
		return Session{}, false
	}
	return list[best].s, true
}

// Sessions returns a copy of the sessions held for addr, oldest first.
func (s *Store) Sessions(addr netip.Addr) []Session {
	s.mu.RLock()
	defer s.mu.RUnlock()
	list := s.byAddr[keyFor(addr)]
	out := make([]Session, len(list))
	for i := range list {
		out[i] = list[i].s
	}
	return out
}
