package rules

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/edgeward/edgeward/rules/lists"
)

// DefaultCostLimit bounds the CEL cost of one rule evaluation; a rule that
// exceeds it on a flow does not match and is counted as an error.
const DefaultCostLimit = 10000

// Options configure loading.
type Options struct {
	Schema    *Schema // nil: the flow record's fields only
	CostLimit uint64  // 0: DefaultCostLimit
	// Builtin, when set, is a rule pack loaded before the paths (its *.yml
	// and *.yaml at the root; list files relative to them inside it), e.g.
	// the embedded pack of rules/builtin. A rule in the paths with the id
	// of a built-in rule replaces it, and a list or macro with the name of
	// a built-in one replaces it; a name defined twice within one layer is
	// still an error. Its files are named "builtin:<file>" in diagnostics.
	Builtin fs.FS
}

// Set is a validated, compiled rule set. It is immutable and safe to share.
type Set struct {
	schema   *Schema
	rules    []*Rule
	byID     map[string]*Rule
	listVals map[string]ref.Val
	files    []string // every file read, rule and list files
	index    guardIndex
	// defs keep what the in-file tests need.
	defs []*ruleDef
}

// Rule is one compiled rule.
type Rule struct {
	ID          string
	Title       string
	Description string
	Severity    string
	Category    string
	Tags        []string
	Mode        string // "alert" or "shadow"
	Enabled     bool

	idx         int
	prg         cel.Program // nil: a temporal rule without match
	required    []int       // fields that must be present for match to be true
	exceptions  []exception
	agg         *aggregate
	suppress    *suppression
	output      []int
	fingerprint [32]byte
	parents     []int // temporal rules fed by this rule
	guardAST    *celast.AST
	// native are the checks of the condition's top-level conjuncts that
	// compile to native checks (native.go); cel is set when some do not,
	// and CEL decides after them.
	native []check
	cel    bool
}

type aggregate struct {
	typ     string
	groupBy []int
	window  time.Duration
	field   int
	gte     int
	gt      bool // the condition was gt: gte is its value + 1
	rules   []int
	ordered bool
}

type suppression struct {
	key []int
	dur time.Duration
}

type exception struct {
	fields []int
	comps  []string
	values [][]ref.Val // per tuple, per field; "in" holds a list
}

// Rules lists the set's rules in load order.
func (s *Set) Rules() []*Rule { return s.rules }

// Files lists every file the set was read from (rule and list files).
func (s *Set) Files() []string { return s.files }

// Schema is the field schema the set was compiled against.
func (s *Set) Schema() *Schema { return s.schema }

// List is a named list as rules reference it; its lookup structures are
// built for the functions the rules call it with.
type List struct {
	name     string
	entries  []lists.Entry
	file     string // where entries' positions are
	strings  *lists.Strings
	suffixes *lists.Suffixes
	prefixes *lists.Prefixes
	numbers  *lists.Numbers
	ouis     *lists.OUIs
}

// ListType is the CEL type of a list name in an expression.
var ListType = types.NewOpaqueType("edgeward.list")

type listVal struct{ *List }

func (l listVal) ConvertToNative(reflect.Type) (any, error) {
	return nil, errors.New("a list can only be passed to a list function")
}
func (l listVal) ConvertToType(t ref.Type) ref.Val {
	if t == ListType {
		return l
	}
	return types.NewErr("a list can only be passed to a list function")
}
func (l listVal) Equal(o ref.Val) ref.Val { return types.Bool(o == ref.Val(l)) }
func (l listVal) Type() ref.Type          { return ListType }
func (l listVal) Value() any              { return l.List }

func listArg(v ref.Val) *List {
	if l, ok := v.(listVal); ok {
		return l.List
	}
	return nil
}

var errListKind = types.NewErr("list not prepared for this function")

func listFunctions() []cel.EnvOption {
	return []cel.EnvOption{
		cel.Function("cidr_in",
			cel.Overload("cidr_in_ip_list", []*cel.Type{ext.IPType, ListType}, cel.BoolType,
				cel.BinaryBinding(func(a, l ref.Val) ref.Val {
					ip, ok := a.(ext.IP)
					lst := listArg(l)
					if !ok || lst == nil || lst.prefixes == nil {
						return errListKind
					}
					return types.Bool(lst.prefixes.Contains(ip.Addr))
				})),
			cel.Overload("cidr_in_string_list", []*cel.Type{cel.StringType, ListType}, cel.BoolType,
				cel.BinaryBinding(func(a, l ref.Val) ref.Val {
					s, ok := a.(types.String)
					lst := listArg(l)
					if !ok || lst == nil || lst.prefixes == nil {
						return errListKind
					}
					ip, err := netip.ParseAddr(string(s))
					return types.Bool(err == nil && lst.prefixes.Contains(ip))
				}))),
		cel.Function("dns_suffix_in",
			cel.Overload("dns_suffix_in_string_list", []*cel.Type{cel.StringType, ListType}, cel.BoolType,
				cel.BinaryBinding(func(a, l ref.Val) ref.Val {
					s, ok := a.(types.String)
					lst := listArg(l)
					if !ok || lst == nil || lst.suffixes == nil {
						return errListKind
					}
					return types.Bool(lst.suffixes.Match(string(s)))
				}))),
		cel.Function("asn_in",
			cel.Overload("asn_in_int_list", []*cel.Type{cel.IntType, ListType}, cel.BoolType,
				cel.BinaryBinding(func(a, l ref.Val) ref.Val {
					n, ok := a.(types.Int)
					lst := listArg(l)
					if !ok || lst == nil || lst.numbers == nil {
						return errListKind
					}
					return types.Bool(n >= 0 && lst.numbers.Contains(uint64(n)))
				}))),
		cel.Function("oui_in",
			cel.Overload("oui_in_string_list", []*cel.Type{cel.StringType, ListType}, cel.BoolType,
				cel.BinaryBinding(func(a, l ref.Val) ref.Val {
					s, ok := a.(types.String)
					lst := listArg(l)
					if !ok || lst == nil || lst.ouis == nil {
						return errListKind
					}
					return types.Bool(lst.ouis.Contains(string(s)))
				}))),
		// CEL runs `x in list` through the implementation named by the
		// overload id "in_list", and a function's implementation is also
		// found by its name, so this function takes the place of CEL's
		// list membership (`100 in vlan`): it does both.
		cel.Function("in_list",
			cel.Overload("in_list_string_list", []*cel.Type{cel.StringType, ListType}, cel.BoolType),
			cel.SingletonBinaryBinding(func(a, l ref.Val) ref.Val {
				lst := listArg(l)
				if lst == nil {
					if c, ok := l.(traits.Container); ok {
						return c.Contains(a)
					}
					return types.MaybeNoSuchOverloadErr(l)
				}
				s, ok := a.(types.String)
				if !ok || lst.strings == nil {
					return errListKind
				}
				return types.Bool(lst.strings.Contains(string(s)))
			})),
	}
}

// zoneCache keeps the time zones local_hour has loaded, per set (a set is
// shared by engines on several goroutines). time.LoadLocation reads and
// parses the zone file on every call, tens of microseconds, which is why
// CEL's own ts.getHours(tz) is slow in a per-flow rule.
type zoneCache struct {
	mu    sync.RWMutex
	zones map[string]*time.Location // nil: not a zone
}

// maxZones bounds the cache; zone names come from the inventory, so more
// distinct names than this means something is feeding garbage.
const maxZones = 1024

func (z *zoneCache) get(name string) (*time.Location, bool) {
	z.mu.RLock()
	loc, ok := z.zones[name]
	z.mu.RUnlock()
	if ok {
		return loc, loc != nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil || name == "" || name == "Local" {
		loc = nil // "Local" would depend on the host, not the device
	}
	z.mu.Lock()
	if z.zones == nil {
		z.zones = map[string]*time.Location{}
	}
	if len(z.zones) < maxZones {
		z.zones[name] = loc
	}
	z.mu.Unlock()
	return loc, loc != nil
}

// localHourFunction is local_hour(ts, tz): the hour (0-23) of ts in the
// IANA time zone tz, e.g. local_hour(start, device.home_timezone); an
// unknown zone is an error, so the rule does not match.
func localHourFunction(z *zoneCache) cel.EnvOption {
	return cel.Function("local_hour",
		cel.Overload("local_hour_timestamp_string", []*cel.Type{cel.TimestampType, cel.StringType}, cel.IntType,
			cel.BinaryBinding(func(ts, tz ref.Val) ref.Val {
				t, ok1 := ts.(types.Timestamp)
				name, ok2 := tz.(types.String)
				if !ok1 || !ok2 {
					return types.NewErr("local_hour wants a timestamp and a time zone name")
				}
				loc, ok := z.get(string(name))
				if !ok {
					return types.NewErr("local_hour: unknown time zone %q", string(name))
				}
				return types.Int(t.Time.In(loc).Hour())
			})))
}

// presentFunction is present(x): true when x evaluates without error,
// so `present(device.id)` tells whether the flow carries the field. It is
// non-strict: it receives the error of an absent field instead of
// propagating it, which lets a rule write `!present(dst.name) ||
// !dns_suffix_in(dst.name, allowed)` for an allow list on a field that may
// be absent.
func presentFunction() cel.EnvOption {
	return cel.Function("present",
		cel.Overload("present_dyn", []*cel.Type{cel.DynType}, cel.BoolType,
			cel.OverloadIsNonStrict(),
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				return types.Bool(!types.IsUnknownOrError(v))
			})))
}

var listFuncs = map[string]bool{"cidr_in": true, "dns_suffix_in": true, "asn_in": true, "oui_in": true, "in_list": true}

// loader carries one load's state.
type loader struct {
	opts   Options
	schema *Schema
	ds     Diagnostics
	files  []string
	lists  map[string]*List
	lpos   map[string]pos
	zones  *zoneCache // local_hour's, shared by CEL and the native checks
}

// Load reads, validates and compiles rule files and directories. On any
// problem it returns Diagnostics listing every problem in every file.
func Load(paths []string, opts Options) (*Set, error) {
	set, ds := load(paths, opts)
	if len(ds) > 0 {
		return nil, ds
	}
	return set, nil
}

// Lint reports every problem in every file, formatted file:line:col.
func Lint(paths []string, opts Options) []Diagnostic {
	_, ds := load(paths, opts)
	return ds
}

func load(paths []string, opts Options) (*Set, Diagnostics) {
	if opts.Schema == nil {
		s, err := NewSchema()
		if err != nil {
			return nil, Diagnostics{{Message: err.Error()}}
		}
		opts.Schema = s
	}
	if opts.CostLimit == 0 {
		opts.CostLimit = DefaultCostLimit
	}
	var (
		defs  []*fileDefs
		ds    Diagnostics
		files []string
	)
	if opts.Builtin != nil {
		names, bds := builtinFiles(opts.Builtin)
		ds = append(ds, bds...)
		for _, n := range names {
			name := BuiltinPrefix + n
			src, err := fs.ReadFile(opts.Builtin, n)
			if err != nil {
				ds = append(ds, Diagnostic{File: name, Message: err.Error()})
				continue
			}
			fd, fds := parseFile(name, src)
			fd.layer, fd.fsys = layerBuiltin, opts.Builtin
			ds = append(ds, fds...)
			defs = append(defs, fd)
			files = append(files, name)
		}
	}
	user, uds := expandPaths(paths)
	ds = append(ds, uds...)
	for _, f := range user {
		src, err := os.ReadFile(f)
		if err != nil {
			ds = append(ds, Diagnostic{File: f, Message: err.Error()})
			continue
		}
		fd, fds := parseFile(f, src)
		fd.layer = layerUser
		ds = append(ds, fds...)
		defs = append(defs, fd)
	}
	files = append(files, user...)
	ld := &loader{opts: opts, schema: opts.Schema, ds: ds, files: files}
	set := ld.compile(defs)
	slices.SortStableFunc(ld.ds, func(a, b Diagnostic) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Col - b.Col
	})
	return set, slices.Compact(ld.ds)
}

func (ld *loader) errf(p pos, format string, args ...any) {
	ld.ds = append(ld.ds, p.diag(format, args...))
}

func (ld *loader) compile(defs []*fileDefs) *Set {
	set := &Set{schema: ld.schema, byID: map[string]*Rule{}, listVals: map[string]ref.Val{}}
	ld.lists = map[string]*List{}
	ld.lpos = map[string]pos{}
	top := topLayers(defs)
	// Lists.
	for _, fd := range defs {
		for _, l := range fd.lists {
			if fd.layer < top.lists[l.name.v] {
				continue // replaced by a user list
			}
			if p, dup := ld.lpos[l.name.v]; dup {
				ld.errf(l.name.pos, "list %s already defined at %s:%d:%d", l.name.v, p.file, p.line, p.col)
				continue
			}
			if _, _, clash := ld.schema.lookup(l.name.v); clash {
				ld.errf(l.name.pos, "list name %s is a field name", l.name.v)
				continue
			}
			lst := &List{name: l.name.v, file: fd.path}
			if l.file.v != "" {
				path, b, err := readListFile(fd, l.file.v)
				if err != nil {
					ld.errf(l.file.pos, "list %s: %v", l.name.v, err)
					continue
				}
				ents, err := lists.Parse(bytes.NewReader(b))
				if err != nil {
					ld.errf(l.file.pos, "list %s: %s: %v", l.name.v, path, err)
					continue
				}
				ld.files = append(ld.files, path)
				lst.entries, lst.file = ents, path
			} else {
				for _, it := range l.items {
					lst.entries = append(lst.entries, lists.Entry{Value: it.v, Line: it.line, Col: it.col})
				}
			}
			ld.lists[lst.name] = lst
			ld.lpos[lst.name] = l.name.pos
			set.listVals[lst.name] = listVal{lst}
		}
	}
	set.files = ld.files
	// The environment: fields, lists, functions.
	envOpts := []cel.EnvOption{
		ext.Network(), ext.Strings(),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
	}
	for _, f := range ld.schema.fields {
		envOpts = append(envOpts, cel.Variable(f.name, f.kind.celType()))
	}
	for name := range ld.lists {
		envOpts = append(envOpts, cel.Variable(name, ListType))
	}
	envOpts = append(envOpts, listFunctions()...)
	ld.zones = &zoneCache{}
	envOpts = append(envOpts, presentFunction(), localHourFunction(ld.zones))
	env, err := cel.NewEnv(envOpts...)
	if err != nil {
		ld.ds = append(ld.ds, Diagnostic{Message: "building CEL environment: " + err.Error()})
		return set
	}
	// Macros, in dependency order.
	env, inline := ld.macros(env, defs, top.macros)
	// Rules.
	seen := map[string]pos{}
	for _, fd := range defs {
		for _, rd := range fd.rules {
			rd.layer = fd.layer
			if fd.layer < top.rules[rd.id.v] {
				continue // replaced by a user rule
			}
			if p, dup := seen[rd.id.v]; dup {
				ld.errf(rd.id.pos, "rule %s already defined at %s:%d:%d", rd.id.v, p.file, p.line, p.col)
				// Compiled only for its own problems, so that lint reports
				// them with the duplicate instead of after it is renamed.
				ld.rule(env, inline, rd)
				continue
			}
			seen[rd.id.v] = rd.id.pos
			r := ld.rule(env, inline, rd)
			if r == nil {
				continue
			}
			r.idx = len(set.rules)
			set.rules = append(set.rules, r)
			set.byID[r.ID] = r
			set.defs = append(set.defs, rd)
		}
	}
	// Temporal references.
	for i, rd := range set.defs {
		r := set.rules[i]
		if r.agg == nil || r.agg.typ != "temporal" {
			continue
		}
		for _, ref := range rd.aggregate.rules {
			t, ok := set.byID[ref.v]
			switch {
			case !ok:
				ld.errf(ref.pos, "temporal rule %s references unknown rule %s", r.ID, ref.v)
			case t == r:
				ld.errf(ref.pos, "temporal rule %s references itself", r.ID)
			case t.agg != nil && t.agg.typ == "temporal":
				ld.errf(ref.pos, "temporal rule %s references temporal rule %s", r.ID, ref.v)
			case !t.Enabled:
				ld.errf(ref.pos, "temporal rule %s references disabled rule %s", r.ID, ref.v)
			default:
				r.agg.rules = append(r.agg.rules, t.idx)
				if !slices.Contains(t.parents, r.idx) {
					t.parents = append(t.parents, r.idx)
				}
			}
		}
	}
	set.index = buildIndex(set)
	return set
}

// layers is, per rule id, list name and macro name, the highest layer
// that defines it: definitions in lower layers are replaced.
type layers struct{ rules, lists, macros map[string]int }

func topLayers(defs []*fileDefs) layers {
	t := layers{map[string]int{}, map[string]int{}, map[string]int{}}
	for _, fd := range defs {
		for _, r := range fd.rules {
			t.rules[r.id.v] = max(t.rules[r.id.v], fd.layer)
		}
		for _, l := range fd.lists {
			t.lists[l.name.v] = max(t.lists[l.name.v], fd.layer)
		}
		for _, m := range fd.macros {
			t.macros[m.name.v] = max(t.macros[m.name.v], fd.layer)
		}
	}
	return t
}

// macros compiles macros and returns the environment with each macro
// declared as a variable of its result type, plus the inlining that
// replaces the variables by the macro bodies.
func (ld *loader) macros(env *cel.Env, defs []*fileDefs, top map[string]int) (*cel.Env, []*cel.InlineVariable) {
	type mdef struct {
		d    *macroDef
		deps []string
	}
	all := map[string]*mdef{}
	var order []string
	for _, fd := range defs {
		for _, m := range fd.macros {
			if fd.layer < top[m.name.v] {
				continue // replaced by a user macro
			}
			if old, dup := all[m.name.v]; dup {
				ld.errf(m.name.pos, "macro %s already defined at %s:%d:%d", m.name.v, old.d.name.file, old.d.name.line, old.d.name.col)
				continue
			}
			if _, _, clash := ld.schema.lookup(m.name.v); clash {
				ld.errf(m.name.pos, "macro name %s is a field name", m.name.v)
				continue
			}
			if _, clash := ld.lists[m.name.v]; clash {
				ld.errf(m.name.pos, "macro name %s is a list name", m.name.v)
				continue
			}
			all[m.name.v] = &mdef{d: m}
			order = append(order, m.name.v)
		}
	}
	for _, name := range order {
		md := all[name]
		parsed, iss := env.Parse(md.d.cond.text)
		if iss.Err() != nil {
			continue // reported when compiled below
		}
		celast.PostOrderVisit(parsed.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
			if e.Kind() == celast.IdentKind {
				if _, ok := all[e.AsIdent()]; ok {
					md.deps = append(md.deps, e.AsIdent())
				}
			}
		}))
	}
	var inline []*cel.InlineVariable
	done := map[string]bool{}
	visiting := map[string]bool{}
	var visit func(name string) bool
	visit = func(name string) bool {
		if done[name] {
			return true
		}
		md := all[name]
		if visiting[name] {
			ld.errf(md.d.name.pos, "macro %s is part of a cycle", name)
			return false
		}
		visiting[name] = true
		defer func() { visiting[name] = false }()
		for _, d := range md.deps {
			if !visit(d) {
				return false
			}
		}
		a, ok := ld.check(env, md.d.cond, "macro "+name)
		if !ok {
			return false
		}
		if len(inline) > 0 {
			opt, err := cel.NewStaticOptimizer(cel.NewInliningOptimizer(inline...))
			if err == nil {
				if oa, iss := opt.Optimize(env, a); iss.Err() == nil {
					a = oa
				}
			}
		}
		ne, err := env.Extend(cel.Variable(name, a.OutputType()))
		if err != nil {
			ld.errf(md.d.name.pos, "macro %s: %v", name, err)
			return false
		}
		env = ne
		inline = append(inline, cel.NewInlineVariable(name, a))
		done[name] = true
		return true
	}
	for _, name := range order {
		visit(name)
	}
	return env, inline
}

// check compiles e and maps CEL issues into the file.
func (ld *loader) check(env *cel.Env, e expr, what string) (*cel.Ast, bool) {
	a, iss := env.Compile(e.text)
	if iss != nil && iss.Err() != nil {
		for _, ce := range iss.Errors() {
			p := e.at(ce.Location.Line(), ce.Location.Column())
			msg := strings.ReplaceAll(ce.Message, " (in container '')", "")
			ld.errf(p, "%s: %s", what, msg)
		}
		return nil, false
	}
	return a, true
}

func (ld *loader) rule(env *cel.Env, inline []*cel.InlineVariable, rd *ruleDef) *Rule {
	r := &Rule{
		ID: rd.id.v, Title: rd.title, Description: rd.description, Severity: rd.severity.v,
		Category: rd.category, Tags: rd.tags, Mode: rd.mode.v, Enabled: rd.enabled,
		fingerprint: sha256.Sum256(rd.source),
	}
	ok := true
	if rd.match != nil {
		a, good := ld.check(env, *rd.match, "match")
		if good && !a.OutputType().IsExactType(cel.BoolType) {
			ld.errf(rd.match.pos, "match: must be a bool expression, not %s", a.OutputType())
			good = false
		}
		if good {
			opts := []any{}
			if len(inline) > 0 {
				opts = append(opts, cel.NewInliningOptimizer(inline...))
			}
			if folder, err := cel.NewConstantFoldingOptimizer(); err == nil {
				opts = append(opts, folder)
			}
			if opt, err := cel.NewStaticOptimizer(opts...); err == nil {
				oa, iss := opt.Optimize(env, a)
				if iss.Err() != nil && len(inline) > 0 {
					// Constant folding cannot fold every constant (an
					// ip("...") literal); inlining macros is what matters.
					if opt, err := cel.NewStaticOptimizer(cel.NewInliningOptimizer(inline...)); err == nil {
						oa, iss = opt.Optimize(env, a)
					}
				} else if iss.Err() != nil {
					oa, iss = a, nil
				}
				if iss.Err() == nil {
					a = oa
				} else {
					ld.errf(rd.match.pos, "match: %v", iss.Err())
					good = false
				}
			}
		}
		if good {
			ld.prepareLists(a, rd.match.pos)
			popts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
			if !ld.costBounded(env, a) {
				popts = append(popts, cel.CostLimit(ld.opts.CostLimit))
			}
			prg, err := env.Program(a, popts...)
			if err != nil {
				ld.errf(rd.match.pos, "match: %v", err)
				good = false
			} else {
				r.prg = prg
				r.required = requiredFields(ld.schema, a.NativeRep())
				r.guardAST = a.NativeRep()
				r.native, r.cel = compileNative(ld.schema, a.NativeRep(), ld.lists, ld.zones)
			}
		}
		ok = ok && good
	}
	fieldOf := func(s str, what string) (int, bool) {
		f, i, found := ld.schema.lookup(s.v)
		if !found {
			ld.errf(s.pos, "%s: unknown field %s", what, s.v)
			return 0, false
		}
		_ = f
		return i, true
	}
	for _, ed := range rd.exceptions {
		ex, good := ld.exception(ed, fieldOf)
		ok = ok && good
		r.exceptions = append(r.exceptions, ex)
	}
	if a := rd.aggregate; a != nil {
		agg := &aggregate{typ: a.typ.v, window: a.window, gte: a.gte, gt: a.gt, ordered: a.ordered, field: -1}
		for _, g := range a.groupBy {
			if i, good := fieldOf(g, "group_by"); good {
				agg.groupBy = append(agg.groupBy, i)
			} else {
				ok = false
			}
		}
		if a.field.v != "" {
			if i, good := fieldOf(a.field, "aggregate field"); good {
				agg.field = i
				if k := ld.schema.fields[i].kind; a.typ.v == "value_sum" && k != KindInt && k != KindDouble {
					ld.errf(a.field.pos, "value_sum field %s is %s, not a number", a.field.v, k)
					ok = false
				}
			} else {
				ok = false
			}
		}
		r.agg = agg
	}
	if s := rd.suppress; s != nil {
		sp := &suppression{dur: s.dur}
		for _, k := range s.key {
			if i, good := fieldOf(k, "suppress key"); good {
				sp.key = append(sp.key, i)
			} else {
				ok = false
			}
		}
		r.suppress = sp
	}
	for _, o := range rd.output {
		if i, good := fieldOf(o, "output"); good {
			r.output = append(r.output, i)
		} else {
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return r
}

// maxFieldSize is the longest string or list value of a flow record the
// static cost estimate assumes. Record strings are names, fingerprints and
// truncated HTTP fields; lists are a few VLANs, ALPN ids or DNS answers.
const maxFieldSize = 4096

// costBounded reports whether the expression's worst-case cost, estimated
// at load with fields of at most maxFieldSize, is within the cost limit.
// Such a rule cannot exceed the limit (short of a pathologically long
// field, which still costs linear time), so it runs without run-time cost
// tracking, which otherwise doubles the cost of a small expression.
// Comprehensions over lists and other unbounded work keep the tracking.
func (ld *loader) costBounded(env *cel.Env, a *cel.Ast) bool {
	est, err := env.EstimateCost(a, fieldSizes{})
	return err == nil && est.Max <= ld.opts.CostLimit
}

// fieldSizes bounds field sizes and prices edgeward's functions for
// cel's static cost estimate.
type fieldSizes struct{}

func (fieldSizes) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if len(n.Path()) == 0 {
		return nil
	}
	switch n.Type().Kind() {
	case types.StringKind, types.BytesKind, types.ListKind:
		return &cost.SizeEstimate{Min: 0, Max: maxFieldSize}
	}
	return nil
}

func (fieldSizes) EstimateCallCost(function, _ string, _ *cost.AstNode, _ []cost.AstNode) *cost.CallEstimate {
	switch function {
	case "cidr_in", "dns_suffix_in", "asn_in", "oui_in", "in_list", "present", "local_hour":
		// Hash probes bounded by the name's labels or the address's
		// bucket; see rules/lists.
		return &cost.CallEstimate{CostEstimate: cost.CostEstimate{Min: 1, Max: 10}}
	}
	return nil
}

// prepareLists builds, for each list the expression passes to a list
// function, the lookup structure that function needs; bad entries are
// reported where they were written.
func (ld *loader) prepareLists(a *cel.Ast, at pos) {
	celast.PostOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() != celast.CallKind {
			return
		}
		c := e.AsCall()
		if !listFuncs[c.FunctionName()] || len(c.Args()) != 2 || c.Args()[1].Kind() != celast.IdentKind {
			return
		}
		lst := ld.lists[c.Args()[1].AsIdent()]
		if lst == nil {
			return
		}
		var err error
		switch c.FunctionName() {
		case "cidr_in":
			if lst.prefixes == nil {
				lst.prefixes, err = lists.NewPrefixes(lst.entries)
			}
		case "dns_suffix_in":
			if lst.suffixes == nil {
				lst.suffixes, err = lists.NewSuffixes(lst.entries)
			}
		case "asn_in":
			if lst.numbers == nil {
				lst.numbers, err = lists.NewNumbers(lst.entries)
			}
		case "oui_in":
			if lst.ouis == nil {
				lst.ouis, err = lists.NewOUIs(lst.entries)
			}
		case "in_list":
			if lst.strings == nil {
				lst.strings = lists.NewStrings(lst.entries)
			}
		}
		ld.listErrors(lst, c.FunctionName(), err)
	}))
}

func (ld *loader) listErrors(lst *List, fn string, err error) {
	if err == nil {
		return
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var ee *lists.EntryError
		if errors.As(e, &ee) && ee.Index < len(lst.entries) {
			en := lst.entries[ee.Index]
			ld.errf(pos{lst.file, en.Line, en.Col}, "list %s (used with %s): %v", lst.name, fn, ee.Err)
			continue
		}
		ld.errf(ld.lpos[lst.name], "list %s: %v", lst.name, e)
	}
}

var validComps = []string{"=", "!=", "in", "startswith", "endswith", "contains"}

func (ld *loader) exception(ed exceptionDef, fieldOf func(str, string) (int, bool)) (exception, bool) {
	ex := exception{}
	ok := true
	for _, f := range ed.fields {
		i, good := fieldOf(f, "exception field")
		ok = ok && good
		ex.fields = append(ex.fields, i)
	}
	switch {
	case len(ed.comps) == 0:
		for range ed.fields {
			ex.comps = append(ex.comps, "=")
		}
	case len(ed.comps) != len(ed.fields):
		ld.errf(ed.pos, "exception %s: %d comps for %d fields", ed.name.v, len(ed.comps), len(ed.fields))
		return ex, false
	default:
		for _, c := range ed.comps {
			if !slices.Contains(validComps, c.v) {
				ld.errf(c.pos, "exception comp %q: want one of %s", c.v, strings.Join(validComps, " "))
				ok = false
			}
			ex.comps = append(ex.comps, c.v)
		}
	}
	if !ok {
		return ex, false
	}
	for _, tuple := range ed.values {
		if len(tuple) != len(ex.fields) {
			ld.errf(tuple[0].pos, "exception %s: tuple has %d values for %d fields", ed.name.v, len(tuple), len(ex.fields))
			ok = false
			continue
		}
		row := make([]ref.Val, len(tuple))
		for j, v := range tuple {
			f := &ld.schema.fields[ex.fields[j]]
			comp := ex.comps[j]
			if comp == "in" {
				seq, isSeq := unwrap(v.node).(*ast.SequenceNode)
				if !isSeq {
					ld.errf(v.pos, "exception value for %s with comp in must be a list", f.name)
					ok = false
					continue
				}
				var elems []ref.Val
				for _, el := range seq.Values {
					x, err := constant(f.kind, el)
					if err != nil {
						ld.errf(posOf(v.pos.file, el), "exception value for %s: %v", f.name, err)
						ok = false
						continue
					}
					elems = append(elems, x)
				}
				row[j] = types.NewRefValList(types.DefaultTypeAdapter, elems)
				continue
			}
			if comp == "startswith" || comp == "endswith" || comp == "contains" {
				if f.kind != KindString {
					ld.errf(v.pos, "exception comp %s needs a string field, %s is %s", comp, f.name, f.kind)
					ok = false
					continue
				}
			}
			x, err := constant(f.kind, v.node)
			if err != nil {
				ld.errf(v.pos, "exception value for %s: %v", f.name, err)
				ok = false
				continue
			}
			row[j] = x
		}
		ex.values = append(ex.values, row)
	}
	return ex, ok
}

func posOf(file string, n ast.Node) pos {
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return pos{file, 1, 1}
	}
	return pos{file, tk.Position.Line, max(tk.Position.Column, 1)}
}

// constant converts a YAML scalar to a value of the field's kind.
func constant(k Kind, n ast.Node) (ref.Val, error) {
	var v any
	if err := yaml.NodeToValue(n, &v); err != nil {
		return nil, err
	}
	switch k {
	case KindString:
		switch x := v.(type) {
		case string:
			return types.String(x), nil
		case uint64, int64, float64, bool:
			return types.String(fmt.Sprint(x)), nil
		}
	case KindInt:
		switch x := v.(type) {
		case int64:
			return types.Int(x), nil
		case uint64:
			return types.Int(int64(x)), nil
		}
	case KindDouble:
		switch x := v.(type) {
		case float64:
			return types.Double(x), nil
		case int64:
			return types.Double(float64(x)), nil
		case uint64:
			return types.Double(float64(x)), nil
		}
	case KindBool:
		if x, ok := v.(bool); ok {
			return types.Bool(x), nil
		}
	case KindIP:
		if x, ok := v.(string); ok {
			a, err := netip.ParseAddr(x)
			if err != nil {
				return nil, fmt.Errorf("%q is not an IP address", x)
			}
			return ext.IP{Addr: a}, nil
		}
	}
	return nil, fmt.Errorf("%v is not a %s", v, k)
}

// requiredFields returns the fields that every true evaluation reads
// through strict calls only: if one is absent, match cannot be true, so
// the engine skips the evaluation.
func requiredFields(s *Schema, a *celast.AST) []int {
	refs := a.ReferenceMap()
	var out []int
	var strict func(e celast.Expr)
	strict = func(e celast.Expr) {
		if r, ok := refs[e.ID()]; ok && r.Value == nil && (e.Kind() == celast.IdentKind || e.Kind() == celast.SelectKind) {
			if _, i, found := s.lookup(r.Name); found {
				if !slices.Contains(out, i) {
					out = append(out, i)
				}
				return
			}
		}
		switch e.Kind() {
		case celast.CallKind:
			c := e.AsCall()
			switch c.FunctionName() {
			case operators.LogicalOr, operators.Conditional, operators.NotStrictlyFalse, operators.OldNotStrictlyFalse, "present":
				return
			case operators.LogicalAnd:
				// An error on one side can be absorbed by false on the other.
				return
			}
			if c.IsMemberFunction() {
				strict(c.Target())
			}
			for _, arg := range c.Args() {
				strict(arg)
			}
		}
	}
	for _, c := range conjuncts(a.Expr(), nil) {
		strict(c)
	}
	return out
}
