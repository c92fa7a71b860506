package rules

import (
	"cmp"
	"math"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
)

// Most rules are conjunctions of field tests the guard index already knows
// how to run natively: app == "anydesk", !cidr_in(egress.ip, list),
// direction in ["outbound", "inbound"], sensor.site != device.assigned_site,
// and of comparisons of numbers: src.bytes + dst.bytes >= 100000,
// src.bytes >= 2000.0 * duration_s, local_hour(start, device.home_timezone)
// < 7. Each top-level conjunct of a rule's condition is compiled, besides
// the rule's CEL program, into a tree of native checks, and the engine
// evaluates those instead of CEL: no boxing, no activation, no cost
// tracking. A rule with a conjunct using anything else (division, string
// methods, timestamps other than through local_hour, IP literals, ...)
// runs its native conjuncts first, and CEL only when they all hold.
//
// The checks keep CEL's semantics exactly, errors included: reading an
// absent field is an error, and so is int overflow; `&&` is false if
// either side is false, else an error if either is; `||` is true if either
// side is true, else an error if either is; `!` keeps an error; ints and
// doubles compare as numbers, a NaN equal to nothing and ordered with
// nothing. A condition is true only when every conjunct is, so a rule
// matches only when every check is true.

// Native reports whether the engine evaluates the rule's condition with
// native checks only, without CEL (for tooling: a rule that is not native
// costs a CEL evaluation on every flow its guards and native checks
// admit).
func (r *Rule) Native() bool { return r.prg != nil && !r.cel }

// tri is a CEL result as the native checks see it.
type tri uint8

const (
	triFalse tri = iota
	triTrue
	triErr
)

func triOf(b bool) tri {
	if b {
		return triTrue
	}
	return triFalse
}

// check is one native test of a flow.
type check func(*Input) tri

// nativeCompiler turns a checked expression into checks.
type nativeCompiler struct {
	s     *Schema
	refs  map[int64]*celast.ReferenceInfo
	lists map[string]*List
	zones *zoneCache
}

// compileNative returns the native checks of the top-level conjuncts of a
// rule's condition that have one, and whether some do not.
func compileNative(s *Schema, a *celast.AST, lists map[string]*List, zones *zoneCache) (checks []check, rest bool) {
	c := &nativeCompiler{s: s, refs: a.ReferenceMap(), lists: lists, zones: zones}
	for _, e := range conjuncts(a.Expr(), nil) {
		if f, ok := c.expr(e); ok {
			checks = append(checks, f)
		} else {
			rest = true
		}
	}
	return checks, rest
}

// matchNative is the conjunction of the checks as CEL's && computes it:
// false if one is false, else an error if one is, else true.
func matchNative(checks []check, in *Input) tri {
	r := triTrue
	for _, c := range checks {
		switch c(in) {
		case triFalse:
			return triFalse
		case triErr:
			r = triErr
		}
	}
	return r
}

func (c *nativeCompiler) field(e celast.Expr) (*field, bool) {
	r, ok := c.refs[e.ID()]
	if !ok || r.Value != nil || (e.Kind() != celast.IdentKind && e.Kind() != celast.SelectKind) {
		return nil, false
	}
	f, _, found := c.s.lookup(r.Name)
	return f, found
}

func (c *nativeCompiler) expr(e celast.Expr) (check, bool) {
	switch e.Kind() {
	case celast.LiteralKind:
		if b, ok := e.AsLiteral().(types.Bool); ok {
			v := triOf(bool(b))
			return func(*Input) tri { return v }, true
		}
		return nil, false
	case celast.IdentKind, celast.SelectKind:
		f, ok := c.field(e)
		if !ok || f.kind != KindBool || !f.keyable() {
			return nil, false
		}
		return func(in *Input) tri {
			x, ok := f.intValue(in)
			if !ok {
				return triErr
			}
			return triOf(x != 0)
		}, true
	case celast.CallKind:
	default:
		return nil, false
	}
	call := e.AsCall()
	args := call.Args()
	switch fn := call.FunctionName(); fn {
	case operators.LogicalAnd, operators.LogicalOr:
		var parts []check
		for _, arg := range args {
			p, ok := c.expr(arg)
			if !ok {
				return nil, false
			}
			parts = append(parts, p)
		}
		if fn == operators.LogicalAnd {
			return func(in *Input) tri {
				r := triTrue
				for _, p := range parts {
					switch p(in) {
					case triFalse:
						return triFalse
					case triErr:
						r = triErr
					}
				}
				return r
			}, true
		}
		return func(in *Input) tri {
			r := triFalse
			for _, p := range parts {
				switch p(in) {
				case triTrue:
					return triTrue
				case triErr:
					r = triErr
				}
			}
			return r
		}, true
	case operators.LogicalNot:
		if len(args) != 1 {
			return nil, false
		}
		p, ok := c.expr(args[0])
		if !ok {
			return nil, false
		}
		return func(in *Input) tri {
			switch p(in) {
			case triTrue:
				return triFalse
			case triFalse:
				return triTrue
			}
			return triErr
		}, true
	case operators.Equals, operators.NotEquals, operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
		if len(args) != 2 {
			return nil, false
		}
		return c.compare(fn, args[0], args[1])
	case operators.In:
		if len(args) != 2 || args[1].Kind() != celast.ListKind {
			return nil, false
		}
		f, ok := c.field(args[0])
		if !ok || !f.keyable() {
			return nil, false
		}
		strs, ints := map[string]bool{}, map[int64]bool{}
		for _, el := range args[1].AsList().Elements() {
			k, ok := literal(f.kind, el)
			if !ok {
				return nil, false
			}
			if f.kind == KindString {
				strs[k.s] = true
			} else {
				ints[k.i] = true
			}
		}
		if f.kind == KindString {
			return func(in *Input) tri {
				s, ok := f.strValue(in)
				if !ok {
					return triErr
				}
				return triOf(strs[s])
			}, true
		}
		return func(in *Input) tri {
			x, ok := f.intValue(in)
			if !ok {
				return triErr
			}
			return triOf(ints[x])
		}, true
	case "present":
		if len(args) != 1 {
			return nil, false
		}
		f, ok := c.field(args[0])
		if !ok {
			return nil, false
		}
		present := f.presence()
		return func(in *Input) tri { return triOf(present(in)) }, true
	case "in_list", "asn_in", "cidr_in", "dns_suffix_in", "oui_in":
		if len(args) != 2 || args[1].Kind() != celast.IdentKind {
			return nil, false
		}
		f, ok := c.field(args[0])
		lst := c.lists[args[1].AsIdent()]
		if !ok || lst == nil {
			return nil, false
		}
		test := f.predicate(fn, lst)
		if test == nil {
			return nil, false
		}
		present := f.presence()
		return func(in *Input) tri {
			if !present(in) {
				return triErr
			}
			return triOf(test(in))
		}, true
	}
	return nil, false
}

// compare compiles a comparison of two numbers, or the equality of a
// string or bool field with a literal of its kind or another such field.
func (c *nativeCompiler) compare(op string, l, r celast.Expr) (check, bool) {
	if a, ok := c.num(l); ok {
		if b, ok := c.num(r); ok {
			return compareNums(op, a, b), true
		}
		return nil, false
	}
	if op != operators.Equals && op != operators.NotEquals {
		return nil, false // ordering of strings and bools stays with CEL
	}
	fl, lok := c.field(l)
	fr, rok := c.field(r)
	var a, b *field // nil: the constant k
	var k gkey
	var kind Kind
	switch {
	case lok && rok:
		if !fl.keyable() || !fr.keyable() || fl.kind != fr.kind {
			return nil, false
		}
		a, b, kind = fl, fr, fl.kind
	case lok:
		var ok bool
		k, ok = literal(fl.kind, r)
		if !ok || !fl.keyable() {
			return nil, false
		}
		a, kind = fl, fl.kind
	case rok:
		var ok bool
		k, ok = literal(fr.kind, l)
		if !ok || !fr.keyable() {
			return nil, false
		}
		b, kind = fr, fr.kind
	default:
		return nil, false
	}
	eq := op == operators.Equals
	switch kind {
	case KindString:
		switch {
		case b == nil:
			return func(in *Input) tri {
				x, ok := a.strValue(in)
				if !ok {
					return triErr
				}
				return triOf((x == k.s) == eq)
			}, true
		case a == nil:
			return func(in *Input) tri {
				y, ok := b.strValue(in)
				if !ok {
					return triErr
				}
				return triOf((k.s == y) == eq)
			}, true
		}
		return func(in *Input) tri {
			x, ok1 := a.strValue(in)
			y, ok2 := b.strValue(in)
			if !ok1 || !ok2 {
				return triErr
			}
			return triOf((x == y) == eq)
		}, true
	case KindBool:
		read := func(f *field, in *Input) (int64, bool) {
			if f == nil {
				return k.i, true
			}
			return f.intValue(in)
		}
		return func(in *Input) tri {
			x, ok1 := read(a, in)
			y, ok2 := read(b, in)
			if !ok1 || !ok2 {
				return triErr
			}
			return triOf((x == y) == eq)
		}, true
	}
	return nil, false
}

// num is a native numeric expression: an int or, when dbl, a double. Its
// ok=false is a CEL error (an absent field, an int overflow).
type num struct {
	dbl bool
	i   func(*Input) (int64, bool)
	d   func(*Input) (float64, bool)
}

// num compiles a numeric expression: an int or double literal or field,
// +, - or * of two of one type (CEL does not mix them), or local_hour of
// a timestamp field and a string field.
func (c *nativeCompiler) num(e celast.Expr) (num, bool) {
	switch e.Kind() {
	case celast.LiteralKind:
		switch x := e.AsLiteral().(type) {
		case types.Int:
			return num{i: func(*Input) (int64, bool) { return int64(x), true }}, true
		case types.Double:
			return num{dbl: true, d: func(*Input) (float64, bool) { return float64(x), true }}, true
		}
		return num{}, false
	case celast.IdentKind, celast.SelectKind:
		f, ok := c.field(e)
		switch {
		case !ok:
		case f.kind == KindInt && f.keyable():
			return num{i: f.intValue}, true
		case f.kind == KindDouble && (f.leaf == nil || f.nat.ld == ldFloat64 || f.nat.ld == ldFloat32):
			return num{dbl: true, d: f.doubleValue}, true
		}
		return num{}, false
	case celast.CallKind:
	default:
		return num{}, false
	}
	call := e.AsCall()
	args := call.Args()
	if len(args) != 2 {
		return num{}, false
	}
	switch fn := call.FunctionName(); fn {
	case operators.Add, operators.Subtract, operators.Multiply:
		a, ok1 := c.num(args[0])
		b, ok2 := c.num(args[1])
		switch {
		case !ok1 || !ok2 || a.dbl != b.dbl:
			return num{}, false
		case a.dbl:
			return num{dbl: true, d: doubleArith(fn, a.d, b.d)}, true
		}
		return num{i: intArith(fn, a.i, b.i)}, true
	case "local_hour":
		ts, ok1 := c.field(args[0])
		tz, ok2 := c.field(args[1])
		if !ok1 || !ok2 || ts.nat.ld != ldTime || tz.kind != KindString || !tz.keyable() {
			return num{}, false
		}
		zones := c.zones
		return num{i: func(in *Input) (int64, bool) {
			t, ok := ts.timeValue(in)
			if !ok {
				return 0, false
			}
			name, ok := tz.strValue(in)
			if !ok {
				return 0, false
			}
			loc, ok := zones.get(name)
			if !ok {
				return 0, false
			}
			return int64(t.In(loc).Hour()), true
		}}, true
	}
	return num{}, false
}

// intArith is a op b on ints, an error on overflow as in CEL.
func intArith(op string, a, b func(*Input) (int64, bool)) func(*Input) (int64, bool) {
	var f func(x, y int64) (int64, bool)
	switch op {
	case operators.Add:
		f = func(x, y int64) (int64, bool) {
			if (y > 0 && x > math.MaxInt64-y) || (y < 0 && x < math.MinInt64-y) {
				return 0, false
			}
			return x + y, true
		}
	case operators.Subtract:
		f = func(x, y int64) (int64, bool) {
			if (y < 0 && x > math.MaxInt64+y) || (y > 0 && x < math.MinInt64+y) {
				return 0, false
			}
			return x - y, true
		}
	default:
		f = func(x, y int64) (int64, bool) {
			p := x * y
			if x != 0 && (p/x != y || (x == -1 && y == math.MinInt64)) {
				return 0, false
			}
			return p, true
		}
	}
	return func(in *Input) (int64, bool) {
		x, ok1 := a(in)
		y, ok2 := b(in)
		if !ok1 || !ok2 {
			return 0, false
		}
		return f(x, y)
	}
}

// doubleArith is a op b on doubles.
func doubleArith(op string, a, b func(*Input) (float64, bool)) func(*Input) (float64, bool) {
	return func(in *Input) (float64, bool) {
		x, ok1 := a(in)
		y, ok2 := b(in)
		if !ok1 || !ok2 {
			return 0, false
		}
		switch op {
		case operators.Add:
			return x + y, true
		case operators.Subtract:
			return x - y, true
		}
		return x * y, true
	}
}

// compareNums compiles op on two numbers as CEL compares them: an int
// with a double as a double, a NaN equal to nothing and neither less nor
// greater than anything.
func compareNums(op string, a, b num) check {
	var holds outcomes
	switch op {
	case operators.Equals:
		holds = 0b010
	case operators.NotEquals:
		holds = 0b101
	case operators.Less:
		holds = 0b001
	case operators.LessEquals:
		holds = 0b011
	case operators.Greater:
		holds = 0b100
	default: // GreaterEquals
		holds = 0b110
	}
	nan := triOf(op == operators.NotEquals)
	switch {
	case !a.dbl && !b.dbl:
		return func(in *Input) tri {
			x, ok1 := a.i(in)
			y, ok2 := b.i(in)
			if !ok1 || !ok2 {
				return triErr
			}
			return holds.of(cmp.Compare(x, y))
		}
	case a.dbl && b.dbl:
		return func(in *Input) tri {
			x, ok1 := a.d(in)
			y, ok2 := b.d(in)
			switch {
			case !ok1 || !ok2:
				return triErr
			case math.IsNaN(x) || math.IsNaN(y):
				return nan
			}
			return holds.of(cmp.Compare(x, y))
		}
	case a.dbl:
		return func(in *Input) tri {
			x, ok1 := a.d(in)
			y, ok2 := b.i(in)
			switch {
			case !ok1 || !ok2:
				return triErr
			case math.IsNaN(x):
				return nan
			}
			return holds.of(cmp.Compare(x, float64(y)))
		}
	}
	return func(in *Input) tri {
		x, ok1 := a.i(in)
		y, ok2 := b.d(in)
		switch {
		case !ok1 || !ok2:
			return triErr
		case math.IsNaN(y):
			return nan
		}
		return holds.of(cmp.Compare(float64(x), y))
	}
}

// outcomes are a comparison's results for each order of its operands
// (-1, 0, 1), by bit from the lowest.
type outcomes uint8

func (o outcomes) of(order int) tri { return triOf(o>>(order+1)&1 != 0) }

// presence returns a test of whether the field is present.
func (f *field) presence() func(*Input) bool {
	if f.leaf == nil {
		return func(in *Input) bool { return in.extraAt(f.slot) != nil }
	}
	switch {
	case f.nat.ld == ldAddr:
		return func(in *Input) bool {
			_, ok := f.addrValue(in)
			return ok
		}
	case f.nat.ld == ldMAC:
		return func(in *Input) bool {
			_, ok := f.macValue(in)
			return ok
		}
	case f.nat.ld == ldString:
		return func(in *Input) bool {
			_, ok := f.strValue(in)
			return ok
		}
	case f.nat.ld.isInt():
		return func(in *Input) bool {
			_, ok := f.intValue(in)
			return ok
		}
	case f.nat.ld == ldFloat32 || f.nat.ld == ldFloat64:
		return func(in *Input) bool {
			_, ok := f.doubleValue(in)
			return ok
		}
	case f.nat.ld == ldTime:
		return func(in *Input) bool {
			_, ok := f.timeValue(in)
			return ok
		}
	}
	return func(in *Input) bool {
		p := f.base(in)
		if p == nil {
			return false
		}
		_, ok := f.leaf(p)
		return ok
	}
}
