package rules

import (
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/edgeward/edgeward/flow"
)

// TestSweepKeepsLateGroup: a group whose flows all arrive late (idle-ended
// flows, exported a timeout after the FIN-ended flows that move the
// watermark) still counts its flows within the window of its newest one;
// another rule's suppression expiring (which runs the sweep) must not
// change that.
func TestSweepKeepsLateGroup(t *testing.T) {
	const burst = `- rule: burst
  title: Burst
  severity: low
  category: c
  match: proto == "tcp"
  aggregate: {type: event_count, group_by: [src.ip], window: 30s, condition: {gte: 3}}
`
	const other = `- rule: udp
  title: UDP
  severity: low
  category: c
  match: proto == "udp"
  suppress: {key: [src.ip], for: 1s}
`
	t0 := time.Unix(1700000000, 0)
	at := func(sec int, proto, src string) *Input {
		ts := t0.Add(time.Duration(sec) * time.Second)
		return &Input{Record: &flow.Record{Proto: proto, Start: ts, End: ts, Src: flow.Endpoint{IP: netip.MustParseAddr(src)}}}
	}
	// The tcp flows of 10.0.0.5 end idle at 40, 45 and 50 s and arrive a
	// minute later, among udp flows of another host that end as they arrive.
	flows := []*Input{
		at(100, "udp", "10.0.0.9"), at(40, "tcp", "10.0.0.5"),
		at(102, "udp", "10.0.0.9"), at(45, "tcp", "10.0.0.5"),
		at(104, "udp", "10.0.0.9"), at(50, "tcp", "10.0.0.5"),
	}
	for _, rules := range []string{burst, burst + other} {
		e := NewEngine(loadRule(t, rules), EngineConfig{})
		n := 0
		for _, in := range flows {
			e.Evaluate(in, func(a *Alert) {
				if a.FindingInfo.Analytic.UID == "burst" {
					n++
				}
			})
		}
		if n != 1 {
			t.Errorf("with %d rules: burst fired %d times, want 1 (40, 45, 50 s are within 30 s)", len(e.Set().Rules()), n)
		}
	}
	// The group still goes once it is past its window and the lateness.
	e := NewEngine(loadRule(t, burst+other), EngineConfig{})
	for _, in := range []*Input{at(40, "tcp", "10.0.0.5"), at(100, "udp", "10.0.0.9"), at(40+30+int(lateness/time.Second)+1, "udp", "10.0.0.9")} {
		e.Evaluate(in, func(*Alert) {})
	}
	if n := len(e.states[0].groups); n != 0 {
		t.Errorf("%d groups kept after their window and lateness", n)
	}
}

// TestInOnFieldLists: CEL's `in` on a list that is not a constant (a list
// field such as vlan or tls.alpn, or a list built from fields) works as
// docs/rules.md shows with `100 in vlan`; the list function in_list must
// not take the place of CEL's own list membership.
func TestInOnFieldLists(t *testing.T) {
	rec := &flow.Record{Proto: "tcp", VLAN: []uint16{100}, Src: flow.Endpoint{Port: 1}, Dst: flow.Endpoint{Port: 443},
		TLS: &flow.TLS{ALPN: []string{"h2"}}, DNS: &flow.DNS{Answers: []string{"a.example"}}}
	for _, c := range []struct {
		match string
		want  bool
	}{
		{`100 in vlan`, true},
		{`200 in vlan`, false},
		{`"h2" in tls.alpn`, true},
		{`"a.example" in dns.answers`, true},
		{`dst.port in [src.port, 443]`, true},
		{`dst.port in [src.port]`, false},
		{`in_list(app_or_proto, names) && 100 in vlan`, true},
	} {
		set := loadRule(t, "- list: names\n  items: [tcp]\n- macro: app_or_proto\n  condition: proto\n"+
			"- rule: r\n  title: r\n  severity: low\n  category: c\n  match: '"+c.match+"'\n")
		e := NewEngine(set, EngineConfig{})
		n := 0
		e.Evaluate(&Input{Record: rec}, func(*Alert) { n++ })
		if got := n == 1; got != c.want {
			t.Errorf("%s: matched %v, want %v", c.match, got, c.want)
		}
		if v := testutil.ToFloat64(e.states[0].errors); v != 0 {
			t.Errorf("%s: %v evaluation errors", c.match, v)
		}
	}
}

// TestListFileByteOrderMark: a list file saved with a UTF-8 byte order
// mark (Windows editors) matches its first entry too.
func TestListFileByteOrderMark(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "doms.txt", "\ufeffanydesk.com\nexample.org\n")
	writeFile(t, dir, "r.yml", "- list: doms\n  file: doms.txt\n- rule: r\n  title: r\n  severity: low\n  category: c\n"+
		"  match: dns_suffix_in(dst.name, doms)\n")
	set, err := Load([]string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(set, EngineConfig{})
	n := 0
	e.Evaluate(&Input{Record: &flow.Record{Proto: "tcp", Dst: flow.Endpoint{Name: "relay.anydesk.com"}}}, func(*Alert) { n++ })
	if n != 1 {
		t.Errorf("relay.anydesk.com: %d alerts, want 1", n)
	}
}

// TestRuleFileByteOrderMark: a rule file saved with a byte order mark
// loads, and its positions are the editor's.
func TestRuleFileByteOrderMark(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "r.yml", "\ufeff- rule: r\n  title: r\n  severity: low\n  category: c\n  match: proto == 1\n")
	ds := Lint([]string{dir}, Options{})
	if len(ds) != 1 || ds[0].Line != 5 || ds[0].Col != 16 {
		t.Errorf("diagnostics %v, want one at 5:16 (the == of a type mismatch)", ds)
	}
}
