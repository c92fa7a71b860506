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
