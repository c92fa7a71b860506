package demo

import (
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/edgeward/edgeward/internal/synth"
)

// workday adds an ordinary day of d's traffic: DHCP on arrival at the
// office, Slack open all day, an update, a meeting or two, and browsing,
// SaaS, lookups and time checks at random moments until it leaves.
func (g *gen) workday(d *device, busy float64) {
	r := g.stream("workday/" + d.id + d.hostname)
	start, end := d.arrive, d.leave
	if !d.remote {
		g.dhcp(d, g.at(start))
	}
	t := g.dns(d, g.at(start+0.2), slackSocket.name, slackSocket.addr)
	f := g.flow(d, t, synth.TLS, netip.AddrPortFrom(slackSocket.addr, 443), rtt(r, 8*time.Millisecond, 14*time.Millisecond))
	f.TLS, f.RequestBytes, f.ResponseBytes = browser(d, slackSocket.name), 180, 420
	g.session(f, g.at(end-1), 30*time.Second)

	g.update(d, r, g.at(start+10+r.Float64()*(end-start-60)))
	for range r.IntN(3) {
		at := start + 30 + r.Float64()*(end-start-90)
		g.meeting(d, r, g.at(at), time.Duration(25+r.IntN(35))*time.Minute)
	}
	for m := start + 1; ; {
		m += r.ExpFloat64() * 3 / busy
		if m > end-2 {
			return
		}
		g.activity(d, r, g.at(m))
	}
}

// activity is one thing a user does at t.
func (g *gen) activity(d *device, r *rand.Rand, t time.Time) {
	switch x := r.Float64(); {
	case x < 0.62:
		g.visit(d, r, t, webServices[r.IntN(len(webServices))])
	case x < 0.77: // background lookups: prefetch, telemetry
		for range 1 + r.IntN(3) {
			s := webServices[r.IntN(len(webServices))]
			t = g.dns(d, t, s.name, s.addr).Add(time.Duration(r.IntN(400)) * time.Millisecond)
		}
	case x < 0.88: // chat and mail clients syncing
		s := []service{webServices[9], webServices[13], webServices[14], webServices[6]}[r.IntN(4)]
		f := g.flow(d, t, synth.TLS, netip.AddrPortFrom(s.addr, 443), rtt(r, 8*time.Millisecond, 80*time.Millisecond))
		f.TLS, f.RequestBytes, f.ResponseBytes, f.Exchanges = browser(d, s.name), size(r, 900, 0.6, 20000), size(r, 3000, 1, 200000), 1+r.IntN(3)
		g.add(f)
	case x < 0.94:
		c := httpChecks[r.IntN(len(httpChecks))]
		t = g.dns(d, t, c.name, c.addr)
		f := g.flow(d, t, synth.HTTP, netip.AddrPortFrom(c.addr, 80), rtt(r, 5*time.Millisecond, 30*time.Millisecond))
		f.HTTP, f.ResponseBytes, f.End = &synth.HTTPSpec{Host: c.name, Path: c.path, UserAgent: c.ua}, size(r, 600, 0.5, 4000), synth.EndFIN
		g.add(f)
	case x < 0.97:
		t = g.dns(d, t, ntpServer.name, ntpServer.addr)
		f := g.flow(d, t, synth.UDPGeneric, netip.AddrPortFrom(ntpServer.addr, 123), rtt(r, 6*time.Millisecond, 12*time.Millisecond))
		f.RequestBytes, f.ResponseBytes = 48, 48
		f.ClientPayload = []byte{0x23, 0, 0x0a, 0xec} // NTPv4 client, poll 10, precision -20
		f.ServerPayload = []byte{0x24, 3, 0x0a, 0xe9}
		g.add(f)
	default:
		// A page that keeps loading: several pages of one site.
		s := webServices[r.IntN(len(webServices))]
		for range 2 + r.IntN(4) {
			g.visit(d, r, t, s)
			t = t.Add(time.Duration(5+r.IntN(60)) * time.Second)
		}
	}
}

// visit is a page load: maybe a lookup first, then TLS or QUIC.
func (g *gen) visit(d *device, r *rand.Rand, t time.Time, s service) {
	if r.Float64() < 0.6 {
		t = g.dns(d, t, s.name, s.addr)
	}
	server := netip.AddrPortFrom(s.addr, 443)
	kind := synth.TLS
	if s.quic && d.os != macOS && r.Float64() < 0.6 {
		kind = synth.QUIC
	}
	f := g.flow(d, t, kind, server, rtt(r, 6*time.Millisecond, 90*time.Millisecond))
	f.TLS = browser(d, s.name)
	if kind == synth.QUIC {
		f.TLS = &synth.TLSSpec{SNI: s.name, ALPN: []string{"h3"}, GREASE: true}
		f.QUIC = &synth.QUICSpec{LargeHello: r.Float64() < 0.4}
	}
	f.RequestBytes, f.ResponseBytes, f.Exchanges = size(r, 700, 0.7, 60000), size(r, 25000, 1.3, 4<<20), exchanges(r)
	f.End = synth.End(r.IntN(2)) // FIN or RST
	g.add(f)
}

// update is the operating system checking for and downloading an update.
func (g *gen) update(d *device, r *rand.Rand, t time.Time) {
	svcs := windowsUpdate
	switch d.os {
	case macOS:
		svcs = macUpdate
	case linux:
		return
	}
	for i, s := range svcs {
		t = g.dns(d, t, s.name, s.addr)
		f := g.flow(d, t, synth.TLS, netip.AddrPortFrom(s.addr, 443), rtt(r, 5*time.Millisecond, 25*time.Millisecond))
		f.TLS, f.RequestBytes, f.ResponseBytes = tool(s.name), size(r, 1500, 0.3, 8000), size(r, 40000, 0.5, 200000)
		if i == len(svcs)-1 {
			f.ResponseBytes = size(r, 9<<20, 0.5, 30<<20)
		}
		g.add(f)
		t = t.Add(time.Duration(2+r.IntN(20)) * time.Second)
	}
}

// meeting is a video call: signalling over TLS and media over UDP.
func (g *gen) meeting(d *device, r *rand.Rand, t time.Time, length time.Duration) {
	t = g.dns(d, t, "zoom.us", webServices[15].addr)
	f := g.flow(d, t, synth.TLS, netip.AddrPortFrom(webServices[15].addr, 443), rtt(r, 10*time.Millisecond, 20*time.Millisecond))
	f.TLS, f.RequestBytes, f.ResponseBytes = browser(d, "zoom.us"), 400, 900
	g.session(f, t.Add(length), 20*time.Second)
	m := g.flow(d, t.Add(2*time.Second), synth.UDPGeneric, netip.AddrPortFrom(zoomMedia.addr, 8801), f.RTT)
	m.RequestBytes, m.ResponseBytes = 1100+r.IntN(200), 1200+r.IntN(200)
	// RTP-like media header: version 2, dynamic payload type, SSRC
	m.ClientPayload = []byte{0x80, 0x62, 0x00, 0x01, 0x00, 0x00, 0x00, 0xa0, 0x5e, 0x11, 0x7a, 0x02}
	m.ServerPayload = []byte{0x80, 0x62, 0x00, 0x01, 0x00, 0x00, 0x00, 0xa0, 0x6b, 0x03, 0x19, 0x44}
	g.session(m, t.Add(length), time.Second)
}
