package identity

import (
	"net/netip"
	"testing"

	"github.com/edgeward/edgeward/flow"
)

// Direction for every combination of sides. Multicast and the limited
// broadcast stay on the local link: they keep an internal sender's flow
// internal, but they are not a corporate device, so a flow from an
// external address to them is neither inbound (which names the internal
// destination as the device) nor has a device.
func TestDirection(t *testing.T) {
	a := New(Config{})
	custom := New(Config{Internal: []netip.Prefix{netip.MustParsePrefix("128.2.0.0/16"), netip.MustParsePrefix("2001:db8:1::/48")}})
	for _, tc := range []struct {
		a             *Attributor
		src, dst      string
		dir, deviceIP string // deviceIP "": none
	}{
		{a, "10.0.0.5", "93.184.216.34", "outbound", "10.0.0.5"},
		{a, "93.184.216.34", "10.0.0.5", "inbound", "10.0.0.5"},
		{a, "10.0.0.5", "172.16.0.9", "internal", "10.0.0.5"},
		{a, "198.51.100.7", "203.0.113.9", "external", ""},
		{a, "fd00::5", "fe80::1", "internal", "fd00::5"},
		{a, "fe80::5", "2001:db8::1", "outbound", "fe80::5"},
		{a, "2001:db8::1", "fd12:3456::7", "inbound", "fd12:3456::7"},
		{a, "169.254.1.1", "169.254.1.2", "internal", "169.254.1.1"},
		{a, "::ffff:10.0.0.5", "93.184.216.34", "outbound", "::ffff:10.0.0.5"},
		{a, "0.0.0.0", "255.255.255.255", "internal", "0.0.0.0"},
		{a, "10.0.0.5", "224.0.0.251", "internal", "10.0.0.5"},
		{a, "fe80::5", "ff02::1:2", "internal", "fe80::5"},
		{a, "198.51.100.7", "224.0.0.251", "external", ""},
		{a, "198.51.100.7", "255.255.255.255", "external", ""},
		{custom, "128.2.6.189", "10.0.0.5", "outbound", "128.2.6.189"},
		{custom, "10.0.0.5", "2001:db8:1::9", "inbound", "2001:db8:1::9"},
		{custom, "10.0.0.5", "192.168.0.1", "external", ""},
	} {
		r := &flow.Record{Src: flow.Endpoint{IP: netip.MustParseAddr(tc.src)}, Dst: flow.Endpoint{IP: netip.MustParseAddr(tc.dst)}}
		tc.a.Apply(r)
		dev := ""
		if r.Device != nil {
			dev = r.Device.IP.String()
		}
		if r.Direction != tc.dir || dev != tc.deviceIP {
			t.Errorf("%s -> %s: direction %s, device %q; want %s, %q", tc.src, tc.dst, r.Direction, dev, tc.dir, tc.deviceIP)
		}
	}
}
