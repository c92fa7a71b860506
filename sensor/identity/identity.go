// Package identity owns the corporate network model and device
// attribution: which side of a flow is the corporate device, what the
// sensor saw of it (MAC, vendor, DHCP hostname) and what the inventory says
// about it (id, owner, assigned site and country, home time zone), and,
// for a remote device behind the corporate VPN, the public address its
// VPN session comes from (sensor/egress). It completes each flow record as
// the sensor exports it.
package identity

import (
	"net/netip"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/egress"
	"github.com/edgeward/edgeward/sensor/inventory"
	"github.com/edgeward/edgeward/sensor/oui"
)

// DefaultInternal are the internal prefixes when none are configured:
// RFC 1918, IPv6 unique local (RFC 4193) and link-local addresses.
var DefaultInternal = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
}

// Inventory finds the inventory entry of a device (inventory.Table and
// inventory.Store implement it).
type Inventory interface {
	Match(mac [6]byte, hostname string, ip netip.Addr) (*inventory.Device, inventory.MatchedBy)
}

// Sessions finds the VPN session a tunnel address belonged to at a time
// (egress.Store implements it).
type Sessions interface {
	Lookup(addr netip.Addr, t time.Time) (egress.Session, bool)
}

// vpnInventory finds devices known by their VPN identity; inventory.Table
// and inventory.Store implement it.
type vpnInventory interface {
	ByID(id string) *inventory.Device
	ByWireGuardKey(key string) *inventory.Device
	ByVPNPeer(name string) *inventory.Device
}

// Config is the sensor's view of the corporate network.
type Config struct {
	Internal  []netip.Prefix // corporate address space; nil: DefaultInternal
	SensorID  string
	Site      string
	Inventory Inventory // optional
	// Sessions, when set, attributes flows of VPN tunnel addresses to the
	// session's public (outer) address: record field egress. The VPN's
	// address pool must be in Internal.
	Sessions Sessions
}

// Attributor completes flow records; not safe for concurrent use.
type Attributor struct {
	internal []netip.Prefix
	inv      Inventory
	sensor   flow.Sensor
	device   flow.Device // the record's Device points here until the next Apply
	vendors  map[flow.MAC]string
	sessions Sessions
	vpnInv   vpnInventory // nil unless the inventory has one
	egress   flow.Egress  // the record's Egress points here until the next Apply
}

// vendorCacheSize bounds the per-MAC vendor cache: a gateway sees a limited
// set of device MACs, and the registry table is large enough that a lookup
// misses the CPU caches.
const vendorCacheSize = 1 << 14

func (a *Attributor) vendor(mac flow.MAC) string {
	if v, ok := a.vendors[mac]; ok {
		return v
	}
	v, _ := oui.Lookup(mac)
	if len(a.vendors) >= vendorCacheSize {
		clear(a.vendors)
	}
	a.vendors[mac] = v
	return v
}

// New returns an Attributor.
func New(cfg Config) *Attributor {
	a := &Attributor{internal: cfg.Internal, inv: cfg.Inventory, sensor: flow.Sensor{ID: cfg.SensorID, Site: cfg.Site},
		vendors: make(map[flow.MAC]string), sessions: cfg.Sessions}
	a.vpnInv, _ = cfg.Inventory.(vpnInventory)
	if a.internal == nil {
		a.internal = DefaultInternal
	}
	return a
}

// Internal reports whether addr is in the corporate address space.
func (a *Attributor) Internal(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range a.internal {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// local reports addresses that are neither external nor a device: multicast
// and the limited broadcast, which stay on the local network.
func local(addr netip.Addr) bool {
	return addr.IsMulticast() || addr == netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// Apply sets the record's direction, sensor and device. The device is the
// internal side: the initiator when both are internal. It allocates
// nothing; the record's Sensor and Device point into the Attributor until
// the next call.
func (a *Attributor) Apply(r *flow.Record) {
	srcIn := a.Internal(r.Src.IP) || r.Src.IP.IsUnspecified() // 0.0.0.0: a DHCP client without an address yet
	// Multicast and broadcast keep an internal sender's flow internal; from
	// an external sender they name no corporate device: not inbound.
	dstIn := a.Internal(r.Dst.IP) || srcIn && local(r.Dst.IP)
	switch {
	case srcIn && dstIn:
		r.Direction = "internal"
	case srcIn:
		r.Direction = "outbound"
	case dstIn:
		r.Direction = "inbound"
	default:
		r.Direction = "external"
	}
	if a.sensor != (flow.Sensor{}) {
		r.Sensor = &a.sensor
	}
	var side *flow.Endpoint
	switch {
	case srcIn:
		side = &r.Src
	case dstIn && !local(r.Dst.IP):
		side = &r.Dst
	default:
		return
	}
	d := &a.device
	*d = flow.Device{IP: side.IP, MAC: side.MAC, Hostname: side.Hostname}
	if d.IP.IsUnspecified() && r.DHCP != nil {
		// A DHCP client without an address yet (its DISCOVER and REQUEST
		// come from 0.0.0.0) is the device at the address it was given or
		// asked for, and has the hostname it sent: one device with its
		// later flows, not two.
		d.IP = leased(r.DHCP, d.IP)
		if d.Hostname == "" {
			d.Hostname = r.DHCP.Hostname
		}
	}
	if !side.MAC.IsZero() {
		d.RandomizedMAC = oui.IsLocallyAdministered(side.MAC)
		if !d.RandomizedMAC { // the IEEE registry assigns only universal addresses
			d.Vendor = a.vendor(side.MAC)
		}
	}
	if a.inv != nil {
		if dev, by := a.inv.Match(d.MAC, d.Hostname, d.IP); dev != nil {
			d.ID, d.Owner, d.AssignedSite, d.AssignedCountry, d.HomeTimezone = dev.ID, dev.Owner, dev.AssignedSite, dev.AssignedCountry, dev.HomeTimezone
			d.MatchedBy = by.String()
		}
	}
	r.Device = d
	if a.sessions != nil {
		if s, ok := a.sessions.Lookup(d.IP, r.Start); ok {
			a.egress = flow.Egress{IP: s.Outer.Addr(), Port: s.Outer.Port(), Source: s.Source, Peer: s.Peer}
			r.Egress = &a.egress
			if d.MatchedBy == "" {
				a.vpnDevice(d, &s)
			}
		}
	}
}

// leased is the address a DHCP exchange gave, else the one the client
// asked for, else unspecified.
func leased(m *flow.DHCP, unspecified netip.Addr) netip.Addr {
	for _, s := range []string{m.AssignedIP, m.RequestedIP} {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() == unspecified.Is4() && !a.IsUnspecified() {
			return a
		}
	}
	return unspecified
}

// vpnDevice fills the inventory fields of a device the inventory did not
// match by MAC, hostname or IP from its VPN session: the device id the VPN
// names, else the device its peer (WireGuard key, OpenVPN common name,
// feed peer) was issued to. A device id the inventory does not know is
// still recorded.
func (a *Attributor) vpnDevice(d *flow.Device, s *egress.Session) {
	var dev *inventory.Device
	if a.vpnInv != nil {
		switch {
		case s.Device != "":
			dev = a.vpnInv.ByID(s.Device)
		case s.Peer == "":
		case s.Source == egress.SourceWireGuard:
			if dev = a.vpnInv.ByWireGuardKey(s.Peer); dev == nil {
				dev = a.vpnInv.ByVPNPeer(s.Peer)
			}
		default:
			dev = a.vpnInv.ByVPNPeer(s.Peer)
		}
	}
	switch {
	case dev != nil:
		d.ID, d.Owner, d.AssignedSite, d.AssignedCountry, d.HomeTimezone = dev.ID, dev.Owner, dev.AssignedSite, dev.AssignedCountry, dev.HomeTimezone
	case s.Device != "":
		d.ID = s.Device
	default:
		return
	}
	d.MatchedBy = "vpn"
}
