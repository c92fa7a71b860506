package rules

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/edgeward/edgeward/flow"
)

// builtinPack is a small built-in layer: a list from a file, a macro and
// two rules, each with tests written against the shipped list.
func builtinPack() fstest.MapFS {
	return fstest.MapFS{
		"remote.yml": {Data: []byte(`- list: ra_ports
  file: ra_ports.txt
- macro: outbound_tcp
  condition: proto == "tcp"
- rule: ra.port
  title: Remote-access port
  severity: medium
  category: remote_access
  match: outbound_tcp && in_list(string(dst.port), ra_ports)
  tests:
    - {name: anydesk, flow: {proto: tcp, dst: {port: 7070}}, expect: match}
    - {name: https, flow: {proto: tcp, dst: {port: 443}}, expect: no_match}
- rule: ra.udp
  title: UDP
  severity: low
  category: remote_access
  match: proto == "udp"
  tests:
    - {name: udp, flow: {proto: udp}, expect: match}
`)},
		"ra_ports.txt": {Data: []byte("# ports\n7070\n5938\n")},
		"README.md":    {Data: []byte("not a rule file")},
	}
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func ruleIDs(s *Set) []string {
	var ids []string
	for _, r := range s.Rules() {
		ids = append(ids, r.ID)
	}
	return ids
}

func matches(t *testing.T, s *Set, id string, rec *flow.Record) bool {
	t.Helper()
	e := NewEngine(s, EngineConfig{})
	fired := false
	e.Evaluate(&Input{Record: rec}, func(a *Alert) { fired = fired || a.FindingInfo.Analytic.UID == id })
	return fired
}

func TestBuiltinLayerAlone(t *testing.T) {
	s, err := Load(nil, Options{Builtin: builtinPack()})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ruleIDs(s), []string{"ra.port", "ra.udp"}; !slices.Equal(got, want) {
		t.Errorf("rules %v, want %v", got, want)
	}
	if got, want := s.Files(), []string{"builtin:remote.yml", "builtin:ra_ports.txt"}; !slices.Equal(got, want) {
		t.Errorf("files %v, want %v", got, want)
	}
	if !matches(t, s, "ra.port", &flow.Record{Proto: "tcp", Dst: flow.Endpoint{Port: 5938}}) {
		t.Error("ra.port does not match a port of the built-in list file")
	}
}

// TestBuiltinOverride: user files replace built-in rules, lists and macros
// of the same name, and add their own.
func TestBuiltinOverride(t *testing.T) {
	cases := []struct {
		name   string
		user   string
		rules  []string
		port   uint16
		proto  string
		fires  string // rule that must fire on the flow
		silent string // rule that must not
	}{
		{
			name:  "list",
			user:  "- list: ra_ports\n  items: ['21115']\n",
			rules: []string{"ra.port", "ra.udp"},
			proto: "tcp", port: 21115, fires: "ra.port",
		},
		{
			name:  "list replaced, not merged",
			user:  "- list: ra_ports\n  items: ['21115']\n",
			rules: []string{"ra.port", "ra.udp"},
			proto: "tcp", port: 7070, silent: "ra.port",
		},
		{
			name:  "macro",
			user:  "- macro: outbound_tcp\n  condition: proto == \"udp\"\n",
			rules: []string{"ra.port", "ra.udp"},
			proto: "udp", port: 7070, fires: "ra.port",
		},
		{
			name:  "rule",
			user:  "- rule: ra.udp\n  title: mine\n  severity: high\n  category: remote_access\n  match: proto == \"udp\" && dst.port == 53\n",
			rules: []string{"ra.port", "ra.udp"},
			proto: "udp", port: 123, silent: "ra.udp",
		},
		{
			name:  "new rule beside the pack",
			user:  "- rule: mine\n  title: mine\n  severity: low\n  category: tunnel\n  match: dst.port == 1\n",
			rules: []string{"ra.port", "ra.udp", "mine"},
			proto: "tcp", port: 1, fires: "mine",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "local.yml", c.user)
			s, err := Load([]string{dir}, Options{Builtin: builtinPack()})
			if err != nil {
				t.Fatal(err)
			}
			if got := ruleIDs(s); !slices.Equal(got, c.rules) {
				t.Errorf("rules %v, want %v", got, c.rules)
			}
			rec := &flow.Record{Proto: c.proto, Dst: flow.Endpoint{Port: c.port}}
			if c.fires != "" && !matches(t, s, c.fires, rec) {
				t.Errorf("%s does not fire", c.fires)
			}
			if c.silent != "" && matches(t, s, c.silent, rec) {
				t.Errorf("%s fires", c.silent)
			}
		})
	}
}

func TestBuiltinDiagnostics(t *testing.T) {
	cases := []struct {
		name string
		pack fstest.MapFS
		user string
		want []string
	}{
		{
			name: "error inside the pack is named builtin:",
			pack: fstest.MapFS{"a.yml": {Data: []byte("- rule: x\n  title: x\n  severity: low\n  category: c\n  match: dst.prot == 1\n")}},
			want: []string{"builtin:a.yml:5:13: match: undeclared reference to 'dst.prot' (did you mean 'dst.port'?)"},
		},
		{
			name: "bad entry of a built-in list file",
			pack: fstest.MapFS{
				"a.yml":    {Data: []byte("- list: nets\n  file: nets.txt\n- rule: x\n  title: x\n  severity: low\n  category: c\n  match: cidr_in(dst.ip, nets)\n")},
				"nets.txt": {Data: []byte("10.0.0.0/8\n  10.0.0.0/33\n")},
			},
			want: []string{`builtin:nets.txt:2:3: list nets (used with cidr_in): "10.0.0.0/33" is not an IP address or CIDR`},
		},
		{
			name: "missing built-in list file",
			pack: fstest.MapFS{"a.yml": {Data: []byte("- list: nets\n  file: nope.txt\n")}},
			want: []string{"builtin:a.yml:2:9: list nets: open nope.txt: file does not exist"},
		},
		{
			name: "duplicate within the pack",
			pack: fstest.MapFS{
				"a.yml": {Data: []byte("- macro: m\n  condition: 'true'\n")},
				"b.yml": {Data: []byte("- macro: m\n  condition: 'false'\n")},
			},
			want: []string{"builtin:b.yml:1:10: macro m already defined at builtin:a.yml:1:10"},
		},
		{
			name: "duplicate within the user layer, both replacing the pack",
			pack: builtinPack(),
			user: "- list: ra_ports\n  items: ['1']\n- list: ra_ports\n  items: ['2']\n",
			want: []string{"USER:3:9: list ra_ports already defined at USER:1:9"},
		},
		{
			name: "a user macro may not take a built-in list's name",
			pack: builtinPack(),
			user: "- macro: ra_ports\n  condition: 'true'\n",
			want: []string{"USER:1:10: macro name ra_ports is a list name"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var paths []string
			user := ""
			if c.user != "" {
				user = writeFile(t, t.TempDir(), "user.yml", c.user)
				paths = append(paths, user)
			}
			var got []string
			for _, d := range Lint(paths, Options{Builtin: c.pack}) {
				s := d.String()
				if user != "" {
					s = strings.ReplaceAll(s, user, "USER")
				}
				got = append(got, s)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("diagnostics:\n got %q\nwant %q", got, c.want)
			}
		})
	}
}

// TestBuiltinTestsRunAsShipped: overriding a list the built-in tests rely
// on does not fail them; the user's own rules are tested against the
// merged set, and a replaced rule's built-in tests do not run.
func TestBuiltinTestsRunAsShipped(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "local.yml", `- list: ra_ports
  items: ['21115']
- rule: ra.udp
  title: mine
  severity: high
  category: remote_access
  match: proto == "udp" && dst.port == 53
  tests:
    - {name: dns, flow: {proto: udp, dst: {port: 53}}, expect: match}
- rule: mine
  title: mine
  severity: low
  category: remote_access
  match: in_list(string(dst.port), ra_ports)
  tests:
    - {name: user list, flow: {dst: {port: 21115}}, expect: match}
`)
	res, err := Test([]string{dir}, Options{Builtin: builtinPack()})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res {
		if !r.Pass {
			t.Error(r)
		}
		got = append(got, r.Rule+"/"+r.Name)
	}
	want := []string{"ra.port/anydesk", "ra.port/https", "ra.udp/dns", "mine/user list"}
	if !slices.Equal(got, want) {
		t.Errorf("tests run %v, want %v", got, want)
	}
}

func TestPresent(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "r.yml", `- list: allowed
  items: [github.com]
- rule: ssh
  title: SSH
  severity: low
  category: remote_access
  match: dst.port == 22 && (!present(dst.name) || !dns_suffix_in(dst.name, allowed))
  tests:
    - {name: no name, flow: {dst: {port: 22}}, expect: match}
    - {name: other name, flow: {dst: {port: 22, name: example.org}}, expect: match}
    - {name: allowed name, flow: {dst: {port: 22, name: github.com}}, expect: no_match}
- rule: named
  title: named
  severity: low
  category: remote_access
  match: present(dst.name) && dst.port == 22
  tests:
    - {name: no name, flow: {dst: {port: 22}}, expect: no_match}
    - {name: name, flow: {dst: {port: 22, name: example.org}}, expect: match}
`)
	res, err := Test([]string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.Pass {
			t.Error(r)
		}
	}
	if len(res) != 5 {
		t.Errorf("%d tests ran, want 5", len(res))
	}
}

// TestWatcherWithBuiltin: a reload loads the built-in pack and the user
// directory together, so a user override takes effect on reload.
func TestWatcherWithBuiltin(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Builtin: builtinPack()}
	set, err := Load([]string{dir}, opts)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(set, EngineConfig{})
	reloads := make(chan error, 10)
	w := &Watcher{Paths: []string{dir}, Options: opts, Engine: e, Debounce: 20 * time.Millisecond, reloaded: func(err error) { reloads <- err }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	time.Sleep(100 * time.Millisecond)
	writeFile(t, dir, "local.yml", "- list: ra_ports\n  items: ['21115']\n")
	select {
	case err := <-reloads:
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reload")
	}
	var ids []string
	emit := func(a *Alert) { ids = append(ids, a.FindingInfo.Analytic.UID) }
	at := time.Unix(1700000000, 0)
	e.Evaluate(&Input{Record: &flow.Record{Proto: "tcp", Start: at, End: at, Src: flow.Endpoint{IP: netip.MustParseAddr("10.0.0.1")}, Dst: flow.Endpoint{Port: 21115}}}, emit)
	if !slices.Equal(ids, []string{"ra.port"}) {
		t.Errorf("alerts %v, want [ra.port] from the reloaded user list", ids)
	}
	if n := len(e.Set().Rules()); n != 2 {
		t.Errorf("%d rules after reload, want the 2 built-in ones", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestWatcherBuiltinOnly: with nothing to watch, Run waits for ctx.
func TestWatcherBuiltinOnly(t *testing.T) {
	set, err := Load(nil, Options{Builtin: builtinPack()})
	if err != nil {
		t.Fatal(err)
	}
	w := &Watcher{Options: Options{Builtin: builtinPack()}, Engine: NewEngine(set, EngineConfig{})}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(); err != nil {
		t.Fatal(err)
	}
}

// TestCostLimit: a rule whose cost the load cannot bound (a comprehension
// over a list field) still stops at the limit; a bounded one runs without
// tracking and matches.
func TestCostLimit(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "r.yml", `- rule: unbounded
  title: u
  severity: low
  category: c
  match: dns.answers.all(a, a.size() > 0)
- rule: bounded
  title: b
  severity: low
  category: c
  match: proto == "udp" && dns.query.endsWith(".example")
`)
	set, err := Load([]string{dir}, Options{CostLimit: 50})
	if err != nil {
		t.Fatal(err)
	}
	var answers []string
	for i := range 200 {
		answers = append(answers, fmt.Sprintf("192.0.2.%d", i))
	}
	at := time.Unix(1700000000, 0)
	rec := &flow.Record{Proto: "udp", Start: at, End: at, DNS: &flow.DNS{Query: "a.example", Answers: answers}}
	e := NewEngine(set, EngineConfig{})
	var fired []string
	e.Evaluate(&Input{Record: rec}, func(a *Alert) { fired = append(fired, a.FindingInfo.Analytic.UID) })
	if !slices.Equal(fired, []string{"bounded"}) {
		t.Errorf("fired %v, want [bounded]: the unbounded rule must stop at the cost limit", fired)
	}
	if got := testutil.ToFloat64(e.Metrics().errors.WithLabelValues("unbounded")); got != 1 {
		t.Errorf("eval errors of the unbounded rule = %v, want 1", got)
	}
}

func TestLocalHour(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "r.yml", `- rule: night
  title: night
  severity: low
  category: c
  match: local_hour(start, device.home_timezone) < 7
  tests:
    - {name: 03:00 in new york, flow: {at: 8h, device: {ip: 10.0.0.1, home_timezone: America/New_York}}, expect: match}
    - {name: 17:00 in tokyo, flow: {at: 8h, device: {ip: 10.0.0.1, home_timezone: Asia/Tokyo}}, expect: no_match}
    - {name: unknown zone, flow: {at: 8h, device: {ip: 10.0.0.1, home_timezone: Mars/Olympus}}, expect: no_match}
    - {name: Local is not a device's zone, flow: {at: 8h, device: {ip: 10.0.0.1, home_timezone: Local}}, expect: no_match}
    - {name: no zone, flow: {at: 8h, device: {ip: 10.0.0.1}}, expect: no_match}
`)
	res, err := Test([]string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.Pass {
			t.Error(r)
		}
	}
}

func TestValueSumErrors(t *testing.T) {
	cases := []struct{ agg, want string }{
		{"{type: value_sum, group_by: [src.ip], window: 1h, condition: {gte: 10}}", "value_sum aggregate needs a field"},
		{"{type: value_sum, field: app, group_by: [src.ip], window: 1h, condition: {gte: 10}}", "value_sum field app is string, not a number"},
	}
	for _, c := range cases {
		dir := t.TempDir()
		writeFile(t, dir, "r.yml", "- rule: x\n  title: x\n  severity: low\n  category: c\n  match: proto == \"tcp\"\n  aggregate: "+c.agg+"\n")
		ds := Lint([]string{dir}, Options{})
		if len(ds) != 1 || !strings.Contains(ds[0].Message, c.want) {
			t.Errorf("%s: diagnostics %v, want %q", c.agg, ds, c.want)
		}
	}
}

// TestValueSumDouble sums a double field (duration_s) and reports the sum.
func TestValueSumDouble(t *testing.T) {
	set := loadRule(t, "- rule: x\n  title: x\n  severity: low\n  category: c\n  match: proto == \"tcp\"\n"+
		"  aggregate: {type: value_sum, field: duration_s, group_by: [src.ip], window: 1h, condition: {gte: 1500}}\n")
	e := NewEngine(set, EngineConfig{})
	var got []int
	for i, d := range []float64{1000, 499.5, 0.6, 100} {
		at := time.Unix(1700000000+int64(i)*60, 0)
		rec := &flow.Record{Proto: "tcp", Start: at, End: at, DurationS: d, Src: flow.Endpoint{IP: netip.MustParseAddr("10.0.0.1")}}
		e.Evaluate(&Input{Record: rec}, func(a *Alert) { got = append(got, a.Unmapped.Value) })
	}
	if !slices.Equal(got, []int{1500}) {
		t.Errorf("alerts with values %v, want one of 1500 (1000+499.5+0.6)", got)
	}
}
