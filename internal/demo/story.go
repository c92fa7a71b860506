package demo

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/edgeward/edgeward/internal/synth"
)

// AnyDesk speaks TLS 1.2 with a self-signed "AnyDesk Client" certificate
// on both ends, which is how network tools recognise it (nDPI, Zeek and
// Suricata rules key on that subject).
func anydeskCert() *synth.CertSpec { return &synth.CertSpec{CommonName: "AnyDesk Client"} }

func anydeskHello(sni string) *synth.TLSSpec {
	return &synth.TLSSpec{SNI: sni, CipherSuites: []uint16{0xc02f, 0xc030, 0xc02b, 0xc02c, 0x009e, 0x009f},
		Extensions: []uint16{0, 10, 11, 13, 23, 65281}, SupportedGroups: []uint16{29, 23, 24}}
}

// farmLaptop is a laptop kept at a "laptop farm" and driven from abroad:
// AnyDesk connected all day with long sessions that stream the screen
// out, and the operator's consumer VPN (Astrill) on top.
func (g *gen) farmLaptop(d *device, shift float64) {
	r := g.stream("farm/" + d.id)
	start, end := d.arrive, d.leave

	t := g.dns(d, g.at(start+0.5), "boot.net.anydesk.com", anydeskBoot)
	f := g.flow(d, t, synth.TLS, netip.AddrPortFrom(anydeskBoot, 6568), rtt(r, 88*time.Millisecond, 96*time.Millisecond))
	f.TLS, f.Cert, f.RequestBytes, f.ResponseBytes = anydeskHello("boot.net.anydesk.com"), anydeskCert(), 120, 90
	g.session(f, g.at(end-1), 30*time.Second)

	// Remote sessions: the laptop's screen goes out, keystrokes come in.
	for _, s := range []struct {
		at, minutes float64
		port        uint16
		up          int
	}{
		{hm(9, 10), 40, 6568, 5000},
		{hm(11, 25), 150, 443, 9000},
		{hm(15, 20), 60, 6568, 5000},
	} {
		relay := netip.AddrFrom4([4]byte{192, 0, 2, byte(140 + r.IntN(12))})
		name := fmt.Sprintf("relay-%08x.net.anydesk.com", r.Uint32())
		t := g.dns(d, g.at(s.at+shift+r.Float64()*5), name, relay)
		f := g.flow(d, t, synth.TLS, netip.AddrPortFrom(relay, s.port), rtt(r, 88*time.Millisecond, 96*time.Millisecond))
		f.TLS, f.Cert = anydeskHello(name), anydeskCert()
		f.RequestBytes, f.ResponseBytes = s.up+r.IntN(2000), 250+r.IntN(300)
		g.session(f, t.Add(time.Duration(s.minutes*float64(time.Minute))), 2*time.Second)
	}

	// Astrill: the app logs in over its API, then tunnels the operator's
	// traffic through its TLS ("StealthVPN") and UDP protocols.
	node := fmt.Sprintf("us-nyc%d.astrill.com", 1+r.IntN(4))
	t = g.dns(d, g.at(start+15+shift+r.Float64()*10), "api.astrill.com", astrillAPI)
	f = g.flow(d, t, synth.TLS, netip.AddrPortFrom(astrillAPI, 443), rtt(r, 12*time.Millisecond, 20*time.Millisecond))
	f.TLS, f.RequestBytes, f.ResponseBytes, f.Exchanges = tool("api.astrill.com"), 900, 4000, 3
	g.add(f)
	t = g.dns(d, t.Add(2*time.Second), node, astrillNode)
	f = g.flow(d, t, synth.TLS, netip.AddrPortFrom(astrillNode, 443), rtt(r, 12*time.Millisecond, 20*time.Millisecond))
	f.TLS, f.RequestBytes, f.ResponseBytes = tool(node), 1200+r.IntN(600), 8000+r.IntN(4000)
	g.session(f, t.Add(time.Duration(60+r.IntN(30))*time.Minute), 3*time.Second)

	t = g.dns(d, g.at(hm(14, 5)+shift+r.Float64()*20), node, astrillNode)
	u := g.flow(d, t, synth.UDPGeneric, netip.AddrPortFrom(astrillNode, 8443), rtt(r, 12*time.Millisecond, 20*time.Millisecond))
	u.RequestBytes, u.ResponseBytes = 700+r.IntN(400), 2600+r.IntN(800)
	g.session(u, t.Add(time.Duration(30+r.IntN(20))*time.Minute), 2*time.Second)
}

// Tailscale disco messages start with a magic and the sender's disco key
// and a nonce (tailscale disco/disco.go); the rest is sealed.
func disco(r *rand.Rand) []byte {
	b := []byte("TS\xf0\x9f\x92\xac")
	for range 32 + 24 + 44 {
		b = append(b, byte(r.Uint32()))
	}
	return b
}

// ipKVM is a Raspberry Pi running PiKVM plugged into an office machine,
// reachable from outside through Tailscale: its control plane, a DERP
// relay, and direct WireGuard on UDP 41641 while someone watches the
// screen.
func (g *gen) ipKVM(d *device) {
	r := g.stream("kvm")
	start, end := d.arrive, d.leave
	g.dhcp(d, g.at(start))

	t := g.dns(d, g.at(start+0.2), ntpServer.name, ntpServer.addr)
	n := g.flow(d, t, synth.UDPGeneric, netip.AddrPortFrom(ntpServer.addr, 123), 8*time.Millisecond)
	n.RequestBytes, n.ResponseBytes = 48, 48
	n.ClientPayload, n.ServerPayload = []byte{0x23, 0, 0x0a, 0xec}, []byte{0x24, 3, 0x0a, 0xe9}
	g.add(n)

	t = g.dns(d, g.at(start+0.5), "controlplane.tailscale.com", tsControl)
	f := g.flow(d, t, synth.TLS, netip.AddrPortFrom(tsControl, 443), rtt(r, 20*time.Millisecond, 30*time.Millisecond))
	f.TLS, f.RequestBytes, f.ResponseBytes = tool("controlplane.tailscale.com"), 150, 260
	g.session(f, g.at(end-1), 30*time.Second)

	t = g.dns(d, g.at(start+0.6), "derp4.tailscale.com", tsDERP)
	f = g.flow(d, t, synth.TLS, netip.AddrPortFrom(tsDERP, 443), rtt(r, 20*time.Millisecond, 30*time.Millisecond))
	f.TLS, f.RequestBytes, f.ResponseBytes = tool("derp4.tailscale.com"), 100, 100
	g.session(f, g.at(end-1), 30*time.Second)

	for _, s := range []struct{ at, minutes float64 }{{hm(10, 5), 40}, {hm(14, 20), 25}, {hm(16, 50), 15}} {
		u := g.flow(d, g.at(s.at+r.Float64()*10), synth.UDPGeneric, netip.AddrPortFrom(tsPeer, 41641), rtt(r, 30*time.Millisecond, 45*time.Millisecond))
		u.Client = netip.AddrPortFrom(d.addr, 41641)
		u.ClientPayload, u.ServerPayload = disco(r), disco(r)
		u.RequestBytes, u.ResponseBytes = 9000+r.IntN(3000), 200
		g.session(u, u.Start.Add(time.Duration(s.minutes*float64(time.Minute))), time.Second)
	}
}

// RustDesk messages are protobufs; over TCP hbb_common's codec frames
// them with the length shifted left by two, the low bits counting the
// extra header bytes. The field numbers here follow the shape of its
// rendezvous protocol, not any one version of it.
func rdFrame(msg []byte) []byte {
	if n := len(msg); n <= 0x3f {
		return append([]byte{byte(n << 2)}, msg...)
	}
	v := uint16(len(msg)<<2 | 1)
	return append([]byte{byte(v), byte(v >> 8)}, msg...)
}

func pb(field int, b []byte) []byte {
	return append([]byte{byte(field<<3 | 2), byte(len(b))}, b...)
}

// rustdeskSelfHosted is a laptop running RustDesk against a relay its
// user set up on a rented server: NAT test on 21115, registration on
// 21116 (UDP, all day), and relayed sessions on 21117.
func (g *gen) rustdeskSelfHosted(d *device) {
	r := g.stream("rustdesk")
	id := []byte(fmt.Sprintf("%09d", 100000000+r.IntN(899999999)))
	start, end := d.arrive+6, d.leave-2
	server := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(rustdeskHost, port) }
	hosting := func() time.Duration { return rtt(r, 95*time.Millisecond, 105*time.Millisecond) }

	f := g.flow(d, g.at(start), synth.TCPGeneric, server(21115), hosting())
	f.ClientPayload = rdFrame(pb(11, pb(1, id)))                                  // test_nat_request
	f.ServerPayload = rdFrame(pb(12, []byte{0x08, 0xb3, 0xa4, 0x03, 0x10, 0x01})) // test_nat_response: port, type
	g.add(f)

	u := g.flow(d, g.at(start+0.1), synth.UDPGeneric, server(21116), f.RTT)
	u.ClientPayload = pb(6, pb(1, id)) // register_peer
	u.ServerPayload = pb(7, []byte{0x08, 0x00})
	u.RequestBytes, u.ResponseBytes = len(u.ClientPayload), len(u.ServerPayload)
	g.session(u, g.at(end), 12*time.Second)

	for _, s := range []struct{ at, minutes float64 }{{hm(10, 15), 45}, {hm(13, 30), 80}, {hm(16, 5), 30}} {
		at := g.at(s.at + r.Float64()*10)
		uuid := fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", r.Uint32(), r.IntN(1<<16), r.IntN(1<<12), r.IntN(1<<12), r.Uint64()&(1<<48-1))
		p := g.flow(d, at, synth.TCPGeneric, server(21116), f.RTT)
		p.ClientPayload = rdFrame(pb(8, pb(1, id))) // punch_hole_request
		p.ServerPayload = rdFrame(pb(9, pb(1, []byte(rustdeskHost.String()))))
		g.add(p)
		s2 := g.flow(d, at.Add(400*time.Millisecond), synth.TCPGeneric, server(21117), f.RTT)
		s2.ClientPayload = rdFrame(pb(16, append(pb(1, id), pb(2, []byte(uuid))...))) // request_relay
		s2.ServerPayload = rdFrame(pb(16, pb(2, []byte(uuid))))
		s2.RequestBytes, s2.ResponseBytes = 7000+r.IntN(3000), 300+r.IntN(200)
		g.session(s2, at.Add(time.Duration(s.minutes*float64(time.Minute))), 2*time.Second)
	}
}

// proxyUploads is a laptop pushing data for hours through proxies on
// hosting networks in China and Russia.
func (g *gen) proxyUploads(d *device) {
	r := g.stream("proxy")
	for _, s := range []struct {
		name     string
		addr     netip.Addr
		rtt      time.Duration
		at, mins float64
	}{
		{"cn2.relaynode.example", proxyCN, 210 * time.Millisecond, hm(10, 50), 185},
		{"msk1.relaynode.example", proxyRU, 115 * time.Millisecond, hm(14, 25), 120},
	} {
		t := g.dns(d, g.at(s.at+r.Float64()*10), s.name, s.addr)
		check := g.flow(d, t, synth.TLS, netip.AddrPortFrom(s.addr, 443), s.rtt)
		check.TLS, check.RequestBytes, check.ResponseBytes = tool(s.name), 300, 1200
		g.add(check)
		f := g.flow(d, t.Add(3*time.Second), synth.TLS, netip.AddrPortFrom(s.addr, 443), s.rtt)
		f.TLS, f.RequestBytes, f.ResponseBytes = tool(s.name), 135000+r.IntN(15000), 1500+r.IntN(1000)
		g.session(f, f.Start.Add(time.Duration(s.mins*float64(time.Minute))), 10*time.Second)
	}
}
