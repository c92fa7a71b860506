package enrich

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/cputime"
	"github.com/edgeward/edgeward/internal/geofixture"
)

// benchSetup writes databases the size of a small real one (thousands of
// networks, a City schema with fields to skip) and intel lists of a few
// thousand entries, and builds flows whose destinations follow a Zipf
// distribution over a few thousand public addresses, as a gateway's do:
// internal sources, 60% TLS, some DNS and HTTP, 10% with a VPN egress.
func benchSetup(b *testing.B, cacheSize int, intel bool) (*Enricher, []*flow.Record) {
	rng := rand.New(rand.NewPCG(1, 2))
	countries := []string{"US", "DE", "FR", "GB", "NL", "JP", "CN", "RU", "IN", "BR", "KP", "SG"}
	var nets []geofixture.Network
	var public []netip.Addr
	for i := range 4000 {
		o1 := byte(rng.IntN(222) + 1)
		switch o1 {
		case 10, 100, 127, 169, 172, 192:
			o1 = 8
		}
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{o1, byte(rng.IntN(256)), byte(rng.IntN(256)), 0}), 24)
		nets = append(nets, geofixture.Network{
			Prefix: p, Country: countries[i%len(countries)], ASN: uint32(rng.IntN(65000) + 1), ASOrg: fmt.Sprintf("Org %d", i),
			VPN: i%20 == 0, Hosting: i%7 == 0, Tor: i%97 == 0,
		})
		public = append(public, netip.AddrFrom4([4]byte{o1, p.Addr().As4()[1], p.Addr().As4()[2], byte(rng.IntN(254) + 1)}))
	}
	for i := range 500 {
		a := netip.AddrFrom16([16]byte{0x2a, 0x00, byte(i >> 8), byte(i), 15: 1})
		nets = append(nets, geofixture.Network{Prefix: netip.PrefixFrom(a, 48), Country: countries[i%len(countries)], ASN: uint32(i + 1), ASOrg: "v6 org"})
		public = append(public, a)
	}
	dir := b.TempDir()
	cfg := Config{
		GeoIP:     filepath.Join(dir, "city.mmdb"),
		ASN:       filepath.Join(dir, "asn.mmdb"),
		Anon:      filepath.Join(dir, "anon.mmdb"),
		Intel:     []string{filepath.Join(dir, "threats.txt"), filepath.Join(dir, "remote-access.txt")},
		CacheSize: cacheSize,
	}
	for _, err := range []error{
		geofixture.WriteCity(cfg.GeoIP, nets),
		geofixture.WriteASN(cfg.ASN, nets),
		geofixture.WriteAnon(cfg.Anon, nets),
	} {
		if err != nil {
			b.Fatal(err)
		}
	}
	var threats, remote strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&threats, "%s\n", public[rng.IntN(len(public))])
		fmt.Fprintf(&threats, "bad%d.example.net\n", i)
		fmt.Fprintf(&remote, "relay%d.remote.example\n", i)
	}
	for i := range 100 {
		fmt.Fprintf(&threats, "AS%d\n", rng.IntN(65000)+1)
		fmt.Fprintf(&remote, "t13d%04dh2_%012x_%012x\n", i, rng.Uint64()>>16, rng.Uint64()>>16)
	}
	writeFile(b, cfg.Intel[0], threats.String())
	writeFile(b, cfg.Intel[1], remote.String())
	if !intel {
		cfg.Intel = nil
	}
	e, _ := newEnricher(b, cfg)

	zipf := rand.NewZipf(rng, 1.1, 1, uint64(len(public)-1))
	recs := make([]*flow.Record, 8192)
	for i := range recs {
		r := &flow.Record{
			Src: flow.Endpoint{IP: netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(2)), byte(rng.IntN(150) + 1)})},
			Dst: flow.Endpoint{IP: public[zipf.Uint64()]},
		}
		switch n := rng.IntN(100); {
		case n < 60:
			name := fmt.Sprintf("www%d.site%d.example.com", rng.IntN(3), rng.IntN(500))
			r.Dst.Name = name
			r.TLS = &flow.TLS{SNI: name, JA4: fmt.Sprintf("t13d%04dh2_8daaf6152771_e5627efa2ab1", rng.IntN(20))}
		case n < 80:
			r.DNS = &flow.DNS{Query: fmt.Sprintf("host%d.example.org", rng.IntN(1000)), QType: "A"}
		case n < 85:
			r.HTTP = &flow.HTTP{Method: "GET", Host: fmt.Sprintf("cdn%d.example.net:8080", rng.IntN(50))}
		}
		if rng.IntN(10) == 0 {
			r.Egress = &flow.Egress{IP: public[rng.IntN(200)], Source: "wireguard"}
		}
		recs[i] = r
	}
	var res Result
	for _, r := range recs {
		e.Enrich(r, &res) // warm the cache
	}
	return e, recs
}

// BenchmarkEnrich reports the cost per flow (ns/op) and, since the
// machine may be busy, the CPU time per flow: "hit" is the steady state of
// a gateway (most addresses cached), "hit-no-intel" the same without intel
// lists (the address part alone), "miss" the same flows with a cache too
// small to help: the cost of the databases themselves, the baseline the
// cache is measured against.
func BenchmarkEnrich(b *testing.B) {
	for _, bc := range []struct {
		name  string
		cache int
		intel bool
	}{{"hit", 0, true}, {"hit-no-intel", 0, false}, {"miss", 1, true}} {
		b.Run(bc.name, func(b *testing.B) {
			e, recs := benchSetup(b, bc.cache, bc.intel)
			var r Result
			b.ReportAllocs()
			i := 0
			var cpu0 time.Duration
			for b.Loop() {
				if i == 0 {
					cpu0 = cputime.Now()
				}
				e.Enrich(recs[i%len(recs)], &r)
				i++
			}
			if cpu := cputime.Now() - cpu0; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(i), "cpu-ns/flow")
			}
			l, h := e.cache.counts()
			b.ReportMetric(float64(h)/float64(l), "hit-ratio")
		})
	}
	b.Run("hit-parallel", func(b *testing.B) {
		e, recs := benchSetup(b, 0, true)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			var r Result
			i := rand.IntN(len(recs))
			for pb.Next() {
				e.Enrich(recs[i%len(recs)], &r)
				i++
			}
		})
	})
}
