package rules

import (
	"math/bits"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// Rules are indexed by cheap guards extracted at compile time, as Falco
// indexes rules by event type and Suricata by prefilter patterns: a
// top-level conjunct `field == constant` or `field in [constants]` on a
// string or int field means the rule can only match flows whose field has
// one of those values. Per flow the engine looks each indexed field up once
// and evaluates only the rules whose guard admits it, plus the unguarded
// rules.

// gkey is a guard value: a string or an int.
type gkey struct {
	s     string
	i     int64
	isInt bool
}

type guard struct {
	field  int
	values []gkey
}

// bitset is a set of rule indexes.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }
func (b bitset) set(i int)   { b[i/64] |= 1 << (i % 64) }
func (b bitset) or(o bitset) {
	for i := range b {
		b[i] |= o[i]
	}
}

// each calls f for every member in increasing order.
func (b bitset) each(f func(int)) {
	for w, x := range b {
		for x != 0 {
			t := bits.TrailingZeros64(x)
			f(w*64 + t)
			x &= x - 1
		}
	}
}

type fieldIndex struct {
	field int
	byVal map[gkey]bitset
}

type guardIndex struct {
	always bitset // rules without an indexed guard
	fields []fieldIndex
	n      int
}

// extractGuards finds the guards among the top-level conjuncts.
func extractGuards(s *Schema, a *celast.AST) []guard {
	if a == nil {
		return nil
	}
	refs := a.ReferenceMap()
	fieldOf := func(e celast.Expr) (int, bool) {
		r, ok := refs[e.ID()]
		if !ok || r.Value != nil {
			return 0, false
		}
		f, i, found := s.lookup(r.Name)
		if !found || f.key() == nil {
			return 0, false
		}
		return i, true
	}
	litOf := func(e celast.Expr) (gkey, bool) {
		if e.Kind() != celast.LiteralKind {
			return gkey{}, false
		}
		return keyOfVal(e.AsLiteral())
	}
	var out []guard
	var conj func(e celast.Expr)
	conj = func(e celast.Expr) {
		if e.Kind() != celast.CallKind {
			return
		}
		c := e.AsCall()
		args := c.Args()
		switch c.FunctionName() {
		case operators.LogicalAnd:
			for _, arg := range args {
				conj(arg)
			}
		case operators.Equals:
			if len(args) != 2 {
				return
			}
			for _, pair := range [][2]celast.Expr{{args[0], args[1]}, {args[1], args[0]}} {
				if f, ok := fieldOf(pair[0]); ok {
					if k, ok := litOf(pair[1]); ok && k.isInt == (s.fields[f].kind == KindInt) {
						out = append(out, guard{f, []gkey{k}})
						return
					}
				}
			}
		case operators.In:
			if len(args) != 2 || args[1].Kind() != celast.ListKind {
				return
			}
			f, ok := fieldOf(args[0])
			if !ok {
				return
			}
			var ks []gkey
			for _, el := range args[1].AsList().Elements() {
				k, ok := litOf(el)
				if !ok || k.isInt != (s.fields[f].kind == KindInt) {
					return
				}
				ks = append(ks, k)
			}
			if len(ks) > 0 {
				out = append(out, guard{f, ks})
			}
		}
	}
	conj(a.Expr())
	return out
}

func keyOfVal(v ref.Val) (gkey, bool) {
	switch x := v.(type) {
	case types.String:
		return gkey{s: string(x)}, true
	case types.Int:
		return gkey{i: int64(x), isInt: true}, true
	case types.Uint:
		return gkey{i: int64(x), isInt: true}, true
	}
	return gkey{}, false
}

// buildIndex picks for each rule the guard on the most selective field:
// the field with the most distinct guard values across the set (ports
// before protocols).
func buildIndex(set *Set) guardIndex {
	n := len(set.rules)
	ix := guardIndex{always: newBitset(n), n: n}
	guards := make([][]guard, n)
	distinct := map[int]map[gkey]bool{}
	for i, r := range set.rules {
		guards[i] = extractGuards(set.schema, r.guardAST)
		for _, g := range guards[i] {
			if distinct[g.field] == nil {
				distinct[g.field] = map[gkey]bool{}
			}
			for _, v := range g.values {
				distinct[g.field][v] = true
			}
		}
	}
	byField := map[int]int{}
	for i, r := range set.rules {
		if !r.Enabled {
			continue
		}
		if r.prg == nil || len(guards[i]) == 0 {
			ix.always.set(i)
			continue
		}
		best := guards[i][0]
		for _, g := range guards[i][1:] {
			if len(distinct[g.field]) > len(distinct[best.field]) {
				best = g
			}
		}
		j, ok := byField[best.field]
		if !ok {
			j = len(ix.fields)
			byField[best.field] = j
			ix.fields = append(ix.fields, fieldIndex{field: best.field, byVal: map[gkey]bitset{}})
		}
		for _, v := range best.values {
			b := ix.fields[j].byVal[v]
			if b == nil {
				b = newBitset(n)
				ix.fields[j].byVal[v] = b
			}
			b.set(i)
		}
	}
	return ix
}

// key reads a string or int field natively, for guard lookups; nil for
// other kinds.
func (f *field) key() func(in *Input) (gkey, bool) {
	switch {
	case f.leaf == nil && f.kind == KindString:
		return func(in *Input) (gkey, bool) {
			if f.slot >= len(in.extra) || !in.extra[f.slot].set {
				return gkey{}, false
			}
			return gkey{s: in.extra[f.slot].s}, true
		}
	case f.leaf == nil && f.kind == KindInt:
		return func(in *Input) (gkey, bool) {
			if f.slot >= len(in.extra) || !in.extra[f.slot].set {
				return gkey{}, false
			}
			return gkey{i: in.extra[f.slot].i, isInt: true}, true
		}
	case f.str != nil:
		return func(in *Input) (gkey, bool) {
			p := f.base(in)
			if p == nil {
				return gkey{}, false
			}
			return gkey{s: f.str(p)}, true
		}
	case f.int != nil:
		return func(in *Input) (gkey, bool) {
			p := f.base(in)
			if p == nil {
				return gkey{}, false
			}
			return gkey{i: f.int(p), isInt: true}, true
		}
	}
	return nil
}

// candidates fills out with the rules to evaluate for in.
func (ix *guardIndex) candidates(in *Input, keys []func(*Input) (gkey, bool), out bitset) {
	copy(out, ix.always)
	for j := range ix.fields {
		k, ok := keys[j](in)
		if !ok {
			continue
		}
		if b := ix.fields[j].byVal[k]; b != nil {
			out.or(b)
		}
	}
}
