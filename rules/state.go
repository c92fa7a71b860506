package rules

import (
	"encoding/json"
	"time"

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
		matches:              prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeward_rules_matches_total", Help: "Flows (or aggregate firings) that matched a rule, by rule and mode."}, []string{"rule", "mode"}),
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

type group struct {
	times  []time.Time          // event_count: the last gte event times
	values map[string]time.Time // value_count: value -> last seen
	steps  []time.Time          // temporal: per step, last seen (unordered) or chain start (ordered)
	last   time.Time
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

func (st *ruleState) group(e *Engine, key string, t time.Time) *group {
	g := st.groups[key]
	if g == nil {
		if len(st.groups) >= e.cfg.MaxGroups {
			w := st.rule.agg.window
			for k, old := range st.groups {
				if t.Sub(old.last) > w {
					delete(st.groups, k)
				}
			}
			for k := range st.groups {
				if len(st.groups) < e.cfg.MaxGroups {
					break
				}
				delete(st.groups, k)
				st.evictions.Inc()
			}
		}
		g = &group{}
		st.groups[key] = g
	}
	g.last = t
	return g
}

// onMatch handles a flow that matched the rule.
func (st *ruleState) onMatch(e *Engine, in *Input, t time.Time, emit func(*Alert)) {
	r := st.rule
	if r.agg == nil {
		st.fire(e, in, t, eventStart(in, t), 0, "", nil, emit)
		return
	}
	key, gv := e.groupKey(r.agg.groupBy)
	g := st.group(e, key, t)
	w := r.agg.window
	switch r.agg.typ {
	case "event_count":
		g.times = append(g.times, t)
		i := 0
		for i < len(g.times) && t.Sub(g.times[i]) > w {
			i++
		}
		if over := len(g.times) - i - r.agg.gte; over > 0 {
			i += over
		}
		g.times = append(g.times[:0], g.times[i:]...)
		if len(g.times) >= r.agg.gte {
			start, n := g.times[0], len(g.times)
			delete(st.groups, key)
			st.fire(e, in, t, start, n, key, gv, emit)
		}
	case "value_count":
		v, ok := e.act.field(r.agg.field)
		if !ok {
			return
		}
		if g.values == nil {
			g.values = map[string]time.Time{}
		}
		g.values[toString(nativeValue(v))] = t
		if len(g.values) < r.agg.gte {
			return
		}
		start := t
		for k, seen := range g.values {
			if t.Sub(seen) > w {
				delete(g.values, k)
			} else if seen.Before(start) {
				start = seen
			}
		}
		if n := len(g.values); n >= r.agg.gte {
			delete(st.groups, key)
			st.fire(e, in, t, start, n, key, gv, emit)
		}
	}
}

// onStep handles a flow that matched rule base, which this temporal rule lists.
func (st *ruleState) onStep(e *Engine, in *Input, t time.Time, base int, emit func(*Alert)) {
	r := st.rule
	st.matches.Inc()
	key, gv := e.groupKey(r.agg.groupBy)
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
			g.steps[k] = t
			all := true
			start = t
			for _, s := range g.steps {
				if s.IsZero() || t.Sub(s) > w {
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
		switch {
		case k == 0:
			g.steps[0] = t
		case !g.steps[k-1].IsZero() && t.Sub(g.steps[k-1]) <= w:
			g.steps[k] = g.steps[k-1]
			if k == n-1 {
				fired, start = true, g.steps[k]
			}
		}
	}
	if fired {
		delete(st.groups, key)
		st.fire(e, in, t, start, n, key, gv, emit)
	}
}

func eventStart(in *Input, t time.Time) time.Time {
	if in.Record != nil && !in.Record.Start.IsZero() {
		return in.Record.Start
	}
	return t
}

// fire turns a detection into an alert, or folds it into the open one.
func (st *ruleState) fire(e *Engine, in *Input, t, start time.Time, value int, key string, group map[string]any, emit func(*Alert)) {
	r := st.rule
	if r.agg == nil {
		st.matches.Inc()
	}
	if r.Mode == "shadow" {
		return
	}
	if r.suppress == nil {
		if key == "" && in.Record != nil {
			key = in.Record.ID + "\x00" + in.Record.CommunityID
		}
		st.alerts.Inc()
		emit(e.newAlert(r, in, key, group, start, t, value))
		return
	}
	skey, sgroup := e.groupKey(r.suppress.key)
	if len(r.suppress.key) == 0 {
		skey, sgroup = key, group
	}
	if o := st.open[skey]; o != nil {
		if t.Before(o.until) {
			a := o.alert
			a.Count++
			if ms(t) > a.FindingInfo.LastSeenTime {
				a.FindingInfo.LastSeenTime, a.EndTime, a.Time = ms(t), ms(t), ms(t)
			}
			if len(a.Evidences) < evidenceLimit && in.Record != nil {
				a.Evidences = append(a.Evidences, evidenceOf(in.Record))
			}
			st.folded.Inc()
			return
		}
		st.close(skey, o, emit)
	}
	if len(st.open) >= e.cfg.MaxGroups {
		st.closeExpired(e, t, emit)
		for k, o := range st.open {
			if len(st.open) < e.cfg.MaxGroups {
				break
			}
			st.close(k, o, emit)
			st.evictions.Inc()
		}
	}
	a := e.newAlert(r, in, skey, sgroup, start, t, value)
	until := t.Add(r.suppress.dur)
	st.open[skey] = &openAlert{alert: a, until: until}
	if st.nextExpiry.IsZero() || until.Before(st.nextExpiry) {
		st.nextExpiry = until
	}
	e.scheduleSweep(until)
	st.alerts.Inc()
	c := *a
	c.Evidences = append([]Evidence(nil), a.Evidences...)
	emit(&c)
}

// close ends an open alert; if repeats were folded into it, its final
// state is emitted as an Update with the same finding uid.
func (st *ruleState) close(key string, o *openAlert, emit func(*Alert)) {
	delete(st.open, key)
	if o.alert.Count <= 1 {
		return
	}
	u := o.alert
	u.ActivityID, u.ActivityName = activityUpdate, "Update"
	u.TypeUID, u.TypeName = classUID*100+activityUpdate, "Detection Finding: Update"
	emit(u)
}

func (st *ruleState) closeExpired(e *Engine, now time.Time, emit func(*Alert)) {
	st.nextExpiry = time.Time{}
	for k, o := range st.open {
		if !now.Before(o.until) {
			st.close(k, o, emit)
			continue
		}
		if st.nextExpiry.IsZero() || o.until.Before(st.nextExpiry) {
			st.nextExpiry = o.until
		}
	}
	if st.rule.agg != nil {
		for k, g := range st.groups {
			if now.Sub(g.last) > st.rule.agg.window {
				delete(st.groups, k)
			}
		}
	}
}

func (st *ruleState) closeAll(e *Engine, emit func(*Alert)) {
	for k, o := range st.open {
		st.close(k, o, emit)
	}
	st.nextExpiry = time.Time{}
}
