package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Diagnostic is one problem in a rule file.
type Diagnostic struct {
	File    string
	Line    int // 1-based; 0 when the problem is the whole file
	Col     int // 1-based
	Message string
}

func (d Diagnostic) String() string {
	if d.Line == 0 {
		return fmt.Sprintf("%s: %s", d.File, d.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s", d.File, d.Line, d.Col, d.Message)
}

// Diagnostics is every problem found in a rule set; it is the error Load
// returns when the set is invalid.
type Diagnostics []Diagnostic

// ErrInvalid is matched by errors.Is on the Diagnostics error.
var ErrInvalid = errors.New("invalid rules")

func (ds Diagnostics) Error() string {
	var b strings.Builder
	for i, d := range ds {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(d.String())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalid) true.
func (ds Diagnostics) Is(target error) bool { return target == ErrInvalid }

type pos struct {
	file      string
	line, col int
}

func (p pos) diag(format string, args ...any) Diagnostic {
	return Diagnostic{File: p.file, Line: p.line, Col: p.col, Message: fmt.Sprintf(format, args...)}
}

// str is a scalar with its position.
type str struct {
	v string
	pos
}

// expr is a CEL expression as written in YAML, with what is needed to map
// a position inside it back to the file.
type expr struct {
	text      string // what is compiled
	pos              // where text starts
	fromStart bool   // lines after the first start at column 1 (block and plain scalars)
}

// at maps a CEL location (1-based line, 0-based column) to the file.
func (e expr) at(line, col int) pos {
	if line <= 1 {
		return pos{e.file, e.line, e.col + col}
	}
	if e.fromStart {
		return pos{e.file, e.line + line - 1, col + 1}
	}
	return pos{e.file, e.line + line - 1, col + 1}
}

type listDef struct {
	name    str
	items   []entryPos
	file    str // when the list lives in a file
	present bool
}

type entryPos struct {
	v string
	pos
}

type macroDef struct {
	name str
	cond expr
}

type exceptionDef struct {
	name   str
	fields []str
	comps  []str
	values [][]valueNode
	pos
}

type valueNode struct {
	node ast.Node
	pos
}

type aggregateDef struct {
	typ       str
	groupBy   []str
	window    time.Duration
	windowPos pos
	field     str
	gte       int
	gt        bool // gte came from gt: its value + 1
	condPos   pos
	condVal   []*ast.MappingValueNode // gte/gt, checked once the type is known
	rules     []str
	ordered   bool
	pos
}

type suppressDef struct {
	key []str
	dur time.Duration
	pos
}

type testDef struct {
	name   string
	flow   ast.Node   // single-flow test
	flows  []ast.Node // sequence test
	expect str        // match | no_match
	alerts int        // sequence test: expected number of alerts
	pos
}

type ruleDef struct {
	id          str
	title       string
	description string
	severity    str
	category    string
	tags        []string
	enabled     bool
	mode        str
	match       *expr
	exceptions  []exceptionDef
	aggregate   *aggregateDef
	suppress    *suppressDef
	output      []str
	tests       []testDef
	source      []byte // the item's text, to tell an unchanged rule on reload
	layer       int
}

type fileDefs struct {
	path   string
	layer  int   // layerBuiltin or layerUser
	fsys   fs.FS // the built-in pack, for its list files; nil: the disk
	rules  []*ruleDef
	lists  []*listDef
	macros []*macroDef
}

// Layers of a set: user files load after the built-in pack and replace its
// rules, lists and macros of the same name.
const (
	layerBuiltin = iota
	layerUser
)

// BuiltinPrefix starts the names of files read from Options.Builtin in
// diagnostics, test results and Set.Files: "builtin:remote_access.yml".
const BuiltinPrefix = "builtin:"

// builtinFiles lists the rule files at the root of fsys (its *.yml and
// *.yaml, dot-files skipped), sorted.
func builtinFiles(fsys fs.FS) ([]string, Diagnostics) {
	ents, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, Diagnostics{{File: BuiltinPrefix, Message: "reading the built-in rules: " + err.Error()}}
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); !e.IsDir() && isRuleFile(n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

func isRuleFile(name string) bool {
	return !strings.HasPrefix(name, ".") && (strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml"))
}

// RuleFiles is the rule files paths stand for, as Load reads them: each
// path that is a file, and the *.yaml and *.yml of each directory (not
// recursive, dot-files skipped), sorted; a path that cannot be read is a
// diagnostic.
func RuleFiles(paths []string) ([]string, Diagnostics) { return expandPaths(paths) }

// expandPaths turns files and directories (their *.yaml and *.yml, not
// recursive) into a sorted file list.
func expandPaths(paths []string) ([]string, Diagnostics) {
	var out []string
	var ds Diagnostics
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			ds = append(ds, Diagnostic{File: p, Message: err.Error()})
			continue
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			ds = append(ds, Diagnostic{File: p, Message: err.Error()})
			continue
		}
		for _, e := range ents {
			if n := e.Name(); !e.IsDir() && isRuleFile(n) {
				out = append(out, filepath.Join(p, n))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), ds
}

type yamlError interface {
	GetToken() *token.Token
	GetMessage() string
}

// parseFile reads one rule file into definitions, collecting every
// structural problem.
func parseFile(path string, src []byte) (*fileDefs, Diagnostics) {
	fd := &fileDefs{path: path}
	var ds Diagnostics
	// A byte order mark (Windows editors save one) is not YAML to the
	// parser, which would reject the first item; editors do not count it
	// as a column either.
	src = bytes.TrimPrefix(src, []byte("\ufeff"))
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		var ye yamlError
		if errors.As(err, &ye) && ye.GetToken() != nil {
			tk := ye.GetToken()
			return fd, Diagnostics{{File: path, Line: tk.Position.Line, Col: max(tk.Position.Column, 1), Message: "YAML: " + ye.GetMessage()}}
		}
		return fd, Diagnostics{{File: path, Message: "YAML: " + err.Error()}}
	}
	p := &fileParser{path: path, src: src, ds: &ds}
	for _, doc := range f.Docs {
		body := doc.Body
		if body == nil {
			continue
		}
		if _, ok := body.(*ast.NullNode); ok {
			continue
		}
		seq, ok := body.(*ast.SequenceNode)
		if !ok {
			ds = append(ds, p.at(body).diag("a rule file is a list of rule, list and macro items"))
			continue
		}
		for _, item := range seq.Values {
			p.item(fd, item)
		}
	}
	return fd, ds
}

type fileParser struct {
	path string
	src  []byte
	ds   *Diagnostics
}

func (p *fileParser) at(n ast.Node) pos {
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return pos{p.path, 1, 1}
	}
	// A mapping's token is its first ':'; its key is where it starts.
	if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 {
		return p.at(m.Values[0].Key)
	}
	if m, ok := n.(*ast.MappingValueNode); ok {
		return p.at(m.Key)
	}
	return pos{p.path, tk.Position.Line, max(tk.Position.Column, 1)}
}

func (p *fileParser) errf(n ast.Node, format string, args ...any) {
	*p.ds = append(*p.ds, p.at(n).diag(format, args...))
}

// mapping returns the key/value pairs of n in order, reporting duplicate
// and unknown keys.
func (p *fileParser) mapping(n ast.Node, what string, known ...string) ([]*ast.MappingValueNode, bool) {
	n = unwrap(n)
	var kvs []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		kvs = m.Values
	case *ast.MappingValueNode:
		kvs = []*ast.MappingValueNode{m}
	default:
		p.errf(n, "%s must be a mapping", what)
		return nil, false
	}
	seen := map[string]bool{}
	out := kvs[:0:0]
	for _, kv := range kvs {
		k := kv.Key.String()
		if s, ok := unwrap(kv.Key).(*ast.StringNode); ok {
			k = s.Value
		}
		if seen[k] {
			p.errf(kv.Key, "duplicate key %q in %s", k, what)
			continue
		}
		seen[k] = true
		if known != nil && !slices.Contains(known, k) {
			p.errf(kv.Key, "unknown key %q in %s (known: %s)", k, what, strings.Join(known, ", "))
			continue
		}
		out = append(out, kv)
	}
	return out, true
}

func unwrap(n ast.Node) ast.Node {
	for {
		switch t := n.(type) {
		case *ast.TagNode:
			n = t.Value
		case *ast.AnchorNode:
			n = t.Value
		default:
			return n
		}
	}
}

func keyOf(kv *ast.MappingValueNode) string {
	if s, ok := unwrap(kv.Key).(*ast.StringNode); ok {
		return s.Value
	}
	return kv.Key.String()
}

// scalar returns the text of a scalar node.
func (p *fileParser) scalar(n ast.Node, what string) (str, bool) {
	n = unwrap(n)
	switch v := n.(type) {
	case *ast.StringNode:
		return str{v.Value, p.at(n)}, true
	case *ast.LiteralNode:
		return str{v.Value.Value, p.at(n)}, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return str{n.GetToken().Value, p.at(n)}, true
	case *ast.NullNode:
		p.errf(n, "%s must not be empty", what)
		return str{}, false
	}
	p.errf(n, "%s must be a string", what)
	return str{}, false
}

func (p *fileParser) stringList(n ast.Node, what string) []str {
	n = unwrap(n)
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		if s, ok := n.(*ast.StringNode); ok { // a single value
			return []str{{s.Value, p.at(n)}}
		}
		p.errf(n, "%s must be a list of strings", what)
		return nil
	}
	var out []str
	for _, v := range seq.Values {
		if s, ok := p.scalar(v, what+" entry"); ok {
			out = append(out, s)
		}
	}
	return out
}

func (p *fileParser) boolean(n ast.Node, what string) bool {
	if b, ok := unwrap(n).(*ast.BoolNode); ok {
		return b.Value
	}
	p.errf(n, "%s must be true or false", what)
	return false
}

func (p *fileParser) duration(n ast.Node, what string) time.Duration {
	s, ok := p.scalar(n, what)
	if !ok {
		return 0
	}
	d, err := parseDuration(s.v)
	if err != nil || d <= 0 {
		p.errf(n, "%s: %q is not a positive duration such as 30s, 10m, 1h or 1d", what, s.v)
		return 0
	}
	return d
}

func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		x, err := strconv.Atoi(n)
		if err != nil {
			return 0, err
		}
		return time.Duration(x) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func (p *fileParser) integer(n ast.Node, what string) int {
	if x, ok := intValue(n); ok && x > 0 && x <= maxThreshold {
		return int(x)
	}
	p.errf(n, "%s must be an integer from 1 to %d", what, maxThreshold)
	return 0
}

// expression captures a CEL expression and the mapping of its positions.
func (p *fileParser) expression(n ast.Node, what string) *expr {
	n = unwrap(n)
	switch v := n.(type) {
	case *ast.LiteralNode:
		// Compile the raw block so CEL's line:col are the file's.
		body := v.Value
		tk := body.GetToken()
		text := tk.Origin
		if text == "" {
			text = body.Value
		}
		line := v.GetToken().Position.Line + 1
		// Skip leading blank lines of the block.
		for strings.HasPrefix(text, "\n") {
			text = text[1:]
			line++
		}
		return &expr{text: text, pos: pos{p.path, line, 1}, fromStart: true}
	case *ast.StringNode:
		tk := v.GetToken()
		at := p.at(n)
		switch tk.Type {
		case token.DoubleQuoteType, token.SingleQuoteType:
			at.col++ // past the quote
			return &expr{text: v.Value, pos: at}
		}
		// A plain scalar: its raw text (with line breaks) is the same CEL.
		raw := strings.TrimLeft(tk.Origin, " \t\r\n")
		if raw == "" || strings.Contains(raw, "#") {
			raw = v.Value
		}
		return &expr{text: strings.TrimRight(raw, " \t\r\n"), pos: at, fromStart: true}
	case *ast.BoolNode, *ast.IntegerNode, *ast.FloatNode:
		return &expr{text: n.GetToken().Value, pos: p.at(n)}
	}
	p.errf(n, "%s must be a CEL expression string", what)
	return nil
}

func (p *fileParser) item(fd *fileDefs, item ast.Node) {
	kvs, ok := p.mapping(item, "item")
	if !ok {
		return
	}
	kinds := 0
	for _, kv := range kvs {
		switch keyOf(kv) {
		case "rule", "list", "macro":
			kinds++
		}
	}
	if kinds != 1 {
		p.errf(item, "an item has exactly one of the keys rule, list or macro")
		return
	}
	switch keyOf(kvs[0]) {
	case "rule", "list", "macro":
	default:
		p.errf(kvs[0].Key, "the first key of an item is rule, list or macro")
		return
	}
	switch keyOf(kvs[0]) {
	case "rule":
		if r := p.rule(item); r != nil {
			fd.rules = append(fd.rules, r)
		}
	case "list":
		if l := p.list(item); l != nil {
			fd.lists = append(fd.lists, l)
		}
	case "macro":
		if m := p.macro(item); m != nil {
			fd.macros = append(fd.macros, m)
		}
	}
}

// celReserved are the words CEL keeps for itself: a list or macro named
// so would load here and fail only in the condition that uses it.
var celReserved = []string{"false", "in", "null", "true", "as", "break", "const", "continue", "else", "for",
	"function", "if", "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"}

var nameOK = func(s string) bool {
	if s == "" || slices.Contains(celReserved, s) {
		return false
	}
	for i, c := range s {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func (p *fileParser) list(item ast.Node) *listDef {
	kvs, _ := p.mapping(item, "list", "list", "items", "file")
	l := &listDef{}
	for _, kv := range kvs {
		switch keyOf(kv) {
		case "list":
			if s, ok := p.scalar(kv.Value, "list name"); ok {
				if !nameOK(s.v) {
					p.errf(kv.Value, "list name %q must be an identifier (letters, digits, _) and not a CEL reserved word", s.v)
				}
				l.name = s
			}
		case "items":
			l.present = true
			n := unwrap(kv.Value)
			seq, ok := n.(*ast.SequenceNode)
			if !ok {
				p.errf(n, "items must be a list")
				continue
			}
			for _, v := range seq.Values {
				if s, ok := p.scalar(v, "list item"); ok {
					l.items = append(l.items, entryPos{s.v, s.pos})
				}
			}
		case "file":
			if s, ok := p.scalar(kv.Value, "list file"); ok {
				l.file = s
			}
		}
	}
	if l.name.v == "" {
		return nil
	}
	if l.present == (l.file.v != "") {
		p.errf(item, "list %s needs exactly one of items or file", l.name.v)
		return nil
	}
	return l
}

func (p *fileParser) macro(item ast.Node) *macroDef {
	kvs, _ := p.mapping(item, "macro", "macro", "condition")
	m := &macroDef{}
	for _, kv := range kvs {
		switch keyOf(kv) {
		case "macro":
			if s, ok := p.scalar(kv.Value, "macro name"); ok {
				if !nameOK(s.v) {
					p.errf(kv.Value, "macro name %q must be an identifier (letters, digits, _) and not a CEL reserved word", s.v)
					return nil
				}
				m.name = s
			}
		case "condition":
			if e := p.expression(kv.Value, "condition"); e != nil {
				m.cond = *e
			}
		}
	}
	if m.name.v == "" {
		return nil
	}
	if m.cond.text == "" {
		p.errf(item, "macro %s has no condition", m.name.v)
		return nil
	}
	return m
}

var ruleKeys = []string{"rule", "title", "description", "severity", "category", "tags", "enabled", "mode", "match", "exceptions", "aggregate", "suppress", "output", "tests"}

func (p *fileParser) rule(item ast.Node) *ruleDef {
	kvs, _ := p.mapping(item, "rule", ruleKeys...)
	r := &ruleDef{enabled: true, mode: str{v: "alert"}}
	if tk := item.GetToken(); tk != nil {
		r.source = []byte(item.String())
	}
	for _, kv := range kvs {
		v := kv.Value
		switch keyOf(kv) {
		case "rule":
			if s, ok := p.scalar(v, "rule id"); ok {
				if !ruleIDOK(s.v) {
					p.errf(v, "rule id %q: use letters, digits, '_', '-' and '.'", s.v)
				}
				r.id = s
			}
		case "title":
			s, _ := p.scalar(v, "title")
			r.title = s.v
		case "description":
			s, _ := p.scalar(v, "description")
			r.description = s.v
		case "severity":
			if s, ok := p.scalar(v, "severity"); ok {
				if _, ok := severityIDs[s.v]; !ok {
					p.errf(v, "severity %q: want info, low, medium, high or critical", s.v)
				}
				r.severity = s
			}
		case "category":
			s, _ := p.scalar(v, "category")
			r.category = s.v
		case "tags":
			for _, s := range p.stringList(v, "tags") {
				r.tags = append(r.tags, s.v)
			}
		case "enabled":
			r.enabled = p.boolean(v, "enabled")
		case "mode":
			if s, ok := p.scalar(v, "mode"); ok {
				if s.v != "alert" && s.v != "shadow" {
					p.errf(v, "mode %q: want alert or shadow", s.v)
				}
				r.mode = s
			}
		case "match":
			r.match = p.expression(v, "match")
		case "exceptions":
			r.exceptions = p.exceptions(v)
		case "aggregate":
			r.aggregate = p.aggregate(v)
		case "suppress":
			r.suppress = p.suppress(v)
		case "output":
			r.output = p.stringList(v, "output")
		case "tests":
			r.tests = p.tests(v)
		}
	}
	if r.id.v == "" {
		return nil
	}
	if r.title == "" {
		p.errf(item, "rule %s has no title", r.id.v)
	}
	if r.severity.v == "" {
		p.errf(item, "rule %s has no severity", r.id.v)
	}
	if r.category == "" {
		p.errf(item, "rule %s has no category", r.id.v)
	}
	temporal := r.aggregate != nil && r.aggregate.typ.v == "temporal"
	if r.match == nil && !temporal {
		p.errf(item, "rule %s has no match", r.id.v)
	}
	if r.match != nil && temporal {
		*p.ds = append(*p.ds, r.match.pos.diag("temporal rule %s takes no match: it fires on the rules it lists", r.id.v))
	}
	return r
}

func ruleIDOK(s string) bool {
	for _, c := range s {
		if !(c == '_' || c == '-' || c == '.' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

func (p *fileParser) exceptions(n ast.Node) []exceptionDef {
	seq, ok := unwrap(n).(*ast.SequenceNode)
	if !ok {
		p.errf(n, "exceptions must be a list")
		return nil
	}
	var out []exceptionDef
	for _, item := range seq.Values {
		kvs, ok := p.mapping(item, "exception", "name", "fields", "comps", "values")
		if !ok {
			continue
		}
		e := exceptionDef{pos: p.at(item)}
		for _, kv := range kvs {
			switch keyOf(kv) {
			case "name":
				e.name, _ = p.scalar(kv.Value, "exception name")
			case "fields":
				e.fields = p.stringList(kv.Value, "exception fields")
			case "comps":
				e.comps = p.stringList(kv.Value, "exception comps")
			case "values":
				vs, ok := unwrap(kv.Value).(*ast.SequenceNode)
				if !ok {
					p.errf(kv.Value, "exception values must be a list of tuples")
					continue
				}
				for _, t := range vs.Values {
					tuple, ok := unwrap(t).(*ast.SequenceNode)
					if !ok {
						// One field: a bare value is a 1-tuple.
						e.values = append(e.values, []valueNode{{t, p.at(t)}})
						continue
					}
					var row []valueNode
					for _, x := range tuple.Values {
						row = append(row, valueNode{x, p.at(x)})
					}
					e.values = append(e.values, row)
				}
			}
		}
		if len(e.fields) == 0 {
			p.errf(item, "exception needs fields")
			continue
		}
		out = append(out, e)
	}
	return out
}

const (
	maxThreshold    = 100000
	maxSumThreshold = 1 << 50 // value_sum: bytes over a week fit
	maxWindow       = 7 * 24 * time.Hour
)

func (p *fileParser) aggregate(n ast.Node) *aggregateDef {
	kvs, ok := p.mapping(n, "aggregate", "type", "group_by", "window", "field", "condition", "rules", "ordered")
	if !ok {
		return nil
	}
	a := &aggregateDef{pos: p.at(n)}
	for _, kv := range kvs {
		v := kv.Value
		switch keyOf(kv) {
		case "type":
			if s, ok := p.scalar(v, "aggregate type"); ok {
				switch s.v {
				case "event_count", "value_count", "value_sum", "temporal":
				default:
					p.errf(v, "aggregate type %q: want event_count, value_count, value_sum or temporal", s.v)
				}
				a.typ = s
			}
		case "group_by":
			a.groupBy = p.stringList(v, "group_by")
		case "window":
			a.window = p.duration(v, "window")
			a.windowPos = p.at(v)
			if a.window > maxWindow {
				p.errf(v, "window %v is longer than the limit of %v", a.window, maxWindow)
			}
		case "field":
			a.field, _ = p.scalar(v, "field")
		case "condition":
			a.condPos = p.at(v)
			ckvs, ok := p.mapping(v, "condition", "gte", "gt")
			if !ok {
				continue
			}
			for _, c := range ckvs {
				a.condVal = append(a.condVal, c)
			}
		case "rules":
			a.rules = p.stringList(v, "rules")
		case "ordered":
			a.ordered = p.boolean(v, "ordered")
		}
	}
	// The condition's limit depends on the type: counts are kept one entry
	// per event, a sum is not.
	limit := int64(maxThreshold)
	if a.typ.v == "value_sum" {
		limit = maxSumThreshold
	}
	for _, c := range a.condVal {
		x, ok := intValue(c.Value)
		if !ok || x < 1 || x > limit {
			p.errf(c.Value, "%s must be an integer from 1 to %d", keyOf(c), limit)
			continue
		}
		a.gt = keyOf(c) == "gt"
		if a.gt {
			x++
		}
		a.gte = int(x)
	}
	switch a.typ.v {
	case "":
		p.errf(n, "aggregate needs a type")
		return nil
	case "temporal":
		if len(a.rules) < 2 {
			p.errf(n, "temporal aggregate needs at least two rules")
		}
		if a.gte != 0 || a.field.v != "" {
			p.errf(n, "temporal aggregate takes no condition or field")
		}
	default:
		if a.gte == 0 && a.condPos.line == 0 {
			p.errf(n, "%s aggregate needs a condition such as {gte: 10}", a.typ.v)
		}
		if len(a.rules) > 0 {
			p.errf(n, "%s aggregate counts this rule's matches; rules is for temporal", a.typ.v)
		}
		if (a.typ.v == "value_count" || a.typ.v == "value_sum") && a.field.v == "" {
			p.errf(n, "%s aggregate needs a field", a.typ.v)
		}
		if a.typ.v == "event_count" && a.field.v != "" {
			p.errf(n, "event_count aggregate takes no field")
		}
	}
	if a.window == 0 && a.windowPos.line == 0 {
		p.errf(n, "aggregate needs a window")
	}
	if len(a.groupBy) == 0 {
		p.errf(n, "aggregate needs group_by")
	}
	return a
}

func (p *fileParser) suppress(n ast.Node) *suppressDef {
	kvs, ok := p.mapping(n, "suppress", "key", "for")
	if !ok {
		return nil
	}
	s := &suppressDef{pos: p.at(n)}
	for _, kv := range kvs {
		switch keyOf(kv) {
		case "key":
			s.key = p.stringList(kv.Value, "suppress key")
		case "for":
			s.dur = p.duration(kv.Value, "suppress for")
		}
	}
	if s.dur == 0 {
		p.errf(n, "suppress needs for, e.g. for: 1h")
		return nil
	}
	return s
}

func (p *fileParser) tests(n ast.Node) []testDef {
	seq, ok := unwrap(n).(*ast.SequenceNode)
	if !ok {
		p.errf(n, "tests must be a list")
		return nil
	}
	var out []testDef
	for _, item := range seq.Values {
		kvs, ok := p.mapping(item, "test", "name", "flow", "flows", "expect", "alerts")
		if !ok {
			continue
		}
		t := testDef{pos: p.at(item), alerts: -1}
		for _, kv := range kvs {
			switch keyOf(kv) {
			case "name":
				s, _ := p.scalar(kv.Value, "test name")
				t.name = s.v
			case "flow":
				t.flow = kv.Value
			case "flows":
				fs, ok := unwrap(kv.Value).(*ast.SequenceNode)
				if !ok {
					p.errf(kv.Value, "flows must be a list of flow records")
					continue
				}
				t.flows = fs.Values
			case "expect":
				if s, ok := p.scalar(kv.Value, "expect"); ok {
					if s.v != "match" && s.v != "no_match" {
						p.errf(kv.Value, "expect %q: want match or no_match", s.v)
					}
					t.expect = s
				}
			case "alerts":
				if x, ok := intValue(kv.Value); ok && x >= 0 && x <= maxThreshold {
					t.alerts = int(x)
					continue
				}
				p.errf(kv.Value, "alerts must be a non-negative integer")
			}
		}
		switch {
		case t.flow != nil && t.flows == nil:
			if t.expect.v == "" || t.alerts >= 0 {
				p.errf(item, "a flow test needs expect: match or no_match (and no alerts)")
				continue
			}
		case t.flows != nil && t.flow == nil:
			if t.alerts < 0 || t.expect.v != "" {
				p.errf(item, "a flows test needs alerts: N (and no expect)")
				continue
			}
		default:
			p.errf(item, "a test needs exactly one of flow or flows")
			continue
		}
		out = append(out, t)
	}
	return out
}

// readListFile loads a list file relative to the rule file's directory
// (for the built-in pack, inside its file system).
func readListFile(fd *fileDefs, name string) (string, []byte, error) {
	if fd.fsys != nil {
		p := path.Join(path.Dir(strings.TrimPrefix(fd.path, BuiltinPrefix)), name)
		b, err := fs.ReadFile(fd.fsys, p)
		return BuiltinPrefix + p, b, err
	}
	p := name
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(fd.path), name)
	}
	b, err := os.ReadFile(p)
	return p, b, err
}

func intValue(n ast.Node) (int64, bool) {
	v, ok := unwrap(n).(*ast.IntegerNode)
	if !ok {
		return 0, false
	}
	switch x := v.Value.(type) {
	case int64:
		return x, true
	case uint64:
		if x <= 1<<62 {
			return int64(x), true
		}
	case int:
		return int64(x), true
	}
	return 0, false
}
