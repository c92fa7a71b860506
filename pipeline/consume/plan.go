package consume

import (
	"slices"
	"strings"

	"github.com/edgeward/edgeward/rules"
)

// deviceFields are the fields that pin a rule's state to the device whose
// flows the sensor keys by (inventory id, else address): state keyed by
// one of them lives on the device's partition.
var deviceFields = [...]string{"device.id", "device.ip"}

// plan is one rule set split by where each rule's state lives.
//
// A rule without state across flows, or whose state key (rules.Set
// StateKey) includes a device field, is local: it runs on the flows
// topic's partitions, which hold all of a device's flows. Every other
// rule is repartitioned: rules with the same state key form a key group,
// and the flows its rules match go through the repartition topic keyed by
// the key's values, so that one partition sees all of a group's flows.
type plan struct {
	set    *rules.Set
	local  *rules.Set
	router *rules.Set // the repartitioned rules and the rules they follow; nil: none
	groups []*keyGroup
	// routes lists, per rule of router, the key groups a match of it
	// sends the flow to (its own, and those of the temporal rules that
	// follow it).
	routes map[*rules.Rule][]int
	byID   map[string]*keyGroup
	// ruleGroup is the key group id of each repartitioned rule.
	ruleGroup map[string]string
}

// keyGroup is the repartitioned rules that share a state key.
type keyGroup struct {
	id     string   // the key fields joined by ","; "" keys every flow alike
	route  []byte   // id, as the route header carries it
	fields []string // the state key
	set    *rules.Set
}

// newPlan splits set. Without repartitioning every rule is local, which
// is correct only with a single pipeline instance.
func newPlan(set *rules.Set, repartition bool) *plan {
	p := &plan{set: set, byID: map[string]*keyGroup{}, routes: map[*rules.Rule][]int{}, ruleGroup: map[string]string{}}
	groupOf := map[string]*keyGroup{} // rule id -> its key group
	for _, r := range set.Rules() {
		if !repartition || !r.Enabled {
			continue
		}
		key, stateful := set.StateKey(r)
		if !stateful || deviceKeyed(key) {
			continue
		}
		id := strings.Join(key, ",")
		g := p.byID[id]
		if g == nil {
			g = &keyGroup{id: id, route: []byte(id), fields: key}
			p.byID[id] = g
			p.groups = append(p.groups, g)
		}
		groupOf[r.ID] = g
		p.ruleGroup[r.ID] = id
	}
	p.local = set.Subset(func(r *rules.Rule) bool { return groupOf[r.ID] == nil })
	if len(p.groups) == 0 {
		return p
	}
	for _, g := range p.groups {
		g.set = set.Subset(func(r *rules.Rule) bool { return groupOf[r.ID] == g })
	}
	p.router = set.Subset(func(r *rules.Rule) bool { return groupOf[r.ID] != nil })
	for _, r := range p.router.Rules() {
		g := groupOf[r.ID]
		if g == nil {
			continue // a local rule, there because a repartitioned one follows it
		}
		gi := slices.Index(p.groups, g)
		p.routes[r] = append(p.routes[r], gi)
		for _, dep := range p.router.Follows(r) {
			if !slices.Contains(p.routes[dep], gi) {
				p.routes[dep] = append(p.routes[dep], gi)
			}
		}
	}
	return p
}

func deviceKeyed(key []string) bool {
	for _, f := range deviceFields {
		if slices.Contains(key, f) {
			return true
		}
	}
	return false
}

// Repartitioned returns the rules of set that a Consumer runs on the
// repartition topic, by key group (their state key's fields joined by
// ","), in load order. The others run on the flows topic's partitions.
func Repartitioned(set *rules.Set) map[string][]string {
	return newPlan(set, true).repartitioned()
}

func (p *plan) repartitioned() map[string][]string {
	out := map[string][]string{}
	for _, r := range p.set.Rules() {
		if id, ok := p.ruleGroup[r.ID]; ok {
			out[id] = append(out[id], r.ID)
		}
	}
	return out
}
