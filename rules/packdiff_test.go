package rules

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/rules/builtin"
)

// packSchema is the pipeline's schema (pipeline.EnrichmentFields), which
// this package cannot import.
func packSchema(t testing.TB) *Schema {
	t.Helper()
	var extra []ExtraField
	for _, side := range []string{"src", "dst", "egress"} {
		extra = append(extra,
			ExtraField{Name: side + ".geo.country", Kind: KindString},
			ExtraField{Name: side + ".as.number", Kind: KindInt},
			ExtraField{Name: side + ".as.org", Kind: KindString})
		for _, flag := range []string{"vpn", "hosting", "tor", "public_proxy", "residential_proxy"} {
			extra = append(extra, ExtraField{Name: side + ".anon." + flag, Kind: KindBool})
		}
	}
	for _, k := range []string{"ip", "domain", "asn", "ja4"} {
		extra = append(extra, ExtraField{Name: "intel." + k, Kind: KindString})
	}
	s, err := NewSchema(extra...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// packOverrides fills the pack's empty lists with values the random flows
// use, so that the rules' allow lists take part.
const packOverrides = `
- list: corporate_egress
  items: [198.51.100.0/28]
- list: corporate_vpn_endpoints
  items: [198.51.100.2, 10.99.0.1]
- list: corporate_proxies
  items: [10.0.0.3]
- list: sanctioned_remote_access_apps
  items: [teamviewer]
- list: remote_access_allowed_cidrs
  items: [192.0.2.0/28]
- list: laptop_farm_exempt_devices
  items: [LT-1]
- list: ipkvm_allowed_macs
  items: ["dc:a6:32:00:00:01"]
- list: shared_egress_allowed
  items: [203.0.113.1]
- list: consumer_vpn_cidrs
  items: [192.0.2.64/26, "2001:db8:64::/48"]
`

// TestPackGuardsDifferential: on random flows, every built-in rule (the
// pack alone and with its empty lists filled) matches through the index
// and native checks exactly when its CEL condition and exceptions say so.
func TestPackGuardsDifferential(t *testing.T) {
	s := packSchema(t)
	for _, tc := range []struct {
		name  string
		paths func() []string
	}{
		{"pack", func() []string { return nil }},
		{"filled", func() []string {
			dir := t.TempDir()
			writeFile(t, dir, "site.yml", packOverrides)
			return []string{dir}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := Load(tc.paths(), Options{Schema: s, Builtin: builtin.FS()})
			if err != nil {
				t.Fatal(err)
			}
			e := NewEngine(set, EngineConfig{})
			rng := rand.New(rand.NewPCG(1, 2))
			matched := map[string]int{}
			var reused Input
			for i := range 20000 {
				rec, enrich := randomPackFlow(rng, s)
				fresh := &Input{Record: rec}
				enrich(fresh)
				reused.Reset(rec)
				enrich(&reused)
				for _, in := range []*Input{fresh, &reused} {
					e.act.reset(in)
					set.index.candidates(in, e.hits, e.cand)
					for _, r := range set.rules {
						want := celMatch(e, r)
						admitted := false
						e.cand.each(func(j int) { admitted = admitted || j == r.idx })
						got := admitted && e.match(r)
						if got != want {
							t.Fatalf("flow %d: rule %s: engine %v (admitted %v), CEL %v; guards %q\nrecord %+v\ndevice %+v egress %+v sensor %+v dns %+v",
								i, r.ID, got, admitted, want, set.Guards()[r.ID], rec, rec.Device, rec.Egress, rec.Sensor, rec.DNS)
						}
						if want && in == fresh {
							matched[r.ID]++
						}
					}
				}
			}
			for _, r := range set.rules {
				if matched[r.ID] == 0 {
					t.Logf("rule %s never matched", r.ID)
				}
			}
		})
	}
}

// celMatch is the rule's condition evaluated by CEL alone, and its
// exceptions: what the rule means, without index or native checks.
func celMatch(e *Engine, r *Rule) bool {
	if r.prg == nil || !r.Enabled {
		return false
	}
	out, _, err := r.prg.Eval(&e.act)
	return err == nil && out == types.True && !e.excepted(r)
}

func pick[T any](rng *rand.Rand, vs ...T) T { return vs[rng.IntN(len(vs))] }

func randomPackFlow(rng *rand.Rand, s *Schema) (*flow.Record, func(*Input)) {
	addr := func() netip.Addr {
		return pick(rng,
			netip.Addr{}, netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("10.0.0.5"),
			netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.200"),
			netip.MustParseAddr("192.0.2.5"), netip.MustParseAddr("192.0.2.70"), netip.MustParseAddr("::ffff:192.0.2.70"),
			netip.MustParseAddr("::ffff:198.51.100.2"), netip.MustParseAddr("2001:db8:64::1"), netip.MustParseAddr("203.0.113.1"),
			netip.MustParseAddr("203.0.113.9"))
	}
	name := func() string {
		return pick(rng, "", "github.com", "GitHub.com.", "x.github.com", "api.jetkvm.com", "JETKVM.com", "glkvm.com",
			"nordvpn.com", "www.nordvpn.com", "notnordvpn.com", "example.com", "astrill.com.", "a.b.c.d.glkvm.cn")
	}
	apps := []string{"", "anydesk", "teamviewer", "rustdesk", "chrome_remote_desktop", "splashtop", "rdp", "vnc",
		"radmin", "ssh", "tailscale", "ngrok", "nordvpn", "astrill", "wireguard", "openvpn", "socks", "http_connect",
		"tor", "pikvm", "jetkvm", "Tor", "ANYDESK"}
	start := time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.IntN(48*60)) * time.Minute)
	dur := pick(rng, 0.0, 1, 239.5, 240, 1799, 3600)
	rec := &flow.Record{
		Start: start, End: start.Add(time.Duration(dur * float64(time.Second))), DurationS: dur,
		EndReason:   pick(rng, flow.EndReason(""), flow.EndFIN, flow.EndReason("active"), flow.EndReason("idle")),
		Proto:       pick(rng, "", "tcp", "udp", "icmp"),
		Direction:   pick(rng, "", "outbound", "inbound", "internal", "external"),
		App:         pick(rng, apps...),
		AppSource:   pick(rng, "", "port", "sni", "payload"),
		AppCategory: pick(rng, "", "remote_access", "tunnel", "vpn", "ipkvm", "proxy"),
		Src: flow.Endpoint{IP: addr(), Port: pick[uint16](rng, 0, 40000, 21116), Bytes: pick[uint64](rng, 0, 1000, 60000, 3000000, 6000000),
			MAC: pick(rng, flow.MAC{}, flow.MAC{0xdc, 0xa6, 0x32, 0, 0, 1})},
		Dst: flow.Endpoint{IP: addr(), Port: pick[uint16](rng, 0, 443, 22, 21115, 21119, 21120), Bytes: pick[uint64](rng, 0, 1000, 60000, 3000000),
			Name: name()},
	}
	if rng.IntN(3) == 0 {
		rec.DNS = &flow.DNS{Query: name()}
	}
	if rng.IntN(4) != 0 {
		rec.Device = &flow.Device{
			IP:              addr(),
			MAC:             pick(rng, flow.MAC{}, flow.MAC{0xdc, 0xa6, 0x32, 0, 0, 1}, flow.MAC{0xdc, 0xa6, 0x32, 0, 0, 2}, flow.MAC{0xb8, 0x27, 0xeb, 9, 9, 9}, flow.MAC{2, 0, 0, 0, 0, 1}),
			Vendor:          pick(rng, "", "Raspberry Pi Trading Ltd", "raspberry pi trading ltd", "Apple, Inc."),
			Hostname:        pick(rng, "", "pikvm", "PiKVM", "GL-RM1", "laptop"),
			ID:              pick(rng, "", "LT-1", "LT-2"),
			AssignedSite:    pick(rng, "", "nyc", "lon"),
			AssignedCountry: pick(rng, "", "US", "GB"),
			HomeTimezone:    pick(rng, "", "America/New_York", "Europe/London", "Mars/Olympus", "Local", "UTC"),
		}
	}
	if rng.IntN(3) == 0 {
		rec.Sensor = &flow.Sensor{ID: "gw", Site: pick(rng, "", "nyc", "lon")}
	}
	if rng.IntN(2) == 0 {
		rec.Egress = &flow.Egress{IP: addr()}
	}
	type set struct {
		h Handle
		f func(*Input, Handle)
	}
	var sets []set
	for _, side := range []string{"dst", "egress"} {
		for _, flag := range []string{"vpn", "hosting", "tor", "public_proxy", "residential_proxy"} {
			if rng.IntN(3) != 0 {
				h, _ := s.Handle(side + ".anon." + flag)
				v := rng.IntN(2) == 0
				sets = append(sets, set{h, func(in *Input, h Handle) { in.SetBool(h, v) }})
			}
		}
		if rng.IntN(3) != 0 {
			h, _ := s.Handle(side + ".geo.country")
			v := pick(rng, "US", "GB", "CN", "RU", "", "cn")
			sets = append(sets, set{h, func(in *Input, h Handle) { in.SetString(h, v) }})
		}
		if rng.IntN(3) != 0 {
			h, _ := s.Handle(side + ".as.number")
			v := pick[int64](rng, 0, -1, 136787, 209854, 15169, 7922)
			sets = append(sets, set{h, func(in *Input, h Handle) { in.SetInt(h, v) }})
		}
	}
	return rec, func(in *Input) {
		for _, x := range sets {
			x.f(in, x.h)
		}
	}
}
