package dhcpmeta

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestLookupBeforeReassignment: records are attributed when they close,
// with their start time. A flow that started while host-a held an address
// must keep host-a's name even if the address went to host-b before the
// flow closed; otherwise a record (and the inventory match on hostname)
// names the wrong device.
func TestLookupBeforeReassignment(t *testing.T) {
	tab := NewTable(TableConfig{})
	addr := netip.MustParseAddr("10.0.0.7")
	t0 := time.Unix(1_700_000_000, 0)
	ack := func(mac byte, host string, at time.Time) {
		tab.AddV4(&V4{Op: 2, Type: Ack, ClientMAC: net.HardwareAddr{2, 0, 0, 0, 0, mac}, AssignedAddr: addr,
			Hostname: host, LeaseTime: 3600}, at)
	}
	ack(1, "host-a", t0)
	ack(2, "host-b", t0.Add(20*time.Minute)) // host-a's lease was released early
	if l, ok := tab.Lookup(addr, t0.Add(10*time.Minute)); ok && l.Hostname != "host-a" {
		t.Errorf("flow started at +10 min, while host-a held %s, attributed to %q", addr, l.Hostname)
	}
	if l, ok := tab.Lookup(addr, t0.Add(30*time.Minute)); !ok || l.Hostname != "host-b" {
		t.Errorf("flow started at +30 min attributed to %q, %v; want host-b", l.Hostname, ok)
	}
}

// TestLookupOutOfOrder: records are attributed when they close, with their
// start time, so lookups do not come in start-time order. A flow that
// started after the lease ran out must not erase the lease for a longer
// flow that started while it was held and closes later.
func TestLookupOutOfOrder(t *testing.T) {
	tab := NewTable(TableConfig{})
	addr := netip.MustParseAddr("10.0.0.7")
	t0 := time.Unix(1_700_000_000, 0)
	tab.AddV4(&V4{Op: 2, Type: Ack, ClientMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, AssignedAddr: addr,
		Hostname: "host-a", LeaseTime: 3600}, t0)
	// A short flow started after the lease time (the renewal, unicast to
	// the server, was not seen) closes first.
	if _, ok := tab.Lookup(addr, t0.Add(2*time.Hour)); ok {
		t.Errorf("flow at +2 h attributed past the lease time")
	}
	// A flow that started at +10 min closes next.
	if l, ok := tab.Lookup(addr, t0.Add(10*time.Minute)); !ok || l.Hostname != "host-a" {
		t.Errorf("flow started at +10 min, within the lease, attributed to %q, %v; want host-a", l.Hostname, ok)
	}
}

// TestLookupAfterRelease: a client that releases its address (many do on
// shutdown or sleep) ends its lease then, but its flows open at the
// release close afterwards, by idle timeout, and are attributed with their
// start time: they still belong to it.
func TestLookupAfterRelease(t *testing.T) {
	addr := netip.MustParseAddr("10.0.0.7")
	addr6 := netip.MustParseAddr("2001:db8::7")
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	duid := []byte{0, 3, 0, 1, 2, 0, 0, 0, 0, 1}
	t0 := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		name string
		addr netip.Addr
		end  func(tab *Table, at time.Time)
	}{
		{"release", addr, func(tab *Table, at time.Time) {
			tab.AddV4(&V4{Op: 1, Type: Release, ClientMAC: mac, ClientAddr: addr}, at)
		}},
		{"v6 release", addr6, func(tab *Table, at time.Time) {
			tab.AddV6(&V6{Type: Release6, ClientDUID: duid, Addrs: []IAAddr{{addr6, 0, 0}}}, at)
		}},
		{"v6 zero lifetime", addr6, func(tab *Table, at time.Time) {
			tab.AddV6(&V6{Type: Reply, ClientDUID: duid, Addrs: []IAAddr{{addr6, 0, 0}}}, at)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := NewTable(TableConfig{})
			tab.AddV4(&V4{Op: 2, Type: Ack, ClientMAC: mac, AssignedAddr: addr, Hostname: "host-a", LeaseTime: 3600}, t0)
			tab.AddV6(&V6{Type: Request6, ClientDUID: duid, FQDN: "host-a"}, t0)
			tab.AddV6(&V6{Type: Reply, ClientDUID: duid, Addrs: []IAAddr{{addr6, 3600, 3600}}}, t0)
			tc.end(tab, t0.Add(20*time.Second))
			if l, ok := tab.Lookup(tc.addr, t0.Add(10*time.Second)); !ok || l.Hostname != "host-a" {
				t.Errorf("flow started at +10 s, before the %s at +20 s, attributed to %q, %v; want host-a", tc.name, l.Hostname, ok)
			}
			if l, ok := tab.Lookup(tc.addr, t0.Add(30*time.Second)); ok {
				t.Errorf("flow started at +30 s, after the %s, attributed to %q", tc.name, l.Hostname)
			}
		})
	}
}

// A zero valid lifetime withdraws the address from the client the Reply is
// for; it says nothing of another client the address has since gone to.
func TestZeroLifetimeOtherClient(t *testing.T) {
	addr := netip.MustParseAddr("2001:db8::7")
	t0 := time.Unix(1_700_000_000, 0)
	tab := NewTable(TableConfig{})
	tab.AddV6(&V6{Type: Request6, ClientDUID: []byte{0, 3, 0, 1, 2, 0, 0, 0, 0, 2}, FQDN: "host-b"}, t0)
	tab.AddV6(&V6{Type: Reply, ClientDUID: []byte{0, 3, 0, 1, 2, 0, 0, 0, 0, 2}, Addrs: []IAAddr{{addr, 3600, 3600}}}, t0)
	// host-a renews the address it held before; the server withdraws it.
	tab.AddV6(&V6{Type: Reply, ClientDUID: []byte{0, 3, 0, 1, 2, 0, 0, 0, 0, 1}, Addrs: []IAAddr{{addr, 0, 0}}}, t0.Add(time.Minute))
	if l, ok := tab.Lookup(addr, t0.Add(2*time.Minute)); !ok || l.Hostname != "host-b" {
		t.Errorf("host-b's address after a withdrawal sent to host-a: %q, %v; want host-b", l.Hostname, ok)
	}
}
