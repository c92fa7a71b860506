package enrich

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Database roles, as they appear in logs and in the "database" label of
// the metrics.
const (
	roleGeo   = "geoip"
	roleASN   = "asn"
	roleAnon  = "anon"
	roleIntel = "intel"
)

var roles = [...]string{roleGeo, roleASN, roleAnon}

// database is one opened MMDB file. It is immutable once opened; a reload
// opens a new one.
type database struct {
	role    string
	path    string
	r       *maxminddb.Reader
	v4only  bool
	stat    os.FileInfo
	errOnce sync.Once // the first failed decode is logged, the rest counted
}

// schema is what the metadata's database_type says a database holds.
type schema int

const (
	schemaUnknown    schema = iota // e.g. ip-location-db: trust the role
	schemaGeo                      // GeoIP2/GeoLite2 Country, City
	schemaASN                      // GeoLite2-ASN, GeoIP2-ISP
	schemaAnon                     // GeoIP2-Anonymous-IP
	schemaEnterprise               // GeoIP2-Enterprise: country, ASN and anonymizer traits
)

func schemaOf(dbType string) schema {
	t := strings.ToLower(dbType)
	switch {
	case strings.Contains(t, "enterprise"):
		return schemaEnterprise
	case strings.Contains(t, "anonymous"):
		return schemaAnon
	case strings.Contains(t, "asn"), strings.Contains(t, "isp"):
		return schemaASN
	case strings.Contains(t, "country"), strings.Contains(t, "city"):
		return schemaGeo
	}
	return schemaUnknown
}

// serves reports whether a database of schema s has the fields of role.
func (s schema) serves(role string) bool {
	switch s {
	case schemaUnknown, schemaEnterprise:
		return true
	case schemaGeo:
		return role == roleGeo
	case schemaASN:
		return role == roleASN
	case schemaAnon:
		return role == roleAnon
	}
	return false
}

var roleWants = map[string]string{
	roleGeo:  "a Country, City or country_code database",
	roleASN:  "an ASN or ISP database",
	roleAnon: "an Anonymous-IP database",
}

// openDatabase reads the file into memory and opens it. It does not map the
// file: a database copied over in place would change under a mapped reader
// (and a truncation would fault), while a copy in memory stays valid until
// the next reload replaces it.
func openDatabase(role, path string) (*database, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s database: %w", role, err) // names the path; still Is(fs.ErrNotExist)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s database: %w", role, err)
	}
	r, err := maxminddb.OpenBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%s database %s: not a MaxMind DB file: %w", role, path, err)
	}
	md := r.Metadata
	if !schemaOf(md.DatabaseType).serves(role) {
		return nil, fmt.Errorf("%s database %s: is a %q database, want %s", role, path, md.DatabaseType, roleWants[role])
	}
	if md.IPVersion != 4 && md.IPVersion != 6 {
		return nil, fmt.Errorf("%s database %s: unsupported ip_version %d", role, path, md.IPVersion)
	}
	return &database{role: role, path: path, r: r, v4only: md.IPVersion == 4, stat: fi}, nil
}

// sameFile reports whether the file at path is still the one loaded.
func (d *database) sameFile(fi os.FileInfo) bool {
	return d != nil && sameStat(d.stat, fi)
}

type isoCode struct {
	ISOCode string `maxminddb:"iso_code"`
}

// mmdbRecord covers every schema enrich reads: fields a database does not have
// stay zero, and fields enrich does not want (names, locations) are
// skipped by the decoder.
type mmdbRecord struct {
	Country           isoCode `maxminddb:"country"`
	RegisteredCountry isoCode `maxminddb:"registered_country"`
	CountryCode       string  `maxminddb:"country_code"` // ip-location-db
	ASN               uint32  `maxminddb:"autonomous_system_number"`
	ASOrg             string  `maxminddb:"autonomous_system_organization"`
	VPN               bool    `maxminddb:"is_anonymous_vpn"`
	Hosting           bool    `maxminddb:"is_hosting_provider"`
	Tor               bool    `maxminddb:"is_tor_exit_node"`
	PublicProxy       bool    `maxminddb:"is_public_proxy"`
	ResidentialProxy  bool    `maxminddb:"is_residential_proxy"`
	Traits            struct {
		ASN              uint32 `maxminddb:"autonomous_system_number"`
		ASOrg            string `maxminddb:"autonomous_system_organization"`
		VPN              bool   `maxminddb:"is_anonymous_vpn"`
		Hosting          bool   `maxminddb:"is_hosting_provider"`
		Tor              bool   `maxminddb:"is_tor_exit_node"`
		PublicProxy      bool   `maxminddb:"is_public_proxy"`
		ResidentialProxy bool   `maxminddb:"is_residential_proxy"`
	} `maxminddb:"traits"`
}

// lookup outcomes, for the metrics.
const (
	found = iota
	notFound
	failed
	nOutcomes
)

var outcomeNames = [nOutcomes]string{"found", "not_found", "error"}

// lookup decodes the record for a into rec. An IPv4-only database
// (ip-location-db ships one per family) knows nothing of IPv6 addresses.
func (d *database) lookup(a netip.Addr, rec *mmdbRecord) (int, error) {
	if d.v4only && !a.Is4() {
		return notFound, nil
	}
	res := d.r.Lookup(a)
	if !res.Found() {
		if err := res.Err(); err != nil {
			return failed, err
		}
		return notFound, nil
	}
	if err := res.Decode(rec); err != nil {
		return failed, err
	}
	return found, nil
}

// fill copies what the database's role provides from rec into s.
func (d *database) fill(rec *mmdbRecord, s *Side) {
	switch d.role {
	case roleGeo:
		s.Country = rec.Country.ISOCode
		if s.Country == "" {
			s.Country = rec.CountryCode
		}
		if s.Country == "" {
			// Anycast and satellite networks have only the country
			// the block is registered to.
			s.Country = rec.RegisteredCountry.ISOCode
		}
	case roleASN:
		s.ASN, s.ASOrg = rec.ASN, rec.ASOrg
		if s.ASN == 0 {
			s.ASN, s.ASOrg = rec.Traits.ASN, rec.Traits.ASOrg
		}
	case roleAnon:
		t := &rec.Traits
		s.Anon = Anon{
			VPN:              rec.VPN || t.VPN,
			Hosting:          rec.Hosting || t.Hosting,
			Tor:              rec.Tor || t.Tor,
			PublicProxy:      rec.PublicProxy || t.PublicProxy,
			ResidentialProxy: rec.ResidentialProxy || t.ResidentialProxy,
		}
		s.AnonKnown = true
	}
}
