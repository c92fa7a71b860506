package rules

import (
	"math/bits"
	"slices"
	"strconv"
	"strings"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"

	"github.com/edgeward/edgeward/rules/lists"
)

// Rules are indexed by cheap guards extracted at compile time, as Falco
// indexes rules by event type and Suricata by prefilter patterns. A guard
// is a condition the rule cannot match without, checked natively per flow
// instead of through CEL:
//
//   - an equality: a top-level conjunct `field == constant`, `field in
//     [constants]`, a bare bool field, or `in_list(field, list)` /
//     `asn_in(field, list)` with a list of at most maxExpandedList entries
//     (its entries are the constants);
//   - a list function: `cidr_in(field, list)`, `dns_suffix_in(field,
//     list)`, `oui_in(field, list)` (and in_list/asn_in on longer lists),
//     evaluated once per flow for every rule that uses it;
//   - a comparison of two string, int or bool fields (`sensor.site !=
//     device.assigned_site`), evaluated natively;
//   - a disjunction `a || b` whose every side has a guard: admitted when
//     any side's guard admits the flow.
//
// Every guarded conjunct of a rule's top-level conjunction gets a slot;
// per flow the engine looks each indexed field up once and runs each list
// function once, setting the slots they admit, and evaluates only the
// rules whose slots are all set, plus the unguarded ones. A conjunction
// nested inside a disjunction contributes its most selective guard (the
// one on the field with the most distinct guard values across the set).

// maxExpandedList is the longest list whose entries become equality guard
// values; longer lists are checked by their lookup structure instead.
const maxExpandedList = 1024

// predicateScore ranks a list-function or bool-flag guard against
// equality guards when a nested conjunction picks one, which rank by the
// number of distinct guard values of their field across the set: it beats
// proto and direction, loses to ports and app ids.
const predicateScore = 8

// gkey is a guard value: a string, or an int (bools are 0 and 1).
type gkey struct {
	s     string
	i     int64
	isInt bool
}

// atom is one guard: the field equals one of values, the list function
// fn is true on it, or (fn "==" or "!=") it compares so with field2.
type atom struct {
	field  int
	values []gkey
	fn     string
	list   *List
	field2 int
	empty  bool // a list function on an empty list: admits nothing
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

// Index bitsets are over slots: each guarded top-level conjunct of a rule
// has one, and a rule is a candidate when all of its slots are set.

type fieldIndex struct {
	field int
	byVal map[gkey]bitset
	// The lookup structures built from byVal: a string field's values in
	// strs, an int or bool field's in ints, so that a lookup hashes a
	// plain string or int. one and oneSet hold byVal's only entry when it
	// has one (a bool flag, a single app id), compared without hashing.
	str    bool
	strs   map[string]bitset
	ints   map[int64]bitset
	one    gkey
	oneSet bitset
}

// predIndex is one list function on one field (or one comparison of two
// fields) and the slots it sets.
type predIndex struct {
	field  int
	fn     string
	list   *List
	field2 int
	rules  bitset // slots
}

// suffixIndex checks one string field against the suffix lists of
// several dns_suffix_in guards in one walk of its labels.
type suffixIndex struct {
	f     *field
	field int
	sets  *lists.SuffixSets
	lists []*List
	rules []bitset // per list
}

// ruleSlots are a guarded rule's slots: bits mask of word.
type ruleSlots struct {
	rule int
	word int
	mask uint64
}

type guardIndex struct {
	always   bitset // rules without a guard
	fields   []fieldIndex
	preds    []predIndex
	suffixes []suffixIndex
	guarded  []ruleSlots
	nslots   int
	n        int
	desc     map[int][]string // per rule: its conjuncts' guards, for Guards
}

// guardExtractor finds guards in a rule's checked AST.
type guardExtractor struct {
	s        *Schema
	refs     map[int64]*celast.ReferenceInfo
	lists    map[string]*List
	distinct map[int]int // distinct equality guard values per field
}

func (g *guardExtractor) fieldOf(e celast.Expr) (int, bool) {
	r, ok := g.refs[e.ID()]
	if !ok || r.Value != nil {
		return 0, false
	}
	_, i, found := g.s.lookup(r.Name)
	return i, found
}

// literal converts a CEL constant to a guard value of the field's kind.
func literal(k Kind, e celast.Expr) (gkey, bool) {
	if e.Kind() != celast.LiteralKind {
		return gkey{}, false
	}
	switch x := e.AsLiteral().(type) {
	case types.String:
		return gkey{s: string(x)}, k == KindString
	case types.Int:
		return gkey{i: int64(x), isInt: true}, k == KindInt
	case types.Uint:
		return gkey{i: int64(x), isInt: true}, k == KindInt
	case types.Bool:
		return boolKey(bool(x)), k == KindBool
	}
	return gkey{}, false
}

func boolKey(b bool) gkey {
	if b {
		return gkey{i: 1, isInt: true}
	}
	return gkey{isInt: true}
}

// alts returns the guards of e, any one of which must admit a flow for e
// to be true, or ok=false when e has none.
func (g *guardExtractor) alts(e celast.Expr) ([]atom, bool) {
	switch e.Kind() {
	case celast.IdentKind, celast.SelectKind:
		if f, ok := g.fieldOf(e); ok && g.s.fields[f].kind == KindBool && g.s.fields[f].keyable() {
			return []atom{{field: f, values: []gkey{boolKey(true)}}}, true
		}
		return nil, false
	case celast.CallKind:
	default:
		return nil, false
	}
	c := e.AsCall()
	args := c.Args()
	switch fn := c.FunctionName(); fn {
	case operators.LogicalAnd:
		var best []atom
		bestScore := -1
		for _, arg := range args {
			if as, ok := g.alts(arg); ok {
				if sc := g.score(as); sc > bestScore {
					best, bestScore = as, sc
				}
			}
		}
		return best, best != nil
	case operators.LogicalOr:
		var all []atom
		for _, arg := range args {
			as, ok := g.alts(arg)
			if !ok {
				return nil, false
			}
			all = append(all, as...)
		}
		return all, true
	case operators.Equals, operators.NotEquals:
		if len(args) != 2 {
			return nil, false
		}
		// Two fields compared: checked natively.
		if f1, ok := g.fieldOf(args[0]); ok && g.s.fields[f1].keyable() {
			if f2, ok := g.fieldOf(args[1]); ok && g.s.fields[f2].keyable() && g.s.fields[f1].kind == g.s.fields[f2].kind {
				op := "=="
				if fn == operators.NotEquals {
					op = "!="
				}
				return []atom{{field: f1, fn: op, field2: f2}}, true
			}
		}
		if fn == operators.NotEquals {
			return nil, false
		}
		for _, pair := range [][2]celast.Expr{{args[0], args[1]}, {args[1], args[0]}} {
			if f, ok := g.fieldOf(pair[0]); ok && g.s.fields[f].keyable() {
				if k, ok := literal(g.s.fields[f].kind, pair[1]); ok {
					return []atom{{field: f, values: []gkey{k}}}, true
				}
			}
		}
	case operators.In:
		if len(args) != 2 || args[1].Kind() != celast.ListKind {
			return nil, false
		}
		f, ok := g.fieldOf(args[0])
		if !ok || !g.s.fields[f].keyable() {
			return nil, false
		}
		var ks []gkey
		for _, el := range args[1].AsList().Elements() {
			k, ok := literal(g.s.fields[f].kind, el)
			if !ok {
				return nil, false
			}
			ks = append(ks, k)
		}
		return []atom{{field: f, values: ks}}, len(ks) > 0
	case "in_list", "asn_in", "cidr_in", "dns_suffix_in", "oui_in":
		if len(args) != 2 || args[1].Kind() != celast.IdentKind {
			return nil, false
		}
		f, ok := g.fieldOf(args[0])
		lst := g.lists[args[1].AsIdent()]
		if !ok || lst == nil {
			return nil, false
		}
		return g.listAtom(fn, f, lst)
	}
	return nil, false
}

// listAtom is the guard of a list function on field f.
func (g *guardExtractor) listAtom(fn string, f int, lst *List) ([]atom, bool) {
	fd := &g.s.fields[f]
	if len(lst.entries) == 0 {
		// An empty list matches nothing: the guard admits no flow.
		return []atom{{field: f, fn: fn, list: lst, empty: true}}, true
	}
	switch fn {
	case "in_list":
		if fd.kind != KindString || lst.strings == nil {
			return nil, false
		}
		if len(lst.entries) <= maxExpandedList && fd.keyable() && fd.nat.mac == nil {
			var ks []gkey
			for _, e := range lst.entries {
				ks = append(ks, gkey{s: e.Value})
			}
			return []atom{{field: f, values: ks}}, true
		}
	case "asn_in":
		if fd.kind != KindInt || lst.numbers == nil {
			return nil, false
		}
		if len(lst.entries) <= maxExpandedList && fd.keyable() {
			var ks []gkey
			for _, x := range lst.numbers.Values() {
				ks = append(ks, gkey{i: int64(x), isInt: true})
			}
			return []atom{{field: f, values: ks}}, true
		}
	case "cidr_in":
		if fd.nat.addr == nil || lst.prefixes == nil {
			return nil, false
		}
	case "dns_suffix_in":
		if fd.kind != KindString || lst.suffixes == nil {
			return nil, false
		}
	case "oui_in":
		if fd.kind != KindString || lst.ouis == nil {
			return nil, false
		}
	}
	if fd.predicate(fn, lst) == nil {
		return nil, false
	}
	return []atom{{field: f, fn: fn, list: lst}}, true
}

// conjuncts flattens the top-level conjunction of e.
func conjuncts(e celast.Expr, out []celast.Expr) []celast.Expr {
	if e.Kind() == celast.CallKind && e.AsCall().FunctionName() == operators.LogicalAnd {
		for _, arg := range e.AsCall().Args() {
			out = conjuncts(arg, out)
		}
		return out
	}
	return append(out, e)
}

// describe names a guard: "app=anydesk", "cidr_in(dst.ip, nets)",
// "sensor.site != device.assigned_site"; one name per value.
func (s *Schema) describe(a atom) []string {
	name := s.fields[a.field].name
	switch {
	case a.empty:
		return []string{a.fn + "(" + name + ", " + a.list.name + ") (empty list)"}
	case a.list != nil:
		return []string{a.fn + "(" + name + ", " + a.list.name + ")"}
	case a.fn != "":
		return []string{name + " " + a.fn + " " + s.fields[a.field2].name}
	}
	var out []string
	for _, v := range a.values {
		val := v.s
		if v.isInt {
			val = strconv.FormatInt(v.i, 10)
		}
		out = append(out, name+"="+val)
	}
	return out
}

// score ranks a set of alternative guards by its weakest member.
func (g *guardExtractor) score(as []atom) int {
	sc := -1
	for _, a := range as {
		if a.empty {
			continue // admits nothing
		}
		// A list function or a bool flag (only ever guarded as true or
		// false) is scored as fairly selective.
		x := predicateScore
		if a.fn == "" && g.s.fields[a.field].kind != KindBool {
			x = g.distinct[a.field]
		}
		if sc < 0 || x < sc {
			sc = x
		}
	}
	if sc < 0 {
		return 1 << 30 // admits nothing at all
	}
	return sc
}

// buildIndex finds each rule's guarded conjuncts and indexes their guards
// by slot.
func buildIndex(set *Set) guardIndex {
	n := len(set.rules)
	ix := guardIndex{always: newBitset(n), n: n}
	g := &guardExtractor{s: set.schema, lists: map[string]*List{}}
	for name, v := range set.listVals {
		g.lists[name] = listArg(v)
	}
	// Distinct values per field, over every equality guard of the set.
	distinct := map[int]map[gkey]bool{}
	g.distinct = map[int]int{}
	var walk func(e celast.Expr)
	walk = func(e celast.Expr) {
		if e.Kind() != celast.CallKind {
			return
		}
		c := e.AsCall()
		if fn := c.FunctionName(); fn == operators.LogicalAnd || fn == operators.LogicalOr {
			for _, arg := range c.Args() {
				walk(arg)
			}
			return
		}
		if as, ok := g.alts(e); ok {
			for _, a := range as {
				if distinct[a.field] == nil {
					distinct[a.field] = map[gkey]bool{}
				}
				for _, v := range a.values {
					distinct[a.field][v] = true
				}
			}
		}
	}
	for _, r := range set.rules {
		if r.guardAST != nil {
			g.refs = r.guardAST.ReferenceMap()
			walk(r.guardAST.Expr())
		}
	}
	for f, vs := range distinct {
		g.distinct[f] = len(vs)
	}
	// Each rule's guarded top-level conjuncts, and their slots: a rule's
	// slots are consecutive and never straddle a bitset word, so one mask
	// test admits it.
	type guarded struct {
		rule  int
		conj  [][]atom
		start int
	}
	var gs []guarded
	ix.desc = map[int][]string{}
	for i, r := range set.rules {
		if !r.Enabled {
			continue
		}
		var conj [][]atom
		if r.prg != nil && r.guardAST != nil {
			g.refs = r.guardAST.ReferenceMap()
			for _, c := range conjuncts(r.guardAST.Expr(), nil) {
				if as, ok := g.alts(c); ok && len(conj) < 64 {
					conj = append(conj, as)
				}
			}
		}
		if len(conj) == 0 {
			ix.always.set(i)
			ix.desc[i] = []string{"always"}
			continue
		}
		if w := ix.nslots % 64; w+len(conj) > 64 {
			ix.nslots += 64 - w
		}
		gs = append(gs, guarded{rule: i, conj: conj, start: ix.nslots})
		ix.nslots += len(conj)
		for _, as := range conj {
			var names []string
			for _, a := range as {
				names = append(names, set.schema.describe(a)...)
			}
			slices.Sort(names)
			ix.desc[i] = append(ix.desc[i], strings.Join(slices.Compact(names), " | "))
		}
	}
	byField := map[int]int{}
	type predKey struct {
		field  int
		fn     string
		list   *List
		field2 int
	}
	byPred := map[predKey]int{}
	for _, gr := range gs {
		k := len(gr.conj)
		mask := ^uint64(0)
		if k < 64 {
			mask = (1<<k - 1)
		}
		ix.guarded = append(ix.guarded, ruleSlots{rule: gr.rule, word: gr.start / 64, mask: mask << (gr.start % 64)})
		for c, as := range gr.conj {
			slot := gr.start + c
			for _, a := range as {
				switch {
				case a.empty:
					// admits nothing
				case a.fn != "":
					pk := predKey{a.field, a.fn, a.list, a.field2}
					j, seen := byPred[pk]
					if !seen {
						j = len(ix.preds)
						byPred[pk] = j
						ix.preds = append(ix.preds, predIndex{field: a.field, fn: a.fn, list: a.list, field2: a.field2, rules: newBitset(ix.nslots)})
					}
					ix.preds[j].rules.set(slot)
				default:
					j, seen := byField[a.field]
					if !seen {
						j = len(ix.fields)
						byField[a.field] = j
						ix.fields = append(ix.fields, fieldIndex{field: a.field, byVal: map[gkey]bitset{}})
					}
					for _, v := range a.values {
						b := ix.fields[j].byVal[v]
						if b == nil {
							b = newBitset(ix.nslots)
							ix.fields[j].byVal[v] = b
						}
						b.set(slot)
					}
				}
			}
		}
	}
	for j := range ix.fields {
		fi := &ix.fields[j]
		fi.str = set.schema.fields[fi.field].kind == KindString
		if len(fi.byVal) == 1 {
			for k, b := range fi.byVal {
				fi.one, fi.oneSet = k, b
			}
			continue
		}
		if fi.str {
			fi.strs = make(map[string]bitset, len(fi.byVal))
		} else {
			fi.ints = make(map[int64]bitset, len(fi.byVal))
		}
		for k, b := range fi.byVal {
			if fi.str {
				fi.strs[k.s] = b
			} else {
				fi.ints[k.i] = b
			}
		}
	}
	ix.mergeSuffixes(set.schema)
	return ix
}

// mergeSuffixes turns the dns_suffix_in guards of a field that has
// several into one suffixIndex, so a flow's name is walked once.
func (ix *guardIndex) mergeSuffixes(s *Schema) {
	byField := map[int][]int{}
	for j, p := range ix.preds {
		if p.fn == "dns_suffix_in" {
			byField[p.field] = append(byField[p.field], j)
		}
	}
	drop := map[int]bool{}
	for f, js := range byField {
		if len(js) < 2 || len(js) > 64 {
			continue
		}
		sx := suffixIndex{f: &s.fields[f], field: f}
		var sets []*lists.Suffixes
		for _, j := range js {
			sets = append(sets, ix.preds[j].list.suffixes)
			sx.lists = append(sx.lists, ix.preds[j].list)
			sx.rules = append(sx.rules, ix.preds[j].rules)
			drop[j] = true
		}
		sx.sets = lists.NewSuffixSets(sets)
		ix.suffixes = append(ix.suffixes, sx)
	}
	if len(drop) == 0 {
		return
	}
	kept := ix.preds[:0]
	for j, p := range ix.preds {
		if !drop[j] {
			kept = append(kept, p)
		}
	}
	ix.preds = kept
	slices.SortFunc(ix.suffixes, func(a, b suffixIndex) int { return a.field - b.field })
}

// keyable reports whether the field can be read natively as a guard key.
func (f *field) keyable() bool {
	if f.leaf == nil {
		return f.kind == KindString || f.kind == KindInt || f.kind == KindBool
	}
	return f.nat.str != nil || f.nat.int != nil || f.nat.bool != nil
}

// key reads a string, int or bool field natively, for guard lookups; nil
// for other kinds.
func (f *field) key() func(in *Input) (gkey, bool) {
	if !f.keyable() {
		return nil
	}
	if f.kind == KindString {
		return func(in *Input) (gkey, bool) {
			s, ok := f.strValue(in)
			return gkey{s: s}, ok
		}
	}
	return func(in *Input) (gkey, bool) {
		x, ok := f.intValue(in)
		return gkey{i: x, isInt: true}, ok
	}
}

// strValue reads a string field natively; ok=false when absent.
func (f *field) strValue(in *Input) (string, bool) {
	if f.leaf == nil {
		if f.kind != KindString || f.slot >= len(in.extra) || !in.extra[f.slot].set {
			return "", false
		}
		return in.extra[f.slot].s, true
	}
	if f.nat.str == nil {
		return "", false
	}
	p := f.base(in)
	if p == nil {
		return "", false
	}
	var s string
	if f.nat.ld == ldString {
		s = *(*string)(p)
	} else {
		s = f.nat.str(p)
	}
	return s, !f.nat.omit || s != ""
}

// intValue reads a keyable int or bool field natively (a bool as 0 or
// 1); ok=false when absent.
func (f *field) intValue(in *Input) (int64, bool) {
	if f.leaf == nil {
		if f.slot >= len(in.extra) || !in.extra[f.slot].set {
			return 0, false
		}
		x := in.extra[f.slot].i
		if f.kind == KindBool && x != 0 {
			x = 1
		}
		return x, true
	}
	p := f.base(in)
	if p == nil {
		return 0, false
	}
	var x int64
	switch {
	case f.nat.ld != ldNone && f.nat.ld != ldString:
		x = loadInt(f.nat.ld, p)
	case f.nat.int != nil:
		x = f.nat.int(p)
	case f.nat.bool != nil:
		if f.nat.bool(p) {
			x = 1
		}
	}
	return x, !f.nat.omit || x != 0
}

// predicate returns the native test of list function fn on the field, or
// nil when the field cannot be read natively for it.
func (f *field) predicate(fn string, lst *List) func(*Input) bool {
	switch fn {
	case "cidr_in":
		if f.nat.addr == nil || lst.prefixes == nil {
			return nil
		}
		return func(in *Input) bool {
			p := f.base(in)
			if p == nil {
				return false
			}
			a := f.nat.addr(p)
			return a.IsValid() && lst.prefixes.Contains(a)
		}
	case "oui_in":
		if lst.ouis == nil {
			return nil
		}
		if f.nat.mac != nil {
			return func(in *Input) bool {
				p := f.base(in)
				if p == nil {
					return false
				}
				m := f.nat.mac(p)
				return !m.IsZero() && lst.ouis.ContainsMAC(m)
			}
		}
		return f.strPredicate(lst.ouis.Contains)
	case "dns_suffix_in":
		if lst.suffixes == nil {
			return nil
		}
		return f.strPredicate(lst.suffixes.Match)
	case "in_list":
		if lst.strings == nil {
			return nil
		}
		if f.nat.mac != nil { // a MAC in its text form, aa:bb:cc:dd:ee:ff
			return func(in *Input) bool {
				p := f.base(in)
				if p == nil {
					return false
				}
				var buf [17]byte
				b, _ := f.nat.mac(p).AppendText(buf[:0])
				return lst.strings.ContainsBytes(b)
			}
		}
		return f.strPredicate(lst.strings.Contains)
	case "asn_in":
		if lst.numbers == nil || f.kind != KindInt {
			return nil
		}
		read := f.key()
		if read == nil {
			return nil
		}
		return func(in *Input) bool {
			k, ok := read(in)
			return ok && k.i >= 0 && lst.numbers.Contains(uint64(k.i))
		}
	}
	return nil
}

func (f *field) strPredicate(test func(string) bool) func(*Input) bool {
	if f.kind != KindString || (f.leaf != nil && f.nat.str == nil) {
		return nil
	}
	return func(in *Input) bool {
		s, ok := f.strValue(in)
		return ok && test(s)
	}
}

// predicate returns the native test of a list function or field
// comparison guard.
func (p *predIndex) predicate(s *Schema) func(*Input) bool {
	if p.list != nil {
		return s.fields[p.field].predicate(p.fn, p.list)
	}
	a, b := &s.fields[p.field], &s.fields[p.field2]
	eq := p.fn == "=="
	if a.kind == KindString {
		return func(in *Input) bool {
			x, ok := a.strValue(in)
			if !ok {
				return false
			}
			y, ok := b.strValue(in)
			return ok && (x == y) == eq
		}
	}
	return func(in *Input) bool {
		x, ok := a.intValue(in)
		if !ok {
			return false
		}
		y, ok := b.intValue(in)
		return ok && (x == y) == eq
	}
}

// candidates fills out with the rules to evaluate for in; keys are the
// fields of ix.fields, preds the tests of ix.preds, hits scratch space of
// nslots bits.
func (ix *guardIndex) candidates(in *Input, keys []*field, preds []func(*Input) bool, hits, out bitset) {
	clear(hits)
	for j := range ix.fields {
		fi := &ix.fields[j]
		var b bitset
		if fi.str {
			s, ok := keys[j].strValue(in)
			switch {
			case !ok:
			case fi.oneSet != nil:
				if s == fi.one.s {
					b = fi.oneSet
				}
			default:
				b = fi.strs[s]
			}
		} else {
			x, ok := keys[j].intValue(in)
			switch {
			case !ok:
			case fi.oneSet != nil:
				if x == fi.one.i {
					b = fi.oneSet
				}
			default:
				b = fi.ints[x]
			}
		}
		if b != nil {
			hits.or(b)
		}
	}
	for j := range ix.preds {
		if preds[j](in) {
			hits.or(ix.preds[j].rules)
		}
	}
	for j := range ix.suffixes {
		sx := &ix.suffixes[j]
		name, ok := sx.f.strValue(in)
		if !ok {
			continue
		}
		for m := sx.sets.Match(name); m != 0; m &= m - 1 {
			hits.or(sx.rules[bits.TrailingZeros64(m)])
		}
	}
	copy(out, ix.always)
	for _, g := range ix.guarded {
		if hits[g.word]&g.mask == g.mask {
			out.set(g.rule)
		}
	}
}

// Guards describes how the engine indexes each enabled rule, for tooling
// and tests: per rule id, one entry per guarded top-level conjunct, each
// the guards any one of which admits a flow ("app=anydesk | app=ngrok",
// "cidr_in(dst.ip, nets)", "sensor.site != device.assigned_site"). A rule
// is evaluated only on flows every entry admits; ["always"] is a rule
// evaluated on every flow.
func (s *Set) Guards() map[string][]string {
	out := map[string][]string{}
	for i, d := range s.index.desc {
		out[s.rules[i].ID] = d
	}
	return out
}
