// Package demo owns the `edgeward demo` scenario: one synthetic working day
// at a small company in New York, seen by the sensor on its office gateway
// (which is also its VPN server), in which a laptop-farm story plays out
// among ordinary traffic. Build writes everything the sensor and pipeline
// need to replay that day: the capture (made with internal/synth), demo
// GeoIP, ASN and anonymizer databases (internal/geofixture), the device
// inventory and the VPN session feed, plus the list of story elements and
// the built-in rules each must raise.
//
// The background (browsing, DNS, SaaS, updates, calls) runs during every
// owner's working hours, 08:00 to 19:00 New York time, to networks the
// databases place in the US, Ireland or Germany under their real AS
// numbers. Story addresses are documentation addresses (RFC 5737) with
// documentation AS numbers (RFC 5398). Everything is a pure function of
// Options: the same options write the same bytes.
package demo

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"
	_ "time/tzdata" // the day is laid out in New York time wherever the demo runs

	"github.com/edgeward/edgeward/internal/geofixture"
	"github.com/edgeward/edgeward/internal/synth"
)

// The sensor's identity and the company's home.
const (
	sensorID = "gw-nyc-1"
	site     = "nyc"
	homeTZ   = "America/New_York"
)

// The day the demo plays when Options.Day is zero: a Tuesday.
const defaultYear, defaultMonth, defaultDay = 2026, time.November, 17

// Cutoff is how many payload bytes of each direction of a flow the capture
// keeps, as a capture with a per-connection cutoff does: enough for every
// handshake the sensor reads, while hours-long uploads cost only headers.
const Cutoff = 32 << 10

// Options select where the scenario goes and which variant of the day it
// is.
type Options struct {
	Dir  string // directory the files are written to; created if missing
	Seed int64  // varies the background and the story's details
	// Day's date (year, month and day in its own location) is the day
	// played, in New York; zero means 17 November 2026, a Tuesday.
	Day time.Time
}

// Scenario says what Build wrote and what the story is.
type Scenario struct {
	// Files under Dir.
	Capture, GeoIP, ASN, Anon, Inventory, Sessions string
	SensorID, Site                                 string
	// Internal are the corporate prefixes: the office LAN and the VPN pool.
	Internal []netip.Prefix
	Day      time.Time // midnight starting the day, New York time
	Story    []Element
	Stats    synth.Stats // what the capture holds
}

// Element is one thread of the story.
type Element struct {
	Name    string
	Devices []string // inventory ids of the devices involved (the IP-KVM has none)
	// Addrs are the devices' internal addresses (office LAN or VPN
	// tunnel), which identify the IP-KVM.
	Addrs []netip.Addr
	// MACs are the Ethernet addresses of the devices on the office LAN:
	// a DHCP request, sent before the device has an address, carries only
	// its MAC (device.ip is 0.0.0.0).
	MACs  []string
	Rules []string // built-in rule ids the element must raise
	// MayRaise are rules the element may raise as well: the contract
	// leaves them optional.
	MayRaise []string
	EgressIP string // when the story is about egress: the address the alert must name
	Country  string // and its country
}

// File names under Options.Dir.
const (
	CaptureFile   = "demo.pcap"
	GeoIPFile     = "demo-country.mmdb"
	ASNFile       = "demo-asn.mmdb"
	AnonFile      = "demo-anonymous-ip.mmdb"
	InventoryFile = "inventory.csv"
	SessionsFile  = "vpn-sessions.jsonl"
)

// Build writes the scenario's files under opts.Dir and describes them.
func Build(opts Options) (*Scenario, error) {
	if opts.Dir == "" {
		return nil, errors.New("demo: no directory to write to")
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	ny, err := time.LoadLocation(homeTZ)
	if err != nil {
		return nil, fmt.Errorf("demo: loading %s: %w", homeTZ, err)
	}
	midnight := dayIn(opts.Day, ny)

	path := func(name string) string { return filepath.Join(opts.Dir, name) }
	sc := &Scenario{
		Capture: path(CaptureFile), GeoIP: path(GeoIPFile), ASN: path(ASNFile), Anon: path(AnonFile),
		Inventory: path(InventoryFile), Sessions: path(SessionsFile),
		SensorID: sensorID, Site: site, Internal: []netip.Prefix{officeLAN, vpnPool}, Day: midnight,
	}

	c := newCompany()
	g := newGen(opts.Seed, midnight)
	g.farmLaptop(c.farm1, 0)
	g.farmLaptop(c.farm2, 7)
	g.ipKVM(c.kvm)
	g.rustdeskSelfHosted(c.rustdesk)
	g.proxyUploads(c.proxy)
	for _, d := range append([]*device{c.farm1, c.farm2, c.london, c.rustdesk, c.proxy}, c.others...) {
		busy := 1.0
		if d == c.farm1 || d == c.farm2 {
			busy = 0.5 // somebody far away keeps the laptop looking used
		}
		g.workday(d, busy)
	}
	g.printerDay(c.printer)
	sc.Story = c.story()

	synth.SortByStart(g.flows)
	if sc.Stats, err = writeCapture(sc.Capture, g.flows, uint64(opts.Seed)); err != nil {
		return nil, err
	}
	sessions, err := c.sessionsJSONL(midnight)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	for _, w := range []struct {
		path string
		data []byte
	}{
		{sc.Inventory, c.inventoryCSV()},
		{sc.Sessions, sessions},
	} {
		if err := os.WriteFile(w.path, w.data, 0o644); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
	}
	for _, w := range []struct {
		path  string
		write func(string, []geofixture.Network) error
	}{
		{sc.GeoIP, geofixture.WriteCountry},
		{sc.ASN, geofixture.WriteASN},
		{sc.Anon, geofixture.WriteAnon},
	} {
		if err := w.write(w.path, networks); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
	}
	return sc, nil
}

// dayIn is midnight in loc starting t's date, or the default day's when t
// is zero.
func dayIn(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.Date()
	if t.IsZero() {
		y, m, d = defaultYear, defaultMonth, defaultDay
	}
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

func writeCapture(path string, flows []synth.Flow, seed uint64) (synth.Stats, error) {
	f, err := os.Create(path)
	if err != nil {
		return synth.Stats{}, fmt.Errorf("demo: %w", err)
	}
	st, err := synth.Render(slices.Values(flows), f, nil, synth.Options{Seed: seed, Cutoff: Cutoff})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return st, fmt.Errorf("demo: writing %s: %w", path, err)
	}
	return st, nil
}

// story is the list of elements and the rules each must raise (the
// contract between this scenario and the built-in rule pack).
func (c *company) story() []Element {
	return []Element{
		{
			Name:    "two laptops behind one residential IP",
			Devices: []string{c.farm1.id, c.farm2.id}, Addrs: []netip.Addr{c.farm1.addr, c.farm2.addr},
			Rules:    []string{"laptop_farm.shared_egress_ip", "remote_access.anydesk", "vpn.consumer_vpn"},
			MayRaise: []string{"remote_access.long_session", "remote_access.multiple_tools"},
			EgressIP: farmEgress.String(), Country: "US",
		},
		{
			Name:  "a Raspberry Pi IP-KVM on the office LAN reaching Tailscale",
			Addrs: []netip.Addr{c.kvm.addr}, MACs: []string{c.kvm.mac.String()},
			Rules: []string{"ipkvm.device_on_lan", "tunnel.mesh_vpn"},
		},
		{
			Name:    "RustDesk to a self-hosted relay on a hosting network",
			Devices: []string{c.rustdesk.id}, Addrs: []netip.Addr{c.rustdesk.addr}, MACs: []string{c.rustdesk.mac.String()},
			Rules:    []string{"remote_access.rustdesk_selfhosted"},
			MayRaise: []string{"remote_access.long_session"},
		},
		{
			Name:    "hours of uploads to proxy networks in China and Russia",
			Devices: []string{c.proxy.id}, Addrs: []netip.Addr{c.proxy.addr}, MACs: []string{c.proxy.mac.String()},
			Rules: []string{"geo_egress.watchlist_hosting"},
		},
		{
			Name:    "the New York laptop working from London",
			Devices: []string{c.london.id}, Addrs: []netip.Addr{c.london.addr},
			Rules:    []string{"laptop_farm.egress_country_mismatch"},
			EgressIP: londonEgress.String(), Country: "GB",
		},
	}
}

// printerDay is the printer's DHCP lease and its time checks.
func (g *gen) printerDay(d *device) {
	r := g.stream("printer")
	g.dhcp(d, g.at(d.arrive))
	for m := d.arrive + 1; m < d.leave; m += 60 + r.Float64()*10 {
		t := g.dns(d, g.at(m), ntpServer.name, ntpServer.addr)
		f := g.flow(d, t, synth.UDPGeneric, netip.AddrPortFrom(ntpServer.addr, 123), 9*time.Millisecond)
		f.RequestBytes, f.ResponseBytes = 48, 48
		f.ClientPayload, f.ServerPayload = []byte{0x23, 0, 0x0a, 0xec}, []byte{0x24, 3, 0x0a, 0xe9}
		g.add(f)
	}
}
