package identity

import (
	"net/netip"
	"testing"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/inventory"
)

const inv = `id,owner,assigned_site,assigned_country,home_timezone,macs,hostnames,ips
LT-0042,alice@example.com,NYC-2,US,America/New_York,3c:22:fb:00:00:01,,
KVM-1,facilities,NYC-2,US,America/New_York,,pikvm,
SRV-9,ops,LON-1,GB,Europe/London,,,10.9.9.9
`

func rec(src, dst string, srcMAC flow.MAC, srcHost string) *flow.Record {
	return &flow.Record{
		Src: flow.Endpoint{IP: netip.MustParseAddr(src), MAC: srcMAC, Hostname: srcHost},
		Dst: flow.Endpoint{IP: netip.MustParseAddr(dst)},
	}
}

// dhcpRec is a DHCP client's DISCOVER/REQUEST flow from 0.0.0.0.
func dhcpRec(mac flow.MAC, assigned, requested string) *flow.Record {
	r := rec("0.0.0.0", "255.255.255.255", mac, "")
	r.DHCP = &flow.DHCP{ClientMAC: mac, Hostname: "pikvm", AssignedIP: assigned, RequestedIP: requested}
	return r
}

func TestApply(t *testing.T) {
	table, err := inventory.Parse("inv.csv", []byte(inv))
	if err != nil {
		t.Fatal(err)
	}
	a := New(Config{SensorID: "gw-1", Site: "NYC-2", Inventory: table})
	rpi := flow.MAC{0xdc, 0xa6, 0x32, 1, 2, 3}
	random := flow.MAC{0x3e, 0x11, 0x22, 0x33, 0x44, 0x55} // locally administered bit set
	tests := []struct {
		name      string
		r         *flow.Record
		direction string
		device    *flow.Device // nil: no device
	}{
		{"outbound, inventory by mac", rec("10.0.0.5", "93.184.216.34", flow.MAC{0x3c, 0x22, 0xfb, 0, 0, 1}, ""), "outbound",
			&flow.Device{IP: netip.MustParseAddr("10.0.0.5"), MAC: flow.MAC{0x3c, 0x22, 0xfb, 0, 0, 1}, Vendor: "Apple, Inc.",
				ID: "LT-0042", Owner: "alice@example.com", AssignedSite: "NYC-2", AssignedCountry: "US", HomeTimezone: "America/New_York", MatchedBy: "mac"}},
		{"raspberry pi found by its DHCP hostname", rec("192.168.1.20", "100.64.0.1", rpi, "pikvm"), "outbound",
			&flow.Device{IP: netip.MustParseAddr("192.168.1.20"), MAC: rpi, Vendor: "Raspberry Pi Trading Ltd", Hostname: "pikvm",
				ID: "KVM-1", Owner: "facilities", AssignedSite: "NYC-2", AssignedCountry: "US", HomeTimezone: "America/New_York", MatchedBy: "hostname"}},
		{"inbound to a static ip", rec("198.51.100.7", "10.9.9.9", flow.MAC{}, ""), "inbound",
			&flow.Device{IP: netip.MustParseAddr("10.9.9.9"), ID: "SRV-9", Owner: "ops", AssignedSite: "LON-1", AssignedCountry: "GB",
				HomeTimezone: "Europe/London", MatchedBy: "ip"}},
		{"randomized mac, unknown device", rec("fd00::5", "2001:db8::1", random, ""), "outbound",
			&flow.Device{IP: netip.MustParseAddr("fd00::5"), MAC: random, RandomizedMAC: true}},
		{"internal", rec("10.0.0.5", "10.0.0.6", flow.MAC{}, ""), "internal", &flow.Device{IP: netip.MustParseAddr("10.0.0.5")}},
		{"mdns is local, not external", rec("10.0.0.5", "224.0.0.251", flow.MAC{}, ""), "internal", &flow.Device{IP: netip.MustParseAddr("10.0.0.5")}},
		{"transit", rec("198.51.100.7", "203.0.113.9", flow.MAC{}, ""), "external", nil},
		{"dhcp client without an address is at the address it asks for", dhcpRec(rpi, "", "192.168.1.20"), "internal",
			&flow.Device{IP: netip.MustParseAddr("192.168.1.20"), MAC: rpi, Vendor: "Raspberry Pi Trading Ltd", Hostname: "pikvm",
				ID: "KVM-1", Owner: "facilities", AssignedSite: "NYC-2", AssignedCountry: "US", HomeTimezone: "America/New_York", MatchedBy: "hostname"}},
		{"dhcp client given an address", dhcpRec(rpi, "192.168.1.21", "192.168.1.20"), "internal",
			&flow.Device{IP: netip.MustParseAddr("192.168.1.21"), MAC: rpi, Vendor: "Raspberry Pi Trading Ltd", Hostname: "pikvm",
				ID: "KVM-1", Owner: "facilities", AssignedSite: "NYC-2", AssignedCountry: "US", HomeTimezone: "America/New_York", MatchedBy: "hostname"}},
		{"dhcp discover alone", dhcpRec(rpi, "", ""), "internal",
			&flow.Device{IP: netip.MustParseAddr("0.0.0.0"), MAC: rpi, Vendor: "Raspberry Pi Trading Ltd", Hostname: "pikvm",
				ID: "KVM-1", Owner: "facilities", AssignedSite: "NYC-2", AssignedCountry: "US", HomeTimezone: "America/New_York", MatchedBy: "hostname"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a.Apply(tc.r)
			if tc.r.Direction != tc.direction {
				t.Errorf("direction %s, want %s", tc.r.Direction, tc.direction)
			}
			if tc.r.Sensor == nil || tc.r.Sensor.ID != "gw-1" {
				t.Errorf("sensor %+v", tc.r.Sensor)
			}
			switch {
			case tc.device == nil && tc.r.Device != nil:
				t.Errorf("device %+v, want none", *tc.r.Device)
			case tc.device != nil && (tc.r.Device == nil || *tc.r.Device != *tc.device):
				t.Errorf("device %+v\n want %+v", tc.r.Device, *tc.device)
			}
		})
	}
}

func TestApplyDoesNotAllocate(t *testing.T) {
	table, _ := inventory.Parse("inv.csv", []byte(inv))
	a := New(Config{Site: "x", Inventory: table})
	r := rec("10.0.0.5", "93.184.216.34", flow.MAC{0x3c, 0x22, 0xfb, 0, 0, 1}, "laptop")
	a.Apply(r) // first OUI lookup decompresses the table
	if n := testing.AllocsPerRun(100, func() { a.Apply(r) }); n != 0 {
		t.Errorf("Apply allocates %.1f times", n)
	}
}
