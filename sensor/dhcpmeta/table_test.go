package dhcpmeta

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

var testEpoch = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func TestTableV4(t *testing.T) {
	addr := netip.MustParseAddr("10.0.0.5")
	other := net.HardwareAddr{2, 0, 0, 0, 0, 9}
	req := &V4{Op: 1, Type: Request, ClientMAC: testMAC, RequestedAddr: addr, Hostname: "laptop", VendorClass: "MSFT 5.0", ClientID: []byte{1, 2}}
	ack := &V4{Op: 2, Type: Ack, ClientMAC: testMAC, AssignedAddr: addr, LeaseTime: 600, VendorClass: "server-echo"}
	type step struct {
		msg  *V4
		at   time.Duration
		want string // hostname at addr after the step, "" for none
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"request then ack", []step{{req, 0, ""}, {ack, time.Second, "laptop"}}},
		{"ack alone binds without hostname", []step{{ack, 0, ""}}},
		{"lease time expires the entry", []step{{req, 0, ""}, {ack, 0, "laptop"}, {nil, 599 * time.Second, "laptop"}, {nil, 600 * time.Second, ""}}},
		{"release by the holder unbinds", []step{{req, 0, ""}, {ack, 0, "laptop"}, {&V4{Type: Release, ClientMAC: testMAC, ClientAddr: addr}, 0, ""}}},
		{"release by another MAC is ignored", []step{{req, 0, ""}, {ack, 0, "laptop"}, {&V4{Type: Release, ClientMAC: other, ClientAddr: addr}, 0, "laptop"}}},
		{"decline unbinds", []step{{req, 0, ""}, {ack, 0, "laptop"}, {&V4{Type: Decline, ClientMAC: testMAC, RequestedAddr: addr}, 0, ""}}},
		{"inform binds the client's own address", []step{{&V4{Type: Inform, ClientMAC: testMAC, ClientAddr: addr, Hostname: "ws1"}, 0, "ws1"}}},
		{"offer and request do not bind", []step{{&V4{Type: Offer, ClientMAC: testMAC, AssignedAddr: addr}, 0, ""}, {req, 0, ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := NewTable(TableConfig{})
			for i, s := range tt.steps {
				now := testEpoch.Add(s.at)
				if s.msg != nil {
					tab.AddV4(s.msg, now)
				}
				l, ok := tab.Lookup(addr, now)
				if l.Hostname != s.want {
					t.Errorf("step %d: hostname %q, want %q", i, l.Hostname, s.want)
				}
				if ok && (l.MAC.String() != testMAC.String() || l.VendorClass == "server-echo") {
					t.Errorf("step %d: lease %+v", i, l)
				}
			}
		})
	}
}

func TestTableV6(t *testing.T) {
	addr := netip.MustParseAddr("2001:db8::5")
	mac := net.HardwareAddr{0, 1, 2, 3, 4, 5}
	tab := NewTable(TableConfig{})
	tab.AddV6(&V6{Type: Request6, ClientDUID: duidLL, ClientMAC: mac, FQDN: "laptop.lan", VendorClass: "MSFT 5.0"}, testEpoch)
	tab.AddV6(&V6{Type: Reply, ClientDUID: duidLL, ClientMAC: mac, Addrs: []IAAddr{{addr, 100, 200}}}, testEpoch)
	l, ok := tab.Lookup(addr, testEpoch.Add(199*time.Second))
	if !ok || l.Hostname != "laptop.lan" || l.VendorClass != "MSFT 5.0" || l.MAC.String() != mac.String() || string(l.ClientID) != string(duidLL) {
		t.Errorf("Lookup = %+v, %v", l, ok)
	}
	if _, ok := tab.Lookup(addr, testEpoch.Add(200*time.Second)); ok {
		t.Error("entry outlived its valid lifetime")
	}
	tab.AddV6(&V6{Type: Reply, ClientDUID: duidLL, Addrs: []IAAddr{{addr, 100, 200}}}, testEpoch)
	tab.AddV6(&V6{Type: Reply, ClientDUID: duidLL, Addrs: []IAAddr{{addr, 0, 0}}}, testEpoch)
	if _, ok := tab.Lookup(addr, testEpoch); ok {
		t.Error("zero valid lifetime did not withdraw the address")
	}
}

func TestTableEviction(t *testing.T) {
	tab := NewTable(TableConfig{Capacity: 2})
	for i := range 5 {
		tab.AddV4(&V4{Type: Ack, ClientMAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(i)}, AssignedAddr: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})}, testEpoch)
	}
	s := tab.Stats()
	if s.Len != 2 || s.Evictions != 3 {
		t.Errorf("Stats = %+v, want 2 entries and 3 evictions", s)
	}
	for i, want := range []bool{false, false, false, true, true} {
		if _, ok := tab.Lookup(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), testEpoch); ok != want {
			t.Errorf("entry %d present = %v, want %v", i, ok, want)
		}
	}
}

func TestTableLookupDoesNotAllocate(t *testing.T) {
	tab := NewTable(TableConfig{Capacity: 8})
	addr := netip.MustParseAddr("10.0.0.5")
	tab.AddV4(&V4{Type: Ack, ClientMAC: testMAC, AssignedAddr: addr, Hostname: "h"}, testEpoch)
	miss := netip.MustParseAddr("2001:db8::1")
	if n := testing.AllocsPerRun(1000, func() {
		tab.Lookup(addr, testEpoch)
		tab.Lookup(miss, testEpoch)
	}); n != 0 {
		t.Errorf("Lookup allocates %v times per run, want 0", n)
	}
}

func BenchmarkTableLookup(b *testing.B) {
	tab := NewTable(TableConfig{Capacity: 1 << 14})
	for i := range 1 << 14 {
		tab.AddV4(&V4{Type: Ack, ClientMAC: testMAC, AssignedAddr: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Hostname: "h"}, testEpoch)
	}
	target := netip.AddrFrom4([4]byte{10, 1, 0, 7})
	b.Run("map-baseline", func(b *testing.B) {
		m := map[addrKey]int32{keyOf(target): 1}
		b.ReportAllocs()
		for b.Loop() {
			_ = m[keyOf(target)]
		}
	})
	b.Run("Lookup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := tab.Lookup(target, testEpoch); !ok {
				b.Fatal("miss")
			}
		}
	})
}
