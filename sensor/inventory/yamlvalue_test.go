package inventory

import (
	"net/netip"
	"strings"
	"testing"
)

// Block scalars (| and >) are ordinary YAML strings: their value is the
// text, not the indicator.
func TestYAMLBlockScalar(t *testing.T) {
	src := "devices:\n  - id: LT-1\n    owner: >-\n      Alice Example\n    ips: 10.0.0.9\n"
	tab, err := Parse("inv.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := tab.Devices()[0].Owner; got != "Alice Example" {
		t.Errorf("owner %q, want %q", got, "Alice Example")
	}
}

// An empty id is no id, in YAML as in CSV (where an empty cell is absent).
func TestYAMLEmptyID(t *testing.T) {
	src := "devices:\n  - id: \"\"\n    ips: 10.0.0.9\n"
	tab, err := Parse("inv.yaml", []byte(src))
	if tab.Len() != 0 || err == nil || !strings.Contains(err.Error(), "inv.yaml:2:9: device has no id") {
		t.Errorf("devices %v, error %v; want none and inv.yaml:2:9: device has no id", ids(tab), err)
	}
}

// Flow addresses carry no IPv6 zone, so an inventory address written with
// one (fe80::1%eth0) matches by its address; an unspecified or multicast
// address is the source or destination of many devices' packets (0.0.0.0
// is every DHCP client before its lease) and cannot identify one.
func TestIPZoneAndUnusable(t *testing.T) {
	src := "id,ips\nLL,fe80::1%eth0\nZERO,0.0.0.0\nMC,ff02::1\n"
	tab, err := Parse("inv.csv", []byte(src))
	if d, by := tab.Match([6]byte{}, "", netip.MustParseAddr("fe80::1")); d == nil || d.ID != "LL" || by != ByIP {
		t.Errorf("fe80::1 matched %v by %v; want LL by ip", d, by)
	}
	if d, _ := tab.Match([6]byte{2, 0, 0, 0, 0, 1}, "", netip.IPv4Unspecified()); d != nil {
		t.Errorf("a DHCP client at 0.0.0.0 matched %s", d.ID)
	}
	for _, w := range []string{"inv.csv:3:6: ip \"0.0.0.0\"", "inv.csv:4:4: ip \"ff02::1\""} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v; want it to report %s", err, w)
		}
	}
}
