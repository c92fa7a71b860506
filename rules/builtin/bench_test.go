package builtin_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/cputime"
	"github.com/edgeward/edgeward/pipeline"
	"github.com/edgeward/edgeward/rules"
)

// enriched is a flow and the enrichment the pipeline would set on it.
type enriched struct {
	rec  *flow.Record
	strs map[string]string
	ints map[string]int64
	flag map[string]bool
}

// benchMix is a day at a small company's gateway, mostly benign: office
// and remote (VPN) laptops browsing SaaS and CDNs (TLS, QUIC), DNS, a few
// LAN flows, and one flow in a hundred from a remote-access, VPN or tunnel
// tool. Every flow carries the enrichment a loaded GeoIP, ASN and
// anonymizer database gives it.
func benchMix() []enriched {
	base := time.Date(2025, 3, 4, 14, 0, 0, 0, time.UTC)
	names := []string{"www.google.com", "outlook.office365.com", "slack.com", "github.com",
		"d3kxy1.cloudfront.net", "api.zoom.us", "update.microsoft.com", "www.nytimes.com",
		"s3.amazonaws.com", "teams.microsoft.com", "fonts.gstatic.com", "www.salesforce.com"}
	countries := []string{"US", "US", "US", "IE", "DE"}
	asns := []int64{15169, 8075, 16509, 13335, 54113, 14618}
	apps := []struct{ app, cat, src string }{
		{"anydesk", "remote_access", "sni"}, {"tailscale", "vpn", "payload"},
		{"ssh", "remote_access", "payload"}, {"nordvpn", "vpn", "sni"}, {"ngrok", "tunnel", "sni"},
	}
	var out []enriched
	for i := range 4096 {
		t := base.Add(time.Duration(i) * 150 * time.Millisecond)
		remote := i%10 < 3 // a third of the laptops work from home
		dev := &flow.Device{IP: netip.AddrFrom4([4]byte{10, 10, 0, byte(20 + i%40)}),
			MAC: flow.MAC{0x3c, 0x22, 0xfb, 0, 0, byte(i % 40)}, Vendor: "Apple, Inc.",
			ID: fmt.Sprintf("LT-%04d", i%40), Owner: "someone", AssignedSite: "nyc",
			AssignedCountry: "US", HomeTimezone: "America/New_York", MatchedBy: "mac"}
		rec := &flow.Record{
			Schema: flow.Schema, Start: t, End: t.Add(2 * time.Second), DurationS: 2,
			EndReason: flow.EndFIN, Proto: "tcp", Direction: "outbound",
			Src:    flow.Endpoint{IP: dev.IP, Port: uint16(40000 + i), Packets: 12, Bytes: 2400, PayloadBytes: 1800},
			Dst:    flow.Endpoint{IP: netip.AddrFrom4([4]byte{93, 184, byte(i), byte(i >> 8)}), Port: 443, Packets: 14, Bytes: 18000, PayloadBytes: 17000, Name: names[i%len(names)], NameSource: "sni"},
			Sensor: &flow.Sensor{ID: "gw-nyc-1", Site: "nyc"},
			Device: dev,
			TCP:    &flow.TCP{SrcFlags: flow.FlagSYN | flow.FlagACK | flow.FlagFIN, DstFlags: flow.FlagSYN | flow.FlagACK | flow.FlagFIN, History: "ShADadFf"},
			TLS:    &flow.TLS{SNI: names[i%len(names)], Version: "1.3"},
		}
		if remote {
			dev.IP = netip.AddrFrom4([4]byte{10, 99, 0, byte(10 + i%40)})
			dev.MAC, dev.Vendor, dev.MatchedBy = flow.MAC{}, "", "ip"
			rec.Src.IP = dev.IP
			rec.Egress = &flow.Egress{IP: netip.AddrFrom4([4]byte{203, 0, 113, byte(i % 40)}), Port: 51820, Source: "wireguard", Peer: "key"}
		}
		switch {
		case i%8 == 1: // DNS to the office resolver
			rec.Proto, rec.Direction, rec.TCP, rec.TLS = "udp", "internal", nil, nil
			rec.Dst = flow.Endpoint{IP: netip.MustParseAddr("10.10.0.2"), Port: 53, Packets: 1, Bytes: 120}
			rec.DNS = &flow.DNS{Query: names[i%len(names)], QType: "A", RCode: "NOERROR"}
		case i%8 == 2: // QUIC
			rec.Proto, rec.TCP = "udp", nil
			rec.QUIC = &flow.QUIC{Version: "1"}
		case i%50 == 3: // LAN file share
			rec.Direction, rec.TLS = "internal", nil
			rec.Dst = flow.Endpoint{IP: netip.MustParseAddr("10.10.0.5"), Port: 445, Bytes: 90000}
		}
		if i%100 == 7 {
			a := apps[(i/100)%len(apps)]
			rec.App, rec.AppCategory, rec.AppSource = a.app, a.cat, a.src
		}
		e := enriched{rec: rec, strs: map[string]string{}, ints: map[string]int64{}, flag: map[string]bool{}}
		if rec.Direction == "outbound" {
			e.strs["dst.geo.country"] = countries[i%len(countries)]
			e.ints["dst.as.number"] = asns[i%len(asns)]
			e.strs["dst.as.org"] = "Some Network"
			for _, f := range pipeline.AnonFlags {
				e.flag["dst.anon."+f] = false
			}
		}
		if rec.Egress != nil {
			e.strs["egress.geo.country"] = "US"
			e.ints["egress.as.number"] = 7922
			e.strs["egress.as.org"] = "Comcast"
			for _, f := range pipeline.AnonFlags {
				e.flag["egress.anon."+f] = false
			}
		}
		out = append(out, e)
	}
	return out
}

// setter applies one enrichment value to an input.
type setter func(*rules.Input)

// inputs turns the mix into engine inputs for a schema.
func inputs(b testing.TB, s *rules.Schema, mix []enriched) []*rules.Input {
	b.Helper()
	sets := setters(b, s, mix)
	var out []*rules.Input
	for i, e := range mix {
		in := &rules.Input{}
		in.Reset(e.rec)
		for _, f := range sets[i] {
			f(in)
		}
		out = append(out, in)
	}
	return out
}

// setters is, per flow of the mix, what the enrichment stage sets.
func setters(b testing.TB, s *rules.Schema, mix []enriched) [][]setter {
	b.Helper()
	handle := func(name string) rules.Handle {
		h, ok := s.Handle(name)
		if !ok {
			b.Fatalf("no field %s", name)
		}
		return h
	}
	var out [][]setter
	for _, e := range mix {
		var fs []setter
		for k, v := range e.strs {
			h := handle(k)
			fs = append(fs, func(in *rules.Input) { in.SetString(h, v) })
		}
		for k, v := range e.ints {
			h := handle(k)
			fs = append(fs, func(in *rules.Input) { in.SetInt(h, v) })
		}
		for k, v := range e.flag {
			h := handle(k)
			fs = append(fs, func(in *rules.Input) { in.SetBool(h, v) })
		}
		out = append(out, fs)
	}
	return out
}

// BenchmarkBuiltinPack evaluates the whole built-in pack over the mix and
// encodes every alert as JSON, as the pipeline would publish it. Like the
// pipeline it reuses one Input, setting each flow's enrichment values on
// it. The baseline is the same loop with no rules (the per-flow overhead
// of the engine and of setting the values). flows/cpu-s is flows per
// second of CPU time, i.e. per core.
func BenchmarkBuiltinPack(b *testing.B) {
	s, err := pipeline.Schema()
	if err != nil {
		b.Fatal(err)
	}
	pack := loadPack(b)
	empty, err := rules.Load(nil, rules.Options{Schema: s})
	if err != nil {
		b.Fatal(err)
	}
	mix := benchMix()
	for _, c := range []struct {
		name string
		set  *rules.Set
	}{{"baseline=no-rules", empty}, {"pack", pack}} {
		b.Run(c.name, func(b *testing.B) {
			e := rules.NewEngine(c.set, rules.EngineConfig{})
			sets := setters(b, s, mix)
			var in rules.Input
			starts := make([]time.Time, len(mix))
			for i, m := range mix {
				starts[i] = m.rec.Start
			}
			alerts := 0
			var buf []byte
			emit := func(a *rules.Alert) {
				alerts++
				buf, _ = json.Marshal(a)
			}
			b.ReportAllocs()
			cpu0 := cputime.Now()
			for i := 0; b.Loop(); i++ {
				j := i % len(mix)
				rec := mix[j].rec
				// Keep event time moving forward across passes over the mix.
				t := starts[j].Add(time.Duration(i/len(mix)) * 11 * time.Minute)
				rec.Start, rec.End = t, t.Add(2*time.Second)
				in.Reset(rec)
				for _, f := range sets[j] {
					f(&in)
				}
				e.Evaluate(&in, emit)
			}
			// Per core: flows per second of this process's CPU time (on a
			// shared machine the wall clock also counts other processes).
			if d := (cputime.Now() - cpu0).Seconds(); d > 0 {
				b.ReportMetric(float64(b.N)/d, "flows/cpu-s")
			}
			b.ReportMetric(float64(alerts)/float64(b.N), "alerts/flow")
			_ = buf
		})
	}
}
