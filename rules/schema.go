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
	// Record fields: from the record, follow the pointer at each of hops
	// (an offset into the struct the previous one points to), then read
	// the leaf at off.
	hops []uintptr
	off  uintptr
	leaf leafFn
	// nat reads the leaf without boxing, for the guard index, the native
	// checks and state keys.
	nat native
	// Extra fields: slot in Input.extra.
	slot int
}

// native says how to read a leaf's Go value without boxing it: ld is its
// Go type (ldNone: only through leaf); omit: the zero value means absent
// (omitempty, a zero time or IP), as leaf says.
type native struct {
	ld   loadKind
	omit bool
}

// loadKind is the Go type of a leaf the native readers load.
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
	ldFloat32
	ldFloat64
	ldTime
	ldAddr
	ldMAC
)

// isInt reports whether loadInt reads the leaf: an integer or a bool.
func (ld loadKind) isInt() bool { return ld >= ldBool && ld <= ldUint64 }

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
	s.derive(reflect.TypeFor[flow.Record](), "", nil, 0, &errs)
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

// derive walks t, reached from the record through the pointers at hops
// and then at offset base, by its JSON tags. A field is absent when it
// would be absent from the JSON record: behind a nil pointer, or zero
// with omitempty/omitzero. Time and IP zero values are absent too.
func (s *Schema) derive(t reflect.Type, prefix string, hops []uintptr, base uintptr, errs *[]error) {
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, omit, skip := jsonName(sf)
		if skip {
			continue
		}
		off := base + sf.Offset
		ft := sf.Type
		if sf.Anonymous && ft.Kind() == reflect.Struct {
			s.derive(ft, prefix, hops, off, errs)
			continue
		}
		path := prefix + name
		if ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct && ft.Elem() != typeTime && ft.Elem() != typeAddr {
			s.derive(ft.Elem(), path+".", append(slices.Clip(hops), off), 0, errs)
			continue
		}
		kind, leaf, nat := leafFor(ft, omit)
		if leaf == nil {
			if ft.Kind() == reflect.Struct {
				s.derive(ft, path+".", hops, off, errs)
				continue
			}
			*errs = append(*errs, fmt.Errorf("record field %s: Go type %v has no rule type", path, ft))
			continue
		}
		s.index[path] = len(s.fields)
		s.fields = append(s.fields, field{name: path, kind: kind, hops: hops, off: off, leaf: leaf, nat: nat})
	}
}

func leafFor(t reflect.Type, omit bool) (Kind, leafFn, native) {
	switch {
	case t == typeTime:
		return KindTimestamp, func(p unsafe.Pointer) (ref.Val, bool) {
			v := *(*time.Time)(p)
			return types.Timestamp{Time: v}, !v.IsZero()
		}, native{ld: ldTime, omit: true}
	case t == typeDuration:
		return KindDuration, func(p unsafe.Pointer) (ref.Val, bool) {
			v := *(*time.Duration)(p)
			return types.Duration{Duration: v}, !omit || v != 0
		}, native{omit: omit}
	case t == typeAddr:
		return KindIP, func(p unsafe.Pointer) (ref.Val, bool) {
			v := *(*netip.Addr)(p)
			return ext.IP{Addr: v}, v.IsValid()
		}, native{ld: ldAddr, omit: true}
	case t == typeMAC:
		return KindString, func(p unsafe.Pointer) (ref.Val, bool) {
			v := *(*flow.MAC)(p)
			if omit && v.IsZero() {
				return nil, false
			}
			var buf [17]byte
			b, _ := v.AppendText(buf[:0])
			return types.String(b), true
		}, native{ld: ldMAC, omit: omit}
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
		}, native{omit: omit}
	}
	switch t.Kind() {
	case reflect.String:
		return KindString, func(p unsafe.Pointer) (ref.Val, bool) {
			v := *(*string)(p)
			return types.String(v), !omit || v != ""
		}, native{ld: ldString, omit: omit}
	case reflect.Bool:
		return KindBool, func(p unsafe.Pointer) (ref.Val, bool) {
			v := *(*bool)(p)
			return types.Bool(v), !omit || v
		}, native{ld: ldBool, omit: omit}
	case reflect.Float64:
		return KindDouble, func(p unsafe.Pointer) (ref.Val, bool) {
			v := *(*float64)(p)
			return types.Double(v), !omit || v != 0
		}, native{ld: ldFloat64, omit: omit}
	case reflect.Float32:
		return KindDouble, func(p unsafe.Pointer) (ref.Val, bool) {
			v := *(*float32)(p)
			return types.Double(v), !omit || v != 0
		}, native{ld: ldFloat32, omit: omit}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		ld := intLoad(t.Kind())
		return KindInt, func(p unsafe.Pointer) (ref.Val, bool) {
			v := loadInt(ld, p)
			return types.Int(v), !omit || v != 0
		}, native{ld: ld, omit: omit}
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
			}, native{omit: omit}
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
			}, native{omit: omit}
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

// Native readers: a field's Go value without boxing it.

// keyable reports whether the field can be read natively as a guard key.
func (f *field) keyable() bool {
	if f.leaf == nil {
		return f.kind == KindString || f.kind == KindInt || f.kind == KindBool
	}
	return f.nat.ld == ldString || f.nat.ld.isInt()
}

// strValue reads a string field natively; ok=false when absent.
func (f *field) strValue(in *Input) (string, bool) {
	switch {
	case f.leaf == nil && f.kind == KindString:
		return f.extraStr(in)
	case f.nat.ld == ldString:
		return f.leafStr(f.base(in))
	}
	return "", false
}

// intValue reads a keyable int or bool field natively (a bool as 0 or
// 1); ok=false when absent.
func (f *field) intValue(in *Input) (int64, bool) {
	switch {
	case f.leaf == nil:
		return f.extraInt(in)
	case f.nat.ld.isInt():
		return f.leafInt(f.base(in))
	}
	return 0, false
}

// The halves of strValue and intValue, small enough to inline where a
// field's kind and source are known beforehand (the guard index).

// extraStr reads an extra string field.
func (f *field) extraStr(in *Input) (string, bool) {
	if x := in.extraAt(f.slot); x != nil {
		return x.s, true
	}
	return "", false
}

// extraInt reads an extra int or bool field.
func (f *field) extraInt(in *Input) (int64, bool) {
	x := in.extraAt(f.slot)
	switch {
	case x == nil:
		return 0, false
	case f.kind == KindBool && x.i != 0:
		return 1, true
	}
	return x.i, true
}

// leafStr reads a string leaf at p (nil: behind a nil pointer).
func (f *field) leafStr(p unsafe.Pointer) (string, bool) {
	if p == nil {
		return "", false
	}
	s := *(*string)(p)
	return s, !f.nat.omit || s != ""
}

// leafInt reads an int or bool leaf at p (nil: behind a nil pointer).
func (f *field) leafInt(p unsafe.Pointer) (int64, bool) {
	if p == nil {
		return 0, false
	}
	x := loadInt(f.nat.ld, p)
	return x, !f.nat.omit || x != 0
}

// doubleValue reads a double field natively; ok=false when absent.
func (f *field) doubleValue(in *Input) (float64, bool) {
	if f.leaf == nil {
		if x := in.extraAt(f.slot); x != nil && f.kind == KindDouble {
			return x.f, true
		}
		return 0, false
	}
	p := f.base(in)
	if p == nil {
		return 0, false
	}
	var x float64
	switch f.nat.ld {
	case ldFloat64:
		x = *(*float64)(p)
	case ldFloat32:
		x = float64(*(*float32)(p))
	default:
		return 0, false
	}
	return x, !f.nat.omit || x != 0
}

// timeValue reads a timestamp field natively; ok=false when absent.
func (f *field) timeValue(in *Input) (time.Time, bool) {
	if f.nat.ld != ldTime {
		return time.Time{}, false
	}
	p := f.base(in)
	if p == nil {
		return time.Time{}, false
	}
	t := *(*time.Time)(p)
	return t, !t.IsZero()
}

// addrValue reads an IP field natively; ok=false when absent.
func (f *field) addrValue(in *Input) (netip.Addr, bool) {
	if f.nat.ld != ldAddr {
		return netip.Addr{}, false
	}
	p := f.base(in)
	if p == nil {
		return netip.Addr{}, false
	}
	a := *(*netip.Addr)(p)
	return a, a.IsValid()
}

// macValue reads a MAC field natively; ok=false when absent.
func (f *field) macValue(in *Input) (flow.MAC, bool) {
	if f.nat.ld != ldMAC {
		return flow.MAC{}, false
	}
	p := f.base(in)
	if p == nil {
		return flow.MAC{}, false
	}
	m := *(*flow.MAC)(p)
	return m, !f.nat.omit || !m.IsZero()
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
	// flows counts Resets. A value set for this flow is stamped flows+1
	// (zero, a slot never set, is never current), so Reset moves on
	// instead of clearing every slot.
	flows uint64
	// trues has the bit of each extra slot set to a true bool (or a
	// non-zero int) for this flow, so that the guard index finds the
	// flags that admit a flow without reading every flag. A bit stays
	// until Reset: a flag set true and then false is only admitted.
	trues bitset
}

type extraVal struct {
	stamp uint64 // the value is this flow's when Input.flows+1
	s     string
	i     int64
	f     float64
}

// Reset points the input at rec and clears every extra value.
func (in *Input) Reset(rec *flow.Record) {
	in.Record = rec
	in.Device = nil
	in.flows++
	clear(in.trues)
}

// slot returns h's slot, for a value of this flow.
func (in *Input) slot(h Handle) *extraVal {
	if h.slot >= len(in.extra) {
		in.extra = append(in.extra, make([]extraVal, h.slot+1-len(in.extra))...)
		in.trues = append(in.trues, make(bitset, h.slot/64+1-len(in.trues))...)
	}
	return &in.extra[h.slot]
}

// extraAt returns the extra value in slot, or nil when it is not set.
func (in *Input) extraAt(slot int) *extraVal {
	if slot < len(in.extra) && in.extra[slot].stamp == in.flows+1 {
		return &in.extra[slot]
	}
	return nil
}

// SetString sets a string extra field.
func (in *Input) SetString(h Handle, v string) { *in.slot(h) = extraVal{stamp: in.flows + 1, s: v} }

// SetInt sets an int extra field.
func (in *Input) SetInt(h Handle, v int64) {
	*in.slot(h) = extraVal{stamp: in.flows + 1, i: v}
	if v != 0 {
		in.trues.set(h.slot)
	}
}

// SetDouble sets a double extra field.
func (in *Input) SetDouble(h Handle, v float64) { *in.slot(h) = extraVal{stamp: in.flows + 1, f: v} }

// SetBool sets a bool extra field.
func (in *Input) SetBool(h Handle, v bool) {
	x := in.slot(h)
	*x = extraVal{stamp: in.flows + 1}
	if v {
		x.i = 1
		in.trues.set(h.slot)
	}
}

// get returns the field's value; ok=false means absent.
func (f *field) get(in *Input) (ref.Val, bool) {
	if f.leaf == nil {
		x := in.extraAt(f.slot)
		if x == nil {
			return nil, false
		}
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

// base follows the hops to the leaf's address, nil behind a nil pointer.
func (f *field) base(in *Input) unsafe.Pointer {
	p := unsafe.Pointer(in.Record)
	if p == nil {
		return nil
	}
	for _, h := range f.hops {
		p = *(*unsafe.Pointer)(unsafe.Add(p, h))
		if p == nil {
			return nil
		}
	}
	return unsafe.Add(p, f.off)
}
