package rules

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/prometheus/client_golang/prometheus"
)

var jsonMarshal = json.Marshal

// Metrics are the rule engine's and reload watcher's Prometheus metrics.
type Metrics struct {
	matches   *prometheus.CounterVec
	alerts    *prometheus.CounterVec
	folded    *prometheus.CounterVec
	errors    *prometheus.CounterVec
	evictions *prometheus.CounterVec
	loaded    prometheus.Gauge
	// ReloadFailures counts rule reloads rejected because the new set was
	// invalid; LastReloadSuccessful is 1 after a good reload, 0 after a bad one.
	ReloadFailures       prometheus.Counter
	LastReloadSuccessful prometheus.Gauge
}

// NewMetrics creates the metrics and registers them on reg (if not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		matches:              prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeward_rules_matches_total", Help: "Flows that matched a rule (temporal rules: steps), by rule and mode."}, []string{"rule", "mode"}),
		alerts:               prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeward_rules_alerts_total", Help: "Alerts opened, by rule."}, []string{"rule"}),
		folded:               prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeward_rules_folded_total", Help: "Detections folded into an open alert by suppression, by rule."}, []string{"rule"}),
		errors:               prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeward_rules_eval_errors_total", Help: "Rule evaluations that failed (cost limit, runtime error), by rule."}, []string{"rule"}),
		evictions:            prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeward_rules_state_evictions_total", Help: "Groups evicted because a rule's state was full, by rule."}, []string{"rule"}),
		loaded:               prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgeward_rules_loaded", Help: "Rules in the running set."}),
		ReloadFailures:       prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_rules_reload_failures_total", Help: "Rule reloads rejected because the new set was invalid."}),
		LastReloadSuccessful: prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgeward_rules_last_reload_successful", Help: "1 if the last rule reload succeeded, else 0."}),
	}
	m.LastReloadSuccessful.Set(1)
	if reg != nil {
		reg.MustRegister(m.matches, m.alerts, m.folded, m.errors, m.evictions, m.loaded, m.ReloadFailures, m.LastReloadSuccessful)
	}
	return m
}

// ruleState is one rule's windows and open alerts.
type ruleState struct {
	rule       *Rule
	groups     map[string]*group
	open       map[string]*openAlert
	nextExpiry time.Time

	matches, alerts, folded, errors, evictions prometheus.Counter
}

// A group's windows are in flow time, and flows may arrive out of that
// order (a flow ending idle is exported a timeout after one ending with a
// FIN; sensors' clocks differ). A late flow counts with the flows within
// the window of it and of the group's newest flow; one older than the
// newest flow's window comes too late to count. So no window ever spans
// more than its length, whatever the arrival order, and flows in order
// give what they gave before.
type group struct {
	times  []time.Time           // event_count, value_sum: the flows in the window of the newest, in time order
	sums   []float64             // value_sum: the field's value of each of times
	values map[string]*time.Time // value_count: value -> its newest flow
	steps  []time.Time           // temporal: per step, newest (unordered) or chain start (ordered)
	last   time.Time             // the newest flow
}

// insertTime inserts t into the ordered times, after equal ones, and
// returns where.
func insertTime(times []time.Time, t time.Time) ([]time.Time, int) {
	i := len(times)
	for i > 0 && times[i-1].After(t) {
		i--
	}
	return slices.Insert(times, i, t), i
}

// inWindow returns the index of the first time within w before newest.
func inWindow(times []time.Time, newest time.Time, w time.Duration) int {
	i := 0
	for i < len(times) && newest.Sub(times[i]) > w {
		i++
	}
	return i
}

type openAlert struct {
	alert *Alert
	until time.Time
}

func newRuleState(r *Rule, m *Metrics) *ruleState {
	return &ruleState{
		rule: r, groups: map[string]*group{}, open: map[string]*openAlert{},
		matches: m.matches.WithLabelValues(r.ID, r.Mode), alerts: m.alerts.WithLabelValues(r.ID),
		folded: m.folded.WithLabelValues(r.ID), errors: m.errors.WithLabelValues(r.ID),
		evictions: m.evictions.WithLabelValues(r.ID),
	}
}

func (st *ruleState) group(e *Engine, key []byte, t time.Time) *group {
	g := st.groups[string(key)]
	if g == nil {
		if len(st.groups) >= e.cfg.MaxGroups {
			// Expired as the sweep sees it: by the newest flow time, not
			// by t, which may be a late flow's.
			w := st.rule.agg.window
			for k, old := range st.groups {
				if e.watermark.Sub(old.last) > w {
					delete(st.groups, k)
				}
			}
			evictOldest(st.groups, e.cfg.MaxGroups, func(g *group) time.Time { return g.last }, func(k string, _ *group) {
				delete(st.groups, k)
				e.count(st.evictions)
			})
		}
		g = &group{}
		st.groups[string(key)] = g
	}
	if t.After(g.last) {
		g.last = t
	}
	return g
}

// onMatch handles a flow that matched the rule.
func (st *ruleState) onMatch(e *Engine, in *Input, t time.Time, emit func(*Alert)) {
	r := st.rule
	e.count(st.matches)
	if r.agg == nil {
		st.fire(e, in, t, eventStart(in, t), 0, nil, emit)
		return
	}
	e.gbuf = e.appendKey(e.gbuf[:0], r.agg.groupBy)
	key := e.gbuf
	g := st.group(e, key, t)
	w := r.agg.window
	switch r.agg.typ {
	case "event_count":
		var at int
		g.times, at = insertTime(g.times, t)
		// The first gte consecutive flows around the new one that fit in
		// the window; in order, the last gte.
		n := r.agg.gte
		for i := max(at-n+1, 0); i <= at && i+n <= len(g.times); i++ {
			if g.times[i+n-1].Sub(g.times[i]) <= w {
				start := g.times[i]
				delete(st.groups, string(key))
				st.fire(e, in, t, start, n, key, emit)
				return
			}
		}
		// Fewer than gte flows fit in any window here, so the group holds
		// fewer than gte within the newest flow's window.
		i := inWindow(g.times, g.last, w)
		g.times = append(g.times[:0], g.times[i:]...)
	case "value_sum":
		v, ok := e.act.field(r.agg.field)
		if !ok {
			return
		}
		var x float64
		switch n := v.(type) {
		case types.Int:
			x = float64(n)
		case types.Double:
			x = float64(n)
		}
		var at int
		g.times, at = insertTime(g.times, t)
		g.sums = slices.Insert(g.sums, at, x)
		i := inWindow(g.times, g.last, w)
		g.times, g.sums = append(g.times[:0], g.times[i:]...), append(g.sums[:0], g.sums[i:]...)
		if len(g.times) > maxSumEntries {
			// Fold the oldest entry into the next: the sum stays exact,
			// the folded value leaves the window a little late. Expired
			// entries are dropped above first, so none is folded forward.
			g.sums[1] += g.sums[0]
			g.times, g.sums = g.times[1:], g.sums[1:]
		}
		sum := 0.0
		for _, y := range g.sums {
			sum += y
		}
		if r.agg.sumReached(sum) {
			start := g.times[0]
			delete(st.groups, string(key))
			st.fire(e, in, t, start, int(sum), key, emit)
		}
	case "value_count":
		vb, ok, native := e.set.schema.fields[r.agg.field].appendNative(e.vbuf[:0], e.act.in)
		if !native {
			var v ref.Val
			if v, ok = e.act.field(r.agg.field); ok {
				vb = appendValue(e.vbuf[:0], v)
			}
		}
		if !ok {
			return
		}
		e.vbuf = vb
		if g.values == nil {
			g.values = map[string]*time.Time{}
		}
		if seen := g.values[string(e.vbuf)]; seen != nil {
			if t.After(*seen) {
				*seen = t
			}
			return // no new value: the count cannot have reached the threshold
		}
		seen := t
		g.values[string(e.vbuf)] = &seen
		if len(g.values) < r.agg.gte {
			return
		}
		start := g.last
		for k, seen := range g.values {
			if g.last.Sub(*seen) > w {
				delete(g.values, k)
			} else if seen.Before(start) {
				start = *seen
			}
		}
		if n := len(g.values); n >= r.agg.gte {
			delete(st.groups, string(key))
			st.fire(e, in, t, start, n, key, emit)
		}
	}
}

// maxSumEntries bounds a value_sum group's entries.
const maxSumEntries = 1024

// sumReached reports whether a value_sum's sum meets the condition. The
// sum of a double field can fall between integers, so {gt: N} is sum > N,
// not the sum >= N+1 that it is for counts.
func (a *aggregate) sumReached(sum float64) bool {
	if a.gt {
		return sum > float64(a.gte-1)
	}
	return sum >= float64(a.gte)
}

// onStep handles a flow that matched rule base, which this temporal rule lists.
func (st *ruleState) onStep(e *Engine, in *Input, t time.Time, base int, emit func(*Alert)) {
	r := st.rule
	// A temporal rule has no match of its own: its exceptions apply to
	// the flows of its steps.
	if e.excepted(r) {
		return
	}
	e.count(st.matches)
	e.gbuf = e.appendKey(e.gbuf[:0], r.agg.groupBy)
	key := e.gbuf
	g := st.group(e, key, t)
	n := len(r.agg.rules)
	if g.steps == nil {
		g.steps = make([]time.Time, n)
	}
	w := r.agg.window
	fired := false
	start := t
	// Descending, so one flow cannot complete two consecutive steps.
	for k := n - 1; k >= 0; k-- {
		if r.agg.rules[k] != base {
			continue
		}
		if !r.agg.ordered {
			if t.After(g.steps[k]) {
				g.steps[k] = t
			}
			all := true
			start = g.last
			for _, s := range g.steps {
				if s.IsZero() || g.last.Sub(s) > w {
					all = false
					break
				}
				if s.Before(start) {
					start = s
				}
			}
			fired = fired || all
			continue
		}
		// A late flow is a step only after the chain's start.
		switch {
		case k == 0:
			if t.After(g.steps[0]) {
				g.steps[0] = t
			}
		case !g.steps[k-1].IsZero() && !t.Before(g.steps[k-1]) && t.Sub(g.steps[k-1]) <= w:
			g.steps[k] = g.steps[k-1]
			if k == n-1 {
				fired, start = true, g.steps[k]
			}
		}
	}
	if fired {
		delete(st.groups, string(key))
		st.fire(e, in, t, start, n, key, emit)
	}
}

func eventStart(in *Input, t time.Time) time.Time {
	if in.Record != nil && !in.Record.Start.IsZero() {
		return in.Record.Start
	}
	return t
}

// fire turns a detection into an alert, or folds it into the open one.
// key is the aggregate group's key (nil for a rule without aggregate).
func (st *ruleState) fire(e *Engine, in *Input, t, start time.Time, value int, key []byte, emit func(*Alert)) {
	r := st.rule
	if r.Mode == "shadow" {
		return
	}
	var groupBy []int
	if r.agg != nil {
		groupBy = r.agg.groupBy
	}
	if r.suppress == nil {
		k := string(key)
		if r.agg == nil && in.Record != nil {
			k = in.Record.ID + "\x00" + in.Record.CommunityID
		}
		e.count(st.alerts)
		emit(e.newAlert(r, in, k, e.groupValues(groupBy), start, t, value))
		return
	}
	skey, sfields := key, groupBy
	if len(r.suppress.key) > 0 {
		e.sbuf = e.appendKey(e.sbuf[:0], r.suppress.key)
		skey, sfields = e.sbuf, r.suppress.key
	}
	if o := st.open[string(skey)]; o != nil {
		if t.Before(o.until) {
			a := o.alert
			a.Count++
			if ms(t) > a.FindingInfo.LastSeenTime {
				a.FindingInfo.LastSeenTime, a.EndTime, a.Time = ms(t), ms(t), ms(t)
			}
			// A flow exported late (idle-ended after a FIN-ended one) can
			// start before the alert did: the finding then spans it too.
			// Its uid stays the one the Create alert was given.
			if ms(start) < a.FindingInfo.FirstSeenTime {
				a.FindingInfo.FirstSeenTime, a.StartTime = ms(start), ms(start)
			}
			if len(a.Evidences) < evidenceLimit && in.Record != nil {
				a.Evidences = append(a.Evidences, evidenceOf(in.Record))
			}
			e.count(st.folded)
			return
		}
		st.close(string(skey), o, emit)
	}
	if len(st.open) >= e.cfg.MaxGroups {
		st.closeExpired(e, t, emit)
		evictOldest(st.open, e.cfg.MaxGroups, func(o *openAlert) time.Time { return o.until }, func(k string, o *openAlert) {
			st.close(k, o, emit)
			e.count(st.evictions)
		})
	}
	a := e.newAlert(r, in, string(skey), e.groupValues(sfields), start, t, value)
	a.detach()
	until := t.Add(r.suppress.dur)
	st.open[string(skey)] = &openAlert{alert: a, until: until}
	if st.nextExpiry.IsZero() || until.Before(st.nextExpiry) {
		st.nextExpiry = until
	}
	e.scheduleSweep(until)
	e.count(st.alerts)
	c := *a
	c.Evidences = append([]Evidence(nil), a.Evidences...)
	emit(&c)
}

// evictOldest makes room in m, which holds max entries or more: it drops
// the entries with the earliest times (ties by key), an eighth of max at
// once so that a flood of new keys sorts the map once per max/8 keys, not
// on every one. Oldest first, not map order, so that a replay evicts and
// alerts the same way every time.
func evictOldest[V any](m map[string]V, max int, at func(V) time.Time, drop func(string, V)) {
	n := len(m) - max + 1
	if n <= 0 {
		return
	}
	n = min(len(m), n+max/8)
	type entry struct {
		key string
		at  time.Time
	}
	all := make([]entry, 0, len(m))
	for k, v := range m {
		all = append(all, entry{k, at(v)})
	}
	slices.SortFunc(all, func(a, b entry) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	for _, x := range all[:n] {
		drop(x.key, m[x.key])
	}
}

// close ends an open alert; if repeats were folded into it, its final
// state is emitted as an Update with the same finding uid.
func (st *ruleState) close(key string, o *openAlert, emit func(*Alert)) {
	delete(st.open, key)
	if o.alert.Count <= 1 {
		return
	}
	u := o.alert
	u.ActivityID, u.ActivityName = ActivityUpdate, "Update"
	u.TypeUID, u.TypeName = classUID*100+ActivityUpdate, "Detection Finding: Update"
	emit(u)
}

func (st *ruleState) closeExpired(e *Engine, now time.Time, emit func(*Alert)) {
	st.nextExpiry = time.Time{}
	var expired []string
	for k, o := range st.open {
		if !now.Before(o.until) {
			expired = append(expired, k)
			continue
		}
		if st.nextExpiry.IsZero() || o.until.Before(st.nextExpiry) {
			st.nextExpiry = o.until
		}
	}
	st.closeKeys(expired, emit)
	// A group counts by its own newest flow, and the flows of one group
	// can all arrive late (a host's idle-ended flows come idle_timeout
	// after their end), so the newest flow time of other groups, which
	// drives this sweep, says a group is done only lateness after its
	// window. Under MaxGroups, group drops expired ones sooner.
	if st.rule.agg != nil {
		for k, g := range st.groups {
			if now.Sub(g.last) > st.rule.agg.window+lateness {
				delete(st.groups, k)
			}
		}
	}
}

// lateness is how long after the newest flow time a group's flows may
// still arrive and count together: well above the sensor's default idle
// timeout (60 s), the lateness of an idle-ended flow's record.
const lateness = 10 * time.Minute

func (st *ruleState) closeAll(e *Engine, emit func(*Alert)) {
	st.closeKeys(slices.Collect(maps.Keys(st.open)), emit)
	st.nextExpiry = time.Time{}
}

// closeKeys closes the open alerts of keys in key order, so that the
// Update alerts of one sweep or flush come out in the same order on every
// run (map order would shuffle them).
func (st *ruleState) closeKeys(keys []string, emit func(*Alert)) {
	slices.Sort(keys)
	for _, k := range keys {
		st.close(k, st.open[k], emit)
	}
}
