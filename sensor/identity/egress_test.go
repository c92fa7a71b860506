package identity

import (
	"net/netip"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/egress"
	"github.com/edgeward/edgeward/sensor/inventory"
)

const vpnInv = `id,owner,assigned_site,assigned_country,home_timezone,macs,ips,wireguard_public_key,vpn_peers
LT-0101,a.kim@example.com,SEA-1,US,America/Los_Angeles,,,,a.kim
LT-0102,b.lee@example.com,SEA-1,US,America/Los_Angeles,,,hVpC6lN+qwrIyKj0M/6/H7M7ofsMx7e8rUMeh9Bg1kg=,
LT-0042,alice@example.com,NYC-2,US,America/New_York,3c:22:fb:00:00:01,,,
`

func TestApplyEgress(t *testing.T) {
	inv, err := inventory.Parse("inv.csv", []byte(vpnInv))
	if err != nil {
		t.Fatal(err)
	}
	day := func(h int) time.Time { return time.Date(2026, 11, 20, h, 0, 0, 0, time.UTC) }
	store := egress.NewStore(egress.StoreConfig{})
	session := func(inner, outer, peer, device, source string, from, to int) egress.Session {
		return egress.Session{Inner: netip.MustParseAddr(inner), Outer: netip.MustParseAddrPort(outer), Peer: peer, Device: device,
			Source: source, FirstSeen: day(from), LastSeen: day(to)}
	}
	store.Add(
		session("10.99.0.11", "203.0.113.50:51820", "a.kim", "", egress.SourceOpenVPN, 13, 22),
		session("10.99.0.12", "198.51.100.7:40112", "hVpC6lN+qwrIyKj0M/6/H7M7ofsMx7e8rUMeh9Bg1kg=", "", egress.SourceWireGuard, 13, 22),
		session("10.99.0.13", "192.0.2.13:51820", "z.unknown", "LT-0999", egress.SourceFeed, 13, 22),
		session("10.99.0.14", "192.0.2.14:51820", "y.unknown", "", egress.SourceFeed, 13, 22),
		session("10.0.0.5", "192.0.2.5:1194", "alice", "LT-0101", egress.SourceFeed, 13, 22),
	)
	a := New(Config{Inventory: inv, Sessions: store})
	tests := []struct {
		name      string
		src       string
		mac       flow.MAC
		start     time.Time
		egress    *flow.Egress
		id, by    string
		owner     string
		direction string
	}{
		{name: "openvpn common name -> vpn_peers", src: "10.99.0.11", start: day(14),
			egress: &flow.Egress{IP: netip.MustParseAddr("203.0.113.50"), Port: 51820, Source: "openvpn", Peer: "a.kim"},
			id:     "LT-0101", by: "vpn", owner: "a.kim@example.com"},
		{name: "wireguard key -> wireguard_public_key", src: "10.99.0.12", start: day(21),
			egress: &flow.Egress{IP: netip.MustParseAddr("198.51.100.7"), Port: 40112, Source: "wireguard", Peer: "hVpC6lN+qwrIyKj0M/6/H7M7ofsMx7e8rUMeh9Bg1kg="},
			id:     "LT-0102", by: "vpn", owner: "b.lee@example.com"},
		{name: "the VPN's device id, unknown to the inventory", src: "10.99.0.13", start: day(14),
			egress: &flow.Egress{IP: netip.MustParseAddr("192.0.2.13"), Port: 51820, Source: "feed", Peer: "z.unknown"}, id: "LT-0999", by: "vpn"},
		{name: "peer unknown to the inventory", src: "10.99.0.14", start: day(14),
			egress: &flow.Egress{IP: netip.MustParseAddr("192.0.2.14"), Port: 51820, Source: "feed", Peer: "y.unknown"}},
		{name: "the inventory's own match wins", src: "10.0.0.5", mac: flow.MAC{0x3c, 0x22, 0xfb, 0, 0, 1}, start: day(14),
			egress: &flow.Egress{IP: netip.MustParseAddr("192.0.2.5"), Port: 1194, Source: "feed", Peer: "alice"},
			id:     "LT-0042", by: "mac", owner: "alice@example.com"},
		{name: "after the session ended", src: "10.99.0.11", start: day(23)},
		{name: "before it began", src: "10.99.0.11", start: day(12)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &flow.Record{Start: tc.start, Src: flow.Endpoint{IP: netip.MustParseAddr(tc.src), MAC: tc.mac}, Dst: flow.Endpoint{IP: netip.MustParseAddr("93.184.216.34")}}
			a.Apply(r)
			switch {
			case tc.egress == nil && r.Egress != nil:
				t.Errorf("egress %+v, want none", *r.Egress)
			case tc.egress != nil && (r.Egress == nil || *r.Egress != *tc.egress):
				t.Errorf("egress %+v, want %+v", r.Egress, *tc.egress)
			}
			if d := r.Device; d == nil || d.ID != tc.id || d.MatchedBy != tc.by || d.Owner != tc.owner {
				t.Errorf("device %+v, want id %q matched_by %q owner %q", d, tc.id, tc.by, tc.owner)
			}
		})
	}
}

func TestApplyEgressDoesNotAllocate(t *testing.T) {
	inv, _ := inventory.Parse("inv.csv", []byte(vpnInv))
	store := egress.NewStore(egress.StoreConfig{})
	start := time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)
	store.Add(egress.Session{Inner: netip.MustParseAddr("10.99.0.11"), Outer: netip.MustParseAddrPort("203.0.113.50:51820"),
		Peer: "a.kim", Source: egress.SourceOpenVPN, FirstSeen: start.Add(-time.Hour), Active: true})
	a := New(Config{Inventory: inv, Sessions: store})
	r := &flow.Record{Start: start, Src: flow.Endpoint{IP: netip.MustParseAddr("10.99.0.11")}, Dst: flow.Endpoint{IP: netip.MustParseAddr("93.184.216.34")}}
	miss := &flow.Record{Start: start, Src: flow.Endpoint{IP: netip.MustParseAddr("10.0.0.9")}, Dst: flow.Endpoint{IP: netip.MustParseAddr("93.184.216.34")}}
	if n := testing.AllocsPerRun(100, func() { a.Apply(r); a.Apply(miss) }); n != 0 {
		t.Errorf("Apply with sessions allocates %.1f times", n)
	}
	a.Apply(r) // Device points into the Attributor until the next Apply
	if r.Egress == nil || r.Device.ID != "LT-0101" {
		t.Errorf("egress %+v, device %+v", r.Egress, r.Device)
	}
}

// BenchmarkApplyEgress: the cost sessions add per flow, against Apply
// without them in the same run: a flow of an office device (no session)
// and one of a tunnel address.
func BenchmarkApplyEgress(b *testing.B) {
	inv, _ := inventory.Parse("inv.csv", []byte(vpnInv))
	store := egress.NewStore(egress.StoreConfig{})
	start := time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)
	for i := range 5000 {
		store.Add(egress.Session{Inner: netip.AddrFrom4([4]byte{10, 99, byte(i >> 8), byte(i)}), Outer: netip.MustParseAddrPort("203.0.113.50:51820"),
			Peer: "a.kim", Source: egress.SourceOpenVPN, FirstSeen: start.Add(-time.Hour), Active: true})
	}
	office := &flow.Record{Start: start, Src: flow.Endpoint{IP: netip.MustParseAddr("10.0.0.9")}, Dst: flow.Endpoint{IP: netip.MustParseAddr("93.184.216.34")}}
	tunnel := &flow.Record{Start: start, Src: flow.Endpoint{IP: netip.MustParseAddr("10.99.0.11")}, Dst: flow.Endpoint{IP: netip.MustParseAddr("93.184.216.34")}}
	for _, bc := range []struct {
		name string
		cfg  Config
		r    *flow.Record
	}{
		{"baseline", Config{Inventory: inv}, office},
		{"office-device", Config{Inventory: inv, Sessions: store}, office},
		{"tunnel-address", Config{Inventory: inv, Sessions: store}, tunnel},
	} {
		b.Run(bc.name, func(b *testing.B) {
			a := New(bc.cfg)
			for b.Loop() {
				a.Apply(bc.r)
			}
		})
	}
}
