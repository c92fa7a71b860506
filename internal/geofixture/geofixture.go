// Package geofixture writes small MaxMind-format (MMDB) databases for
// tests and the demo: the GeoIP2/GeoLite2 Country, City, ASN and
// Anonymous-IP schemas and the flat country_code schema of the free
// ip-location-db databases, from a list of networks.
//
// Every database is an IPv6 tree with IPv4 mapped into it, so IPv4 and
// IPv6 lookups both work, and reserved ranges (192.0.2.0/24, 2001:db8::/32,
// ...) may be used, so fixtures can stay in documentation space. Files are
// written to a temporary name and renamed into place, so a reader watching
// the path sees one complete replacement, never a partial file.
package geofixture

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Network is one network and everything any of the schemas can say about
// it. Each writer uses the fields its schema has and skips networks for
// which they are all zero.
type Network struct {
	Prefix  netip.Prefix
	Country string // ISO 3166 alpha-2
	ASN     uint32
	ASOrg   string

	VPN, Hosting, Tor, PublicProxy, ResidentialProxy bool
}

// buildEpoch is fixed so that the same networks always give the same bytes.
const buildEpoch = 1735689600 // 2025-01-01T00:00:00Z

// WriteCountry writes a GeoIP2-Country database: country.iso_code and
// registered_country.iso_code.
func WriteCountry(path string, nets []Network) error {
	return write(path, "GeoIP2-Country", nets, func(n Network) mmdbtype.Map {
		if n.Country == "" {
			return nil
		}
		return mmdbtype.Map{
			"country":            isoCode(n.Country),
			"registered_country": isoCode(n.Country),
		}
	})
}

// WriteCity writes a GeoIP2-City database with the country part of the
// schema (country.iso_code, registered_country.iso_code) and a city name,
// so a reader has to skip fields it does not want.
func WriteCity(path string, nets []Network) error {
	return write(path, "GeoIP2-City", nets, func(n Network) mmdbtype.Map {
		if n.Country == "" {
			return nil
		}
		return mmdbtype.Map{
			"city":               mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String("Somewhere")}},
			"country":            isoCode(n.Country),
			"registered_country": isoCode(n.Country),
		}
	})
}

// WriteASN writes a GeoLite2-ASN database: autonomous_system_number and
// autonomous_system_organization.
func WriteASN(path string, nets []Network) error {
	return write(path, "GeoLite2-ASN", nets, func(n Network) mmdbtype.Map {
		if n.ASN == 0 {
			return nil
		}
		m := mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(n.ASN)}
		if n.ASOrg != "" {
			m["autonomous_system_organization"] = mmdbtype.String(n.ASOrg)
		}
		return m
	})
}

// WriteAnon writes a GeoIP2-Anonymous-IP database. Like the real one it
// lists only anonymous networks, with is_anonymous set and the true flags
// present.
func WriteAnon(path string, nets []Network) error {
	return write(path, "GeoIP2-Anonymous-IP", nets, func(n Network) mmdbtype.Map {
		m := mmdbtype.Map{}
		for key, set := range map[mmdbtype.String]bool{
			"is_anonymous_vpn":     n.VPN,
			"is_hosting_provider":  n.Hosting,
			"is_tor_exit_node":     n.Tor,
			"is_public_proxy":      n.PublicProxy,
			"is_residential_proxy": n.ResidentialProxy,
		} {
			if set {
				m[key] = mmdbtype.Bool(true)
			}
		}
		if len(m) == 0 {
			return nil
		}
		m["is_anonymous"] = mmdbtype.Bool(true)
		return m
	})
}

// WriteFlatCountry writes a database in the flat schema of the
// ip-location-db country databases: {"country_code": "US"}.
func WriteFlatCountry(path string, nets []Network) error {
	return write(path, "ip-location-db-country", nets, func(n Network) mmdbtype.Map {
		if n.Country == "" {
			return nil
		}
		return mmdbtype.Map{"country_code": mmdbtype.String(n.Country)}
	})
}

func isoCode(cc string) mmdbtype.Map {
	return mmdbtype.Map{"iso_code": mmdbtype.String(cc)}
}

func write(path, dbType string, nets []Network, record func(Network) mmdbtype.Map) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            dbType,
		Description:             map[string]string{"en": "edgeward test fixture"},
		BuildEpoch:              buildEpoch,
		IncludeReservedNetworks: true,
		RecordSize:              24,
	})
	if err != nil {
		return fmt.Errorf("geofixture: %s: %w", path, err)
	}
	for i, n := range nets {
		m := record(n)
		if m == nil {
			continue
		}
		p := n.Prefix
		if !p.IsValid() {
			return fmt.Errorf("geofixture: %s: network %d: invalid prefix", path, i)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		p = p.Masked()
		ipnet := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
		if err := tree.Insert(ipnet, m); err != nil {
			return fmt.Errorf("geofixture: %s: network %d (%s): %w", path, i, p, err)
		}
	}
	return writeAtomic(path, tree)
}

func writeAtomic(path string, tree *mmdbwriter.Tree) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return fmt.Errorf("geofixture: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	w := bufio.NewWriter(f)
	if _, err := tree.WriteTo(w); err != nil {
		return fmt.Errorf("geofixture: writing %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("geofixture: writing %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("geofixture: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("geofixture: writing %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("geofixture: %w", err)
	}
	return nil
}
