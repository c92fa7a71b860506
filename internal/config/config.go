// Package config loads the daemons' configuration in layers: defaults,
// then a YAML file (--config), then EDGEWARD_* environment variables, then
// command-line flags, the later winning. It validates once, after all
// layers, and reports every problem at once, each with where its value
// came from (file:line:col, the variable or the flag).
//
// A configuration is a Go struct; its tags drive every layer:
//
//	yaml:"key"       the YAML key; the field's path ("kafka.brokers") joins
//	                 the keys. An embedded struct tagged yaml:",inline"
//	                 adds its fields to the enclosing level.
//	env:"NAME"       the variable EDGEWARD_NAME (default: the path in upper
//	                 case with '_' for '.'); env:"-" for none
//	flag:"name"      a command-line flag (none by default)
//	default:"value"  the default, in the same text form as env and flags
//	help:"text"      one line for -h and the reference
//	enum:"a|b|c"     the allowed values
//	unit:"bytes"     integers also accept KiB, MiB, GiB, TiB (and KB ...)
//
// Fields may be strings, Secret, bools, integers, floats, time.Duration,
// anything implementing encoding.TextUnmarshaler (netip.Prefix, ...), or
// slices of those (a YAML sequence, or comma-separated text). Structs with
// rules beyond their tags implement Checker.
package config

import (
	"encoding"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// EnvPrefix starts every environment variable name.
const EnvPrefix = "EDGEWARD_"

// Secret is a string that never prints: fmt, slog, JSON and YAML show
// "REDACTED" (or nothing when empty). Reveal returns the value.
type Secret string

const redacted = "REDACTED"

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler, redacted.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the secret.
func (s Secret) Reveal() string { return string(s) }

// Checker is implemented by configuration structs with rules their tags
// cannot express. Check reports each problem with the key of the field it
// concerns, relative to the struct ("sasl.mechanism"), or "" for the
// struct as a whole. Every struct's Check is called once; a named struct
// that embeds a Checker inline and has no Check of its own would run the
// embedded one twice, so give it its own.
type Checker interface {
	Check(report func(key, msg string))
}

// Error is one problem with the configuration.
type Error struct {
	Where string // "sensor.yml:3:7", "EDGEWARD_BROKERS", "--brokers", "default", or "" for the whole
	Path  string // the field's path, "kafka.brokers"
	Msg   string
}

func (e Error) Error() string {
	var b strings.Builder
	if e.Where != "" {
		b.WriteString(e.Where)
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found; Load returns it as its error.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// ErrInvalid is matched by errors.Is on an Errors value.
var ErrInvalid = errors.New("invalid configuration")

func (es Errors) Is(target error) bool { return target == ErrInvalid }

type field struct {
	path  string
	env   string
	flag  string
	def   string
	help  string
	enum  []string
	bytes bool
	index []int
	typ   reflect.Type
}

// node is one level of the YAML tree.
type node struct {
	leaf     *field
	children map[string]*node
	keys     []string // in struct order
}

// Loader loads one configuration struct.
type Loader struct {
	name    string
	v       reflect.Value
	fields  []*field
	root    *node
	fs      *flag.FlagSet
	config  string
	set     map[*field]string // flags given: raw text
	sources map[string]string
	errs    Errors
}

// New prepares to load into v, a pointer to a configuration struct, and
// sets its defaults. name is the command, for usage messages. An error
// means the struct's tags are wrong: a bug, not a user problem.
func New(name string, v any) (*Loader, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("config: want a pointer to a struct, got %T", v)
	}
	l := &Loader{name: name, v: rv.Elem(), root: &node{children: map[string]*node{}}, set: map[*field]string{}, sources: map[string]string{}}
	if err := l.walk(rv.Elem().Type(), nil, "", l.root); err != nil {
		return nil, err
	}
	l.fs = flag.NewFlagSet(name, flag.ContinueOnError)
	l.fs.StringVar(&l.config, "config", "", "YAML configuration file (flags and EDGEWARD_* variables override it)")
	for _, f := range l.fields {
		if f.def != "" {
			if err := setText(l.value(f), f, f.def); err != nil {
				return nil, fmt.Errorf("config: default of %s: %v", f.path, err)
			}
			l.sources[f.path] = "default"
		}
		if f.flag != "" {
			usage := f.help
			if f.env != "" {
				usage += " (env " + f.env + ")"
			}
			l.fs.Var(&flagValue{l: l, f: f}, f.flag, usage)
		}
	}
	return l, nil
}

func (l *Loader) walk(t reflect.Type, index []int, prefix string, n *node) error {
	for i := range t.NumField() {
		sf := t.Field(i)
		key, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() && !(sf.Anonymous && opts == "inline") {
			continue
		}
		idx := append(slices.Clone(index), i)
		if sf.Anonymous && opts == "inline" {
			if err := l.walk(sf.Type, idx, prefix, n); err != nil {
				return err
			}
			continue
		}
		if key == "" || key == "-" {
			continue
		}
		if _, dup := n.children[key]; dup {
			return fmt.Errorf("config: key %q twice in %s", prefix+key, t)
		}
		path := prefix + key
		if sf.Type.Kind() == reflect.Struct && !isLeaf(sf.Type) {
			c := &node{children: map[string]*node{}}
			n.children[key], n.keys = c, append(n.keys, key)
			if err := l.walk(sf.Type, idx, path+".", c); err != nil {
				return err
			}
			continue
		}
		if !settable(sf.Type) {
			return fmt.Errorf("config: %s: unsupported type %s", path, sf.Type)
		}
		f := &field{path: path, flag: sf.Tag.Get("flag"), def: sf.Tag.Get("default"), help: sf.Tag.Get("help"), index: idx, typ: sf.Type, bytes: sf.Tag.Get("unit") == "bytes"}
		switch env := sf.Tag.Get("env"); env {
		case "-":
		case "":
			f.env = EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
		default:
			f.env = EnvPrefix + env
		}
		if e := sf.Tag.Get("enum"); e != "" {
			f.enum = strings.Split(e, "|")
		}
		l.fields = append(l.fields, f)
		n.children[key], n.keys = &node{leaf: f}, append(n.keys, key)
	}
	return nil
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func isLeaf(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(textUnmarshaler) || t == reflect.TypeFor[time.Duration]()
}

func settable(t reflect.Type) bool {
	if isLeaf(t) {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Uint16, reflect.Float64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() != reflect.Slice && settable(t.Elem())
	}
	return false
}

func (l *Loader) value(f *field) reflect.Value { return l.v.FieldByIndex(f.index) }

// FlagSet returns the flags: --config and those of the struct's flag tags.
// Set its Usage and add command-specific flags before Load.
func (l *Loader) FlagSet() *flag.FlagSet { return l.fs }

// ConfigFile returns the --config path after Load.
func (l *Loader) ConfigFile() string { return l.config }

// Source says where a field's value came from after Load: "default",
// "file:line:col", the variable, or the flag.
func (l *Loader) Source(path string) string { return l.sources[path] }

type flagValue struct {
	l *Loader
	f *field
}

func (v *flagValue) String() string {
	if v == nil || v.f == nil {
		return ""
	}
	return v.f.def
}

func (v *flagValue) Set(s string) error {
	// Applied in Load, after the file and the environment; checked there.
	v.l.set[v.f] = s
	return nil
}

func (v *flagValue) IsBoolFlag() bool { return v.f.typ.Kind() == reflect.Bool }

// Load parses args (flags; flag.ErrHelp for -h), then reads the --config
// file, the environment (through getenv, os.LookupEnv when nil) and
// applies the flags, then validates. The error is an Errors listing every
// problem, or a flag parsing error.
func (l *Loader) Load(args []string, getenv func(string) (string, bool)) error {
	if err := l.fs.Parse(args); err != nil {
		return err
	}
	if getenv == nil {
		getenv = os.LookupEnv
	}
	if l.fs.NArg() > 0 {
		l.errs = append(l.errs, Error{Msg: fmt.Sprintf("unexpected argument %q", l.fs.Arg(0))})
	}
	if l.config != "" {
		src, err := os.ReadFile(l.config)
		if err != nil {
			l.errs = append(l.errs, Error{Where: "--config", Msg: err.Error()})
		} else {
			l.loadYAML(l.config, src)
		}
	}
	for _, f := range l.fields {
		if f.env == "" {
			continue
		}
		if s, ok := getenv(f.env); ok {
			l.apply(f, s, f.env)
		}
	}
	for _, f := range l.fields {
		if s, ok := l.set[f]; ok {
			l.apply(f, s, "--"+f.flag)
		}
	}
	l.validate()
	if len(l.errs) > 0 {
		return l.errs
	}
	return nil
}

func (l *Loader) apply(f *field, s, where string) {
	if err := setText(l.value(f), f, s); err != nil {
		l.errs = append(l.errs, Error{Where: where, Path: f.path, Msg: err.Error()})
		return
	}
	l.sources[f.path] = where
}

// setText sets v from its text form: comma-separated for slices.
func setText(v reflect.Value, f *field, s string) error {
	if v.Kind() == reflect.Slice && !isLeaf(v.Type()) {
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		if strings.TrimSpace(s) == "" {
			return nil
		}
		for i, part := range strings.Split(s, ",") {
			e, err := listEntry(v.Type(), f, i+1, strings.TrimSpace(part))
			if err != nil {
				return err
			}
			v.Set(reflect.Append(v, e))
		}
		return nil
	}
	return setScalar(v, f, s)
}

// listEntry parses entry i (from 1) of a list of type t, from a
// comma-separated value or a YAML sequence.
func listEntry(t reflect.Type, f *field, i int, s string) (reflect.Value, error) {
	if strings.TrimSpace(s) == "" {
		// A stray comma or "- ~": some element types (netip.Prefix)
		// would take it for a zero value.
		return reflect.Value{}, fmt.Errorf("entry %d is empty", i)
	}
	e := reflect.New(t.Elem()).Elem()
	if err := setScalar(e, f, s); err != nil {
		return reflect.Value{}, fmt.Errorf("entry %d: %w", i, err)
	}
	return e, nil
}

func setScalar(v reflect.Value, f *field, s string) error {
	if v.Type() == reflect.TypeFor[time.Duration]() {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 30s, 5m or 1h", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		if err := u.UnmarshalText([]byte(s)); err != nil {
			return fmt.Errorf("%q: %v", s, err)
		}
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := parseInt(s, f != nil && f.bytes, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Uint16:
		n, err := parseInt(s, f != nil && f.bytes, 64)
		if err != nil || n < 0 || (v.Type().Bits() < 64 && n >= 1<<v.Type().Bits()) {
			return fmt.Errorf("%q is not an integer from 0 to %d", s, uint64(1)<<v.Type().Bits()-1)
		}
		v.SetUint(uint64(n))
	case reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		v.SetFloat(x)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

var units = []struct {
	suffix string
	mult   int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}

func parseInt(s string, bytes bool, bits int) (int64, error) {
	mult := int64(1)
	if bytes {
		for _, u := range units {
			if n, ok := strings.CutSuffix(s, u.suffix); ok {
				s, mult = strings.TrimSpace(n), u.mult
				break
			}
		}
	}
	n, err := strconv.ParseInt(s, 10, bits)
	if err != nil || (mult > 1 && (n > (1<<(bits-1)-1)/mult || n < -(1<<(bits-1))/mult)) {
		if bytes {
			return 0, fmt.Errorf("%q is not a size such as 1073741824, 512MiB or 1GiB", s)
		}
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	return n * mult, nil
}

type yamlError interface {
	GetToken() *token.Token
	GetMessage() string
}

func (l *Loader) loadYAML(path string, src []byte) {
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		var ye yamlError
		if errors.As(err, &ye) && ye.GetToken() != nil && ye.GetToken().Position != nil {
			p := ye.GetToken().Position
			l.errs = append(l.errs, Error{Where: fmt.Sprintf("%s:%d:%d", path, p.Line, max(p.Column, 1)), Msg: "YAML: " + ye.GetMessage()})
			return
		}
		l.errs = append(l.errs, Error{Where: path, Msg: "YAML: " + err.Error()})
		return
	}
	y := yamlLoader{l: l, path: path}
	for i, doc := range f.Docs {
		if doc.Body == nil {
			continue
		}
		if _, ok := unwrap(doc.Body).(*ast.NullNode); ok {
			continue
		}
		if i > 0 {
			y.errf(doc.Body, "", "more than one YAML document; a configuration file holds one")
			break
		}
		y.mapping(doc.Body, l.root, "")
	}
}

type yamlLoader struct {
	l    *Loader
	path string
}

func (y *yamlLoader) at(n ast.Node) string {
	tk := n.GetToken()
	if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 {
		return y.at(m.Values[0].Key)
	}
	if m, ok := n.(*ast.MappingValueNode); ok {
		return y.at(m.Key)
	}
	if tk == nil || tk.Position == nil {
		return y.path
	}
	return fmt.Sprintf("%s:%d:%d", y.path, tk.Position.Line, max(tk.Position.Column, 1))
}

func (y *yamlLoader) errf(n ast.Node, path, format string, args ...any) {
	y.l.errs = append(y.l.errs, Error{Where: y.at(n), Path: path, Msg: fmt.Sprintf(format, args...)})
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

func (y *yamlLoader) mapping(n ast.Node, level *node, prefix string) {
	n = unwrap(n)
	var kvs []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		kvs = m.Values
	case *ast.MappingValueNode:
		kvs = []*ast.MappingValueNode{m}
	case *ast.NullNode:
		return
	default:
		what := "the file"
		if prefix != "" {
			what = strings.TrimSuffix(prefix, ".")
		}
		y.errf(n, strings.TrimSuffix(prefix, "."), "%s must be a mapping of keys (%s)", what, strings.Join(level.keys, ", "))
		return
	}
	seen := map[string]bool{}
	for _, kv := range kvs {
		key := kv.Key.String()
		if s, ok := unwrap(kv.Key).(*ast.StringNode); ok {
			key = s.Value
		}
		if seen[key] {
			y.errf(kv.Key, prefix+key, "duplicate key")
			continue
		}
		seen[key] = true
		c := level.children[key]
		if c == nil {
			y.errf(kv.Key, "", "unknown key %q%s (known: %s)", key, in(prefix), strings.Join(level.keys, ", "))
			continue
		}
		if c.leaf == nil {
			y.mapping(kv.Value, c, prefix+key+".")
			continue
		}
		y.leaf(kv.Value, c.leaf)
	}
}

func in(prefix string) string {
	if prefix == "" {
		return ""
	}
	return " in " + strings.TrimSuffix(prefix, ".")
}

func (y *yamlLoader) leaf(n ast.Node, f *field) {
	n = unwrap(n)
	v := y.l.value(f)
	where := y.at(n)
	if _, ok := n.(*ast.NullNode); ok {
		v.SetZero()
		y.l.sources[f.path] = where
		return
	}
	if v.Kind() == reflect.Slice && !isLeaf(v.Type()) {
		seq, ok := n.(*ast.SequenceNode)
		if !ok { // a scalar: comma-separated, as in env and flags
			if s, ok := y.scalar(n, f, 0); ok {
				if err := setText(v, f, s); err != nil {
					y.errf(n, f.path, "%v", err)
					return
				}
				y.l.sources[f.path] = where
			}
			return
		}
		out := reflect.MakeSlice(v.Type(), 0, len(seq.Values))
		bad := false
		for i, e := range seq.Values {
			s, ok := y.scalar(unwrap(e), f, i+1)
			if !ok {
				bad = true
				continue
			}
			ev, err := listEntry(v.Type(), f, i+1, s)
			if err != nil {
				y.errf(e, f.path, "%v", err)
				bad = true
				continue
			}
			out = reflect.Append(out, ev)
		}
		if !bad {
			v.Set(out)
			y.l.sources[f.path] = where
		}
		return
	}
	s, ok := y.scalar(n, f, 0)
	if !ok {
		return
	}
	if err := setScalar(v, f, s); err != nil {
		y.errf(n, f.path, "%v", err)
		return
	}
	y.l.sources[f.path] = where
}

// scalar returns a scalar's text; entry numbers a list's entries for errors.
func (y *yamlLoader) scalar(n ast.Node, f *field, entry int) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		return v.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value, true
	case *ast.NullNode:
		return "", true
	}
	switch {
	case entry > 0:
		y.errf(n, f.path, "entry %d: want a single value, not a %s", entry, nodeKind(n))
	case f.typ.Kind() == reflect.Slice:
		y.errf(n, f.path, "want a list of values, not a %s", nodeKind(n))
	default:
		y.errf(n, f.path, "want a single value, not a %s", nodeKind(n))
	}
	return "", false
}

func nodeKind(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "mapping"
	case *ast.SequenceNode:
		return "list"
	}
	return n.Type().String()
}

// validate checks enums and runs the Checkers.
func (l *Loader) validate() {
	for _, f := range l.fields {
		if f.enum == nil {
			continue
		}
		v := l.value(f)
		vals := []reflect.Value{v}
		if v.Kind() == reflect.Slice {
			vals = vals[:0]
			for i := range v.Len() {
				vals = append(vals, v.Index(i))
			}
		}
		for _, x := range vals {
			if s := fmt.Sprint(x.Interface()); !slices.Contains(f.enum, s) {
				l.errs = append(l.errs, Error{Where: l.sources[f.path], Path: f.path, Msg: fmt.Sprintf("%q is not one of %s", s, strings.Join(f.enum, ", "))})
			}
		}
	}
	l.check(l.v, "")
}

func (l *Loader) check(v reflect.Value, prefix string) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		key, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		inline := sf.Anonymous && opts == "inline"
		if (!sf.IsExported() && !inline) || sf.Type.Kind() != reflect.Struct || isLeaf(sf.Type) {
			continue
		}
		switch {
		case inline:
			l.check(v.Field(i), prefix)
		case key != "" && key != "-":
			l.check(v.Field(i), prefix+key+".")
		}
	}
	// An unexported embedded struct: its fields are checked above. An
	// unnamed struct declares no methods: a Check it has is promoted from
	// an inline field, which was checked above.
	if !v.CanInterface() || t.Name() == "" {
		return
	}
	c, ok := v.Addr().Interface().(Checker)
	if !ok {
		return
	}
	c.Check(func(key, msg string) {
		path := strings.TrimSuffix(prefix+key, ".")
		l.errs = append(l.errs, Error{Where: l.sources[path], Path: path, Msg: msg})
	})
}

// LogValue returns the loaded configuration for slog, one attribute per
// field by path; secrets are redacted.
func (l *Loader) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, len(l.fields))
	for _, f := range l.fields {
		attrs = append(attrs, slog.Any(f.path, l.value(f).Interface()))
	}
	return slog.GroupValue(attrs...)
}

// Reference renders the configuration reference of the struct v points to
// as a markdown table: key, environment variable, flag, default, meaning.
func Reference(v any) string {
	l, err := New("", v)
	if err != nil {
		return "<!-- " + err.Error() + " -->\n"
	}
	var b strings.Builder
	b.WriteString("| key | environment | flag | default | meaning |\n| --- | --- | --- | --- | --- |\n")
	for _, f := range l.fields {
		env, flg, def := "", "", ""
		if f.env != "" {
			env = "`" + f.env + "`"
		}
		if f.flag != "" {
			flg = "`--" + f.flag + "`"
			if len(f.flag) == 1 {
				flg = "`-" + f.flag + "`"
			}
		}
		if f.def != "" {
			def = "`" + f.def + "`"
		}
		help := f.help
		if help != "" && !strings.HasSuffix(help, ".") {
			help += "."
		}
		if f.enum != nil {
			vals := make([]string, len(f.enum))
			for i, e := range f.enum {
				vals[i] = "`" + e + "`"
				if e == "" {
					vals[i] = `""`
				}
			}
			help += " One of " + strings.Join(vals, ", ") + "."
		}
		if f.typ == reflect.TypeFor[Secret]() {
			help += " Secret: never logged."
		}
		help = strings.TrimSpace(help)
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", f.path, env, flg, def, strings.ReplaceAll(help, "|", `\|`))
	}
	return b.String()
}
