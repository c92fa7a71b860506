package rules

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/edgeward/edgeward/flow"
)

const guardLists = `- list: ra_apps
  items: [anydesk, teamviewer]
- list: asns
  items: [AS64500, "64501"]
- list: nets
  items: [192.0.2.0/24]
- list: doms
  items: [example.com]
- list: ouis
  items: ["dc:a6:32"]
- list: empty
  items: []
`

// TestGuards: which guards the index derives from each kind of condition.
func TestGuards(t *testing.T) {
	cases := []struct {
		match string
		want  []string // per guarded conjunct
	}{
		{`proto == "tcp" && dst.port in [22, 3389]`, []string{"proto=tcp", "dst.port=22 | dst.port=3389"}},
		{`app == "anydesk"`, []string{"app=anydesk"}},
		{`in_list(app, ra_apps) && direction == "outbound"`, []string{"app=anydesk | app=teamviewer", "direction=outbound"}},
		{`asn_in(dst.as.number, asns)`, []string{"dst.as.number=64500 | dst.as.number=64501"}},
		{`dst.anon.vpn`, []string{"dst.anon.vpn=1"}},
		{`dst.anon.vpn || app == "astrill"`, []string{"app=astrill | dst.anon.vpn=1"}},
		{`cidr_in(dst.ip, nets)`, []string{"cidr_in(dst.ip, nets)"}},
		{`direction == "outbound" && dns_suffix_in(dst.name, doms)`, []string{"direction=outbound", "dns_suffix_in(dst.name, doms)"}},
		{`oui_in(device.mac, ouis) || device.hostname == "pikvm"`, []string{"device.hostname=pikvm | oui_in(device.mac, ouis)"}},
		{`(app == "a" && direction == "internal") || app == "b"`, []string{"app=a | app=b"}},
		{`dst.port == 22 || src.bytes > 10`, []string{"always"}},
		{`src.bytes > 10`, []string{"always"}},
		{`!in_list(app, ra_apps)`, []string{"present(app)"}},
		{`src.bytes > 10 && !cidr_in(egress.ip, nets)`, []string{"present(egress.ip)"}},
		{`present(dst.name)`, []string{"always"}},
		{`cidr_in(dst.ip, empty) || app == "x"`, []string{"app=x | cidr_in(dst.ip, empty) (empty list)"}},
		{`cidr_in(dst.ip, empty) && app == "x"`, []string{"cidr_in(dst.ip, empty) (empty list)", "app=x"}},
		{`sensor.site != device.assigned_site && src.bytes > 10`, []string{"sensor.site != device.assigned_site"}},
		{`dst.geo.country == device.assigned_country`, []string{"dst.geo.country == device.assigned_country"}},
		{`src.port == dst.port`, []string{"src.port == dst.port"}},
	}
	var y strings.Builder
	y.WriteString(guardLists)
	for i, c := range cases {
		fmt.Fprintf(&y, "- rule: r%d\n  title: r\n  severity: low\n  category: c\n  match: '%s'\n", i, c.match)
	}
	dir := t.TempDir()
	writeFile(t, dir, "r.yml", y.String())
	set, err := Load([]string{dir}, Options{Schema: guardSchema(t)})
	if err != nil {
		t.Fatal(err)
	}
	got := set.Guards()
	for i, c := range cases {
		t.Run(c.match, func(t *testing.T) {
			if g := got[fmt.Sprintf("r%d", i)]; !slices.Equal(g, c.want) {
				t.Errorf("guards %q, want %q", g, c.want)
			}
		})
	}
}

func guardSchema(t testing.TB) *Schema {
	t.Helper()
	s, err := NewSchema(
		ExtraField{Name: "dst.as.number", Kind: KindInt},
		ExtraField{Name: "dst.anon.vpn", Kind: KindBool},
		ExtraField{Name: "dst.anon.tor", Kind: KindBool},
		ExtraField{Name: "dst.geo.country", Kind: KindString},
		ExtraField{Name: "dst.geo.km", Kind: KindDouble},
	)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGuardsDoNotChangeResults: every rule matches exactly the flows it
// matches when evaluated without the index.
func TestGuardsDoNotChangeResults(t *testing.T) {
	rules := []string{
		`in_list(app, ra_apps) && direction == "outbound"`,
		`asn_in(dst.as.number, asns) || dst.anon.vpn`,
		`cidr_in(dst.ip, nets) && dst.port == 443`,
		`dns_suffix_in(dst.name, doms)`,
		`oui_in(device.mac, ouis) || device.hostname == "pikvm"`,
		`dst.anon.vpn == false`,
		`device.randomized_mac`,
		`sensor.site != device.assigned_site`,
		`dst.geo.country == device.assigned_country`,
		`(app == "anydesk" && direction == "outbound") || dst.anon.vpn`,
		`proto == "tcp" && in_list(app, ra_apps) && cidr_in(dst.ip, nets)`,
		`!cidr_in(egress.ip, nets)`,
		`!in_list(app, ra_apps) && dst.port == 443`,
		`dst.anon.tor && direction == "outbound"`,
		`app == "zoom" || dst.anon.tor`,
	}
	// Enough three-conjunct rules that their slots fill several words.
	for p := range 30 {
		rules = append(rules, fmt.Sprintf(`proto == "tcp" && dst.port == %d && direction in ["outbound", "internal"]`, []int{443, 80}[p%2]))
	}
	var y strings.Builder
	y.WriteString(guardLists)
	for i, m := range rules {
		fmt.Fprintf(&y, "- rule: r%d\n  title: r\n  severity: low\n  category: c\n  match: '%s'\n", i, m)
	}
	dir := t.TempDir()
	writeFile(t, dir, "r.yml", y.String())
	s := guardSchema(t)
	set, err := Load([]string{dir}, Options{Schema: s})
	if err != nil {
		t.Fatal(err)
	}
	asn, _ := s.Handle("dst.as.number")
	vpn, _ := s.Handle("dst.anon.vpn")
	tor, _ := s.Handle("dst.anon.tor")
	geo, _ := s.Handle("dst.geo.country")
	enrich := func(in *Input, i int) {
		if i%5 != 0 {
			in.SetInt(asn, int64(64499+i%3))
		}
		if i%7 != 0 {
			in.SetBool(vpn, i%2 == 0)
		}
		if i%6 < 4 {
			in.SetString(geo, []string{"US", "GB"}[i%6%2])
		}
		switch i % 5 {
		case 1: // true, then false: the index still admits the flag's rules
			in.SetBool(tor, true)
			in.SetBool(tor, false)
		case 2, 3:
			in.SetBool(tor, i%5 == 3)
		}
	}
	var recs []*flow.Record
	for i := range 64 {
		rec := &flow.Record{
			Proto: "tcp", Direction: []string{"outbound", "internal", ""}[i%3],
			App: []string{"", "anydesk", "zoom"}[i/3%3],
			Src: flow.Endpoint{IP: netip.MustParseAddr("10.0.0.1")},
			Dst: flow.Endpoint{IP: netip.AddrFrom4([4]byte{192, 0, byte(2 + i%2), 1}), Port: []uint16{443, 80}[i/2%2],
				Name: []string{"", "www.example.com", "example.org"}[i%3]},
		}
		if i%4 == 0 {
			rec.Device = &flow.Device{MAC: flow.MAC{0xdc, 0xa6, 0x32, 1, 2, 3}, RandomizedMAC: i%8 == 0, AssignedSite: "nyc", AssignedCountry: "US"}
		} else if i%4 == 1 {
			rec.Device = &flow.Device{MAC: flow.MAC{0x02, 1, 2, 3, 4, 5}, Hostname: "pikvm", AssignedSite: "lon", AssignedCountry: "GB"}
		}
		if i%3 != 2 {
			rec.Sensor = &flow.Sensor{Site: "nyc"}
		}
		if i%3 == 1 {
			rec.Egress = &flow.Egress{IP: netip.AddrFrom4([4]byte{192, 0, byte(2 + i/3%2), 9})}
		}
		recs = append(recs, rec)
	}
	var ins []*Input
	for i, rec := range recs {
		in := &Input{Record: rec}
		enrich(in, i)
		ins = append(ins, in)
	}
	e := NewEngine(set, EngineConfig{})
	matches := map[[2]int]bool{} // by flow and rule
	admits := func(i int, in *Input) {
		t.Helper()
		e.act.reset(in)
		set.index.candidates(in, e.hits, e.cand)
		for _, r := range set.rules {
			full := e.match(r)
			cand := false
			e.cand.each(func(j int) { cand = cand || j == r.idx })
			if full && !cand {
				t.Errorf("flow %d: rule %s matches but the index does not admit it", i, r.ID)
			}
			if m, seen := matches[[2]int{i, r.idx}]; seen && m != full {
				t.Errorf("flow %d: rule %s matches %v, %v on a fresh input", i, r.ID, full, m)
			}
			matches[[2]int{i, r.idx}] = full
		}
	}
	for i, in := range ins {
		admits(i, in)
	}
	// One Input for every flow, reset in between, as the pipeline uses it:
	// the same results.
	var in Input
	for i, rec := range recs {
		in.Reset(rec)
		enrich(&in, i)
		admits(i, &in)
	}
	if set.index.nslots <= 64 {
		t.Errorf("%d slots: the test wants rules in several words", set.index.nslots)
	}
	// Every rule matched some flow and not all of them.
	for _, r := range set.rules {
		n := 0
		for _, in := range ins {
			e.act.reset(in)
			if e.match(r) {
				n++
			}
		}
		if n == 0 || n == len(ins) {
			t.Errorf("rule %s (%s) matched %d of %d flows: the test flows do not exercise it", r.ID, rules[r.idx], n, len(ins))
		}
	}
}
