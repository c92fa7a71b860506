package enrich

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgeward/edgeward/internal/geofixture"
	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// A list file saved with a UTF-8 byte order mark (Windows editors do) keeps
// its first entry: the mark is not part of it.
func TestIntelByteOrderMark(t *testing.T) {
	dir := t.TempDir()
	doms := filepath.Join(dir, "remote-access.txt")
	writeFile(t, doms, "\ufeffanydesk.com\r\nteamviewer.com\r\n")
	ips := filepath.Join(dir, "threats.txt")
	writeFile(t, ips, "\ufeff192.0.2.0/24\r\n")
	e, logs := newEnricher(t, Config{Intel: []string{doms, ips}})
	if n := e.state.Load().intel.skipped; n != 0 {
		t.Errorf("%d entries skipped:\n%s", n, logs)
	}
	rec := flowRec("10.0.0.1", "192.0.2.7")
	rec.Dst.Name = "relay-3.anydesk.com"
	var r Result
	e.Enrich(rec, &r)
	if want := (Intel{IP: "threats", Domain: "remote-access"}); r.Intel != want {
		t.Errorf("got %+v, want %+v", r.Intel, want)
	}
}

// writeMMDB writes a one-network database whose record is rec.
func writeMMDB(t *testing.T, path, dbType string, ipVersion int, prefix string, rec mmdbtype.Map) {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, IPVersion: ipVersion, RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	_, n, err := net.ParseCIDR(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.Insert(n, rec); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestASNTypes(t *testing.T) {
	for name, v := range map[string]mmdbtype.DataType{
		"uint16": mmdbtype.Uint16(64500), "uint64": mmdbtype.Uint64(64500), "int32": mmdbtype.Int32(64500),
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "asn.mmdb")
			writeMMDB(t, p, "GeoLite2-ASN", 6, "192.0.2.0/24", mmdbtype.Map{"autonomous_system_number": v, "autonomous_system_organization": mmdbtype.String("X")})
			e, logs := newEnricher(t, Config{ASN: p})
			var r Result
			e.Enrich(flowRec("10.0.0.1", "192.0.2.1"), &r)
			if r.Dst.ASN != 64500 {
				t.Errorf("got %+v\n%s", r.Dst, logs)
			}
		})
	}
}

func TestEnterpriseAllRoles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ent.mmdb")
	writeMMDB(t, p, "GeoIP2-Enterprise", 6, "192.0.2.0/24", mmdbtype.Map{
		"country": mmdbtype.Map{"iso_code": mmdbtype.String("DE")},
		"traits": mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(64500), "autonomous_system_organization": mmdbtype.String("X"),
			"is_anonymous_vpn": mmdbtype.Bool(true)},
	})
	e, logs := newEnricher(t, Config{GeoIP: p, ASN: p, Anon: p})
	var r Result
	e.Enrich(flowRec("10.0.0.1", "192.0.2.1"), &r)
	if want := (Side{Country: "DE", ASN: 64500, ASOrg: "X", Anon: Anon{VPN: true}, AnonKnown: true}); r.Dst != want {
		t.Errorf("got %+v\n%s", r.Dst, logs)
	}
}

func runEnricher(t *testing.T, e *Enricher) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	time.Sleep(100 * time.Millisecond) // the watch is set up and the reload at start done
}

func intelIP(e *Enricher, ip string) string {
	var r Result
	e.Enrich(flowRec("10.0.0.1", ip), &r)
	return r.Intel.IP
}

// A configured intel directory that does not exist yet is loaded when it
// appears, and from then on reloads when a list in it changes, as one
// that existed at start-up does.
func TestIntelDirectoryAppearsLater(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lists")
	e, logs := newEnricher(t, Config{Intel: []string{dir}, Debounce: 10 * time.Millisecond})
	runEnricher(t, e)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "threats.txt"), "192.0.2.1\n")
	waitFor(t, "the new directory's list", func() bool { return intelIP(e, "192.0.2.1") == "threats" })
	writeFile(t, filepath.Join(dir, "threats.txt"), "192.0.2.2\n")
	deadline := time.Now().Add(3 * time.Second)
	for intelIP(e, "192.0.2.2") != "threats" {
		if time.Now().After(deadline) {
			t.Fatalf("a list changed in the directory that appeared after start-up is never reloaded:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An intel directory replaced as a whole (removed and created again, as
// rsync --delete-after or a deploy script does) keeps being watched, also
// when it is created again at once and gets the old one's inode number
// back (ext4), so that os.SameFile cannot tell it is another directory.
func TestIntelDirectoryRecreated(t *testing.T) {
	for _, pause := range []time.Duration{0, 50 * time.Millisecond} {
		t.Run(pause.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "lists")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, "threats.txt"), "192.0.2.1\n")
			e, logs := newEnricher(t, Config{Intel: []string{dir}, Debounce: 10 * time.Millisecond})
			runEnricher(t, e)
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			time.Sleep(pause)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, "threats.txt"), "192.0.2.2\n")
			time.Sleep(200 * time.Millisecond)
			writeFile(t, filepath.Join(dir, "threats.txt"), "192.0.2.3\n")
			deadline := time.Now().Add(3 * time.Second)
			for intelIP(e, "192.0.2.3") != "threats" {
				if time.Now().After(deadline) {
					t.Fatalf("the recreated directory's list is never reloaded (192.0.2.1: %q, .2: %q):\n%s", intelIP(e, "192.0.2.1"), intelIP(e, "192.0.2.2"), logs)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// A database whose directory does not exist at start-up (geoipupdate has
// not run yet) is loaded when it appears, as docs/enrichment.md says.
func TestDatabaseDirectoryAppearsLater(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "GeoIP")
	geo := filepath.Join(dir, "GeoLite2-Country.mmdb")
	e, logs := newEnricher(t, Config{GeoIP: geo, Debounce: 10 * time.Millisecond})
	runEnricher(t, e)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeDBs(t, dir)
	if err := os.Rename(filepath.Join(dir, "GeoIP2-Country.mmdb"), geo); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		var r Result
		e.Enrich(flowRec("10.0.0.1", "192.0.2.1"), &r)
		if r.Dst.Country == "DE" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the database is never loaded:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An entry that is no IP address, CIDR or domain (an address range, as
// some block lists write them) is reported and skipped, not kept as a
// domain suffix no name can match.
func TestIntelAddressRangeReported(t *testing.T) {
	list := filepath.Join(t.TempDir(), "threats.txt")
	writeFile(t, list, "192.0.2.1-192.0.2.9\n")
	e, logs := newEnricher(t, Config{Intel: []string{list}})
	st := e.state.Load()
	if st.intel.skipped != 1 || st.intel.entries[kindDomain] != 0 {
		t.Errorf("skipped %d, domains %d; want the range skipped:\n%s", st.intel.skipped, st.intel.entries[kindDomain], logs)
	}
}

// A database rewritten in place (truncated, then written), removed and
// written again while flows are enriched: lookups never fail or see a
// country neither file has, and the last file written is the one in use.
func TestReplaceUnderRunningPipeline(t *testing.T) {
	dir := t.TempDir()
	geo := filepath.Join(dir, "country.mmdb")
	bytesOf := func(c string) []byte {
		p := filepath.Join(dir, c+".src")
		if err := geofixtureCountry(p, c); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	de, fr := bytesOf("DE"), bytesOf("FR")
	if err := os.WriteFile(geo, de, 0o644); err != nil {
		t.Fatal(err)
	}
	e, _ := newEnricher(t, Config{GeoIP: geo, Debounce: 5 * time.Millisecond, CacheSize: 64})
	runEnricher(t, e)
	stop := enrichWhile(t, e, 3)
	for i := range 20 {
		b := [][]byte{de, fr}[i%2]
		switch i % 3 {
		case 0: // in place, in two writes
			f, err := os.OpenFile(geo, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(b[:len(b)/2])
			time.Sleep(2 * time.Millisecond)
			f.Write(b[len(b)/2:])
			f.Close()
		case 1:
			os.Remove(geo)
			time.Sleep(10 * time.Millisecond)
			os.WriteFile(geo, b, 0o644)
		case 2:
			tmp := geo + ".tmp"
			os.WriteFile(tmp, b, 0o644)
			os.Rename(tmp, geo)
		}
		time.Sleep(15 * time.Millisecond)
	}
	// The last write was FR (i = 19).
	waitFor(t, "the last file", func() bool {
		var r Result
		e.Enrich(flowRec("10.0.0.1", "192.0.2.200"), &r)
		return r.Dst.Country == "FR"
	})
	stop()
}

func geofixtureCountry(path, cc string) error {
	return geofixture.WriteCountry(path, []geofixture.Network{{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: cc}})
}
