package rules

import (
	"cmp"
	"encoding/binary"
	"maps"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"unsafe"

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
//     any side's guard admits the flow;
//   - for a rule without any of these, the presence of a field its
//     condition requires (requiredFields) and flows may lack
//     (`!cidr_in(egress.ip, offices)` needs egress.ip).
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
// fn is true on it, (fn "==" or "!=") it compares so with field2, or (fn
// "present") it is present.
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
func (b bitset) set(i int)   { b[i>>6] |= 1 << (i & 63) }
func (b bitset) or(o bitset) {
	for i := range o {
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
	f   *field
	src fieldSource
	// The slots each guard value sets. A field with up to maxScan values
	// compares them in turn (strs or ints, sets parallel): cheaper than
	// hashing, and most fields have a few (a direction, a bool flag); one
	// with more (app ids, AS numbers) looks them up in strMap or intMap.
	strs   []string
	heads  []uint64 // head of each of strs
	lens   uint64   // bit min(len, 63) of the length of each of strs
	ints   []int64
	sets   []bitset
	strMap map[string]bitset
	intMap map[int64]bitset
}

// fieldSource is where and how the index reads a field.
type fieldSource uint8

const (
	extraString fieldSource = iota
	extraInt
	leafString
	leafInt
	nSources
)

// maxScan is the most guard values a field's lookup compares in turn.
const maxScan = 8

// strSlots returns the slots value s sets, nil for none.
func (fi *fieldIndex) strSlots(s string) bitset {
	if fi.strMap != nil {
		return fi.strMap[s]
	}
	if fi.lens>>min(len(s), 63)&1 == 0 {
		return nil // no value is as long
	}
	// Guard values often share a length ("outbound", "internal"): their
	// heads tell most apart, and decide strings of up to 8 bytes, without
	// a call to compare the bytes.
	h := head(s)
	for k, v := range fi.strs {
		if fi.heads[k] == h && len(v) == len(s) && (len(s) <= 8 || v[8:] == s[8:]) {
			return fi.sets[k]
		}
	}
	return nil
}

// head is the first 8 bytes of s (fewer, zero-padded, if it is shorter)
// as a number.
func head(s string) uint64 {
	if len(s) >= 8 {
		return binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s), 8))
	}
	var h uint64
	for i := range len(s) {
		h |= uint64(s[i]) << (8 * i)
	}
	return h
}

// intSlots returns the slots value x sets, nil for none.
func (fi *fieldIndex) intSlots(x int64) bitset {
	if fi.intMap != nil {
		return fi.intMap[x]
	}
	for k, v := range fi.ints {
		if v == x {
			return fi.sets[k]
		}
	}
	return nil
}

// predIndex is one list function on one field (or one comparison of two
// fields) and the slots it sets.
type predIndex struct {
	field  int
	fn     string
	list   *List
	field2 int
	test   func(*Input) bool
	rules  bitset // slots
}

// suffixIndex checks one string field against the suffix lists of
// several dns_suffix_in guards in one walk of its labels.
type suffixIndex struct {
	f     *field
	field int
	sets  *lists.SuffixSets
	rules []bitset // per list
}

// slotWord is one word of slots and the guarded rules whose slots lie in
// it. Each rule's slots are consecutive and followed by a spare bit that
// is no slot, so that adding first to the word's hits carries into a
// rule's spare bit exactly when all of its slots are set: one addition
// tests every rule of the word.
type slotWord struct {
	slots uint64 // every rule's slots
	first uint64 // each rule's first slot
	spare uint64 // the bit after each rule's last slot
	rules []int  // the rule of each spare bit, lowest first
}

type guardIndex struct {
	always   bitset                 // rules without a guard
	bySource [nSources][]fieldIndex // the fields with equality guards, but flags
	// flags are the bool extra fields guarded only as true, by slot in
	// Input.extra: found through Input.trues, so that a flow costs nothing
	// for its false or absent flags. flagSets are, by slot, the slots in
	// the index each flag sets.
	flags    bitset
	flagSets []bitset
	preds    []predIndex
	suffixes []suffixIndex
	words    []slotWord
	nslots   int
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
		if len(lst.entries) <= maxExpandedList && fd.keyable() {
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
		if fd.nat.ld != ldAddr || lst.prefixes == nil {
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
	case a.fn == "present":
		return []string{"present(" + name + ")"}
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
	ix := guardIndex{always: newBitset(len(set.rules))}
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
	// slots are consecutive, followed by a spare bit, and never straddle a
	// bitset word (see slotWord).
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
				if as, ok := g.alts(c); ok && len(conj) < 63 {
					conj = append(conj, as)
				}
			}
		}
		if len(conj) == 0 && r.prg != nil {
			// No guard, but the rule cannot match without its required
			// fields: one that flows may lack admits only flows that
			// have it.
			for _, f := range r.required {
				if set.schema.fields[f].presenceGuard() {
					conj = [][]atom{{{field: f, fn: "present"}}}
					break
				}
			}
		}
		if len(conj) == 0 {
			ix.always.set(i)
			ix.desc[i] = []string{"always"}
			continue
		}
		if w := ix.nslots % 64; w+len(conj)+1 > 64 {
			ix.nslots += 64 - w
		}
		gs = append(gs, guarded{rule: i, conj: conj, start: ix.nslots})
		ix.nslots += len(conj) + 1
		for _, as := range conj {
			var names []string
			for _, a := range as {
				names = append(names, set.schema.describe(a)...)
			}
			slices.Sort(names)
			ix.desc[i] = append(ix.desc[i], strings.Join(slices.Compact(names), " | "))
		}
	}
	// The slots each guard value of each field sets, and each list
	// function's (or comparison's) slots.
	byVal := map[int]map[gkey]bitset{}
	var fields []int // in order of first use
	type predKey struct {
		field  int
		fn     string
		list   *List
		field2 int
	}
	byPred := map[predKey]int{}
	ix.words = make([]slotWord, (ix.nslots+63)/64)
	for _, gr := range gs {
		w, lo := &ix.words[gr.start/64], gr.start%64
		w.slots |= (1<<len(gr.conj) - 1) << lo
		w.first |= 1 << lo
		w.spare |= 1 << (lo + len(gr.conj))
		w.rules = append(w.rules, gr.rule)
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
					if byVal[a.field] == nil {
						byVal[a.field] = map[gkey]bitset{}
						fields = append(fields, a.field)
					}
					for _, v := range a.values {
						b := byVal[a.field][v]
						if b == nil {
							b = newBitset(ix.nslots)
							byVal[a.field][v] = b
						}
						b.set(slot)
					}
				}
			}
		}
	}
	for _, f := range fields {
		ix.addField(&set.schema.fields[f], byVal[f])
	}
	for j := range ix.preds {
		ix.preds[j].test = ix.preds[j].predicate(set.schema)
	}
	ix.mergeSuffixes(set.schema)
	return ix
}

// addField indexes the equality guards of field f, the slots each of
// their values sets: as a flag when f is a bool extra field guarded only
// as true, else under the lookup that reads f.
func (ix *guardIndex) addField(f *field, vals map[gkey]bitset) {
	if f.leaf == nil && f.kind == KindBool && len(vals) == 1 && vals[boolKey(true)] != nil {
		if n := f.slot/64 + 1; n > len(ix.flags) {
			ix.flags = append(ix.flags, make(bitset, n-len(ix.flags))...)
		}
		ix.flags.set(f.slot)
		if f.slot >= len(ix.flagSets) {
			ix.flagSets = append(ix.flagSets, make([]bitset, f.slot+1-len(ix.flagSets))...)
		}
		ix.flagSets[f.slot] = vals[boolKey(true)]
		return
	}
	fi := fieldIndex{f: f}
	switch {
	case f.leaf == nil && f.kind == KindString:
		fi.src = extraString
	case f.leaf == nil:
		fi.src = extraInt
	case f.kind == KindString:
		fi.src = leafString
	default:
		fi.src = leafInt
	}
	str := f.kind == KindString
	if len(vals) > maxScan {
		if str {
			fi.strMap = make(map[string]bitset, len(vals))
		} else {
			fi.intMap = make(map[int64]bitset, len(vals))
		}
	}
	// In a fixed order, so that lookups cost the same in every run.
	keys := slices.SortedFunc(maps.Keys(vals), func(a, b gkey) int {
		return cmp.Or(strings.Compare(a.s, b.s), cmp.Compare(a.i, b.i))
	})
	for _, k := range keys {
		b := vals[k]
		switch {
		case fi.strMap != nil:
			fi.strMap[k.s] = b
		case fi.intMap != nil:
			fi.intMap[k.i] = b
		case str:
			fi.strs, fi.heads, fi.sets = append(fi.strs, k.s), append(fi.heads, head(k.s)), append(fi.sets, b)
			fi.lens |= 1 << min(len(k.s), 63)
		default:
			fi.ints, fi.sets = append(fi.ints, k.i), append(fi.sets, b)
		}
	}
	ix.bySource[fi.src] = append(ix.bySource[fi.src], fi)
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

// presenceGuard reports whether the field's presence makes a guard:
// flows can lack it (an extra field, one behind a pointer, or one whose
// zero value is absent) and it is read natively, without boxing.
func (f *field) presenceGuard() bool {
	return f.leaf == nil || (f.nat.ld != ldNone && (len(f.hops) > 0 || f.nat.omit))
}

// predicate returns the native test of list function fn on the field, or
// nil when the field cannot be read natively for it.
func (f *field) predicate(fn string, lst *List) func(*Input) bool {
	switch fn {
	case "cidr_in":
		if f.nat.ld != ldAddr || lst.prefixes == nil {
			return nil
		}
		return func(in *Input) bool {
			a, ok := f.addrValue(in)
			return ok && lst.prefixes.Contains(a)
		}
	case "oui_in":
		if lst.ouis == nil {
			return nil
		}
		if f.nat.ld == ldMAC {
			return func(in *Input) bool {
				m, ok := f.macValue(in)
				return ok && !m.IsZero() && lst.ouis.ContainsMAC(m)
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
		if f.nat.ld == ldMAC { // a MAC in its text form, aa:bb:cc:dd:ee:ff
			return func(in *Input) bool {
				m, ok := f.macValue(in)
				if !ok {
					return false
				}
				var buf [17]byte
				b, _ := m.AppendText(buf[:0])
				return lst.strings.ContainsBytes(b)
			}
		}
		return f.strPredicate(lst.strings.Contains)
	case "asn_in":
		if lst.numbers == nil || f.kind != KindInt || !f.keyable() {
			return nil
		}
		return func(in *Input) bool {
			x, ok := f.intValue(in)
			return ok && x >= 0 && lst.numbers.Contains(uint64(x))
		}
	}
	return nil
}

func (f *field) strPredicate(test func(string) bool) func(*Input) bool {
	if f.kind != KindString || (f.leaf != nil && f.nat.ld != ldString) {
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
	switch {
	case p.list != nil:
		return s.fields[p.field].predicate(p.fn, p.list)
	case p.fn == "present":
		return s.fields[p.field].presence()
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

// candidates fills out with the rules to evaluate for in; hits is
// scratch space of nslots bits.
func (ix *guardIndex) candidates(in *Input, hits, out bitset) {
	clear(hits)
	lookupExtraStrings(ix.bySource[extraString], in, hits)
	lookupExtraInts(ix.bySource[extraInt], in, hits)
	lookupLeafStrings(ix.bySource[leafString], in, hits)
	lookupLeafInts(ix.bySource[leafInt], in, hits)
	for w, m := range ix.flags {
		if w >= len(in.trues) {
			break
		}
		for t := in.trues[w] & m; t != 0; t &= t - 1 {
			hits.or(ix.flagSets[w*64+bits.TrailingZeros64(t)])
		}
	}
	for j := range ix.preds {
		if p := &ix.preds[j]; p.test(in) {
			hits.or(p.rules)
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
	ix.admit(hits, out)
}

// One loop per kind of field, with the reads and lookups inlined and few
// values live: these run for every indexed field of every flow.

func lookupExtraStrings(fs []fieldIndex, in *Input, hits bitset) {
	for i := range fs {
		if s, ok := fs[i].f.extraStr(in); ok {
			hits.or(fs[i].strSlots(s))
		}
	}
}

func lookupExtraInts(fs []fieldIndex, in *Input, hits bitset) {
	for i := range fs {
		if x, ok := fs[i].f.extraInt(in); ok {
			hits.or(fs[i].intSlots(x))
		}
	}
}

func lookupLeafStrings(fs []fieldIndex, in *Input, hits bitset) {
	for i := range fs {
		if s, ok := fs[i].f.leafStr(fs[i].f.base(in)); ok {
			hits.or(fs[i].strSlots(s))
		}
	}
}

func lookupLeafInts(fs []fieldIndex, in *Input, hits bitset) {
	for i := range fs {
		if x, ok := fs[i].f.leafInt(fs[i].f.base(in)); ok {
			hits.or(fs[i].intSlots(x))
		}
	}
}

// admit fills out with the unguarded rules and those whose slots are all
// in hits.
func (ix *guardIndex) admit(hits, out bitset) {
	copy(out, ix.always)
	for i := range ix.words {
		w := &ix.words[i]
		for c := (hits[i]&w.slots + w.first) & w.spare; c != 0; c &= c - 1 {
			below := c&-c - 1 // the bits below c's lowest
			out.set(w.rules[bits.OnesCount64(w.spare&below)])
		}
	}
}

// Guards describes how the engine indexes each enabled rule, for tooling
// and tests: per rule id, one entry per guarded top-level conjunct, each
// the guards any one of which admits a flow ("app=anydesk | app=ngrok",
// "cidr_in(dst.ip, nets)", "sensor.site != device.assigned_site"). A rule
// is evaluated only on flows every entry admits; ["always"] is a rule
// evaluated on every flow, ["present(egress.ip)"] one evaluated on every
// flow that has the field.
func (s *Set) Guards() map[string][]string {
	out := map[string][]string{}
	for i, d := range s.index.desc {
		out[s.rules[i].ID] = d
	}
	return out
}
