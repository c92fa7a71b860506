package rules

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
)

const subsetRules = `
- rule: per_flow
  title: t
  severity: low
  category: c
  match: dst.port == 22
- rule: per_device
  title: t
  severity: low
  category: c
  match: dst.port == 443
  aggregate: {type: event_count, group_by: [device.ip, app], window: 1h, condition: {gte: 2}}
  suppress: {key: [device.ip], for: 1h}
- rule: shared_egress
  title: t
  severity: high
  category: c
  match: present(egress.ip) && present(device.ip)
  aggregate: {type: value_count, field: device.ip, group_by: [egress.ip], window: 1h, condition: {gte: 2}}
  suppress: {key: [egress.ip], for: 1h}
- rule: by_src
  title: t
  severity: low
  category: c
  match: dst.port == 3389
  suppress: {key: [src.ip, app], for: 1h}
- rule: once
  title: t
  severity: low
  category: c
  match: dst.port == 23
  suppress: {for: 1h}
- rule: step_a
  title: t
  severity: low
  category: c
  match: dst.port == 1194
- rule: step_b
  title: t
  severity: low
  category: c
  match: dst.port == 5900
- rule: chain
  title: t
  severity: high
  category: c
  aggregate: {type: temporal, rules: [step_a, step_b], group_by: [src.ip], window: 1h}
- rule: disabled
  title: t
  severity: low
  category: c
  enabled: false
  match: dst.port == 25
`

func loadSubsetRules(t *testing.T) *Set {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r.yml")
	if err := os.WriteFile(path, []byte(subsetRules), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := Load([]string{path}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestStateKey(t *testing.T) {
	set := loadSubsetRules(t)
	cases := []struct {
		id       string
		key      []string
		stateful bool
		groupBy  []string
		suppress []string
	}{
		{"per_flow", nil, false, nil, nil},
		{"per_device", []string{"device.ip"}, true, []string{"device.ip", "app"}, []string{"device.ip"}},
		{"shared_egress", []string{"egress.ip"}, true, []string{"egress.ip"}, []string{"egress.ip"}},
		{"by_src", []string{"src.ip", "app"}, true, nil, []string{"src.ip", "app"}},
		{"once", []string{}, true, nil, []string{}},
		{"chain", []string{"src.ip"}, true, []string{"src.ip"}, nil},
	}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			r := set.byID[c.id]
			key, stateful := set.StateKey(r)
			if !slices.Equal(key, c.key) || stateful != c.stateful || (key == nil) != (c.key == nil) {
				t.Errorf("StateKey = %q, %v; want %q, %v", key, stateful, c.key, c.stateful)
			}
			if g := set.GroupBy(r); !slices.Equal(g, c.groupBy) {
				t.Errorf("GroupBy = %q, want %q", g, c.groupBy)
			}
			if s := set.SuppressKey(r); !slices.Equal(s, c.suppress) {
				t.Errorf("SuppressKey = %q, want %q", s, c.suppress)
			}
		})
	}
	var follows []string
	for _, r := range set.Follows(set.byID["chain"]) {
		follows = append(follows, r.ID)
	}
	if !slices.Equal(follows, []string{"step_a", "step_b"}) || set.Follows(set.byID["step_a"]) != nil {
		t.Errorf("Follows(chain) = %q", follows)
	}
}

// subsetFlows exercises every rule of subsetRules.
func subsetFlows() []*flow.Record {
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []*flow.Record
	add := func(i int, dev, egress string, port uint16, app string) {
		r := &flow.Record{Proto: "tcp", Start: base.Add(time.Duration(i) * time.Minute), End: base.Add(time.Duration(i)*time.Minute + time.Second),
			Src: flow.Endpoint{IP: netip.MustParseAddr(dev), Port: uint16(40000 + i)}, Dst: flow.Endpoint{IP: netip.MustParseAddr("192.0.2.1"), Port: port},
			Device: &flow.Device{IP: netip.MustParseAddr(dev)}, App: app, ID: "f" + string(rune('a'+i))}
		if egress != "" {
			r.Egress = &flow.Egress{IP: netip.MustParseAddr(egress)}
		}
		out = append(out, r)
	}
	add(0, "10.0.0.1", "", 22, "ssh")
	add(1, "10.0.0.1", "", 443, "web")
	add(2, "10.0.0.1", "", 443, "web")
	add(3, "10.99.0.1", "203.0.113.5", 80, "")
	add(4, "10.99.0.2", "203.0.113.5", 80, "")
	add(5, "10.0.0.3", "", 3389, "rdp")
	add(6, "10.0.0.3", "", 3389, "rdp")
	add(7, "10.0.0.4", "", 23, "")
	add(8, "10.0.0.5", "", 23, "")
	add(9, "10.0.0.6", "", 1194, "")
	add(10, "10.0.0.6", "", 5900, "")
	add(11, "10.0.0.7", "", 25, "")
	return out
}

// run evaluates flows on a fresh engine and returns the finding uids by
// rule, Creates and Updates alike.
func run(set *Set, flows []*flow.Record) map[string][]string {
	e := NewEngine(set, EngineConfig{})
	got := map[string][]string{}
	emit := func(a *Alert) {
		got[a.FindingInfo.Analytic.UID] = append(got[a.FindingInfo.Analytic.UID], a.FindingInfo.UID)
	}
	var in Input
	for _, r := range flows {
		in.Reset(r)
		e.Evaluate(&in, emit)
	}
	e.Flush(emit)
	return got
}

func TestSubset(t *testing.T) {
	set := loadSubsetRules(t)
	full := run(set, subsetFlows())
	for _, id := range []string{"per_flow", "per_device", "shared_egress", "by_src", "once", "step_a", "step_b", "chain"} {
		if len(full[id]) == 0 {
			t.Fatalf("the fixture raises no %s alert: %v", id, full)
		}
	}
	cases := []struct {
		name string
		keep []string
		ids  []string // the subset's rules
		mode []string
	}{
		{"one stateless", []string{"per_flow"}, []string{"per_flow"}, []string{"alert"}},
		{"keyed", []string{"shared_egress", "by_src", "once"}, []string{"shared_egress", "by_src", "once"}, []string{"alert", "alert", "alert"}},
		{"temporal brings its steps in shadow", []string{"chain"}, []string{"step_a", "step_b", "chain"}, []string{"shadow", "shadow", "alert"}},
		{"temporal with a kept step", []string{"step_b", "chain"}, []string{"step_a", "step_b", "chain"}, []string{"shadow", "alert", "alert"}},
		{"nothing", nil, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sub := set.Subset(func(r *Rule) bool { return slices.Contains(c.keep, r.ID) })
			var ids, modes []string
			for i, r := range sub.Rules() {
				ids, modes = append(ids, r.ID), append(modes, r.Mode)
				if r.idx != i {
					t.Errorf("%s has index %d at %d", r.ID, r.idx, i)
				}
			}
			if !slices.Equal(ids, c.ids) || !slices.Equal(modes, c.mode) {
				t.Fatalf("subset %q modes %q, want %q %q", ids, modes, c.ids, c.mode)
			}
			// The subset raises exactly the kept rules' alerts of the
			// full set, with the same finding ids.
			got := run(sub, subsetFlows())
			for id, uids := range got {
				if !slices.Contains(c.keep, id) {
					t.Errorf("subset raised %s, not kept", id)
				}
				if !slices.Equal(uids, full[id]) {
					t.Errorf("%s: subset findings %q, full set %q", id, uids, full[id])
				}
			}
			for _, id := range c.keep {
				if len(got[id]) == 0 {
					t.Errorf("subset lost %s", id)
				}
			}
		})
	}
	// The original set is untouched.
	if got := run(set, subsetFlows()); len(got) != len(full) {
		t.Errorf("the set changed: %v, was %v", got, full)
	}
}

func TestSubsetKeepsStateAcrossSwap(t *testing.T) {
	set := loadSubsetRules(t)
	keyed := func(r *Rule) bool { return r.ID == "per_device" }
	e := NewEngine(set.Subset(keyed), EngineConfig{})
	var n int
	emit := func(*Alert) { n++ }
	flows := subsetFlows()
	var in Input
	in.Reset(flows[1])
	e.Evaluate(&in, emit)
	// A reload: a new subset of a new set; per_device's first event
	// survives and the second completes it.
	e.Swap(loadSubsetRules(t).Subset(keyed))
	in.Reset(flows[2])
	e.Evaluate(&in, emit)
	if n != 1 {
		t.Errorf("%d alerts after the swap, want 1", n)
	}
}

func TestMatcher(t *testing.T) {
	set := loadSubsetRules(t)
	m := NewMatcher(set)
	if m.Set() != set {
		t.Fatal("Set")
	}
	cases := []struct {
		flow int
		ids  []string
		key  string
	}{
		{0, []string{"per_flow"}, "10.0.0.1\x00\x01absent"},
		{3, []string{"shared_egress"}, "10.99.0.1\x00203.0.113.5"},
		{5, []string{"by_src"}, "10.0.0.3\x00\x01absent"},
		{9, []string{"step_a"}, "10.0.0.6\x00\x01absent"},
		{11, nil, "10.0.0.7\x00\x01absent"}, // disabled
	}
	flows := subsetFlows()
	var in Input
	for _, c := range cases {
		t.Run(flows[c.flow].ID, func(t *testing.T) {
			in.Reset(flows[c.flow])
			var ids []string
			m.Match(&in, func(r *Rule) { ids = append(ids, r.ID) })
			if !slices.Equal(ids, c.ids) {
				t.Errorf("matched %q, want %q", ids, c.ids)
			}
			if k := string(m.AppendKey(nil, "src.ip", "egress.ip")); k != c.key {
				t.Errorf("key %q, want %q", k, c.key)
			}
		})
	}
	if k := string(m.AppendKey([]byte("x"), "nope", "dst.port")); k != "x\x0025" {
		t.Errorf("unknown field: key %q", k)
	}
}
