package rules

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/edgeward/edgeward/flow"
)

// nativeExprs are conditions the native compiler must take, with the
// absent-field errors CEL's && and || absorb or propagate.
var nativeExprs = []string{
	`app == "anydesk"`,
	`app != "ssh"`,
	`"anydesk" == app`,
	`app in ["anydesk", "teamviewer"] && direction == "outbound"`,
	`!in_list(app, ra_apps)`,
	`in_list(app, ra_apps) || dst.anon.vpn`,
	`dst.anon.vpn || app == "astrill"`,
	`!dst.anon.vpn`,
	`dst.anon.vpn == false`,
	`present(dst.name) && !dns_suffix_in(dst.name, doms)`,
	`!present(dst.name) || !dns_suffix_in(dst.name, doms)`,
	`!present(egress.ip)`,
	`cidr_in(dst.ip, nets) && dst.port == 443`,
	`!cidr_in(egress.ip, nets) && !(present(device.id) && in_list(device.id, ids))`,
	`asn_in(dst.as.number, asns) || cidr_in(dst.ip, empty)`,
	`oui_in(device.mac, ouis) || device.hostname == "pikvm"`,
	`sensor.site != device.assigned_site && !present(egress.ip)`,
	`dst.geo.country == device.assigned_country`,
	`src.bytes >= 5000 && dst.port < 1024`,
	`dst.port > 80 || src.port <= 1024`,
	`(app == "anydesk" && direction == "outbound") || !(dst.anon.vpn || device.randomized_mac)`,
	`!(app == "x" || dst.name == "example.org")`,
	`true && app == "zoom"`,
	`!(present(device.mac) && in_list(device.mac, macs))`,
	`src.bytes + dst.bytes >= 100000`,
	`src.bytes - dst.bytes < 0 || src.bytes * 2 > dst.bytes * 3`,
	`dst.bytes * dst.bytes > 0`,
	`src.bytes > 2 * dst.bytes && src.bytes >= 2000.0 * duration_s`,
	`duration_s >= 240 || duration_s < 0.5 * 3.0`,
	`duration_s == 2.0 || duration_s != dst.geo.km`,
	`dst.geo.km + duration_s > 100.0 && dst.geo.km <= src.port`,
	`dst.as.number == 64500 || 64501 <= dst.geo.km - 1.0`,
	`local_hour(start, device.home_timezone) < 7 || local_hour(start, device.home_timezone) >= 20`,
	`local_hour(start, device.home_timezone) == 12`,
	`present(start) && !present(dst.geo.km) || present(duration_s) && dst.anon.vpn`,
}

// partlyNativeExprs are conditions with some conjuncts the native
// compiler takes and some it leaves to CEL.
var partlyNativeExprs = []string{
	`app == "anydesk" && dst.name.endsWith(".com")`,
	`src.bytes / 2 > 100 && !present(egress.ip) && duration_s > 1.0`,
	`(dst.name.startsWith("www") || dst.anon.vpn) && direction == "outbound"`,
}

// TestNativeMatchesCEL: for every condition and many flows with fields
// present or absent, the native checks give what CEL gives, and so does
// the engine for conditions it checks partly natively.
func TestNativeMatchesCEL(t *testing.T) {
	var y strings.Builder
	y.WriteString(guardLists)
	y.WriteString("- list: ids\n  items: [LT-1]\n- list: macs\n  items: [\"dc:a6:32:01:02:03\"]\n")
	exprs := append(slices.Clip(nativeExprs), partlyNativeExprs...)
	for i, m := range exprs {
		fmt.Fprintf(&y, "- rule: r%d\n  title: r\n  severity: low\n  category: c\n  match: '%s'\n", i, m)
	}
	dir := t.TempDir()
	writeFile(t, dir, "r.yml", y.String())
	s := guardSchema(t)
	set, err := Load([]string{dir}, Options{Schema: s})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range set.rules {
		native := r.idx < len(nativeExprs)
		if r.Native() != native || len(r.native) == 0 {
			t.Errorf("%s (%s): native %v with %d native checks, want %v", r.ID, exprs[r.idx], r.Native(), len(r.native), native)
		}
	}
	asn, _ := s.Handle("dst.as.number")
	vpn, _ := s.Handle("dst.anon.vpn")
	geo, _ := s.Handle("dst.geo.country")
	km, _ := s.Handle("dst.geo.km")
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(vs ...string) string { return vs[rng.IntN(len(vs))] }
	// Byte counts around the edges of int64 arithmetic, as the uint64
	// counters read as ints.
	bytes := func() uint64 {
		return []uint64{uint64(rng.IntN(10000)), uint64(rng.IntN(200000)), 0, 1 << 62, 1<<63 - 1, 1 << 63, 1<<64 - 1, 3037000500}[rng.IntN(8)]
	}
	doubles := []float64{0, 0.5, 2, 240, 300.5, -1, math.NaN(), math.Inf(1), math.Inf(-1), 1 << 63, 64500, 64502, 1e19, -1e19}
	e := NewEngine(set, EngineConfig{})
	nerr := make([]int, len(exprs))
	for n := range 5000 {
		rec := &flow.Record{
			Proto: "tcp", Direction: pick("", "outbound", "internal"), App: pick("", "", "anydesk", "zoom", "astrill", "ssh"),
			Start:     time.Date(2025, 1, 1, rng.IntN(24), 30, 0, 0, time.UTC),
			DurationS: doubles[rng.IntN(len(doubles))],
			Src:       flow.Endpoint{IP: netip.MustParseAddr("10.0.0.1"), Port: uint16(rng.IntN(2048)), Bytes: bytes()},
			Dst: flow.Endpoint{IP: netip.AddrFrom4([4]byte{192, 0, byte(2 + rng.IntN(2)), 1}), Port: uint16(pick2(rng, 0, 80, 443, 8080)),
				Name: pick("", "www.example.com", "example.org"), Bytes: bytes()},
		}
		if rng.IntN(5) == 0 {
			rec.Start = time.Time{}
		}
		if rng.IntN(3) > 0 {
			rec.Device = &flow.Device{ID: pick("", "LT-1", "LT-2"), Hostname: pick("", "pikvm"), AssignedSite: pick("", "nyc", "lon"),
				AssignedCountry: pick("", "US", "GB"), RandomizedMAC: rng.IntN(2) == 0,
				HomeTimezone: pick("", "America/New_York", "Asia/Kolkata", "Not/AZone", "UTC")}
			if rng.IntN(2) == 0 {
				rec.Device.MAC = flow.MAC{0xdc, 0xa6, byte(0x32 + rng.IntN(2)), 1, 2, 3}
			}
		}
		if rng.IntN(2) == 0 {
			rec.Sensor = &flow.Sensor{Site: pick("", "nyc")}
		}
		if rng.IntN(3) == 0 {
			rec.Egress = &flow.Egress{IP: netip.AddrFrom4([4]byte{192, 0, byte(2 + rng.IntN(2)), 9})}
		}
		in := &Input{Record: rec}
		if rng.IntN(3) > 0 {
			in.SetInt(asn, int64(64499+rng.IntN(3)))
		}
		if rng.IntN(3) > 0 {
			in.SetBool(vpn, rng.IntN(2) == 0)
		}
		if rng.IntN(3) > 0 {
			in.SetString(geo, pick("US", "GB"))
		}
		if rng.IntN(3) > 0 {
			in.SetDouble(km, doubles[rng.IntN(len(doubles))])
		}
		e.act.reset(in)
		for _, r := range set.rules {
			out, _, err := r.prg.Eval(&e.act)
			want := out == types.True
			// The CEL-only engine counted an error when the required
			// fields were present and CEL failed.
			wantErr := err != nil
			for _, f := range r.required {
				if _, ok := e.act.field(f); !ok {
					wantErr = false
				}
			}
			errs := testutil.ToFloat64(e.states[r.idx].errors)
			if got := e.match(r); got != want {
				t.Fatalf("flow %d, %s: engine %v, CEL %v (%v)\n%+v", n, exprs[r.idx], got, want, out, rec)
			}
			if counted := testutil.ToFloat64(e.states[r.idx].errors) - errs; counted != map[bool]float64{true: 1}[wantErr] {
				t.Fatalf("flow %d, %s: engine counted %v errors, CEL %v (%v)\n%+v", n, exprs[r.idx], counted, wantErr, err, rec)
			}
			if wantErr {
				nerr[r.idx]++
			}
		}
	}
	for i, m := range exprs {
		if nerr[i] == 0 && strings.Contains(m, "dst.anon.vpn ||") {
			t.Errorf("%s: no flow made an error; the test does not cover counting them", m)
		}
	}
}

func pick2(rng *rand.Rand, vs ...int) int { return vs[rng.IntN(len(vs))] }

// TestNotNative: conditions that stay with CEL.
func TestNotNative(t *testing.T) {
	for _, m := range []string{
		`src.bytes / 2 > 10`,
		`double(src.bytes) > 3.0`,
		`dst.name.endsWith(".com")`,
		`dst.ip == ip("192.0.2.1")`,
		`start < timestamp("2025-01-01T00:00:00Z")`,
		`app < "b"`,
		`dst.port < 443u`,
	} {
		dir := t.TempDir()
		writeFile(t, dir, "r.yml", "- rule: x\n  title: x\n  severity: low\n  category: c\n  match: '"+m+"'\n")
		set, err := Load([]string{dir}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if set.rules[0].Native() {
			t.Errorf("%s: compiled natively", m)
		}
	}
}

// TestIPLiteral: an ip("...") constant, which CEL's constant folding
// cannot fold, loads and compares (docs/rules.md's own example).
func TestIPLiteral(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "r.yml", `- macro: lan
  condition: src.port != 0
- rule: x
  title: x
  severity: low
  category: c
  match: lan && dst.ip == ip("192.0.2.1")
  tests:
    - {name: that address, flow: {src: {port: 1}, dst: {ip: 192.0.2.1}}, expect: match}
    - {name: another, flow: {src: {port: 1}, dst: {ip: 192.0.2.2}}, expect: no_match}
`)
	res, err := Test([]string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.Pass {
			t.Error(r)
		}
	}
}
