package rules

import (
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
)

// Most rules are conjunctions of field tests the guard index already knows
// how to run natively: app == "anydesk", !cidr_in(egress.ip, list),
// direction in ["outbound", "inbound"], sensor.site != device.assigned_site.
// Such a rule is compiled, besides its CEL program, into a tree of native
// checks, and the engine evaluates that instead of CEL: no boxing, no
// activation, no cost tracking. A rule using anything else (arithmetic,
// string methods, timestamps, IP literals, ...) keeps CEL.
//
// The checks keep CEL's semantics exactly, errors included: reading an
// absent field is an error; `&&` is false if either side is false, else an
// error if either is; `||` is true if either side is true, else an error if
// either is; `!` keeps an error. A rule matches only on true.

// Native reports whether the engine evaluates the rule's condition with
// native checks instead of CEL (for tooling: a rule that is not native
// costs a CEL evaluation on every flow its guards admit).
func (r *Rule) Native() bool { return r.native != nil }

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
}

// compileNative returns the native form of a rule's condition, or nil.
func compileNative(s *Schema, a *celast.AST, lists map[string]*List) check {
	if a == nil {
		return nil
	}
	c := &nativeCompiler{s: s, refs: a.ReferenceMap(), lists: lists}
	f, ok := c.expr(a.Expr())
	if !ok {
		return nil
	}
	return f
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
		present := f.presence()
		if test == nil || present == nil {
			return nil, false
		}
		return func(in *Input) tri {
			if !present(in) {
				return triErr
			}
			return triOf(test(in))
		}, true
	}
	return nil, false
}

// compare compiles a comparison of a field with a literal of its kind,
// or of two fields of one kind.
func (c *nativeCompiler) compare(op string, l, r celast.Expr) (check, bool) {
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
	if op != operators.Equals && op != operators.NotEquals && kind != KindInt {
		return nil, false // ordering of strings and bools stays with CEL
	}
	if kind == KindString {
		eq := op == operators.Equals
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
	}
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
		switch op {
		case operators.Equals:
			return triOf(x == y)
		case operators.NotEquals:
			return triOf(x != y)
		case operators.Less:
			return triOf(x < y)
		case operators.LessEquals:
			return triOf(x <= y)
		case operators.Greater:
			return triOf(x > y)
		}
		return triOf(x >= y)
	}, true
}

// presence returns a test of whether the field is present, or nil.
func (f *field) presence() func(*Input) bool {
	if f.leaf == nil {
		return func(in *Input) bool { return f.slot < len(in.extra) && in.extra[f.slot].set }
	}
	return func(in *Input) bool {
		p := f.base(in)
		if p == nil {
			return false
		}
		switch {
		case f.nat.addr != nil:
			return f.nat.addr(p).IsValid()
		case f.nat.mac != nil:
			return !f.nat.omit || !f.nat.mac(p).IsZero()
		case f.nat.str != nil:
			return !f.nat.omit || f.nat.str(p) != ""
		case f.nat.int != nil:
			return !f.nat.omit || f.nat.int(p) != 0
		case f.nat.bool != nil:
			return !f.nat.omit || f.nat.bool(p)
		}
		_, ok := f.leaf(p)
		return ok
	}
}
