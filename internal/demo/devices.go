package demo

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/edgeward/edgeward/internal/synth"
)

type osKind uint8

const (
	windows osKind = iota
	macOS
	linux
)

// device is one machine of the demo company.
type device struct {
	id, owner   string // inventory id and owner; empty id: not in the inventory
	mac         synth.MAC
	hostname    string // what it calls itself in DHCP
	vendorClass string // DHCP option 60
	os          osKind
	addr        netip.Addr // LAN address from DHCP, or VPN tunnel address
	// remote devices reach the office through the corporate VPN from
	// egress; their packets reach the sensor decapsulated, without the
	// LAN's Ethernet addresses.
	remote bool
	egress netip.AddrPort
	// When it is on: minutes after midnight in New York.
	arrive, leave float64
}

func mac(b ...byte) synth.MAC { return synth.MAC{b[0], b[1], b[2], b[3], b[4], b[5]} }

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// hm is a time of day in minutes after midnight.
func hm(h, m int) float64 { return float64(60*h + m) }

// company is everybody on the demo network: the story's devices by role,
// and the ordinary ones.
type company struct {
	farm1, farm2 *device // two corporate laptops behind one residential IP
	london       *device // the New York laptop working from London
	rustdesk     *device // RustDesk to a self-hosted relay
	proxy        *device // long uploads to proxies in CN and RU
	kvm          *device // the Raspberry Pi IP-KVM, never inventoried
	printer      *device
	others       []*device // office machines and two ordinary remote workers
}

func newCompany() *company {
	return &company{
		farm1: &device{id: "LT-0101", owner: "a.kim", mac: mac(0xa4, 0x8c, 0xdb, 0x10, 0x01, 0x01), hostname: "LT-0101", os: windows,
			addr: addr("10.99.0.11"), remote: true, egress: netip.AddrPortFrom(farmEgress, 51820), arrive: hm(8, 2), leave: hm(18, 55)},
		farm2: &device{id: "LT-0102", owner: "b.lee", mac: mac(0xa4, 0x8c, 0xdb, 0x10, 0x01, 0x02), hostname: "LT-0102", os: windows,
			addr: addr("10.99.0.12"), remote: true, egress: netip.AddrPortFrom(farmEgress, 37411), arrive: hm(8, 4), leave: hm(18, 57)},
		london: &device{id: "LT-0042", owner: "e.walsh", mac: mac(0x3c, 0x22, 0xfb, 0x42, 0x00, 0x42), hostname: "LT-0042", os: macOS,
			addr: addr("10.99.0.42"), remote: true, egress: netip.AddrPortFrom(londonEgress, 41641), arrive: hm(8, 31), leave: hm(18, 20)},
		rustdesk: &device{id: "LT-0103", owner: "c.ortiz", mac: mac(0x00, 0x14, 0x22, 0x10, 0x01, 0x03), hostname: "LT-0103", vendorClass: "MSFT 5.0",
			os: windows, addr: addr("10.10.1.103"), arrive: hm(8, 47), leave: hm(17, 52)},
		proxy: &device{id: "LT-0104", owner: "d.novak", mac: mac(0xa4, 0x8c, 0xdb, 0x10, 0x01, 0x04), hostname: "LT-0104", vendorClass: "MSFT 5.0",
			os: windows, addr: addr("10.10.1.104"), arrive: hm(8, 39), leave: hm(17, 31)},
		kvm: &device{mac: mac(0xdc, 0xa6, 0x32, 0x5e, 0x1f, 0x07), hostname: "pikvm", vendorClass: "dhcpcd-10.0.6:Linux-6.6.45-1-rpi-ARCH:aarch64:BCM2835",
			os: linux, addr: addr("10.10.7.20"), arrive: hm(8, 0), leave: hm(18, 58)},
		printer: &device{id: "PR-0301", owner: "facilities", mac: mac(0x38, 0xca, 0x84, 0x30, 0x03, 0x01), hostname: "PR-0301",
			vendorClass: "Hewlett-Packard JetDirect", os: linux, addr: printer, arrive: hm(8, 3), leave: hm(18, 59)},
		others: []*device{
			{id: "LT-0105", owner: "f.haddad", mac: mac(0x3c, 0x22, 0xfb, 0x10, 0x01, 0x05), hostname: "Farahs-MacBook-Pro", os: macOS,
				addr: addr("10.10.1.105"), arrive: hm(8, 12), leave: hm(17, 5)},
			{id: "LT-0106", owner: "g.ito", mac: mac(0x38, 0xca, 0x84, 0x10, 0x01, 0x06), hostname: "LT-0106", vendorClass: "MSFT 5.0", os: windows,
				addr: addr("10.10.1.106"), arrive: hm(9, 1), leave: hm(18, 10)},
			{id: "LT-0107", owner: "h.moreau", mac: mac(0xf0, 0x18, 0x98, 0x10, 0x01, 0x07), hostname: "Helenes-MacBook-Air", os: macOS,
				addr: addr("10.10.1.107"), arrive: hm(8, 55), leave: hm(16, 48)},
			{id: "LT-0108", owner: "i.rossi", mac: mac(0xa4, 0x8c, 0xdb, 0x10, 0x01, 0x08), hostname: "LT-0108", vendorClass: "MSFT 5.0", os: windows,
				addr: addr("10.10.1.108"), arrive: hm(8, 20), leave: hm(17, 40)},
			{id: "LT-0109", owner: "j.chen", mac: mac(0x3c, 0x22, 0xfb, 0x10, 0x01, 0x09), hostname: "Jians-MacBook-Pro", os: macOS,
				addr: addr("10.10.1.109"), arrive: hm(9, 14), leave: hm(18, 32)},
			{id: "DT-0201", owner: "reception", mac: mac(0x00, 0x14, 0x22, 0x20, 0x02, 0x01), hostname: "DT-0201", vendorClass: "MSFT 5.0", os: windows,
				addr: addr("10.10.2.201"), arrive: hm(8, 6), leave: hm(17, 15)},
			{id: "DT-0202", owner: "finance", mac: mac(0x38, 0xca, 0x84, 0x20, 0x02, 0x02), hostname: "DT-0202", vendorClass: "MSFT 5.0", os: windows,
				addr: addr("10.10.2.202"), arrive: hm(8, 25), leave: hm(17, 45)},
			{id: "LT-0110", owner: "k.obi", mac: mac(0xa4, 0x8c, 0xdb, 0x10, 0x01, 0x10), hostname: "LT-0110", os: windows,
				addr: addr("10.99.0.20"), remote: true, egress: netip.AddrPortFrom(addr("203.0.113.131"), 51820), arrive: hm(8, 35), leave: hm(17, 20)},
			{id: "LT-0111", owner: "l.park", mac: mac(0x3c, 0x22, 0xfb, 0x10, 0x01, 0x11), hostname: "LT-0111", os: macOS,
				addr: addr("10.99.0.21"), remote: true, egress: netip.AddrPortFrom(addr("203.0.113.166"), 60211), arrive: hm(9, 5), leave: hm(18, 40)},
		},
	}
}

// all lists the devices in a fixed order.
func (c *company) all() []*device {
	return append([]*device{c.farm1, c.farm2, c.london, c.rustdesk, c.proxy, c.kvm, c.printer}, c.others...)
}

// inventoryCSV is the demo inventory (format: sensor/inventory). Remote
// devices are listed with their VPN tunnel address, which the sensor sees
// them by.
func (c *company) inventoryCSV() []byte {
	var b strings.Builder
	b.WriteString("# edgeward demo inventory: the company's devices, all assigned to the New York office\n")
	b.WriteString("id,owner,assigned_site,assigned_country,home_timezone,macs,hostnames,ips\n")
	for _, d := range c.all() {
		if d.id == "" {
			continue // the IP-KVM was never inventoried
		}
		ips := ""
		if d.remote {
			ips = d.addr.String()
		}
		fmt.Fprintf(&b, "%s,%s,%s,US,%s,%s,%s,%s\n", d.id, d.owner, site, homeTZ, d.mac, d.hostname, ips)
	}
	return []byte(b.String())
}

// session is one line of the VPN session feed (format: docs/egress.md).
type session struct {
	Inner     string `json:"inner"`
	Outer     string `json:"outer"`
	Peer      string `json:"peer,omitempty"`
	Device    string `json:"device,omitempty"`
	FirstSeen string `json:"first_seen"`
	LastSeen  string `json:"last_seen,omitempty"`
}

// sessionsJSONL is the VPN session feed: one session per remote device,
// from a few minutes before its first flow to a few after its last.
func (c *company) sessionsJSONL(day time.Time) ([]byte, error) {
	var b strings.Builder
	b.WriteString("# edgeward demo: corporate VPN sessions of the day (inner tunnel address -> outer public address)\n")
	for _, d := range c.all() {
		if !d.remote {
			continue
		}
		s := session{
			Inner: d.addr.String(), Outer: d.egress.String(), Peer: d.owner, Device: d.id,
			FirstSeen: day.Add(time.Duration((d.arrive - 3) * float64(time.Minute))).UTC().Format(time.RFC3339),
			LastSeen:  day.Add(time.Duration((d.leave + 3) * float64(time.Minute))).UTC().Format(time.RFC3339),
		}
		line, err := json.Marshal(s)
		if err != nil {
			return nil, fmt.Errorf("session of %s: %w", d.id, err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}
