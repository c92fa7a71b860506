package main

import (
	"bufio"
	"context"
	"encoding"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"

	"github.com/edgeward/edgeward/internal/config"
	"github.com/edgeward/edgeward/internal/daemoncfg"
	"github.com/edgeward/edgeward/pipeline"
	"github.com/edgeward/edgeward/pipeline/consume"
	"github.com/edgeward/edgeward/pipeline/enrich"
	"github.com/edgeward/edgeward/rules"
	builtinpack "github.com/edgeward/edgeward/rules/builtin"
	"github.com/edgeward/edgeward/sensor"
	"github.com/edgeward/edgeward/sensor/export"
	"github.com/edgeward/edgeward/sensor/export/spool"
	"github.com/edgeward/edgeward/sensor/live"
)

// docRepoRoot is the repository, from cmd/edgeward.
var docRepoRoot = filepath.Join("..", "..")

// docDaemon is a daemon's name and configuration struct.
type docDaemon struct {
	name string
	cfg  func() any // a new configuration struct
}

var docDaemons = []docDaemon{
	{"sensor", func() any { return new(daemoncfg.Sensor) }},
	{"pipeline", func() any { return new(pipelineConfig) }},
}

// docSetting is one configuration key with its variable and flag.
type docSetting struct{ key, env, flag string }

// docSettings lists the keys of a configuration struct from its tags, the
// way package config reads them (yaml keys joined with '.', inline
// structs flattened, env defaulting to the path), independently of
// config.Reference, which writes docs/configuration.md.
func docSettings(t reflect.Type, prefix string) []docSetting {
	var out []docSetting
	for i := range t.NumField() {
		sf := t.Field(i)
		key, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if sf.Anonymous && opts == "inline" {
			out = append(out, docSettings(sf.Type, prefix)...)
			continue
		}
		if !sf.IsExported() || key == "" || key == "-" {
			continue
		}
		path := prefix + key
		if sf.Type.Kind() == reflect.Struct && !reflect.PointerTo(sf.Type).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
			out = append(out, docSettings(sf.Type, path+".")...)
			continue
		}
		env := config.EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
		switch e := sf.Tag.Get("env"); e {
		case "":
		case "-":
			env = ""
		default:
			env = config.EnvPrefix + e
		}
		out = append(out, docSetting{key: path, env: env, flag: sf.Tag.Get("flag")})
	}
	return out
}

// docReferenceRow is a row of a table in docs/configuration.md.
var docReferenceRow = regexp.MustCompile("^\\| `([^`]+)` \\| (?:`([^`]+)`)? \\| (?:`-{1,2}([^`]+)`)? \\|")

// TestConfigurationKeys checks docs/configuration.md against the daemons'
// configuration structs in both directions: every key, variable and flag
// the reference lists exists in code, and every key in code is listed.
// (TestConfigurationDoc checks that the file is what the generator
// writes; this checks what it says, row by row, so that a broken
// generator cannot hide a key.)
func TestConfigurationKeys(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(docRepoRoot, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]map[string]docSetting{}
	var cur map[string]docSetting
	for i, line := range strings.Split(string(doc), "\n") {
		if name, ok := strings.CutPrefix(line, "## edgeward "); ok {
			cur = map[string]docSetting{}
			sections[name] = cur
			continue
		}
		m := docReferenceRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if cur == nil {
			t.Errorf("configuration.md:%d: key %s outside a daemon's section", i+1, m[1])
			continue
		}
		if _, dup := cur[m[1]]; dup {
			t.Errorf("configuration.md:%d: key %s listed twice", i+1, m[1])
		}
		cur[m[1]] = docSetting{key: m[1], env: m[2], flag: m[3]}
	}
	for _, d := range docDaemons {
		t.Run(d.name, func(t *testing.T) {
			documented, ok := sections[d.name]
			if !ok {
				t.Fatalf("configuration.md has no section ## edgeward %s", d.name)
			}
			l, err := config.New(d.name, d.cfg())
			if err != nil {
				t.Fatal(err)
			}
			flags := map[string]bool{}
			l.FlagSet().VisitAll(func(f *flag.Flag) { flags[f.Name] = true })
			code := map[string]bool{}
			for _, s := range docSettings(reflect.TypeOf(d.cfg()).Elem(), "") {
				code[s.key] = true
				doc, ok := documented[s.key]
				if !ok {
					t.Errorf("%s is in the %s configuration but not in docs/configuration.md", s.key, d.name)
					continue
				}
				if doc != s {
					t.Errorf("%s: docs/configuration.md says variable %q flag %q, the code %q %q", s.key, doc.env, doc.flag, s.env, s.flag)
				}
				if s.flag != "" && !flags[s.flag] {
					t.Errorf("%s: flag -%s is not registered", s.key, s.flag)
				}
			}
			for key := range documented {
				if !code[key] {
					t.Errorf("docs/configuration.md lists %s, which the %s configuration does not have", key, d.name)
				}
			}
		})
	}
}

// TestDeployConfigs loads the example configuration files in deploy/
// with the docDaemons' loaders, and checks the systemd units' command lines
// against the docDaemons' flags and configuration files.
func TestDeployConfigs(t *testing.T) {
	for _, d := range docDaemons {
		t.Run(d.name, func(t *testing.T) {
			path := filepath.Join(docRepoRoot, "deploy", "config", d.name+".yaml")
			l, err := config.New(d.name, d.cfg())
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Load([]string{"--config", path}, func(string) (string, bool) { return "", false }); err != nil {
				t.Errorf("%v", err)
			}

			unit := filepath.Join(docRepoRoot, "deploy", "systemd", "edgeward-"+d.name+".service")
			src, err := os.ReadFile(unit)
			if err != nil {
				t.Fatal(err)
			}
			var exec []string
			for _, line := range strings.Split(string(src), "\n") {
				if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
					exec = strings.Fields(v)
				}
			}
			if len(exec) < 2 || filepath.Base(exec[0]) != "edgeward" || exec[1] != d.name {
				t.Fatalf("%s: ExecStart %q does not run edgeward %s", unit, exec, d.name)
			}
			l, _ = config.New(d.name, d.cfg())
			if err := l.FlagSet().Parse(exec[2:]); err != nil {
				t.Errorf("%s: ExecStart: %v", unit, err)
			}
			if cf := l.ConfigFile(); cf != "/etc/edgeward/"+d.name+".yaml" {
				t.Errorf("%s: --config %q, want /etc/edgeward/%s.yaml (docs/deploy.md installs it there)", unit, cf, d.name)
			}
		})
	}
}

var (
	envName    = regexp.MustCompile(`\bEDGEWARD_[A-Z0-9_]*[A-Z0-9]`)
	metricWord = regexp.MustCompile(`\bedgeward_[a-z0-9_]*[a-z0-9]`)
	goEnvLit   = regexp.MustCompile(`"(EDGEWARD_[A-Z0-9_]+)"`)
)

// TestDocsNameRealThings checks the names the operator documentation
// mentions: every EDGEWARD_* variable is a daemon's configuration
// variable or one the code reads, and every edgeward_* metric is one the
// daemons register.
func TestDocsNameRealThings(t *testing.T) {
	known := map[string]bool{}
	for _, d := range docDaemons {
		for _, s := range docSettings(reflect.TypeOf(d.cfg()).Elem(), "") {
			known[s.env] = true
		}
	}
	// Variables the code reads outside the configuration (tests, tools).
	filepath.WalkDir(docRepoRoot, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() && strings.HasPrefix(e.Name(), ".") && path != docRepoRoot {
			return fs.SkipDir
		}
		if ext := filepath.Ext(path); ext == ".go" || ext == ".sh" || e.Name() == "Makefile" {
			src, _ := os.ReadFile(path)
			for _, m := range goEnvLit.FindAllStringSubmatch(string(src), -1) {
				known[m[1]] = true
			}
			if ext != ".go" {
				for _, m := range envName.FindAllString(string(src), -1) {
					known[m] = true
				}
			}
		}
		return nil
	})
	metrics := map[string]bool{}
	for _, g := range metricGroups(t) {
		for _, m := range g.metrics {
			metrics[m.name] = true
		}
	}

	var files []string
	for _, pat := range []string{"README.md", "docs/*.md", "deploy/*/*", "charts/edgeward/README.md", "charts/edgeward/templates/*"} {
		m, _ := filepath.Glob(filepath.Join(docRepoRoot, pat))
		files = append(files, m...)
	}
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		rel, _ := filepath.Rel(docRepoRoot, path)
		for n := 1; sc.Scan(); n++ {
			for _, v := range envName.FindAllString(sc.Text(), -1) {
				if !known[v] {
					t.Errorf("%s:%d: %s is no configuration variable of either daemon (docs/configuration.md) and nothing reads it", rel, n, v)
				}
			}
			for _, m := range metricWord.FindAllString(sc.Text(), -1) {
				if !metrics[m] && !metrics[strings.TrimSuffix(m, "_bucket")] {
					t.Errorf("%s:%d: %s is not a metric the daemons register (docs/operations.md, Metrics)", rel, n, m)
				}
			}
		}
		f.Close()
	}
}

// Markers of the generated metrics reference in docs/operations.md.
const (
	metricsBegin = "<!-- BEGIN metrics: generated by go test ./cmd/edgeward -run MetricsDoc -update; do not edit -->"
	metricsEnd   = "<!-- END metrics -->"
)

// TestMetricsDoc fails when the metrics reference in docs/operations.md
// is not what the daemons register; -update rewrites it.
func TestMetricsDoc(t *testing.T) {
	path := filepath.Join(docRepoRoot, "docs", "operations.md")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(src), metricsBegin)
	_, after, ok2 := strings.Cut(rest, metricsEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the markers %q and %q", path, metricsBegin, metricsEnd)
	}
	want := before + metricsBegin + "\n" + metricsReference(metricGroups(t)) + metricsEnd + after
	if *updateDocs {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if string(src) != want {
		t.Errorf("the metrics in %s are stale: run go test ./cmd/edgeward -run MetricsDoc -update", path)
	}
}

// metricInfo is one metric family as the reference lists it.
type metricInfo struct {
	name, typ, help string
	labels          []string
}

type metricGroup struct {
	title   string
	metrics []metricInfo
}

// metricGroups builds the collectors the daemons register, with the
// constructors runSensor and runPipeline call, and describes them. A
// metric registered in runSensor or runPipeline itself must be added here.
func metricGroups(t *testing.T) []metricGroup {
	t.Helper()
	var capture, exp, enr, cons, eng metricRecorder
	newSensorMetrics(&capture, &sensor.Config{Progress: new(sensor.Progress)})
	capture.MustRegister(live.Collector(docNopSource{})) // live capture only
	e, err := export.New(export.Config{Writer: docDiscardWriter{}, Spool: spool.Options{Dir: t.TempDir()}, Metrics: export.NewMetrics(&exp)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.Close(ctx)

	en, err := enrich.New(enrich.Config{Registry: &enr})
	if err != nil {
		t.Fatal(err)
	}
	en.Close()
	schema, err := pipeline.Schema()
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Load(nil, rules.Options{Schema: schema, Builtin: builtinpack.FS()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := consume.New(consume.Config{Brokers: []string{"127.0.0.1:1"}, Rules: set, Registry: &cons}); err != nil {
		t.Fatal(err)
	}
	// Each partition's rule engines register these on a private registry;
	// the consumer exports their counters summed (its collector describes
	// nothing, the families depending on the rules loaded), and only them.
	rules.NewMetrics(&eng)
	engines := slices.DeleteFunc(describeMetrics(t, eng.cs), func(m metricInfo) bool { return m.typ != "counter" })

	groups := []metricGroup{
		{title: "edgeward sensor: capture and flows", metrics: describeMetrics(t, capture.cs)},
		{title: "edgeward sensor: Kafka export and disk spool", metrics: describeMetrics(t, exp.cs)},
		{title: "edgeward pipeline: consumer, rule set and alerts", metrics: describeMetrics(t, cons.cs)},
		{title: "edgeward pipeline: rule engines (counters summed over the partitions' engines)", metrics: engines},
		{title: "edgeward pipeline: enrichment", metrics: describeMetrics(t, enr.cs)},
	}
	seen := map[string]bool{}
	for i := range groups {
		g := &groups[i]
		g.metrics = slices.DeleteFunc(g.metrics, func(m metricInfo) bool {
			dup := seen[m.name]
			seen[m.name] = true
			return dup
		})
	}
	return groups
}

func metricsReference(groups []metricGroup) string {
	var b strings.Builder
	for _, g := range groups {
		fmt.Fprintf(&b, "\n### %s\n\n| metric | type | labels | meaning |\n| --- | --- | --- | --- |\n", g.title)
		for _, m := range g.metrics {
			labels := make([]string, len(m.labels))
			for i, l := range m.labels {
				labels[i] = "`" + l + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", m.name, m.typ, strings.Join(labels, ", "), strings.ReplaceAll(m.help, "|", `\|`))
		}
	}
	b.WriteString("\n")
	return b.String()
}

var descString = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*"), help: ("(?:[^"\\]|\\.)*"), .*variableLabels: \{([^}]*)\}\}$`)

// describeMetrics lists the metric families of collectors, in order.
func describeMetrics(t *testing.T, cs []prometheus.Collector) []metricInfo {
	t.Helper()
	var out []metricInfo
	for _, c := range cs {
		types := map[string]string{}
		mch := make(chan prometheus.Metric, 16)
		go func() { c.Collect(mch); close(mch) }()
		for m := range mch {
			var d dto.Metric
			if err := m.Write(&d); err != nil {
				t.Fatal(err)
			}
			switch {
			case d.Counter != nil:
				types[m.Desc().String()] = "counter"
			case d.Gauge != nil:
				types[m.Desc().String()] = "gauge"
			case d.Histogram != nil:
				types[m.Desc().String()] = "histogram"
			}
		}
		dch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(dch); close(dch) }()
		for d := range dch {
			m := descString.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read %s", d)
			}
			name, _ := strconv.Unquote(m[1])
			help, _ := strconv.Unquote(m[2])
			typ := types[d.String()]
			switch c.(type) {
			case *prometheus.CounterVec:
				typ = "counter"
			case *prometheus.GaugeVec:
				typ = "gauge"
			case *prometheus.HistogramVec:
				typ = "histogram"
			}
			if typ == "" {
				t.Fatalf("%s: unknown type", name)
			}
			var labels []string
			if m[3] != "" {
				labels = strings.Split(m[3], ",")
			}
			out = append(out, metricInfo{name: name, typ: typ, help: help, labels: labels})
		}
	}
	return out
}

// metricRecorder is a prometheus.Registerer that keeps the collectors.
type metricRecorder struct{ cs []prometheus.Collector }

func (r *metricRecorder) Register(c prometheus.Collector) error {
	r.cs = append(r.cs, c)
	return nil
}

func (r *metricRecorder) MustRegister(cs ...prometheus.Collector) { r.cs = append(r.cs, cs...) }

func (r *metricRecorder) Unregister(c prometheus.Collector) bool {
	n := len(r.cs)
	r.cs = slices.DeleteFunc(r.cs, func(x prometheus.Collector) bool { return x == c })
	return len(r.cs) < n
}

// docNopSource is a live capture source that captures nothing.
type docNopSource struct{}

func (docNopSource) Workers() int                              { return 1 }
func (docNopSource) Run(context.Context, int, live.Sink) error { return nil }
func (docNopSource) Stats() live.Stats                         { return live.Stats{} }
func (docNopSource) Close() error                              { return nil }

// docDiscardWriter is a Kafka writer that drops everything.
type docDiscardWriter struct{}

func (docDiscardWriter) WriteMessages(context.Context, ...kafka.Message) error { return nil }
func (docDiscardWriter) Close() error                                          { return nil }

var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestDocsLinks checks that the relative links of the documentation
// point at files that exist.
func TestDocsLinks(t *testing.T) {
	var files []string
	for _, pat := range []string{"README.md", "docs/*.md", "charts/README.md", "charts/edgeward/README.md"} {
		m, _ := filepath.Glob(filepath.Join(docRepoRoot, pat))
		files = append(files, m...)
	}
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(docRepoRoot, path)
		for n, line := range strings.Split(string(src), "\n") {
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				target, _, _ := strings.Cut(m[1], "#")
				if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				if _, err := os.Stat(filepath.Join(filepath.Dir(path), target)); err != nil {
					t.Errorf("%s:%d: link to %s: no such file", rel, n+1, m[1])
				}
			}
		}
	}
}
