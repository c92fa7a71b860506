package egress

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func at(h, m int) time.Time {
	return t0.Add(time.Duration(h-10)*time.Hour + time.Duration(m)*time.Minute)
}

func sess(inner, outer, peer string, first, last time.Time, active bool) Session {
	return Session{Inner: netip.MustParseAddr(inner), Outer: netip.MustParseAddrPort(outer), Peer: peer, Source: SourceFeed,
		FirstSeen: first, LastSeen: last, Active: active}
}

func TestLookup(t *testing.T) {
	s := NewStore(StoreConfig{})
	s.Add(
		// 10.99.0.11 goes from a.kim to b.lee, with a gap between them.
		sess("10.99.0.11", "203.0.113.50:51820", "a.kim", at(10, 0), at(12, 0), false),
		sess("10.99.0.11", "198.51.100.7:40000", "b.lee", at(12, 30), time.Time{}, true),
		// 10.99.0.12: c.ng's session is still open when d.ho takes over.
		sess("10.99.0.12", "192.0.2.1:1194", "c.ng", at(9, 0), at(9, 0), true),
		sess("10.99.0.12", "192.0.2.2:1194", "d.ho", at(11, 0), at(11, 5), true),
		sess("fd00::12", "[2001:db8::1]:51820", "e.v6", at(10, 0), at(10, 0), true),
	)
	tests := []struct {
		name     string
		addr     string
		t        time.Time
		wantPeer string // "": no session
	}{
		{"inside a closed session", "10.99.0.11", at(11, 0), "a.kim"},
		{"at its first instant", "10.99.0.11", at(10, 0), "a.kim"},
		{"at its last instant", "10.99.0.11", at(12, 0), "a.kim"},
		{"just after it ended: skew", "10.99.0.11", at(12, 1), "a.kim"},
		{"in the gap, beyond the skew", "10.99.0.11", at(12, 10), ""},
		{"just before the next began: skew", "10.99.0.11", at(12, 29), "b.lee"},
		{"the address's new owner", "10.99.0.11", at(18, 0), "b.lee"},
		{"long before any session", "10.99.0.11", at(8, 0), ""},
		{"open session before the handover", "10.99.0.12", at(10, 59), "c.ng"},
		{"the later session wins after it starts", "10.99.0.12", at(11, 1), "d.ho"},
		{"active ignores LastSeen", "10.99.0.12", at(23, 0), "d.ho"},
		{"IPv6", "fd00::12", at(10, 30), "e.v6"},
		{"IPv4-mapped", "::ffff:10.99.0.11", at(11, 0), "a.kim"},
		{"unknown address", "10.99.0.13", at(11, 0), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := s.Lookup(netip.MustParseAddr(tc.addr), tc.t)
			if ok != (tc.wantPeer != "") || got.Peer != tc.wantPeer {
				t.Errorf("Lookup = %q %v, want %q", got.Peer, ok, tc.wantPeer)
			}
		})
	}
}

func TestLookupExactSkew(t *testing.T) {
	s := NewStore(StoreConfig{Skew: -1})
	s.Add(sess("10.0.0.1", "192.0.2.1:1", "p", at(10, 0), at(11, 0), false))
	if _, ok := s.Lookup(netip.MustParseAddr("10.0.0.1"), at(11, 0).Add(time.Second)); ok {
		t.Error("negative skew: a time outside the range matched")
	}
}

func TestAddUpdates(t *testing.T) {
	s := NewStore(StoreConfig{})
	open := sess("10.99.0.11", "203.0.113.50:51820", "a.kim", at(10, 0), time.Time{}, true)
	s.Add(open)
	closed := open
	closed.Active, closed.LastSeen = false, at(11, 0)
	s.Add(closed)
	if s.Len() != 1 {
		t.Fatalf("Len %d after an update, want 1", s.Len())
	}
	if _, ok := s.Lookup(open.Inner, at(15, 0)); ok {
		t.Error("the closed session still matches hours after it ended")
	}
	s.Add(Session{Inner: open.Inner}, Session{Outer: open.Outer}) // invalid: ignored
	if s.Len() != 1 {
		t.Errorf("Len %d after invalid sessions, want 1", s.Len())
	}
}

func TestBounds(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		s := NewStore(StoreConfig{})
		for i := range maxPerAddr + 8 {
			s.Add(sess("10.0.0.1", fmt.Sprintf("192.0.2.1:%d", i+1), "p", at(10, i), at(10, i), false))
		}
		got := s.Sessions(netip.MustParseAddr("10.0.0.1"))
		if len(got) != maxPerAddr || s.Len() != maxPerAddr || got[0].Outer.Port() != 9 {
			t.Errorf("%d sessions held (Len %d), oldest port %d; want %d, oldest 9", len(got), s.Len(), got[0].Outer.Port(), maxPerAddr)
		}
	})
	t.Run("total", func(t *testing.T) {
		s := NewStore(StoreConfig{MaxSessions: 100})
		for i := range 300 {
			s.Add(sess(fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), "192.0.2.1:1", "p", at(10, i), at(10, i+1), false))
		}
		if s.Len() > 100 || s.Len() < 80 {
			t.Errorf("Len %d, want 80..100", s.Len())
		}
		if _, ok := s.Lookup(netip.MustParseAddr("10.0.1.50"), at(10, 299)); !ok {
			t.Error("the newest session was evicted")
		}
		if _, ok := s.Lookup(netip.MustParseAddr("10.0.0.1"), at(10, 0)); ok {
			t.Error("the oldest session is still there")
		}
	})
	t.Run("all active, same start", func(t *testing.T) {
		s := NewStore(StoreConfig{MaxSessions: 16})
		for i := range 100 {
			s.Add(sess(fmt.Sprintf("10.0.0.%d", i+1), "192.0.2.1:1", "p", at(10, 0), time.Time{}, true))
		}
		if s.Len() > 16 {
			t.Errorf("Len %d, want <= 16", s.Len())
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	s := NewStore(StoreConfig{MaxSessions: 512})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := range 2000 {
				s.Add(sess(fmt.Sprintf("10.%d.%d.%d", w, i/250, i%250+1), "192.0.2.1:1", "p", at(10, i%600), time.Time{}, true))
			}
		})
	}
	wg.Go(func() {
		for i := range 4000 {
			s.Lookup(netip.MustParseAddr(fmt.Sprintf("10.0.%d.%d", i%8, i%250+1)), at(12, 0))
		}
	})
	wg.Wait()
}

func TestLookupDoesNotAllocate(t *testing.T) {
	s := NewStore(StoreConfig{})
	s.Add(sess("10.99.0.11", "203.0.113.50:51820", "a.kim", at(10, 0), at(12, 0), false))
	hit, miss := netip.MustParseAddr("10.99.0.11"), netip.MustParseAddr("10.99.0.12")
	if n := testing.AllocsPerRun(100, func() {
		s.Lookup(hit, at(11, 0))
		s.Lookup(miss, at(11, 0))
		s.Lookup(hit, at(13, 0))
	}); n != 0 {
		t.Errorf("Lookup allocates %.1f times", n)
	}
}

// BenchmarkLookup: a store of 10k remote devices, each with a few sessions
// of history; flows mostly of addresses without a session (office
// devices), some of tunnel addresses.
func BenchmarkLookup(b *testing.B) {
	s := NewStore(StoreConfig{})
	for i := range 10000 {
		inner := fmt.Sprintf("10.%d.%d.%d", 100+i/65536, i/256%256, i%256)
		for j := range 4 {
			s.Add(sess(inner, "203.0.113.50:51820", "p", at(10+j*2, 0), at(11+j*2, 0), j == 3))
		}
	}
	hits := make([]netip.Addr, 256)
	misses := make([]netip.Addr, 256)
	for i := range hits {
		hits[i] = netip.MustParseAddr(fmt.Sprintf("10.100.%d.%d", i%39, i))
		misses[i] = netip.MustParseAddr(fmt.Sprintf("192.168.1.%d", i))
	}
	// The floor: a bare map lookup of as many addresses, no lock, no ranges.
	bare := make(map[addrKey]int, 10000)
	for k := range s.byAddr {
		bare[k] = 1
	}
	b.Run("bare-map", func(b *testing.B) {
		n := 0
		for i := 0; b.Loop(); i++ {
			n += bare[keyFor(hits[i&255])] + bare[keyFor(misses[i&255])]
		}
		_ = n
	})
	b.Run("hit", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			s.Lookup(hits[i&255], at(12, 30))
		}
	})
	b.Run("miss", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			s.Lookup(misses[i&255], at(12, 30))
		}
	})
}
