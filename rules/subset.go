package rules

import (
	"math/bits"
	"slices"
)

// This file lets a caller split a rule set by where each rule's state
// lives, as the Kafka pipeline does (pipeline/consume): rules whose windows
// and open alerts are keyed by the device run where the device's flows
// are, the others on a stream re-keyed by their state key.

// Subset returns a set of the rules keep accepts, in load order, sharing
// s's schema and lists. A kept temporal rule needs the rules it follows:
// those keep does not accept join the subset in shadow mode, so that they
// feed their follower and raise nothing. Rules keep their fingerprints,
// so an engine swapping between subsets of successive sets keeps the
// state of unchanged rules.
func (s *Set) Subset(keep func(*Rule) bool) *Set {
	in := make([]bool, len(s.rules))  // in the subset
	own := make([]bool, len(s.rules)) // accepted by keep, not only followed
	for i, r := range s.rules {
		if !keep(r) {
			continue
		}
		in[i], own[i] = true, true
		if r.agg != nil && r.agg.typ == "temporal" {
			for _, dep := range r.agg.rules {
				in[dep] = true
			}
		}
	}
	sub := &Set{schema: s.schema, byID: map[string]*Rule{}, listVals: s.listVals, files: s.files}
	newIdx := make([]int, len(s.rules))
	for i, r := range s.rules {
		if !in[i] {
			continue
		}
		c := *r
		c.idx, c.parents = len(sub.rules), nil
		if !own[i] {
			c.Mode = "shadow"
		}
		newIdx[i] = c.idx
		sub.rules = append(sub.rules, &c)
		sub.byID[c.ID] = &c
		if i < len(s.defs) {
			sub.defs = append(sub.defs, s.defs[i])
		}
	}
	for _, c := range sub.rules {
		if c.agg == nil || c.agg.typ != "temporal" {
			continue
		}
		agg := *c.agg
		agg.rules = nil
		for _, dep := range c.agg.rules {
			d := sub.rules[newIdx[dep]]
			agg.rules = append(agg.rules, d.idx)
			if !slices.Contains(d.parents, c.idx) {
				d.parents = append(d.parents, c.idx)
			}
		}
		c.agg = &agg
	}
	sub.index = buildIndex(sub)
	return sub
}

// Follows returns the rules a temporal rule follows, in its order; nil
// for any other rule.
func (s *Set) Follows(r *Rule) []*Rule {
	if r.agg == nil || r.agg.typ != "temporal" {
		return nil
	}
	out := make([]*Rule, 0, len(r.agg.rules))
	for _, i := range r.agg.rules {
		out = append(out, s.rules[i])
	}
	return out
}

// GroupBy returns the field names of a rule's aggregate group_by; nil
// for a rule without an aggregate.
func (s *Set) GroupBy(r *Rule) []string {
	if r.agg == nil {
		return nil
	}
	return s.names(r.agg.groupBy)
}

// SuppressKey returns the field names of a rule's suppress key; nil for
// a rule without suppression or with an empty key (alerts then fold per
// aggregate group, or all together).
func (s *Set) SuppressKey(r *Rule) []string {
	if r.suppress == nil {
		return nil
	}
	return s.names(r.suppress.key)
}

// StateKey returns the fields that key all of a rule's state across
// flows (its aggregate windows and its open, suppressed alerts), and
// whether it has any. Flows that agree on these fields may share state;
// flows that differ never do, so a stream split by their values can run
// the rule on each part separately. An empty key of a stateful rule means
// one state for all its flows (a suppression without key or aggregate).
//
// The key is the fields the group_by and the suppress key have in
// common, in group_by order, or the one of them that the rule has.
func (s *Set) StateKey(r *Rule) (fields []string, stateful bool) {
	switch {
	case r.agg == nil && r.suppress == nil:
		return nil, false
	case r.agg == nil:
		return s.names(r.suppress.key), true
	case r.suppress == nil || len(r.suppress.key) == 0:
		return s.names(r.agg.groupBy), true
	}
	var common []int
	for _, f := range r.agg.groupBy {
		if slices.Contains(r.suppress.key, f) {
			common = append(common, f)
		}
	}
	return s.names(common), true
}

func (s *Set) names(fields []int) []string {
	if len(fields) == 0 {
		return []string{}
	}
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = s.schema.fields[f].name
	}
	return out
}

// Matcher evaluates only the conditions of a set's rules (match and
// exceptions): no windows, suppression or alerts. It tells where a flow
// must go before the rules that keep state see it. A Matcher belongs to
// one goroutine.
type Matcher struct {
	e   *Engine
	set *Set
}

// NewMatcher returns a matcher of set's enabled rules.
func NewMatcher(set *Set) *Matcher {
	return &Matcher{e: NewEngine(set, EngineConfig{MaxGroups: 1}), set: set}
}

// Set returns the matcher's rule set.
func (m *Matcher) Set() *Set { return m.set }

// Match calls fn, in load order, for every enabled rule whose match and
// exceptions accept in (temporal rules, which have no match of their
// own, never). in must stay unchanged until the last AppendKey for it.
func (m *Matcher) Match(in *Input, fn func(*Rule)) {
	e := m.e
	e.act.reset(in)
	m.set.index.candidates(in, e.hits, e.cand)
	for w, x := range e.cand {
		for x != 0 {
			i := w*64 + bits.TrailingZeros64(x)
			x &= x - 1
			if r := m.set.rules[i]; e.match(r) {
				fn(r)
			}
		}
	}
}

// AppendKey appends the values of the named fields of the input last
// matched to b: values separated by NUL, an absent field as "\x01absent".
// Unknown names append nothing but the separator. It is one-to-one, as the
// engine's own state key is, so one group has one key; the two differ for
// an absent int field ("0\x01absent" there), which only moves no group, and
// keeps repartition keys stable across versions.
func (m *Matcher) AppendKey(b []byte, fields ...string) []byte {
	for i, name := range fields {
		if i > 0 {
			b = append(b, 0)
		}
		f, ok := m.set.schema.index[name]
		if !ok {
			continue
		}
		v, ok := m.e.act.field(f)
		if !ok {
			b = append(b, "\x01absent"...)
			continue
		}
		b = appendValue(b, v)
	}
	return b
}
