package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/edgeward/edgeward/flow"
)

// TestResult is the outcome of one in-file rule test.
type TestResult struct {
	Rule string
	Name string
	File string
	Line int
	Col  int
	// Expect is what the test expects: "match" or "no_match" for a
	// one-flow test, "alerts: N" for a sequence.
	Expect  string
	Pass    bool
	Message string // why it failed
}

// Positive reports whether the test expects the rule to fire: a match,
// or at least one alert.
func (r TestResult) Positive() bool {
	return r.Expect == "match" || strings.HasPrefix(r.Expect, "alerts: ") && r.Expect != "alerts: 0"
}

func (r TestResult) String() string {
	status := "ok"
	if !r.Pass {
		status = "FAIL: " + r.Message
	}
	return fmt.Sprintf("%s:%d:%d: rule %s test %q: %s", r.File, r.Line, r.Col, r.Rule, r.Name, status)
}

// testBase is the time flows in tests start at unless they say otherwise.
var testBase = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Test loads the rules and runs every rule's tests. A set that does not
// load returns its Diagnostics as the error.
//
// With opts.Builtin and paths, the built-in rules the paths do not replace
// are tested against the built-in pack as shipped, since their tests
// describe its lists and macros, not the user's replacements of them; the
// rules of the paths are tested against the merged set.
func Test(paths []string, opts Options) ([]TestResult, error) {
	set, err := Load(paths, opts)
	if err != nil {
		return nil, err
	}
	if opts.Builtin == nil || len(paths) == 0 {
		return set.RunTests(), nil
	}
	shipped, err := Load(nil, opts)
	if err != nil {
		return nil, err
	}
	kept := func(rd *ruleDef) bool {
		r := set.byID[rd.id.v]
		return r != nil && set.defs[r.idx].layer == layerBuiltin
	}
	out := shipped.runTests(kept)
	return append(out, set.runTests(func(rd *ruleDef) bool { return rd.layer == layerUser })...), nil
}

// RunTests runs the in-file tests of every rule of the set. Each test
// runs on a fresh engine holding the rule (and, for temporal rules, the
// rules it lists), so tests do not share windows.
func (s *Set) RunTests() []TestResult {
	return s.runTests(func(*ruleDef) bool { return true })
}

func (s *Set) runTests(include func(*ruleDef) bool) []TestResult {
	var out []TestResult
	for i, rd := range s.defs {
		if !include(rd) {
			continue
		}
		r := s.rules[i]
		for _, td := range rd.tests {
			res := TestResult{Rule: r.ID, Name: td.name, File: td.file, Line: td.line, Col: td.col, Expect: td.expect.v}
			if td.flows != nil {
				res.Expect = fmt.Sprintf("alerts: %d", td.alerts)
			}
			if res.Name == "" {
				res.Name = fmt.Sprintf("line %d", td.line)
			}
			res.Pass, res.Message = s.runTest(r, td)
			out = append(out, res)
		}
	}
	return out
}

func (s *Set) runTest(r *Rule, td testDef) (bool, string) {
	sub := s.subset(r)
	if td.flow != nil {
		in, err := s.testInput(td.flow, 0)
		if err != nil {
			return false, err.Error()
		}
		e := NewEngine(sub, EngineConfig{})
		e.act.reset(in)
		got := e.match(sub.byID[r.ID])
		want := td.expect.v == "match"
		if got != want {
			return false, fmt.Sprintf("expected %s, got %s", td.expect.v, map[bool]string{true: "match", false: "no_match"}[got])
		}
		return true, ""
	}
	e := NewEngine(sub, EngineConfig{})
	n := 0
	count := func(a *Alert) {
		if a.FindingInfo.Analytic.UID == r.ID && a.ActivityID == ActivityCreate {
			n++
		}
	}
	for i, fn := range td.flows {
		in, err := s.testInput(fn, i)
		if err != nil {
			return false, err.Error()
		}
		e.Evaluate(in, count)
	}
	if n != td.alerts {
		return false, fmt.Sprintf("expected %d alerts, got %d", td.alerts, n)
	}
	return true, ""
}

// subset is a set of r and the rules it depends on, all in alert mode
// and enabled so that tests see what they would fire.
func (s *Set) subset(r *Rule) *Set {
	sub := &Set{schema: s.schema, byID: map[string]*Rule{}, listVals: s.listVals}
	add := func(x *Rule) *Rule {
		c := *x
		c.idx = len(sub.rules)
		c.Mode, c.Enabled, c.parents = "alert", true, nil
		sub.rules = append(sub.rules, &c)
		sub.byID[c.ID] = &c
		return &c
	}
	root := add(r)
	if r.agg != nil && r.agg.typ == "temporal" {
		agg := *r.agg
		agg.rules = nil
		for _, ri := range r.agg.rules {
			dep := sub.byID[s.rules[ri].ID]
			if dep == nil {
				dep = add(s.rules[ri])
			}
			dep.parents = append(dep.parents, root.idx)
			agg.rules = append(agg.rules, dep.idx)
		}
		root.agg = &agg
	}
	sub.index = buildIndex(sub)
	return sub
}

// testInput builds an Input from a partial record in YAML. Keys that name
// extra fields (dotted, e.g. "dst.geo.country") set those; the rest is the
// record as JSON. "at: 30s" sets start and end to the test base time plus
// 30s; without it, flow i is at base + i seconds.
func (s *Set) testInput(n ast.Node, i int) (*Input, error) {
	var m map[string]any
	if err := yaml.NodeToValue(n, &m); err != nil {
		return nil, fmt.Errorf("flow: %v", err)
	}
	if m == nil {
		m = map[string]any{}
	}
	in := &Input{}
	at := time.Duration(i) * time.Second
	if v, ok := m["at"]; ok {
		d, err := parseDuration(fmt.Sprint(v))
		if err != nil {
			return nil, fmt.Errorf("flow: at %q is not a duration", v)
		}
		at = d
		delete(m, "at")
	}
	extra := map[string]any{}
	flatten(m, "", func(path string, v any) bool {
		if h, ok := s.schema.Handle(path); ok {
			extra[path] = v
			_ = h
			return true
		}
		return false
	})
	for path, v := range extra {
		h, _ := s.schema.Handle(path)
		f, _, _ := s.schema.lookup(path)
		switch f.kind {
		case KindString:
			in.SetString(h, fmt.Sprint(v))
		case KindInt:
			x, ok := v.(uint64)
			if y, ok2 := v.(int64); ok2 {
				x, ok = uint64(y), true
			}
			if !ok {
				return nil, fmt.Errorf("flow: %s wants an int, got %v", path, v)
			}
			in.SetInt(h, int64(x))
		case KindDouble:
			x, ok := v.(float64)
			if !ok {
				return nil, fmt.Errorf("flow: %s wants a number, got %v", path, v)
			}
			in.SetDouble(h, x)
		case KindBool:
			x, ok := v.(bool)
			if !ok {
				return nil, fmt.Errorf("flow: %s wants true or false, got %v", path, v)
			}
			in.SetBool(h, x)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("flow: %v", err)
	}
	rec := &flow.Record{Schema: flow.Schema, Start: testBase.Add(at), End: testBase.Add(at)}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(rec); err != nil {
		return nil, fmt.Errorf("flow: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	in.Record = rec
	return in, nil
}

// flatten calls take for each leaf and each dotted key; take returning true
// removes the key from m.
func flatten(m map[string]any, prefix string, take func(string, any) bool) {
	for k, v := range m {
		path := prefix + k
		if take(path, v) {
			delete(m, k)
			continue
		}
		if sub, ok := v.(map[string]any); ok {
			flatten(sub, path+".", take)
			if len(sub) == 0 {
				delete(m, k)
			}
		}
	}
}
