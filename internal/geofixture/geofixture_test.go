package geofixture

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/oschwald/maxminddb-golang/v2"
)

var nets = []Network{
	{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: "DE", ASN: 64500, ASOrg: "Example Hosting", VPN: true, Hosting: true},
	{Prefix: netip.MustParsePrefix("198.51.100.7/32"), Country: "NL", Tor: true},
	{Prefix: netip.MustParsePrefix("2001:db8:1::/48"), Country: "JP", ASN: 64501, ResidentialProxy: true},
	{Prefix: netip.MustParsePrefix("::ffff:203.0.113.0/120"), Country: "US", ASN: 64502, PublicProxy: true},
}

// record covers every schema the writers produce.
type record struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Registered struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	CountryCode string `maxminddb:"country_code"`
	ASN         uint32 `maxminddb:"autonomous_system_number"`
	ASOrg       string `maxminddb:"autonomous_system_organization"`
	Anonymous   bool   `maxminddb:"is_anonymous"`
	VPN         bool   `maxminddb:"is_anonymous_vpn"`
	Hosting     bool   `maxminddb:"is_hosting_provider"`
	Tor         bool   `maxminddb:"is_tor_exit_node"`
	PublicProxy bool   `maxminddb:"is_public_proxy"`
	ResProxy    bool   `maxminddb:"is_residential_proxy"`
}

func TestWriters(t *testing.T) {
	tests := []struct {
		name   string
		write  func(string, []Network) error
		dbType string
		ip     string
		check  func(r record) bool
	}{
		{"country v4", WriteCountry, "GeoIP2-Country", "192.0.2.9", func(r record) bool { return r.Country.ISOCode == "DE" && r.Registered.ISOCode == "DE" }},
		{"country v4 mapped prefix", WriteCountry, "GeoIP2-Country", "203.0.113.200", func(r record) bool { return r.Country.ISOCode == "US" }},
		{"country v4 mapped address", WriteCountry, "GeoIP2-Country", "::ffff:192.0.2.9", func(r record) bool { return r.Country.ISOCode == "DE" }},
		{"country v6", WriteCountry, "GeoIP2-Country", "2001:db8:1::1", func(r record) bool { return r.Country.ISOCode == "JP" }},
		{"country miss", WriteCountry, "GeoIP2-Country", "192.0.2.0", func(r record) bool { return r.Country.ISOCode == "DE" }},
		{"country not listed", WriteCountry, "GeoIP2-Country", "8.8.8.8", func(r record) bool { return r == record{} }},
		{"city", WriteCity, "GeoIP2-City", "198.51.100.7", func(r record) bool { return r.Country.ISOCode == "NL" }},
		{"asn", WriteASN, "GeoLite2-ASN", "192.0.2.1", func(r record) bool { return r.ASN == 64500 && r.ASOrg == "Example Hosting" }},
		{"asn v6", WriteASN, "GeoLite2-ASN", "2001:db8:1:2::3", func(r record) bool { return r.ASN == 64501 && r.ASOrg == "" }},
		{"asn skipped", WriteASN, "GeoLite2-ASN", "198.51.100.7", func(r record) bool { return r == record{} }},
		{"anon", WriteAnon, "GeoIP2-Anonymous-IP", "192.0.2.1", func(r record) bool {
			return r.Anonymous && r.VPN && r.Hosting && !r.Tor && !r.PublicProxy && !r.ResProxy
		}},
		{"anon tor", WriteAnon, "GeoIP2-Anonymous-IP", "198.51.100.7", func(r record) bool { return r.Anonymous && r.Tor && !r.VPN }},
		{"anon residential v6", WriteAnon, "GeoIP2-Anonymous-IP", "2001:db8:1::9", func(r record) bool { return r.Anonymous && r.ResProxy }},
		{"flat", WriteFlatCountry, "ip-location-db-country", "203.0.113.1", func(r record) bool { return r.CountryCode == "US" && r.Country.ISOCode == "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db.mmdb")
			if err := tc.write(path, nets); err != nil {
				t.Fatal(err)
			}
			db, err := maxminddb.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Verify(); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if db.Metadata.DatabaseType != tc.dbType {
				t.Errorf("database_type = %q, want %q", db.Metadata.DatabaseType, tc.dbType)
			}
			var r record
			if err := db.Lookup(netip.MustParseAddr(tc.ip)).Decode(&r); err != nil {
				t.Fatal(err)
			}
			if !tc.check(r) {
				t.Errorf("%s: unexpected record %+v", tc.ip, r)
			}
		})
	}
}

func TestWriteReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.mmdb")
	if err := WriteCountry(path, nets); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	if err := WriteCountry(path, nets); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(path)
	if !bytes.Equal(first, again) {
		t.Error("same networks gave different bytes")
	}
	if err := WriteCountry(path, nets[:1]); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	if err := WriteCountry(filepath.Join(dir, "x.mmdb"), []Network{{Country: "US"}}); err == nil {
		t.Error("invalid prefix: no error")
	}
	if err := WriteCountry(filepath.Join(dir, "missing", "x.mmdb"), nets); err == nil {
		t.Error("missing directory: no error")
	}
}
