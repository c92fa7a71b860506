package dnsmeta

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

var testEpoch = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func answerMsg(qname string, ttl uint32, addrs ...string) *Message {
	m := &Message{Response: true, QName: qname, QType: TypeA}
	for _, a := range addrs {
		m.Answers = append(m.Answers, Answer{Name: qname, Type: TypeA, TTL: ttl, Addr: netip.MustParseAddr(a)})
	}
	return m
}

var (
	alice    = netip.MustParseAddr("10.0.0.1")
	bob      = netip.MustParseAddr("10.0.0.2")
	resolver = netip.MustParseAddr("10.0.0.53")
	rogue    = netip.MustParseAddr("203.0.113.53")
	cdn      = netip.MustParseAddr("192.0.2.80")
	cdn6     = netip.MustParseAddr("2001:db8::80")
)

func TestCache(t *testing.T) {
	type step struct {
		add    *Message // nil for a lookup-only step
		from   netip.Addr
		client netip.Addr
		at     time.Duration // since testEpoch
		// lookup after the add
		server     netip.Addr
		want       string // "" for a miss
		wantShared string // LookupServer result
	}
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{
			name: "hit then expiry at TTL",
			cfg:  Config{MinTTL: time.Second},
			steps: []step{
				{add: answerMsg("a.example", 60, "192.0.2.80"), from: resolver, client: alice, server: cdn, want: "a.example", wantShared: "a.example"},
				{client: alice, at: 59 * time.Second, server: cdn, want: "a.example", wantShared: "a.example"},
				{client: alice, at: 60 * time.Second, server: cdn, want: "", wantShared: ""},
			},
		},
		{
			name: "TTL clamped up to MinTTL",
			cfg:  Config{MinTTL: 30 * time.Second},
			steps: []step{
				{add: answerMsg("zero.example", 0, "192.0.2.80"), from: resolver, client: alice, server: cdn, want: "zero.example", wantShared: "zero.example"},
				{client: alice, at: 29 * time.Second, server: cdn, want: "zero.example", wantShared: "zero.example"},
				{client: alice, at: 30 * time.Second, server: cdn},
			},
		},
		{
			name: "TTL clamped down to MaxTTL",
			cfg:  Config{MaxTTL: time.Hour},
			steps: []step{
				{add: answerMsg("long.example", 7*86400, "192.0.2.80"), from: resolver, client: alice, server: cdn, want: "long.example", wantShared: "long.example"},
				{client: alice, at: time.Hour, server: cdn},
			},
		},
		{
			name: "clients do not see each other's answers",
			steps: []step{
				{add: answerMsg("alice.example", 60, "192.0.2.80"), from: resolver, client: alice, server: cdn, want: "alice.example", wantShared: "alice.example"},
				{add: answerMsg("bob.example", 60, "192.0.2.80"), from: resolver, client: bob, server: cdn, want: "bob.example", wantShared: "bob.example"},
				{client: alice, server: cdn, want: "alice.example", wantShared: "bob.example"},
			},
		},
		{
			name: "unlisted resolver does not feed the shared fallback",
			cfg:  Config{SharedResolvers: []netip.Prefix{netip.MustParsePrefix("10.0.0.53/32")}},
			steps: []step{
				{add: answerMsg("real.example", 60, "192.0.2.80"), from: resolver, client: alice, server: cdn, want: "real.example", wantShared: "real.example"},
				{add: answerMsg("spoof.example", 60, "192.0.2.80"), from: rogue, client: bob, server: cdn, want: "spoof.example", wantShared: "real.example"},
				// Alice's own entry switching to an unlisted resolver withdraws it from the fallback.
				{add: answerMsg("other.example", 60, "192.0.2.80"), from: rogue, client: alice, server: cdn, want: "other.example", wantShared: ""},
			},
		},
		{
			name: "IPv6 and IPv4-mapped addresses",
			steps: []step{
				{add: answerMsg("v6.example", 60, "2001:db8::80"), from: resolver, client: netip.MustParseAddr("2001:db8::1"), server: cdn6, want: "v6.example", wantShared: "v6.example"},
				{add: answerMsg("v4.example", 60, "192.0.2.80"), from: resolver, client: netip.MustParseAddr("::ffff:10.0.0.1"), server: cdn, want: "v4.example", wantShared: "v4.example"},
				{client: alice, server: netip.MustParseAddr("::ffff:192.0.2.80"), want: "v4.example", wantShared: "v4.example"},
			},
		},
		{
			name: "NXDOMAIN and queries are ignored",
			steps: []step{
				{add: &Message{Response: true, RCode: 3, QName: "x.example", Answers: answerMsg("x.example", 60, "192.0.2.80").Answers}, from: resolver, client: alice, server: cdn},
				{add: &Message{QName: "x.example", Answers: answerMsg("x.example", 60, "192.0.2.80").Answers}, from: resolver, client: alice, server: cdn},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCache(tt.cfg)
			for i, s := range tt.steps {
				now := testEpoch.Add(s.at)
				if s.add != nil {
					c.Add(s.client, s.from, s.add, now)
				}
				if got, _ := c.Lookup(s.client, s.server, now); got != s.want {
					t.Errorf("step %d: Lookup = %q, want %q", i, got, s.want)
				}
				if got, _ := c.LookupServer(s.server, now); got != s.wantShared {
					t.Errorf("step %d: LookupServer = %q, want %q", i, got, s.wantShared)
				}
			}
		})
	}
}

func TestCacheEviction(t *testing.T) {
	c := NewCache(Config{Capacity: 3})
	server := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }
	for i := range 3 {
		c.Add(alice, resolver, answerMsg(fmt.Sprintf("n%d.example", i), 60, server(i).String()), testEpoch)
	}
	// Touch entry 0 so entry 1 is the least recently used.
	if _, ok := c.Lookup(alice, server(0), testEpoch); !ok {
		t.Fatal("entry 0 missing before eviction")
	}
	c.Add(alice, resolver, answerMsg("n3.example", 60, server(3).String()), testEpoch)
	for i, want := range []bool{true, false, true, true} {
		if _, ok := c.Lookup(alice, server(i), testEpoch); ok != want {
			t.Errorf("entry %d present = %v, want %v", i, ok, want)
		}
	}
	if s := c.Stats(); s.Evictions != 1 || s.Len != 3 || s.Inserts != 4 {
		t.Errorf("Stats = %+v, want 1 eviction, 3 entries, 4 inserts", s)
	}
	// Refilling past capacity many times keeps the bound.
	for i := range 1000 {
		c.Add(bob, resolver, answerMsg("x.example", 60, netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}).String()), testEpoch)
	}
	if s := c.Stats(); s.Len != 3 || s.Evictions != 1001 {
		t.Errorf("after churn Stats = %+v, want 3 entries, 1001 evictions", s)
	}
}

func TestCacheCNAMEChain(t *testing.T) {
	// www.x.com CNAME x.cdn.net A 1.2.3.4 maps 1.2.3.4 to the queried name.
	m := &Message{Response: true, QName: "www.x.com", QType: TypeA, Answers: []Answer{
		{Name: "www.x.com", Type: TypeCNAME, TTL: 300, Target: "x.cdn.net"},
		{Name: "x.cdn.net", Type: TypeA, TTL: 60, Addr: netip.MustParseAddr("1.2.3.4")},
	}}
	c := NewCache(Config{})
	if n := c.Add(alice, resolver, m, testEpoch); n != 1 {
		t.Fatalf("Add recorded %d addresses, want 1", n)
	}
	if got, _ := c.Lookup(alice, netip.MustParseAddr("1.2.3.4"), testEpoch); got != "www.x.com" {
		t.Errorf("Lookup = %q, want www.x.com", got)
	}
}

func TestCacheLookupDoesNotAllocate(t *testing.T) {
	c := NewCache(Config{Capacity: 16})
	c.Add(alice, resolver, answerMsg("a.example", 60, "192.0.2.80"), testEpoch)
	miss := netip.MustParseAddr("2001:db8::1")
	allocs := testing.AllocsPerRun(1000, func() {
		c.Lookup(alice, cdn, testEpoch)
		c.Lookup(alice, miss, testEpoch)
		c.LookupServer(cdn, testEpoch)
		c.LookupServer(miss, testEpoch)
	})
	if allocs != 0 {
		t.Errorf("lookups allocate %v times per run, want 0", allocs)
	}
}

func BenchmarkCache(b *testing.B) {
	c := NewCache(Config{Capacity: 1 << 14})
	for i := range 1 << 14 {
		c.Add(alice, resolver, answerMsg("a.example", 60, netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}).String()), testEpoch)
	}
	target := netip.AddrFrom4([4]byte{10, 1, 0, 7})
	// Baseline: a bare map lookup on the same key shape.
	b.Run("map-baseline", func(b *testing.B) {
		m := map[pairKey]int32{{keyOf(alice), keyOf(target)}: 1}
		b.ReportAllocs()
		for b.Loop() {
			_ = m[pairKey{keyOf(alice), keyOf(target)}]
		}
	})
	b.Run("Lookup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := c.Lookup(alice, target, testEpoch); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("Add", func(b *testing.B) {
		m := answerMsg("a.example", 60, "10.2.0.1")
		b.ReportAllocs()
		for b.Loop() {
			c.Add(alice, resolver, m, testEpoch)
		}
	})
}

// TestAnswerBeforeFlow: a flow is named by the answer its client had when
// it started: re-answers with the same name keep a long flow named, an
// answer captured a moment after the flow's start (reordering) still
// names it, and a later answer with another name does not.
func TestAnswerBeforeFlow(t *testing.T) {
	c := NewCache(Config{})
	srv := netip.MustParseAddr("203.0.113.7")
	at := func(s int) time.Time { return testEpoch.Add(time.Duration(s) * time.Second) }
	c.Add(alice, resolver, answerMsg("a.example", 60, srv.String()), at(0))
	c.Add(alice, resolver, answerMsg("a.example", 60, srv.String()), at(50))
	c.Add(alice, resolver, answerMsg("b.example", 60, srv.String()), at(100))
	for _, tc := range []struct {
		start int
		want  string
	}{{-1, "a.example"}, {-10, ""}, {30, "a.example"}, {90, "a.example"}, {101, "b.example"}} {
		if got, _ := c.Lookup(alice, srv, at(tc.start)); got != tc.want {
			t.Errorf("flow started at %d s: named %q, want %q", tc.start, got, tc.want)
		}
	}
}
