package demo

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/edgeward/edgeward/internal/synth"
)

// gen collects the day's flows. Every device and every story thread draws
// from its own random stream, so changing one leaves the others' traffic
// as it was.
type gen struct {
	seed  uint64
	day   time.Time // midnight in New York
	flows []synth.Flow
	ports map[*device]uint16
}

func newGen(seed int64, day time.Time) *gen {
	return &gen{seed: uint64(seed), day: day, ports: map[*device]uint16{}}
}

// stream returns the random stream named name.
func (g *gen) stream(name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(g.seed, h.Sum64()))
}

// at is a time of the day, in minutes after midnight New York time.
func (g *gen) at(minute float64) time.Time {
	return g.day.Add(time.Duration(minute * float64(time.Minute)))
}

// port is the device's next ephemeral port.
func (g *gen) port(d *device) uint16 {
	lo := uint16(49152)
	if d.os == linux {
		lo = 32768
	}
	p, ok := g.ports[d]
	if !ok || p < lo {
		p = lo + uint16(fnv32(d.mac[:])%8000)
	}
	g.ports[d] = p + 1
	return p
}

func fnv32(b []byte) uint32 {
	h := fnv.New32a()
	h.Write(b)
	return h.Sum32()
}

// flow starts a flow from d at t to server: addresses, MACs and a
// plausible round trip. Remote devices' packets come out of the VPN
// tunnel, which has no Ethernet addresses: the synthesizer writes zeros,
// which the sensor treats as "no MAC".
func (g *gen) flow(d *device, t time.Time, kind synth.Kind, server netip.AddrPort, rtt time.Duration) synth.Flow {
	f := synth.Flow{Start: t, Kind: kind, Client: netip.AddrPortFrom(d.addr, g.port(d)), Server: server, RTT: rtt}
	if !d.remote {
		f.ClientMAC, f.ServerMAC = d.mac, gatewayMAC
	}
	return f
}

func (g *gen) add(f synth.Flow) { g.flows = append(g.flows, f) }

// dns adds a lookup of name answered with a, and returns when the answer
// is back.
func (g *gen) dns(d *device, t time.Time, name string, a netip.Addr) time.Time {
	f := g.flow(d, t, synth.DNS, netip.AddrPortFrom(gateway, 53), time.Millisecond)
	if d.remote {
		f.RTT = 2 * time.Millisecond
	}
	f.DNS = &synth.DNSSpec{Name: name, Type: synth.TypeA, Answers: []synth.DNSAnswer{{Addr: a, TTL: 300}}}
	g.add(f)
	return t.Add(f.RTT + 5*time.Millisecond)
}

// dhcp adds the device's morning DHCP exchange.
func (g *gen) dhcp(d *device, t time.Time) {
	g.add(synth.Flow{Start: t, Kind: synth.DHCP, ClientMAC: d.mac, ServerMAC: gatewayMAC, Server: netip.AddrPortFrom(gateway, 67),
		RTT:  800 * time.Microsecond,
		DHCP: &synth.DHCPSpec{Addr: d.addr, Hostname: d.hostname, VendorClass: d.vendorClass, Lease: 12 * time.Hour, Prefix: 16}})
}

// browser is the ClientHello of the device's browser; tool that of its
// operating system's own services.
func browser(d *device, sni string) *synth.TLSSpec {
	if d.os == macOS {
		return &synth.TLSSpec{SNI: sni, ALPN: []string{"h2", "http/1.1"}, GREASE: true,
			CipherSuites: []uint16{0x1301, 0x1302, 0x1303, 0xc02c, 0xc02b, 0xcca9, 0xc030, 0xc02f, 0xcca8, 0xc00a, 0xc009, 0xc014, 0xc013, 0x009d, 0x009c, 0x0035, 0x002f},
			Extensions:   []uint16{0, 23, 65281, 10, 11, 16, 5, 13, 18, 51, 45, 43, 27, 21}}
	}
	return &synth.TLSSpec{SNI: sni, ALPN: []string{"h2", "http/1.1"}, GREASE: true}
}

func tool(sni string) *synth.TLSSpec {
	return &synth.TLSSpec{SNI: sni, Extensions: []uint16{0, 10, 11, 13, 23, 35, 43, 45, 51, 65281}}
}

// rtt is a round trip to a server at the given distance.
func rtt(r *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.Int64N(int64(hi-lo)))
}

// size is a heavy-tailed byte count with the given median, capped.
func size(r *rand.Rand, median, sigma float64, limit int) int {
	return max(1, min(int(median*math.Exp(sigma*r.NormFloat64())), limit))
}

// exchanges is a small number of request/response rounds, mostly one.
func exchanges(r *rand.Rand) int {
	n := 1
	for n < 12 && r.Float64() < 0.45 {
		n++
	}
	return n
}

// session adds a long flow of steady exchanges, every interval from start
// to end.
func (g *gen) session(f synth.Flow, end time.Time, interval time.Duration) {
	f.Interval = interval
	f.Exchanges = max(1, int(end.Sub(f.Start)/interval))
	g.add(f)
}
