package inventory

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Device is one inventory entry. It is immutable once loaded and shared by
// every lookup that returns it.
type Device struct {
	ID              string
	Owner           string
	AssignedSite    string
	AssignedCountry string         // ISO 3166-1 alpha-2, upper case
	HomeTimezone    string         // IANA name as written
	Location        *time.Location // HomeTimezone loaded; nil when unset
	MACs            [][6]byte
	Hostnames       []string // lower case, without a trailing dot
	IPs             []netip.Addr
	WireGuardKey    string // base64 as written; "" when unset
	// VPNPeers are the names the corporate VPN gives the device's sessions
	// (OpenVPN common name, a ZTNA product's user or device name), as
	// written; see sensor/egress.
	VPNPeers []string

	// File and Line say where the device was defined, for messages.
	File string
	Line int
}

// MatchedBy says which identifier matched a device.
type MatchedBy uint8

const (
	NoMatch MatchedBy = iota
	ByMAC
	ByHostname
	ByIP
)

func (m MatchedBy) String() string {
	switch m {
	case ByMAC:
		return "mac"
	case ByHostname:
		return "hostname"
	case ByIP:
		return "ip"
	}
	return "none"
}

// maxHostname is the longest DNS name; longer queries cannot match.
const maxHostname = 253

// Table is one loaded inventory, immutable after Load.
type Table struct {
	devices []*Device
	byMAC   map[[6]byte]*Device
	byName  map[string]*Device // full host names as written, lower case
	byShort map[string]*Device // first labels; nil value when ambiguous
	byIP    map[netip.Addr]*Device
	byWG    map[string]*Device
	byID    map[string]*Device
	byPeer  map[string]*Device // VPN peer names
}

func newTable() *Table {
	return &Table{
		byMAC:   map[[6]byte]*Device{},
		byName:  map[string]*Device{},
		byShort: map[string]*Device{},
		byIP:    map[netip.Addr]*Device{},
		byWG:    map[string]*Device{},
		byID:    map[string]*Device{},
		byPeer:  map[string]*Device{},
	}
}

// Len is the number of devices loaded.
func (t *Table) Len() int { return len(t.devices) }

// Devices returns the loaded devices in file order. The slice is shared;
// do not modify it.
func (t *Table) Devices() []*Device { return t.devices }

// Match finds the device behind a flow endpoint: by MAC address, then by
// hostname, then by IP address. A zero MAC, empty hostname or invalid
// address is skipped. It does not allocate.
func (t *Table) Match(mac [6]byte, hostname string, ip netip.Addr) (*Device, MatchedBy) {
	if t == nil {
		return nil, NoMatch
	}
	if mac != [6]byte{} {
		if d := t.byMAC[mac]; d != nil {
			return d, ByMAC
		}
	}
	if d := t.ByHostname(hostname); d != nil {
		return d, ByHostname
	}
	if ip.IsValid() {
		if d := t.byIP[ip.Unmap()]; d != nil {
			return d, ByIP
		}
	}
	return nil, NoMatch
}

// ByHostname matches a host name case-insensitively: exactly, then its
// first label against names written without a domain, then its first label
// against the first labels of inventory names, unless two devices share it.
func (t *Table) ByHostname(name string) *Device {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > maxHostname {
		return nil
	}
	var buf [maxHostname]byte
	n := copy(buf[:], name)
	for i := range n {
		if c := buf[i]; 'A' <= c && c <= 'Z' {
			buf[i] = c + 'a' - 'A'
		}
	}
	lower := buf[:n]
	if d := t.byName[string(lower)]; d != nil {
		return d
	}
	short := lower
	for i, c := range lower {
		if c == '.' {
			short = lower[:i]
			break
		}
	}
	if len(short) < len(lower) {
		if d := t.byName[string(short)]; d != nil {
			return d
		}
	}
	return t.byShort[string(short)]
}

// ByWireGuardKey finds the device a WireGuard public key (base64, as it
// appears in configuration) was issued to.
func (t *Table) ByWireGuardKey(key string) *Device {
	if t == nil {
		return nil
	}
	return t.byWG[key]
}

// ByID finds a device by its id.
func (t *Table) ByID(id string) *Device {
	if t == nil {
		return nil
	}
	return t.byID[id]
}

// ByVPNPeer finds the device a VPN peer name (an entry of vpn_peers) was
// given to; names compare exactly.
func (t *Table) ByVPNPeer(name string) *Device {
	if t == nil {
		return nil
	}
	return t.byPeer[name]
}

// add indexes d, or returns why it conflicts with a device already loaded;
// a conflicting device is not indexed at all.
func (t *Table) add(d *Device) error {
	for _, o := range t.devices {
		if o.ID == d.ID {
			return fmt.Errorf("duplicate id %q (first defined at %s:%d)", d.ID, o.File, o.Line)
		}
	}
	for _, m := range d.MACs {
		if o := t.byMAC[m]; o != nil {
			return fmt.Errorf("mac %s already belongs to device %q (%s:%d)", fmtMAC(m), o.ID, o.File, o.Line)
		}
	}
	for _, h := range d.Hostnames {
		if o := t.byName[h]; o != nil {
			return fmt.Errorf("hostname %q already belongs to device %q (%s:%d)", h, o.ID, o.File, o.Line)
		}
	}
	for _, ip := range d.IPs {
		if o := t.byIP[ip]; o != nil {
			return fmt.Errorf("ip %s already belongs to device %q (%s:%d)", ip, o.ID, o.File, o.Line)
		}
	}
	if d.WireGuardKey != "" {
		if o := t.byWG[d.WireGuardKey]; o != nil {
			return fmt.Errorf("wireguard_public_key already belongs to device %q (%s:%d)", o.ID, o.File, o.Line)
		}
	}
	for _, p := range d.VPNPeers {
		if o := t.byPeer[p]; o != nil {
			return fmt.Errorf("vpn peer %q already belongs to device %q (%s:%d)", p, o.ID, o.File, o.Line)
		}
	}
	t.devices = append(t.devices, d)
	t.byID[d.ID] = d
	for _, p := range d.VPNPeers {
		t.byPeer[p] = d
	}
	for _, m := range d.MACs {
		t.byMAC[m] = d
	}
	for _, h := range d.Hostnames {
		t.byName[h] = d
		short, _, _ := strings.Cut(h, ".")
		if o, seen := t.byShort[short]; seen && o != d {
			t.byShort[short] = nil // ambiguous across domains
		} else if !seen {
			t.byShort[short] = d
		}
	}
	for _, ip := range d.IPs {
		t.byIP[ip] = d
	}
	if d.WireGuardKey != "" {
		t.byWG[d.WireGuardKey] = d
	}
	return nil
}

func fmtMAC(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}
