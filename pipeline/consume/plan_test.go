package consume

import (
	"maps"
	"slices"
	"testing"

	"github.com/edgeward/edgeward/rules"
)

// TestRepartitionedBuiltin: in the built-in pack, the devices-per-egress
// rule is repartitioned by egress address, and every rule whose state is
// keyed by the device stays on the flows partitions.
func TestRepartitionedBuiltin(t *testing.T) {
	set := builtinRules(t)
	got := Repartitioned(set)
	p := newPlan(set, true)
	if !slices.Contains(got["egress.ip"], "laptop_farm.shared_egress_ip") {
		t.Errorf("laptop_farm.shared_egress_ip is not repartitioned by egress.ip: %v", got)
	}
	for _, r := range set.Rules() {
		key, stateful := set.StateKey(r)
		_, repart := p.ruleGroup[r.ID]
		if want := r.Enabled && stateful && !deviceKeyed(key); repart != want {
			t.Errorf("%s (state key %q): repartitioned %v", r.ID, key, repart)
		}
	}
	t.Logf("repartitioned: %v", got)
}

const planRules = `
- rule: per_flow
  title: t
  severity: low
  category: c
  match: dst.port == 22
- rule: by_device
  title: t
  severity: low
  category: c
  match: dst.port == 443
  aggregate: {type: event_count, group_by: [device.id, app], window: 1h, condition: {gte: 2}}
- rule: by_egress
  title: t
  severity: high
  category: c
  match: present(egress.ip)
  aggregate: {type: value_count, field: device.ip, group_by: [egress.ip], window: 1h, condition: {gte: 2}}
  suppress: {key: [egress.ip], for: 1h}
- rule: by_egress_country
  title: t
  severity: high
  category: c
  match: present(egress.ip)
  suppress: {key: [egress.ip], for: 1h}
- rule: global
  title: t
  severity: low
  category: c
  match: dst.port == 23
  suppress: {for: 1h}
- rule: step
  title: t
  severity: low
  category: c
  match: dst.port == 1194
- rule: chain
  title: t
  severity: high
  category: c
  aggregate: {type: temporal, rules: [step, by_egress_country], group_by: [src.ip], window: 1h}
- rule: off
  title: t
  severity: low
  category: c
  enabled: false
  match: dst.port == 25
  suppress: {for: 1h}
`

func ids(set *rules.Set) []string {
	var out []string
	for _, r := range set.Rules() {
		id := r.ID
		if r.Mode == "shadow" {
			id += "(shadow)"
		}
		out = append(out, id)
	}
	return out
}

func TestPlan(t *testing.T) {
	set := loadRules(t, planRules)
	p := newPlan(set, true)
	groups := map[string][]string{}
	for _, g := range p.groups {
		groups[g.id] = ids(g.set)
	}
	want := map[string][]string{
		"egress.ip": {"by_egress", "by_egress_country"},
		"":          {"global"},
		"src.ip":    {"by_egress_country(shadow)", "step(shadow)", "chain"},
	}
	if !maps.EqualFunc(groups, want, slices.Equal) {
		t.Errorf("key groups %v, want %v", groups, want)
	}
	if got := ids(p.local); !slices.Equal(got, []string{"per_flow", "by_device", "step", "off"}) {
		t.Errorf("local rules %q", got)
	}
	// Routes: a match of step goes to chain's group, one of
	// by_egress_country to its own and chain's. (chain, temporal, has no
	// match of its own.)
	routes := map[string][]string{}
	for r, gs := range p.routes {
		for _, g := range gs {
			routes[r.ID] = append(routes[r.ID], p.groups[g].id)
		}
		slices.Sort(routes[r.ID])
	}
	wantRoutes := map[string][]string{
		"by_egress": {"egress.ip"}, "by_egress_country": {"egress.ip", "src.ip"}, "global": {""}, "step": {"src.ip"}, "chain": {"src.ip"},
	}
	if !maps.EqualFunc(routes, wantRoutes, slices.Equal) {
		t.Errorf("routes %v, want %v", routes, wantRoutes)
	}

	local := newPlan(set, false)
	if len(local.groups) != 0 || local.router != nil || len(local.local.Rules()) != len(set.Rules()) {
		t.Errorf("without repartitioning: %d groups, local %q", len(local.groups), ids(local.local))
	}
}
