package demo

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor"
	"github.com/edgeward/edgeward/sensor/egress"
	"github.com/edgeward/edgeward/sensor/identity"
	"github.com/edgeward/edgeward/sensor/inventory"
)

// TestBuild builds the scenario twice, checks that the files are the
// same bytes, load with the project's own readers, and that the sensor
// sees in the capture what each story element needs.
func TestBuild(t *testing.T) {
	sc, err := Build(Options{Dir: t.TempDir(), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("deterministic", func(t *testing.T) {
		again, err := Build(Options{Dir: t.TempDir(), Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range [][2]string{{sc.Capture, again.Capture}, {sc.GeoIP, again.GeoIP}, {sc.ASN, again.ASN}, {sc.Anon, again.Anon},
			{sc.Inventory, again.Inventory}, {sc.Sessions, again.Sessions}} {
			a, errA := os.ReadFile(p[0])
			b, errB := os.ReadFile(p[1])
			if errA != nil || errB != nil || !bytes.Equal(a, b) {
				t.Errorf("%s differs between two builds (%v, %v)", filepath.Base(p[0]), errA, errB)
			}
		}
	})
	t.Run("databases", func(t *testing.T) { checkDatabases(t, sc) })
	t.Run("inventory", func(t *testing.T) {
		table, err := inventory.LoadFile(sc.Inventory)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range sc.Story {
			for _, id := range e.Devices {
				d := table.ByID(id)
				if d == nil || d.AssignedSite != "nyc" || d.AssignedCountry != "US" || d.HomeTimezone != "America/New_York" {
					t.Errorf("inventory entry of %s: %+v", id, d)
				}
			}
		}
	})
	t.Run("sessions", func(t *testing.T) {
		src, err := egress.Open(egress.Config{Feeds: []string{sc.Sessions}})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		noon := sc.Day.Add(12 * time.Hour)
		for inner, outer := range map[string]string{"10.99.0.11": "203.0.113.50", "10.99.0.12": "203.0.113.50", "10.99.0.42": "203.0.113.77"} {
			s, ok := src.Store().Lookup(netip.MustParseAddr(inner), noon)
			if !ok || s.Outer.Addr().String() != outer {
				t.Errorf("session of %s at noon: %+v, %v; want outer %s", inner, s, ok, outer)
			}
		}
	})
	t.Run("sensor", func(t *testing.T) { checkSensor(t, sc) })
}

// geo is what the three demo databases say about an address.
type geo struct {
	country string
	asn     uint32
	anon    map[string]bool
}

type dbs struct{ country, asn, anon *maxminddb.Reader }

func openDatabases(t *testing.T, sc *Scenario) dbs {
	t.Helper()
	var d dbs
	for _, o := range []struct {
		path string
		r    **maxminddb.Reader
		typ  string
	}{{sc.GeoIP, &d.country, "GeoIP2-Country"}, {sc.ASN, &d.asn, "GeoLite2-ASN"}, {sc.Anon, &d.anon, "GeoIP2-Anonymous-IP"}} {
		r, err := maxminddb.Open(o.path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		if r.Metadata.DatabaseType != o.typ {
			t.Errorf("%s: database type %q, want %q", o.path, r.Metadata.DatabaseType, o.typ)
		}
		*o.r = r
	}
	return d
}

func (d dbs) lookup(t *testing.T, a netip.Addr) geo {
	t.Helper()
	var c struct {
		Country struct {
			ISOCode string `maxminddb:"iso_code"`
		} `maxminddb:"country"`
	}
	var as struct {
		Number uint32 `maxminddb:"autonomous_system_number"`
	}
	g := geo{anon: map[string]bool{}}
	if err := d.country.Lookup(a).Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := d.asn.Lookup(a).Decode(&as); err != nil {
		t.Fatal(err)
	}
	if err := d.anon.Lookup(a).Decode(&g.anon); err != nil {
		t.Fatal(err)
	}
	g.country, g.asn = c.Country.ISOCode, as.Number
	return g
}

func checkDatabases(t *testing.T, sc *Scenario) {
	d := openDatabases(t, sc)
	tests := []struct {
		addr    string
		country string
		asn     uint32
		anon    []string
	}{
		{"203.0.113.50", "US", 64496, nil},
		{"203.0.113.77", "GB", 64497, nil},
		{"198.51.100.21", "US", 64500, []string{"is_anonymous", "is_anonymous_vpn"}},
		{"198.51.100.70", "DE", 64501, []string{"is_anonymous", "is_hosting_provider"}},
		{"198.51.100.140", "CN", 64502, []string{"is_anonymous", "is_hosting_provider", "is_public_proxy"}},
		{"198.51.100.211", "RU", 64503, []string{"is_anonymous", "is_hosting_provider", "is_public_proxy"}},
		{"142.250.80.36", "US", 15169, nil},
		{"52.96.110.2", "IE", 8075, nil},
		{"3.121.6.180", "DE", 16509, nil},
	}
	for _, tc := range tests {
		g := d.lookup(t, netip.MustParseAddr(tc.addr))
		var flags []string
		for k, v := range g.anon {
			if v {
				flags = append(flags, k)
			}
		}
		slices.Sort(flags)
		if g.country != tc.country || g.asn != tc.asn || !slices.Equal(flags, tc.anon) {
			t.Errorf("%s: %s AS%d %v, want %s AS%d %v", tc.addr, g.country, g.asn, flags, tc.country, tc.asn, tc.anon)
		}
	}
}

// rec is what the tests need of a flow record; the sensor reuses records.
type rec struct {
	start            time.Time
	proto            string
	src, dst         netip.AddrPort
	srcBytes         uint64
	app, appSource   string
	dstName          string
	certSubject      string
	direction        string
	device           flow.Device
	hasDevice        bool
	egressIP, source string
}

func readRecords(t *testing.T, sc *Scenario) []rec {
	t.Helper()
	table, err := inventory.LoadFile(sc.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	src, err := egress.Open(egress.Config{Feeds: []string{sc.Sessions}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cfg := sensor.Config{Identity: identity.Config{Internal: sc.Internal, SensorID: sc.SensorID, Site: sc.Site, Inventory: table, Sessions: src.Store()}}
	var out []rec
	st, err := sensor.ReadFile(context.Background(), sc.Capture, cfg, func(r *flow.Record) {
		x := rec{start: r.Start, proto: r.Proto, src: netip.AddrPortFrom(r.Src.IP, r.Src.Port), dst: netip.AddrPortFrom(r.Dst.IP, r.Dst.Port),
			srcBytes: r.Src.Bytes, app: r.App, appSource: r.AppSource, dstName: r.Dst.Name, direction: r.Direction}
		if r.TLS != nil {
			x.certSubject = r.TLS.CertSubject
		}
		if r.Device != nil {
			x.device, x.hasDevice = *r.Device, true
		}
		if r.Egress != nil {
			x.egressIP, x.source = r.Egress.IP.String(), r.Egress.Source
		}
		if r.Sensor == nil || r.Sensor.ID != sc.SensorID || r.Sensor.Site != sc.Site {
			t.Errorf("record %s: sensor %+v", r.ID, r.Sensor)
		}
		out = append(out, x)
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Errors() != 0 || st.Packets != int64(sc.Stats.Packets) {
		t.Errorf("sensor read %d packets with %d errors, capture has %d", st.Packets, st.Errors(), sc.Stats.Packets)
	}
	return out
}

func checkSensor(t *testing.T, sc *Scenario) {
	records := readRecords(t, sc)
	byAddr := map[netip.Addr][]rec{}
	story := map[netip.Addr]bool{}
	for _, e := range sc.Story {
		for _, a := range e.Addrs {
			story[a] = true
		}
	}
	for _, r := range records {
		if r.hasDevice {
			byAddr[r.device.IP] = append(byAddr[r.device.IP], r)
		}
	}
	// count returns how many of a device's records satisfy ok.
	count := func(a string, ok func(r rec) bool) int {
		n := 0
		for _, r := range byAddr[netip.MustParseAddr(a)] {
			if ok(r) {
				n++
			}
		}
		return n
	}
	app := func(app, source string) func(r rec) bool {
		return func(r rec) bool { return r.app == app && (source == "" || r.appSource == source) }
	}
	tests := []struct {
		name string
		addr string
		ok   func(r rec) bool
		min  int
	}{
		{"LT-0101 AnyDesk by its certificate", "10.99.0.11", func(r rec) bool {
			return r.app == "anydesk" && r.appSource == "cert" && r.certSubject == "CN=AnyDesk Client"
		}, 4},
		{"LT-0102 AnyDesk by its certificate", "10.99.0.12", func(r rec) bool {
			return r.app == "anydesk" && r.appSource == "cert" && r.certSubject == "CN=AnyDesk Client"
		}, 4},
		{"LT-0101 AnyDesk relay port", "10.99.0.11", func(r rec) bool { return r.app == "anydesk" && r.dst.Port() == 6568 }, 3},
		{"LT-0101 Astrill over TLS", "10.99.0.11", app("astrill", "sni"), 2},
		{"LT-0101 Astrill over UDP", "10.99.0.11", func(r rec) bool { return r.app == "astrill" && r.proto == "udp" }, 1},
		{"LT-0102 Astrill over TLS", "10.99.0.12", app("astrill", "sni"), 2},
		{"LT-0102 Astrill over UDP", "10.99.0.12", func(r rec) bool { return r.app == "astrill" && r.proto == "udp" }, 1},
		{"pikvm Tailscale control plane", "10.10.7.20", func(r rec) bool {
			return r.app == "tailscale" && r.dstName == "controlplane.tailscale.com"
		}, 1},
		{"pikvm Tailscale DERP", "10.10.7.20", func(r rec) bool { return r.app == "tailscale" && strings.HasPrefix(r.dstName, "derp") }, 1},
		{"pikvm Tailscale disco on 41641", "10.10.7.20", func(r rec) bool {
			return r.app == "tailscale" && r.appSource == "payload" && r.dst.Port() == 41641
		}, 3},
		{"LT-0103 RustDesk 21115-21117", "10.10.1.103", func(r rec) bool {
			return r.app == "rustdesk" && r.dst.Addr() == rustdeskHost && r.dst.Port() >= 21115 && r.dst.Port() <= 21117 && r.dstName == ""
		}, 10},
		{"LT-0103 RustDesk UDP 21116", "10.10.1.103", func(r rec) bool {
			return r.app == "rustdesk" && r.proto == "udp" && r.dst.Port() == 21116
		}, 1},
		{"LT-0104 to the CN proxy", "10.10.1.104", func(r rec) bool { return r.dst.Addr() == proxyCN }, 30},
		{"LT-0104 to the RU proxy", "10.10.1.104", func(r rec) bool { return r.dst.Addr() == proxyRU }, 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if n := count(tc.addr, tc.ok); n < tc.min {
				t.Errorf("%d matching records of %s, want at least %d", n, tc.addr, tc.min)
			}
		})
	}

	t.Run("device attribution", func(t *testing.T) {
		want := map[string]struct{ id, by string }{
			"10.99.0.11": {"LT-0101", "ip"}, "10.99.0.12": {"LT-0102", "ip"}, "10.99.0.42": {"LT-0042", "ip"},
			"10.10.1.103": {"LT-0103", "mac"}, "10.10.1.104": {"LT-0104", "mac"},
		}
		for a, w := range want {
			rs := byAddr[netip.MustParseAddr(a)]
			if len(rs) == 0 {
				t.Errorf("no records of %s", a)
			}
			for _, r := range rs {
				if r.device.ID != w.id || r.device.MatchedBy != w.by || r.device.AssignedCountry != "US" || r.device.AssignedSite != "nyc" {
					t.Fatalf("%s %s -> %s: device %+v, want %s by %s", r.proto, r.src, r.dst, r.device, w.id, w.by)
				}
			}
		}
		for _, r := range byAddr[netip.MustParseAddr("10.10.7.20")] {
			if r.device.Vendor != "Raspberry Pi Trading Ltd" || r.device.Hostname != "pikvm" || r.device.ID != "" {
				t.Fatalf("%s %s -> %s: device %+v, want an uninventoried Raspberry Pi called pikvm", r.proto, r.src, r.dst, r.device)
			}
		}
	})

	t.Run("egress", func(t *testing.T) {
		want := map[string]string{"10.99.0.11": "203.0.113.50", "10.99.0.12": "203.0.113.50", "10.99.0.42": "203.0.113.77",
			"10.99.0.20": "203.0.113.131", "10.99.0.21": "203.0.113.166"}
		for a, ip := range want {
			for _, r := range byAddr[netip.MustParseAddr(a)] {
				if r.egressIP != ip || r.source != egress.SourceFeed {
					t.Fatalf("%s %s -> %s: egress %s (%s), want %s from the feed", r.proto, r.src, r.dst, r.egressIP, r.source, ip)
				}
			}
		}
		for _, r := range records {
			if r.egressIP != "" && !vpnPool.Contains(r.device.IP) {
				t.Fatalf("%s %s -> %s: egress %s on a device outside the VPN", r.proto, r.src, r.dst, r.egressIP)
			}
		}
	})

	t.Run("upload volume", func(t *testing.T) {
		var up uint64
		for _, r := range byAddr[netip.MustParseAddr("10.10.1.104")] {
			if r.dst.Addr() == proxyCN || r.dst.Addr() == proxyRU {
				up += r.srcBytes
			}
		}
		if up < 200<<20 {
			t.Errorf("LT-0104 uploaded %d MB to the proxies, want hundreds", up>>20)
		}
	})

	t.Run("background", func(t *testing.T) {
		d := openDatabases(t, sc)
		open, close := sc.Day.Add(8*time.Hour), sc.Day.Add(19*time.Hour)
		for _, r := range records {
			if r.start.Before(open) || r.start.After(close) {
				t.Fatalf("%s %s -> %s starts at %s, outside 08:00-19:00 New York", r.proto, r.src, r.dst, r.start.In(sc.Day.Location()))
			}
			if !r.hasDevice || story[r.device.IP] || r.device.IP.IsUnspecified() || r.device.IP == gateway {
				continue
			}
			if r.app != "" {
				t.Errorf("background %s %s -> %s identified as %s (%s)", r.proto, r.src, r.dst, r.app, r.appSource)
			}
			if r.direction != "outbound" {
				continue
			}
			g := d.lookup(t, r.dst.Addr())
			if !slices.Contains([]string{"US", "IE", "DE"}, g.country) || g.asn == 0 || g.asn >= 64496 && g.asn <= 64511 || len(g.anon) > 0 {
				t.Errorf("background %s %s -> %s goes to %s AS%d %v", r.proto, r.src, r.dst, g.country, g.asn, g.anon)
			}
		}
	})
}

func TestDayIn(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	tokyo := time.FixedZone("JST", 9*3600)
	tests := []struct {
		name string
		in   time.Time
		want string
	}{
		{"default", time.Time{}, "2026-11-17T00:00:00-05:00"},
		{"summer time", time.Date(2027, 7, 14, 15, 30, 0, 0, time.UTC), "2027-07-14T00:00:00-04:00"},
		{"date as written", time.Date(2027, 3, 2, 1, 0, 0, 0, tokyo), "2027-03-02T00:00:00-05:00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := dayIn(tc.in, ny).Format(time.RFC3339); got != tc.want {
				t.Errorf("dayIn(%s) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"", filepath.Join(file, "sub")} {
		if _, err := Build(Options{Dir: dir}); err == nil {
			t.Errorf("Build(%q) succeeded", dir)
		}
	}
}

// BenchmarkBuild reports the scenario's packets written per second; the
// demo's time budget is generation plus one sensor pass.
func BenchmarkBuild(b *testing.B) {
	dir := b.TempDir()
	var pkts int
	for b.Loop() {
		sc, err := Build(Options{Dir: dir, Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		pkts += sc.Stats.Packets
	}
	b.ReportMetric(float64(pkts)/b.Elapsed().Seconds(), "pkts/s")
}
