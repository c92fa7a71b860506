package rules

import (
	"encoding"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"
	"unsafe"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"

	"github.com/edgeward/edgeward/flow"
)

// Kind is the CEL type of a field.
type Kind uint8

// Field kinds. Every Go integer type is an int in rules, so that
// `dst.port == 443` type-checks without a `u` suffix.
const (
	KindString Kind = iota + 1
	KindInt
	KindDouble
	KindBool
	KindTimestamp
	KindDuration
	KindIP
	KindStringList
	KindIntList
)

var kindNames = [...]string{"", "string", "int", "double", "bool", "timestamp", "duration", "net.IP", "list(string)", "list(int)"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", k)
}

func (k Kind) celType() *cel.Type {
	switch k {
	case KindString:
		return cel.StringType
	case KindInt:
		return cel.IntType
	case KindDouble:
		return cel.DoubleType
	case KindBool:
		return cel.BoolType
	case KindTimestamp:
		return cel.TimestampType
	case KindDuration:
		return cel.DurationType
	case KindIP:
		return ext.IPType
	case KindStringList:
		return cel.ListType(cel.StringType)
	case KindIntList:
		return cel.ListType(cel.IntType)
	}
	return cel.DynType
}

// ExtraField declares a field that rules may reference but that flow.Record
// does not carry (yet), e.g. enrichment such as "dst.geo.country". The
// caller sets its value per flow with Input.SetString and friends.
type ExtraField struct {
	Name string // dotted path, e.g. "dst.anon.vpn"
	Kind Kind   // KindString, KindInt, KindDouble or KindBool
	Doc  string
}

// Schema is the set of typed fields rules can reference: every field of
// flow.Record, named by its JSON path and derived by reflection so that
// fields added to the record appear without code changes, plus the extra
// fields the caller declared.
type Schema struct {
	fields []field
	index  map[string]int
	extra  int // fields[extra:] are extra fields
}

// FieldInfo describes one field for documentation and tooling.
type FieldInfo struct {
	Name string
	Kind Kind
	Doc  string
}

// field reads one value from an Input.
type field struct {
	name string
	kind Kind
	doc  string
	// Derived fields: walk steps from the record, then read a leaf.
	steps []step
	leaf  leafFn
	// nat reads the leaf without boxing, for the guard index.
	nat native
	// Extra fields: slot in Input.extra.
	slot int
}

// native reads a leaf's Go value without boxing it; at most one reader is
// set. omit: the zero value means absent (omitempty), as leaf says.
type native struct {
	str  func(p unsafe.Pointer) string
	int  func(p unsafe.Pointer) int64
	bool func(p unsafe.Pointer) bool
	addr func(p unsafe.Pointer) netip.Addr
	mac  func(p unsafe.Pointer) flow.MAC
	omit bool
	// ld is how str, int or bool load the value, so that the guard index
	// and the native checks read it without an indirect call.
	ld loadKind
}

// loadKind is the Go type a native string, int or bool reader loads.
type loadKind uint8

const (
	ldNone loadKind = iota
	ldString
	ldBool
	ldInt8
	ldInt16
	ldInt32
	ldInt64
	ldUint8
	ldUint16
	ldUint32
	ldUint64
)

type step struct {
	off uintptr
	ptr bool // the field at off is a pointer to follow
}

// leafFn converts the value at p; ok=false means absent.
type leafFn func(p unsafe.Pointer) (ref.Val, bool)

// Handle names an extra field for the Input setters.
type Handle struct{ slot int }

// NewSchema derives the record's fields and adds the extra ones. It fails
// when an extra field collides with a record field or a record field has a
// Go type rules cannot represent (so adding such a field to flow.Record
// fails the tests instead of silently hiding it).
func NewSchema(extra ...ExtraField) (*Schema, error) {
	s := &Schema{index: map[string]int{}}
	var errs []error
	s.derive(reflect.TypeFor[flow.Record](), "", nil, &errs)
	s.extra = len(s.fields)
	for i, x := range extra {
		switch {
		case x.Name == "" || strings.HasPrefix(x.Name, ".") || strings.HasSuffix(x.Name, ".") || strings.ContainsAny(x.Name, " \t"):
			errs = append(errs, fmt.Errorf("extra field %q: bad name", x.Name))
			continue
		case x.Kind != KindString && x.Kind != KindInt && x.Kind != KindDouble && x.Kind != KindBool:
			errs = append(errs, fmt.Errorf("extra field %q: kind %v not supported, want string, int, double or bool", x.Name, x.Kind))
			continue
		}
		if _, dup := s.index[x.Name]; dup {
			errs = append(errs, fmt.Errorf("extra field %q: already declared", x.Name))
			continue
		}
		s.index[x.Name] = len(s.fields)
		s.fields = append(s.fields, field{name: x.Name, kind: x.Kind, doc: x.Doc, slot: i})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("building rule schema: %w", err)
	}
	return s, nil
}

// Fields lists every field, record fields first, in declaration order.
func (s *Schema) Fields() []FieldInfo {
	out := make([]FieldInfo, len(s.fields))
	for i, f := range s.fields {
		out[i] = FieldInfo{f.name, f.kind, f.doc}
	}
	return out
}

// Handle returns the handle of an extra field for the Input setters.
func (s *Schema) Handle(name string) (Handle, bool) {
	i, ok := s.index[name]
	if !ok || i < s.extra {
		return Handle{}, false
	}
	return Handle{s.fields[i].slot}, true
}

func (s *Schema) lookup(name string) (*field, int, bool) {
	i, ok := s.index[name]
	if !ok {
		return nil, 0, false
	}
	return &s.fields[i], i, true
}

var (
	typeTime     = reflect.TypeFor[time.Time]()
	typeDuration = reflect.TypeFor[time.Duration]()
	typeAddr     = reflect.TypeFor[netip.Addr]()
	typeMAC      = reflect.TypeFor[flow.MAC]()
	typeAppender = reflect.TypeFor[encoding.TextAppender]()
)

func jsonName(f reflect.StructField) (name string, omit, skip bool) {
	tag, ok := f.Tag.Lookup("json")
	if tag == "-" {
		return "", false, true
	}
	name, opts, _ := strings.Cut(tag, ",")
	if !ok || name == "" {
		name = f.Name
	}
	return name, strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero"), false
}

// derive walks t by its JSON tags. A field is absent when it would be
// absent from the JSON record: behind a nil pointer, or zero with
// omitempty/omitzero. Time and IP zero values are absent too.
func (s *Schema) derive(t reflect.Type, prefix string, steps []step, errs *[]error) {
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, omit, skip := jsonName(sf)
		if skip {
			continue
		}
		st := append(slices.Clip(steps), step{off: sf.Offset})
		ft := sf.Type
		if sf.Anonymous && ft.Kind() == reflect.Struct {
			s.derive(ft, prefix, st, errs)
			continue
		}
		path := prefix + name
		if ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct && ft.Elem() != typeTime && ft.Elem() != typeAddr {
			st[len(st)-1].ptr = true
			s.derive(ft.Elem(), path+".", st, errs)
			continue
		}
		kind, leaf, nat := leafFor(ft, omit)
		if leaf == nil {
			if ft.Kind() == reflect.Struct {
				s.derive(ft, path+".", st, errs)
				continue
			}
			*errs = append(*errs, fmt.Errorf("record field %s: Go type %v has no rule type", path, ft))
			continue
		}
		s.index[path] = len(s.fields)
		s.fields = append(s.fields, field{name: path, kind: kind, steps: st, leaf: leaf, nat: nat})
	}
}

func leafFor(t reflect.Type, omit bool) (Kind, leafFn, native) {
	switch {
	case t == typeTime:
		return KindTimestamp, func(p unsafe.Pointer) (ref.Val, bool) {
			v := *(*time.Time)(p)
			return types.Timestamp{Time: v}, !v.IsZero()
		}, native{}
	case t == typeDuration:
		return KindDuration, func(p unsafe.Pointer) (ref.Val, bool) {
			v := *(*time.Duration)(p)
			return types.Duration{Duration: v}, !omit || v != 0
		}, native{}
	case t == typeAddr:
		return KindIP, func(p unsafe.Pointer) (ref.Val, bool) {
			v := *(*netip.Addr)(p)
			return ext.IP{Addr: v}, v.IsValid()
		}, native{addr: func(p unsafe.Pointer) netip.Addr { return *(*netip.Addr)(p) }}
	case t == typeMAC:
		return KindString, func(p unsafe.Pointer) (ref.Val, bool) {
			v := *(*flow.MAC)(p)
			if omit && v.IsZero() {
				return nil, false
			}
			var buf [17]byte
			b, _ := v.AppendText(buf[:0])
			return types.String(b), true
		}, native{mac: func(p unsafe.Pointer) flow.MAC { return *(*flow.MAC)(p) }, omit: omit}
	case t.Kind() != reflect.Struct && reflect.PointerTo(t).Implements(typeAppender):
		// Text types such as flow.TCPFlags are strings in rules, as in
		// the JSON record.
		zero := reflect.Zero(t)
		return KindString, func(p unsafe.Pointer) (ref.Val, bool) {
			v := reflect.NewAt(t, p)
			if omit && v.Elem().Equal(zero) {
				return nil, false
			}
			var buf [64]byte
			b, err := v.Interface().(encoding.TextAppender).AppendText(buf[:0])
			if err != nil {
				return nil, false
			}
			return types.String(b), true
		}, native{}
	}
	switch t.Kind() {
	case reflect.String:
		str := func(p unsafe.Pointer) string { return *(*string)(p) }
		return KindString, func(p unsafe.Pointer) (ref.Val, bool) {
			v := *(*string)(p)
			return types.String(v), !omit || v != ""
		}, native{str: str, omit: omit, ld: ldString}
	case reflect.Bool:
		b := func(p unsafe.Pointer) bool { return *(*bool)(p) }
		return KindBool, func(p unsafe.Pointer) (ref.Val, bool) {
			v := *(*bool)(p)
			return types.Bool(v), !omit || v
		}, native{bool: b, omit: omit, ld: ldBool}
	case reflect.Float64:
		return KindDouble, func(p unsafe.Pointer) (ref.Val, bool) {
			v := *(*float64)(p)
			return types.Double(v), !omit || v != 0
		}, native{}
	case reflect.Float32:
		return KindDouble, func(p unsafe.Pointer) (ref.Val, bool) {
			v := *(*float32)(p)
			return types.Double(v), !omit || v != 0
		}, native{}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		read := intReader(t.Kind())
		return KindInt, func(p unsafe.Pointer) (ref.Val, bool) {
			v := read(p)
			return types.Int(v), !omit || v != 0
		}, native{int: read, omit: omit, ld: intLoad(t.Kind())}
	case reflect.Slice:
		switch e := t.Elem(); e.Kind() {
		case reflect.String:
			return KindStringList, func(p unsafe.Pointer) (ref.Val, bool) {
				v := reflect.NewAt(t, p).Elem()
				if v.Len() == 0 && omit {
					return nil, false
				}
				out := make([]string, v.Len())
				for i := range out {
					out[i] = v.Index(i).String()
				}
				return types.NewStringList(types.DefaultTypeAdapter, out), true
			}, native{}
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			return KindIntList, func(p unsafe.Pointer) (ref.Val, bool) {
				v := reflect.NewAt(t, p).Elem()
				if v.Len() == 0 && omit {
					return nil, false
				}
				out := make([]int64, v.Len())
				for i := range out {
					if x := v.Index(i); x.CanInt() {
						out[i] = x.Int()
					} else {
						out[i] = int64(x.Uint())
					}
				}
				return types.NewDynamicList(types.DefaultTypeAdapter, out), true
			}, native{}
		}
	}
	return 0, nil, native{}
}

func intLoad(k reflect.Kind) loadKind {
	switch k {
	case reflect.Int8:
		return ldInt8
	case reflect.Int16:
		return ldInt16
	case reflect.Int32:
		return ldInt32
	case reflect.Int64, reflect.Int:
		return ldInt64
	case reflect.Uint8:
		return ldUint8
	case reflect.Uint16:
		return ldUint16
	case reflect.Uint32:
		return ldUint32
	default: // Uint64, Uint
		return ldUint64
	}
}

// loadInt reads an int or bool leaf (bools as 0 and 1).
func loadInt(ld loadKind, p unsafe.Pointer) int64 {
	switch ld {
	case ldBool:
		if *(*bool)(p) {
			return 1
		}
		return 0
	case ldInt8:
		return int64(*(*int8)(p))
	case ldInt16:
		return int64(*(*int16)(p))
	case ldInt32:
		return int64(*(*int32)(p))
	case ldInt64:
		return *(*int64)(p)
	case ldUint8:
		return int64(*(*uint8)(p))
	case ldUint16:
		return int64(*(*uint16)(p))
	case ldUint32:
		return int64(*(*uint32)(p))
	}
	return int64(*(*uint64)(p))
}

func intReader(k reflect.Kind) func(unsafe.Pointer) int64 {
	switch k {
	case reflect.Int8:
		return func(p unsafe.Pointer) int64 { return int64(*(*int8)(p)) }
	case reflect.Int16:
		return func(p unsafe.Pointer) int64 { return int64(*(*int16)(p)) }
	case reflect.Int32:
		return func(p unsafe.Pointer) int64 { return int64(*(*int32)(p)) }
	case reflect.Int64, reflect.Int:
		return func(p unsafe.Pointer) int64 { return *(*int64)(p) }
	case reflect.Uint8:
		return func(p unsafe.Pointer) int64 { return int64(*(*uint8)(p)) }
	case reflect.Uint16:
		return func(p unsafe.Pointer) int64 { return int64(*(*uint16)(p)) }
	case reflect.Uint32:
		return func(p unsafe.Pointer) int64 { return int64(*(*uint32)(p)) }
	default: // Uint64, Uint
		return func(p unsafe.Pointer) int64 { return int64(*(*uint64)(p)) }
	}
}

// Input is one flow as the engine sees it: the decoded record plus the
// values of extra fields. Reuse one Input per goroutine: Reset keeps the
// backing storage.
type Input struct {
	Record *flow.Record
	// Device, when set, is copied into alerts; otherwise alerts take the
	// record's device.
	Device *Device
	extra  []extraVal
}

type extraVal struct {
	set bool
	s   string
	i   int64
	f   float64
}

// Reset points the input at rec and clears every extra value.
func (in *Input) Reset(rec *flow.Record) {
	in.Record = rec
	in.Device = nil
	clear(in.extra)
}

func (in *Input) slot(h Handle) *extraVal {
	if h.slot >= len(in.extra) {
		in.extra = append(in.extra, make([]extraVal, h.slot+1-len(in.extra))...)
	}
	return &in.extra[h.slot]
}

// SetString sets a string extra field.
func (in *Input) SetString(h Handle, v string) { *in.slot(h) = extraVal{set: true, s: v} }

// SetInt sets an int extra field.
func (in *Input) SetInt(h Handle, v int64) { *in.slot(h) = extraVal{set: true, i: v} }

// SetDouble sets a double extra field.
func (in *Input) SetDouble(h Handle, v float64) { *in.slot(h) = extraVal{set: true, f: v} }

// SetBool sets a bool extra field.
func (in *Input) SetBool(h Handle, v bool) {
	x := extraVal{set: true}
	if v {
		x.i = 1
	}
	*in.slot(h) = x
}

// get returns the field's value; ok=false means absent.
func (f *field) get(in *Input) (ref.Val, bool) {
	if f.leaf == nil {
		if f.slot >= len(in.extra) || !in.extra[f.slot].set {
			return nil, false
		}
		x := &in.extra[f.slot]
		switch f.kind {
		case KindString:
			return types.String(x.s), true
		case KindInt:
			return types.Int(x.i), true
		case KindDouble:
			return types.Double(x.f), true
		default:
			return types.Bool(x.i != 0), true
		}
	}
	p := f.base(in)
	if p == nil {
		return nil, false
	}
	return f.leaf(p)
}

// base follows the steps to the leaf's address, nil behind a nil pointer.
func (f *field) base(in *Input) unsafe.Pointer {
	if in.Record == nil {
		return nil
	}
	p := unsafe.Pointer(in.Record)
	for _, s := range f.steps {
		p = unsafe.Add(p, s.off)
		if s.ptr {
			p = *(*unsafe.Pointer)(p)
			if p == nil {
				return nil
			}
		}
	}
	return p
}
