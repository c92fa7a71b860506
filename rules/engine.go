package rules

import (
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeward/edgeward/flow"
)

// DefaultMaxGroups bounds the groups (aggregate windows and open
// suppressed alerts) one rule keeps. When full, expired groups are dropped
// first, then the least recently seen (open alerts: the first to expire),
// an eighth of the limit at once, counted in
// edgeward_rules_state_evictions_total; an evicted open alert is closed
// (its update emitted), never dropped.
const DefaultMaxGroups = 65536

// EngineConfig configures an Engine.
type EngineConfig struct {
	Logger    *slog.Logger          // nil: discard
	Registry  prometheus.Registerer // nil: metrics are kept but not registered
	MaxGroups int                   // per rule; 0: DefaultMaxGroups
}

// Engine evaluates flows against a rule Set and keeps the windows and
// open alerts. Evaluate and Flush must be called from one goroutine;
// Swap may be called from any.
type Engine struct {
	cfg     EngineConfig
	log     *slog.Logger
	m       *Metrics
	set     *Set
	pending atomic.Pointer[Set]
	act     activation
	cand    bitset
	hits    bitset // guard slots, scratch for candidates
	matched []int
	states  []*ruleState // per rule of set
	// Scratch buffers for group, suppression and value keys.
	gbuf, sbuf, vbuf []byte
	// watermark is the latest event time seen; suppressions that end
	// before it are closed.
	watermark time.Time
	nextSweep time.Time
	replay    bool // SetReplay
}

// SetReplay marks the flows evaluated from now on as replayed (or not):
// flows evaluated again only to rebuild state, as a pipeline instance does
// after taking over a partition, whose alerts are dropped. They change the
// state as any flow does but are not counted in the rule metrics, which
// the instance that first evaluated them counted already.
func (e *Engine) SetReplay(on bool) { e.replay = on }

// count increments a rule metric unless the flow is replayed.
func (e *Engine) count(c prometheus.Counter) {
	if !e.replay {
		c.Inc()
	}
}

// NewEngine returns an engine running set.
func NewEngine(set *Set, cfg EngineConfig) *Engine {
	if cfg.MaxGroups <= 0 {
		cfg.MaxGroups = DefaultMaxGroups
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg, log: log.With("component", "rules"), m: NewMetrics(cfg.Registry)}
	e.install(set, nil)
	return e
}

// Metrics returns the engine's metrics, e.g. for the reload watcher.
func (e *Engine) Metrics() *Metrics { return e.m }

// Set returns the rule set in use.
func (e *Engine) Set() *Set { return e.set }

// Swap replaces the rule set; it takes effect at the next Evaluate. State
// of rules whose id and definition are unchanged survives.
func (e *Engine) Swap(set *Set) { e.pending.Store(set) }

func (e *Engine) install(set *Set, emit func(*Alert)) {
	old := map[string]*ruleState{}
	for i, st := range e.states {
		r := e.set.rules[i]
		old[r.ID] = st
	}
	states := make([]*ruleState, len(set.rules))
	for i, r := range set.rules {
		if st, ok := old[r.ID]; ok && st.rule.fingerprint == r.fingerprint {
			st.rule = r
			states[i] = st
			delete(old, r.ID)
			continue
		}
		states[i] = newRuleState(r, e.m)
	}
	// Open alerts of removed or changed rules are closed, not lost.
	if emit != nil {
		for _, st := range old {
			st.closeAll(e, emit)
		}
	}
	e.set, e.states = set, states
	e.act = activation{set: set, vals: make([]ref.Val, len(set.schema.fields)), state: make([]uint8, len(set.schema.fields))}
	e.cand = newBitset(len(set.rules))
	e.hits = newBitset(set.index.nslots)
	e.m.loaded.Set(float64(len(set.rules)))
}

// activation resolves field and list names for CEL, caching each field's
// value for the flow so that rules sharing a field box it once.
type activation struct {
	set   *Set
	in    *Input
	vals  []ref.Val
	state []uint8 // 0 unresolved, 1 present, 2 absent
	dirty bool    // state has a field resolved: reset clears it
}

func (a *activation) ResolveName(name string) (any, bool) {
	if i, ok := a.set.schema.index[name]; ok {
		return a.field(i)
	}
	if l, ok := a.set.listVals[name]; ok {
		return l, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

func (a *activation) field(i int) (ref.Val, bool) {
	switch a.state[i] {
	case 1:
		return a.vals[i], true
	case 2:
		return nil, false
	}
	v, ok := a.set.schema.fields[i].get(a.in)
	if ok {
		a.vals[i], a.state[i] = v, 1
	} else {
		a.state[i] = 2
	}
	a.dirty = true
	return v, ok
}

// reset starts a flow; most flows resolve no field (native checks read
// them unboxed), and then there is nothing to clear.
func (a *activation) reset(in *Input) {
	a.in = in
	if a.dirty {
		clear(a.state)
		a.dirty = false
	}
}

// eventTime is when a flow happened for windows: its end, else its start.
func eventTime(rec *flow.Record) time.Time {
	if rec == nil {
		return time.Time{}
	}
	if !rec.End.IsZero() {
		return rec.End
	}
	return rec.Start
}

// Evaluate runs every candidate rule on one flow and calls emit for each
// alert. All matching rules fire.
func (e *Engine) Evaluate(in *Input, emit func(*Alert)) {
	if s := e.pending.Swap(nil); s != nil {
		e.install(s, emit)
	}
	set := e.set
	e.act.reset(in)
	set.index.candidates(in, e.hits, e.cand)
	e.matched = e.matched[:0]
	e.cand.each(func(i int) {
		if e.match(set.rules[i]) {
			e.matched = append(e.matched, i)
		}
	})
	t := eventTime(in.Record)
	if t.After(e.watermark) {
		e.watermark = t
	}
	for _, i := range e.matched {
		e.states[i].onMatch(e, in, t, emit)
	}
	// Temporal rules fed by this flow's matches.
	for _, i := range e.matched {
		for _, p := range set.rules[i].parents {
			e.states[p].onStep(e, in, t, i, emit)
		}
	}
	if !e.nextSweep.IsZero() && !e.watermark.Before(e.nextSweep) {
		e.sweep(emit)
	}
}

// match evaluates the rule's condition and exceptions.
func (e *Engine) match(r *Rule) bool {
	if r.prg == nil {
		return false
	}
	switch matchNative(r.native, e.act.in) {
	case triFalse:
		return false
	case triErr:
		e.nativeError(r)
		return false
	}
	if r.cel {
		for _, f := range r.required {
			if _, ok := e.act.field(f); !ok {
				return false
			}
		}
		out, _, err := r.prg.Eval(&e.act)
		if err != nil {
			e.count(e.states[r.idx].errors)
			return false
		}
		if out != types.True {
			return false
		}
	}
	return !e.excepted(r)
}

// nativeError counts an evaluation error for a rule whose native checks
// failed with one (none false) where CEL would count it: when the rule's
// required fields are present (else CEL is not run) and, if some of the
// condition is left to CEL, when CEL's result is an error too (another
// conjunct false makes it false). Errors are rare, so CEL's cost is paid
// only here.
func (e *Engine) nativeError(r *Rule) {
	for _, f := range r.required {
		if _, ok := e.act.field(f); !ok {
			return
		}
	}
	if r.cel {
		if _, _, err := r.prg.Eval(&e.act); err == nil {
			return
		}
	}
	e.count(e.states[r.idx].errors)
}

// excepted reports whether one of the rule's exceptions covers the flow.
func (e *Engine) excepted(r *Rule) bool {
	for i := range r.exceptions {
		if e.exceptedBy(&r.exceptions[i]) {
			return true
		}
	}
	return false
}

func (e *Engine) exceptedBy(ex *exception) bool {
	for _, row := range ex.values {
		all := true
		for j, f := range ex.fields {
			v, ok := e.act.field(f)
			if !ok || !compare(ex.comps[j], v, row[j]) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func compare(comp string, v, want ref.Val) bool {
	switch comp {
	case "=":
		return v.Equal(want) == types.True
	case "!=":
		return v.Equal(want) != types.True
	case "in":
		l, ok := want.(interface{ Contains(ref.Val) ref.Val })
		return ok && l.Contains(v) == types.True
	}
	s, ok1 := v.(types.String)
	w, ok2 := want.(types.String)
	if !ok1 || !ok2 {
		return false
	}
	switch comp {
	case "startswith":
		return strings.HasPrefix(string(s), string(w))
	case "endswith":
		return strings.HasSuffix(string(s), string(w))
	case "contains":
		return strings.Contains(string(s), string(w))
	}
	return false
}

// Flush closes every open alert, emitting the updates of those that
// folded repeats; call it at shutdown or the end of a capture.
func (e *Engine) Flush(emit func(*Alert)) {
	for _, st := range e.states {
		st.closeAll(e, emit)
	}
	e.nextSweep = time.Time{}
}

func (e *Engine) sweep(emit func(*Alert)) {
	e.nextSweep = time.Time{}
	for _, st := range e.states {
		st.closeExpired(e, e.watermark, emit)
		e.scheduleSweep(st.nextExpiry)
	}
}

func (e *Engine) scheduleSweep(t time.Time) {
	if !t.IsZero() && (e.nextSweep.IsZero() || t.Before(e.nextSweep)) {
		e.nextSweep = t
	}
}

// appendKey appends the values of fields to buf as a state key: values
// separated by NUL, an absent field as "\x01absent". It does not
// allocate for string, int and IP fields, so looking a group up costs no
// garbage.
func (e *Engine) appendKey(buf []byte, fields []int) []byte {
	for i, f := range fields {
		if i > 0 {
			buf = append(buf, 0)
		}
		if b, ok, native := e.set.schema.fields[f].appendNative(buf, e.act.in); native {
			if !ok {
				b = append(b, "\x01absent"...)
			}
			buf = b
			continue
		}
		v, ok := e.act.field(f)
		if !ok {
			buf = append(buf, "\x01absent"...)
			continue
		}
		buf = appendValue(buf, v)
	}
	return buf
}

// appendNative appends the field's value as appendValue would, reading it
// without boxing; native=false when the field has no native reader (then
// the caller boxes it), ok=false when it is absent.
func (f *field) appendNative(buf []byte, in *Input) (out []byte, ok, native bool) {
	switch {
	case f.kind == KindString && (f.leaf == nil || f.nat.ld == ldString):
		s, ok := f.strValue(in)
		return appendKeyString(buf, s), ok, true
	case f.kind == KindInt && (f.leaf == nil || f.nat.ld.isInt()):
		x, ok := f.intValue(in)
		return strconv.AppendInt(buf, x, 10), ok, true
	case f.nat.ld == ldAddr:
		a, ok := f.addrValue(in)
		if !ok {
			return buf, false, true
		}
		return a.AppendTo(buf), true, true
	}
	return buf, false, false
}

// appendValue appends a field value's text: strings as they are, ints in
// decimal, IPs in their usual form, anything else as toString renders its
// native value (NULs removed).
func appendValue(buf []byte, v ref.Val) []byte {
	switch x := v.(type) {
	case types.String:
		return appendKeyString(buf, string(x))
	case types.Int:
		return strconv.AppendInt(buf, int64(x), 10)
	case ext.IP:
		return x.Addr.AppendTo(buf)
	}
	return append(buf, strings.TrimSpace(strings.ReplaceAll(toString(nativeValue(v)), "\x00", ""))...)
}

// appendKeyString appends a string value of a group key. Byte 0 (between
// a key's values) and byte 1 (which starts the absent marker) are escaped,
// so that no value can pass for two (SNIs and DHCP hostnames are the
// client's bytes) nor for an absent one. A value without them, every
// ordinary one, is appended as it is and keeps its finding uids.
func appendKeyString(buf []byte, s string) []byte {
	if strings.IndexByte(s, 0) < 0 && strings.IndexByte(s, 1) < 0 {
		return append(buf, s...)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 2 {
			buf = append(buf, 1, '0'+c)
		} else {
			buf = append(buf, c)
		}
	}
	return buf
}

// groupValues is the values of fields by name, for an alert's group.
func (e *Engine) groupValues(fields []int) map[string]any {
	if len(fields) == 0 {
		return nil
	}
	g := make(map[string]any, len(fields))
	for _, f := range fields {
		name := e.set.schema.fields[f].name
		if v, ok := e.act.field(f); ok {
			g[name] = jsonValue(v)
		} else {
			g[name] = nil
		}
	}
	return g
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	}
	b, _ := jsonMarshal(v)
	return string(b)
}

// nativeValue converts a field value for JSON.
func nativeValue(v ref.Val) any {
	switch x := v.(type) {
	case types.String:
		return string(x)
	case types.Int:
		return int64(x)
	case types.Double:
		return float64(x)
	case types.Bool:
		return bool(x)
	case types.Timestamp:
		return x.Time.UTC().Format(flow.TimeLayout)
	case types.Duration:
		return x.Duration.String()
	}
	if s, ok := v.Value().(interface{ String() string }); ok {
		return s.String()
	}
	return v.Value()
}

// newAlert builds the Create alert for a detection.
func (e *Engine) newAlert(r *Rule, in *Input, groupKey string, group map[string]any, start, t time.Time, value int) *Alert {
	a := &Alert{
		ActivityID: ActivityCreate, ActivityName: "Create",
		CategoryUID: categoryUID, CategoryName: "Findings",
		ClassUID: classUID, ClassName: "Detection Finding",
		TypeUID: classUID*100 + ActivityCreate, TypeName: "Detection Finding: Create",
		SeverityID: severityIDs[r.Severity], Severity: severityNames[r.Severity],
		StatusID: statusNew, Status: "New", IsAlert: r.Mode == "alert",
		Time: ms(t), StartTime: ms(start), EndTime: ms(t), Count: 1,
		Message:  r.Title,
		Metadata: Metadata{Version: ocsfVersion, Product: Product{Name: "edgeward", VendorName: "edgeward"}},
		FindingInfo: FindingInfo{
			UID:   findingUID(r.ID, groupKey, start),
			Title: r.Title, Desc: r.Description,
			Types:         []string{r.Category},
			Analytic:      Analytic{UID: r.ID, Name: r.Title, TypeID: analyticTypeRule, Type: "Rule"},
			FirstSeenTime: ms(start), LastSeenTime: ms(t),
			Attacks: attacks(r.Tags),
		},
		Unmapped: AlertDetails{Mode: r.Mode, Group: group, Value: value, Tags: r.Tags},
	}
	if in != nil {
		if in.Record != nil {
			a.Evidences = []Evidence{evidenceOf(in.Record)}
		}
		if in.Device != nil {
			d := *in.Device
			a.Device = &d
		} else if in.Record != nil && in.Record.Device != nil {
			a.Device = deviceOf(in.Record.Device)
		}
	}
	if len(r.output) > 0 {
		a.Unmapped.Output = map[string]any{}
		for _, f := range r.output {
			if v, ok := e.act.field(f); ok {
				a.Unmapped.Output[e.set.schema.fields[f].name] = jsonValue(v)
			}
		}
	}
	return a
}

// attacks maps attack.tNNNN[.NNN] tags to ATT&CK techniques. OCSF has a
// sub_technique beside the technique: T1021.001 is not a technique uid.
func attacks(tags []string) []Attack {
	var out []Attack
	for _, t := range tags {
		id, ok := strings.CutPrefix(strings.ToLower(t), "attack.t")
		if !ok || id == "" || id[0] < '0' || id[0] > '9' {
			continue
		}
		id = "T" + strings.ToUpper(id)
		a := Attack{Technique: Technique{UID: id}}
		if base, _, ok := strings.Cut(id, "."); ok {
			a.Technique.UID, a.SubTechnique = base, &Technique{UID: id}
		}
		out = append(out, a)
	}
	return out
}
