package enrich

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/geofixture"
	"github.com/edgeward/edgeward/internal/syncbuf"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var fixture = []geofixture.Network{
	{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: "DE", ASN: 64500, ASOrg: "Example Hosting GmbH", VPN: true, Hosting: true},
	{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Country: "NL", ASN: 64501, ASOrg: "Onion Transit", Tor: true},
	{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Country: "US", ASN: 64502, ASOrg: "Corp ISP"},
	{Prefix: netip.MustParsePrefix("2001:db8:1::/48"), Country: "JP", ASN: 64503, ASOrg: "Example IX", ResidentialProxy: true, PublicProxy: true},
	// Private space in the databases proves that it is not looked up.
	{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Country: "ZZ", ASN: 64999, VPN: true},
	{Prefix: netip.MustParsePrefix("fd00::/8"), Country: "ZZ", ASN: 64999, VPN: true},
}

// dbs writes every fixture database into dir.
type dbs struct{ country, city, flat, asn, anon string }

func writeDBs(t testing.TB, dir string) dbs {
	t.Helper()
	d := dbs{
		country: filepath.Join(dir, "GeoIP2-Country.mmdb"),
		city:    filepath.Join(dir, "GeoIP2-City.mmdb"),
		flat:    filepath.Join(dir, "dbip-country.mmdb"),
		asn:     filepath.Join(dir, "GeoLite2-ASN.mmdb"),
		anon:    filepath.Join(dir, "GeoIP2-Anonymous-IP.mmdb"),
	}
	for _, w := range []struct {
		path  string
		write func(string, []geofixture.Network) error
	}{
		{d.country, geofixture.WriteCountry},
		{d.city, geofixture.WriteCity},
		{d.flat, geofixture.WriteFlatCountry},
		{d.asn, geofixture.WriteASN},
		{d.anon, geofixture.WriteAnon},
	} {
		if err := w.write(w.path, fixture); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func flowRec(src, dst string) *flow.Record {
	return &flow.Record{
		Src: flow.Endpoint{IP: netip.MustParseAddr(src), Port: 50000},
		Dst: flow.Endpoint{IP: netip.MustParseAddr(dst), Port: 443},
	}
}

func withEgress(r *flow.Record, ip string) *flow.Record {
	r.Egress = &flow.Egress{IP: netip.MustParseAddr(ip), Source: "wireguard"}
	return r
}

func newEnricher(t testing.TB, cfg Config) (*Enricher, *syncbuf.Buffer) {
	t.Helper()
	var logs syncbuf.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e, &logs
}

var (
	de     = Side{Country: "DE"}
	asnDE  = Side{ASN: 64500, ASOrg: "Example Hosting GmbH"}
	allDE  = Side{Country: "DE", ASN: 64500, ASOrg: "Example Hosting GmbH", Anon: Anon{VPN: true, Hosting: true}, AnonKnown: true}
	anonNo = Side{AnonKnown: true}
)

func TestEnrich(t *testing.T) {
	d := writeDBs(t, t.TempDir())
	tests := []struct {
		name string
		cfg  Config
		rec  *flow.Record
		want Result
	}{
		{"country v4", Config{GeoIP: d.country}, flowRec("10.1.2.3", "192.0.2.10"), Result{Dst: de}},
		{"country v6", Config{GeoIP: d.country}, flowRec("fd00::1", "2001:db8:1::5"), Result{Dst: Side{Country: "JP"}}},
		{"country mapped v4", Config{GeoIP: d.country}, flowRec("10.1.2.3", "::ffff:192.0.2.10"), Result{Dst: de}},
		{"country not listed", Config{GeoIP: d.country}, flowRec("10.1.2.3", "8.8.8.8"), Result{}},
		{"city", Config{GeoIP: d.city}, flowRec("10.1.2.3", "198.51.100.1"), Result{Dst: Side{Country: "NL"}}},
		{"flat country_code", Config{GeoIP: d.flat}, flowRec("10.1.2.3", "203.0.113.9"), Result{Dst: Side{Country: "US"}}},
		{"flat v6", Config{GeoIP: d.flat}, flowRec("fd00::1", "2001:db8:1:ffff::1"), Result{Dst: Side{Country: "JP"}}},
		{"asn", Config{ASN: d.asn}, flowRec("10.1.2.3", "192.0.2.10"), Result{Dst: asnDE}},
		{"asn v6", Config{ASN: d.asn}, flowRec("fd00::1", "2001:db8:1::5"), Result{Dst: Side{ASN: 64503, ASOrg: "Example IX"}}},
		{"anon flags", Config{Anon: d.anon}, flowRec("10.1.2.3", "198.51.100.1"), Result{Dst: Side{Anon: Anon{Tor: true}, AnonKnown: true}}},
		{"anon v6", Config{Anon: d.anon}, flowRec("fd00::1", "2001:db8:1::5"), Result{Dst: Side{Anon: Anon{PublicProxy: true, ResidentialProxy: true}, AnonKnown: true}}},
		{"anon not listed", Config{Anon: d.anon}, flowRec("10.1.2.3", "203.0.113.9"), Result{Dst: anonNo}},
		{"all databases", Config{GeoIP: d.country, ASN: d.asn, Anon: d.anon}, flowRec("10.1.2.3", "192.0.2.10"), Result{Dst: allDE}},
		{"both sides public", Config{GeoIP: d.country}, flowRec("203.0.113.7", "192.0.2.10"), Result{Src: Side{Country: "US"}, Dst: de}},
		{"private skipped", Config{GeoIP: d.country, ASN: d.asn, Anon: d.anon}, flowRec("10.1.2.3", "fd00::1"), Result{}},
		{"loopback and link-local", Config{GeoIP: d.country}, flowRec("127.0.0.1", "fe80::1"), Result{}},
		{"cgnat skipped", Config{GeoIP: d.country}, flowRec("100.64.1.1", "192.0.2.1"), Result{Dst: de}},
		{"egress", Config{GeoIP: d.country, ASN: d.asn, Anon: d.anon}, withEgress(flowRec("10.8.0.2", "203.0.113.9"), "192.0.2.77"),
			Result{Dst: Side{Country: "US", ASN: 64502, ASOrg: "Corp ISP", AnonKnown: true}, Egress: allDE}},
		{"egress v6", Config{GeoIP: d.country}, withEgress(flowRec("10.8.0.2", "203.0.113.9"), "2001:db8:1::77"),
			Result{Dst: Side{Country: "US"}, Egress: Side{Country: "JP"}}},
		{"no databases", Config{}, flowRec("203.0.113.7", "192.0.2.10"), Result{}},
		{"zero addresses", Config{GeoIP: d.country}, &flow.Record{}, Result{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newEnricher(t, tc.cfg)
			for _, pass := range []string{"miss", "hit"} {
				var r Result
				e.Enrich(tc.rec, &r)
				if r != tc.want {
					t.Errorf("%s:\n got %+v\nwant %+v", pass, r, tc.want)
				}
			}
		})
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	d := writeDBs(t, dir)
	corrupt := filepath.Join(dir, "corrupt.mmdb")
	if err := os.WriteFile(corrupt, []byte("this is not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.mmdb")
	tests := []struct {
		name     string
		cfg      Config
		wantErr  string // "" = no error
		warnings int    // with missing in them
	}{
		{"all present", Config{GeoIP: d.country, ASN: d.asn, Anon: d.anon}, "", 0},
		{"missing geoip", Config{GeoIP: missing, ASN: d.asn}, "", 1},
		{"missing intel", Config{Intel: []string{missing}}, "", 1},
		{"corrupt", Config{GeoIP: corrupt}, "geoip database " + corrupt, 0},
		{"corrupt anon", Config{Anon: corrupt}, "anon database " + corrupt, 0},
		{"asn as geoip", Config{GeoIP: d.asn}, `is a "GeoLite2-ASN" database, want a Country, City or country_code database`, 0},
		{"country as asn", Config{ASN: d.country}, "asn database " + d.country, 0},
		{"country as anon", Config{Anon: d.city}, "anon database " + d.city, 0},
		{"negative cache", Config{CacheSize: -1}, "cache size -1", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs syncbuf.Buffer
			tc.cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			e, err := New(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			if n := strings.Count(logs.String(), "level=WARN"); n != tc.warnings || n > 0 && !strings.Contains(logs.String(), missing) {
				t.Errorf("%d warnings, want %d naming %s:\n%s", n, tc.warnings, missing, logs.String())
			}
			var r Result
			e.Enrich(flowRec("10.0.0.1", "192.0.2.1"), &r) // must not crash
		})
	}
}

const intelThreats = `# mixed kinds in one file
192.0.2.0/25
2001:db8:1::/64
anydesk.com      # label boundary: relay.anydesk.com, not notanydesk.com
*.trycloudflare.com
AS64502
t13d1516h2_8daaf6152771_e5627efa2ab1
10.0.0.0/33
`

const intelAllow = `198.51.100.1
64501
EXAMPLE.org.
t13d1516h2_8daaf6152771_ZZZZ
`

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestIntel(t *testing.T) {
	dir := t.TempDir()
	d := writeDBs(t, dir)
	lists := filepath.Join(dir, "lists")
	if err := os.Mkdir(lists, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(lists, "threats.txt"), intelThreats)
	writeFile(t, filepath.Join(lists, ".threats.txt.swp"), "192.0.2.0/24\n") // hidden: ignored
	aList := filepath.Join(dir, "a-list.lst")
	writeFile(t, aList, intelAllow)

	e, logs := newEnricher(t, Config{ASN: d.asn, Intel: []string{lists, aList}})
	for _, want := range []string{
		"threats.txt:8:1: \\\"10.0.0.0/33\\\" is not an IP address or CIDR",
		"a-list.lst:4:1: \\\"t13d1516h2_8daaf6152771_ZZZZ\\\" is not a JA4 fingerprint",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}

	sni := func(r *flow.Record, name string) *flow.Record {
		r.TLS = &flow.TLS{SNI: name}
		return r
	}
	named := func(r *flow.Record, name string) *flow.Record {
		r.Dst.Name = name
		return r
	}
	withMeta := func(r *flow.Record, set func(*flow.Record)) *flow.Record {
		set(r)
		return r
	}
	tests := []struct {
		name string
		rec  *flow.Record
		want Intel
	}{
		{"dst ip", flowRec("10.0.0.1", "192.0.2.5"), Intel{IP: "threats"}},
		{"dst ip outside", flowRec("10.0.0.1", "192.0.2.200"), Intel{}},
		{"src ip", flowRec("2001:db8:1::9", "fd00::1"), Intel{IP: "threats"}},
		{"egress ip", withEgress(flowRec("10.8.0.2", "10.0.0.1"), "198.51.100.1"), Intel{IP: "a-list", ASN: "a-list"}},
		{"first list by name", flowRec("198.51.100.1", "192.0.2.5"), Intel{IP: "threats", ASN: "a-list"}},
		{"asn of dst", flowRec("10.0.0.1", "203.0.113.1"), Intel{ASN: "threats"}},
		{"asn plain number", flowRec("10.0.0.1", "198.51.100.9"), Intel{ASN: "a-list"}},
		{"domain dst.name", named(flowRec("10.0.0.1", "10.0.0.2"), "relay-7.AnyDesk.com"), Intel{Domain: "threats"}},
		{"domain label boundary", named(flowRec("10.0.0.1", "10.0.0.2"), "notanydesk.com"), Intel{}},
		{"domain sni", sni(flowRec("10.0.0.1", "10.0.0.2"), "x.trycloudflare.com"), Intel{Domain: "threats"}},
		{"domain http host with port", withMeta(flowRec("10.0.0.1", "10.0.0.2"), func(r *flow.Record) {
			r.HTTP = &flow.HTTP{Method: "CONNECT", Host: "www.example.org:443"}
		}), Intel{Domain: "a-list"}},
		{"domain dns query", withMeta(flowRec("10.0.0.1", "10.0.0.53"), func(r *flow.Record) {
			r.DNS = &flow.DNS{Query: "example.org", QType: "A"}
		}), Intel{Domain: "a-list"}},
		{"ja4", withMeta(flowRec("10.0.0.1", "10.0.0.2"), func(r *flow.Record) {
			r.TLS = &flow.TLS{JA4: "t13d1516h2_8daaf6152771_e5627efa2ab1"}
		}), Intel{JA4: "threats"}},
		{"nothing", sni(flowRec("10.0.0.1", "10.0.0.2"), "example.com"), Intel{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Result
			e.Enrich(tc.rec, &r)
			if r.Intel != tc.want {
				t.Errorf("got %+v, want %+v", r.Intel, tc.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		in   string
		kind int
		bad  bool
	}{
		{"192.0.2.1", kindIP, false},
		{"192.0.2.0/24", kindIP, false},
		{"2001:db8::/32", kindIP, false},
		{"999.1.1.1", kindIP, false}, // rejected by the prefix set
		{"AS13335", kindASN, false},
		{"as13335", kindASN, false},
		{"13335", kindASN, false},
		{"anydesk.com", kindDomain, false},
		{"_dmarc.example.com", kindDomain, false},
		{"q13d0310h3_55b375c5d22e_cd85d2d88918", kindJA4, false},
		{"x13d0310h3_55b375c5d22e_cd85d2d88918", 0, true},
	}
	for _, tc := range tests {
		kind, err := classify(tc.in)
		if (err != nil) != tc.bad || !tc.bad && kind != tc.kind {
			t.Errorf("classify(%q) = %s, %v", tc.in, kindNames[kind], err)
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	geo := filepath.Join(dir, "country.mmdb")
	anon := filepath.Join(dir, "anon.mmdb") // appears later
	intel := filepath.Join(dir, "intel.txt")
	if err := geofixture.WriteCountry(geo, fixture); err != nil {
		t.Fatal(err)
	}
	writeFile(t, intel, "192.0.2.1\n")
	reg := prometheus.NewRegistry()
	e, logs := newEnricher(t, Config{GeoIP: geo, Anon: anon, Intel: []string{intel}, Debounce: 10 * time.Millisecond, CacheSize: 128, Registry: reg})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	rec := flowRec("10.0.0.1", "192.0.2.1")
	get := func() Result {
		var r Result
		e.Enrich(rec, &r)
		return r
	}
	if r := get(); r.Dst.Country != "DE" || r.Dst.AnonKnown || r.Intel.IP != "intel" {
		t.Fatalf("before reload: %+v", r)
	}
	reloads := func(db, result string) float64 {
		return testutil.ToFloat64(e.m.reloads.WithLabelValues(db, result))
	}

	t.Run("replace", func(t *testing.T) {
		moved := []geofixture.Network{{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: "FR"}}
		if err := geofixture.WriteCountry(geo, moved); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the new country database", func() bool { return get().Dst.Country == "FR" })
	})
	t.Run("appears", func(t *testing.T) {
		if err := geofixture.WriteAnon(anon, fixture); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the anonymizer database", func() bool { return get().Dst.Anon.VPN })
	})
	t.Run("corrupt keeps old", func(t *testing.T) {
		tmp := filepath.Join(dir, ".tmp")
		writeFile(t, tmp, "garbage")
		if err := os.Rename(tmp, geo); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the failed reload", func() bool { return reloads(roleGeo, "error") == 1 })
		if r := get(); r.Dst.Country != "FR" {
			t.Errorf("after a failed reload: %+v", r)
		}
		if !strings.Contains(logs.String(), "keeping the one in use") {
			t.Errorf("failed reload not logged:\n%s", logs)
		}
	})
	t.Run("intel in place", func(t *testing.T) {
		writeFile(t, intel, "192.0.2.2\n")
		waitFor(t, "the new intel list", func() bool { return get().Intel.IP == "" })
	})
	if n := reloads(roleGeo, "ok"); n != 1 {
		t.Errorf("geoip reloads ok = %v, want 1", n)
	}
	// os.WriteFile truncates, then writes: one or two reloads.
	if n := reloads(roleIntel, "ok"); n < 1 {
		t.Errorf("intel reloads ok = %v, want at least 1", n)
	}
	if n, err := testutil.GatherAndCount(reg, "edgeward_enrich_database_build_epoch_seconds"); err != nil || n != 2 {
		t.Errorf("build epoch gauges: %d, %v", n, err)
	}
}

func TestMetrics(t *testing.T) {
	d := writeDBs(t, t.TempDir())
	reg := prometheus.NewRegistry()
	e, _ := newEnricher(t, Config{GeoIP: d.country, Registry: reg})
	var r Result
	for range 3 {
		e.Enrich(flowRec("10.0.0.1", "192.0.2.1"), &r)
	}
	e.Enrich(flowRec("10.0.0.1", "8.8.8.8"), &r)
	want := `
# HELP edgeward_enrich_cache_hits_total Address lookups answered from the cache.
# TYPE edgeward_enrich_cache_hits_total counter
edgeward_enrich_cache_hits_total 5
# HELP edgeward_enrich_lookups_total Address lookups (three per flow at most: src, dst, egress).
# TYPE edgeward_enrich_lookups_total counter
edgeward_enrich_lookups_total 8
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "edgeward_enrich_lookups_total", "edgeward_enrich_cache_hits_total"); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(e.m.dbLookups[0][found]); got != 1 {
		t.Errorf("found lookups = %v, want 1", got)
	}
	if got := testutil.ToFloat64(e.m.dbLookups[0][notFound]); got != 1 {
		t.Errorf("not_found lookups = %v, want 1", got)
	}
	if _, err := New(Config{Registry: reg}); err == nil {
		t.Error("registering twice: no error")
	}
}

func TestEnrichDoesNotAllocate(t *testing.T) {
	dir := t.TempDir()
	d := writeDBs(t, dir)
	intel := filepath.Join(dir, "intel.txt")
	writeFile(t, intel, intelThreats)
	e, _ := newEnricher(t, Config{GeoIP: d.city, ASN: d.asn, Anon: d.anon, Intel: []string{intel}})
	rec := withEgress(flowRec("10.0.0.1", "192.0.2.1"), "2001:db8:1::1")
	rec.Dst.Name = "Relay.AnyDesk.com"
	rec.TLS = &flow.TLS{SNI: "relay.anydesk.com", JA4: "t13d1516h2_8daaf6152771_e5627efa2ab1"}
	var r Result
	e.Enrich(rec, &r)
	if n := testing.AllocsPerRun(100, func() { e.Enrich(rec, &r) }); n != 0 {
		t.Errorf("Enrich allocates %v times on a cache hit", n)
	}
}

func TestConcurrentReload(t *testing.T) {
	dir := t.TempDir()
	geo := filepath.Join(dir, "country.mmdb")
	if err := geofixture.WriteCountry(geo, fixture); err != nil {
		t.Fatal(err)
	}
	e, _ := newEnricher(t, Config{GeoIP: geo, CacheSize: 64})
	stop := enrichWhile(t, e, 4)
	for i := range 10 {
		c := []string{"DE", "FR"}[i%2]
		if err := geofixture.WriteCountry(geo, []geofixture.Network{{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: c}}); err != nil {
			t.Fatal(err)
		}
		e.reloadDatabase(0)
	}
	stop()
}

// enrichWhile runs n goroutines that enrich flows to 192.0.2.0/24 and
// check that each gets a country of one of the databases the test
// swaps (DE or FR), until the returned stop is called.
func enrichWhile(t *testing.T, e *Enricher, n int) (stop func()) {
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range n {
		wg.Go(func() {
			var r Result
			rec := flowRec("10.0.0.1", "192.0.2.1")
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				rec.Dst.IP = netip.AddrFrom4([4]byte{192, 0, 2, byte(i + w)})
				e.Enrich(rec, &r)
				if c := r.Dst.Country; c != "DE" && c != "FR" {
					t.Errorf("country %q", c)
					return
				}
			}
		})
	}
	return func() {
		close(done)
		wg.Wait()
	}
}

// TestAnonLookupFailed: an address whose anonymizer record cannot be read
// (a damaged database) is not known to be a non-anonymizer: AnonKnown
// stays false, so rules that test the flags see them absent, not false.
func TestAnonLookupFailed(t *testing.T) {
	d := writeDBs(t, t.TempDir())
	b, err := os.ReadFile(d.anon)
	if err != nil {
		t.Fatal(err)
	}
	// The data section follows the search tree and 16 zero bytes, and
	// ends where the metadata starts; 0xff bytes there are maps too large
	// for the records left, which the reader refuses.
	db, err := openDatabase(roleAnon, d.anon)
	if err != nil {
		t.Fatal(err)
	}
	md := db.r.Metadata
	db.r.Close()
	start := int(md.NodeCount*md.RecordSize/4) + 16
	end := bytes.LastIndex(b, []byte("\xab\xcd\xefMaxMind.com"))
	for i := start; i < end; i++ {
		b[i] = 0xff
	}
	damaged := filepath.Join(t.TempDir(), "damaged.mmdb")
	if err := os.WriteFile(damaged, b, 0o644); err != nil {
		t.Fatal(err)
	}
	e, _ := newEnricher(t, Config{Anon: damaged})
	var r Result
	e.Enrich(flowRec("10.1.2.3", "198.51.100.1"), &r)
	if r.Dst.AnonKnown {
		t.Errorf("a failed lookup gave %+v", r.Dst)
	}
}
