package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/edgeward/edgeward/internal/demo"
	"github.com/edgeward/edgeward/pipeline/report"
	"github.com/edgeward/edgeward/rules"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: edgeward demo [-dir DIR]

Synthesizes a working day at a small company in which a laptop-farm story
plays out, with matching demo GeoIP, ASN and anonymizer databases, an
inventory and a VPN session feed; runs the sensor and the pipeline with the
built-in rule pack on it; prints what was found and writes the alerts and
an HTML report into DIR.

Flags:
`)
		fs.PrintDefaults()
	}
	dir := fs.String("dir", filepath.Join(os.TempDir(), "edgeward-demo"), "directory for the generated inputs, the alerts and the report")
	seed := fs.Int64("seed", 1, "synthesis seed")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	res, err := runDemoScenario(ctx, *dir, *seed, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "edgeward demo: %v\n", err)
		return 1
	}
	res.print(stdout)
	if !res.ok() {
		return 1
	}
	return 0
}

// demoResult is what the demo found, per story element.
type demoResult struct {
	sc       *demo.Scenario
	run      runResult
	alerts   []*rules.Alert // creations, in order
	dir      string
	elapsed  time.Duration
	reported string
}

func runDemoScenario(ctx context.Context, dir string, seed int64, stderr io.Writer) (*demoResult, error) {
	start := time.Now()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sc, err := demo.Build(demo.Options{Dir: dir, Seed: seed})
	if err != nil {
		return nil, fmt.Errorf("building the scenario: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	var sf sensorFlags
	sf.read = sc.Capture
	sf.inv = sc.Inventory
	sf.cfg.Identity.Site, sf.cfg.Identity.SensorID = sc.Site, sc.SensorID
	sf.cfg.Inspect.MaxPackets = 8
	var pfx []string
	for _, p := range sc.Internal {
		pfx = append(pfx, p.String())
	}
	sf.internal = strings.Join(pfx, ",")
	sf.sessions = sc.Sessions
	scfg, err := sf.config()
	if err != nil {
		return nil, err
	}
	pf := pipelineFlags{geoip: sc.GeoIP, asn: sc.ASN, anon: sc.Anon}
	p, enr, err := pf.build(log)
	if err != nil {
		return nil, err
	}
	defer enr.Close()

	alertsPath := filepath.Join(dir, "alerts.jsonl")
	af, err := os.Create(alertsPath)
	if err != nil {
		return nil, err
	}
	defer af.Close()
	res := &demoResult{sc: sc, dir: dir}
	job := localJob{
		sensor: *scfg, pipe: p, capture: sf.source(nil), input: sc.Capture, alerts: af, stderr: stderr, progress: "never",
		report: report.New(),
		onAlert: func(a *rules.Alert) {
			if a.ActivityID == rules.ActivityCreate {
				res.alerts = append(res.alerts, a)
			}
		},
	}
	if res.run, err = job.run(ctx); err != nil {
		return nil, err
	}
	res.reported = filepath.Join(dir, "report.html")
	rf, err := os.Create(res.reported)
	if err != nil {
		return nil, err
	}
	if err := writeReport(rf, job.report, report.Meta{
		Title: "edgeward demo: a laptop farm at a small company", Generated: time.Now().UTC(),
		Inputs: []string{sc.Capture}, SensorID: sc.SensorID, Site: sc.Site, Version: version,
	}); err != nil {
		return nil, err
	}
	res.elapsed = time.Since(start)
	return res, nil
}

// fired returns the alerts of rule id, and of those the ones naming the
// element's devices when it has any.
func (r *demoResult) fired(e *demo.Element, rule string) []*rules.Alert {
	var out []*rules.Alert
	for _, a := range r.alerts {
		if a.FindingInfo.Analytic.UID != rule {
			continue
		}
		if len(e.Devices) == 0 || alertNames(a, e.Devices) {
			out = append(out, a)
		}
	}
	return out
}

// alertNames reports whether the alert is about one of the devices: its
// device, or an evidence flow's device or a group value.
func alertNames(a *rules.Alert, devices []string) bool {
	for _, d := range devices {
		if a.Device != nil && a.Device.UID == d {
			return true
		}
		for _, v := range a.Unmapped.Group {
			if fmt.Sprint(v) == d {
				return true
			}
		}
		for _, ev := range a.Evidences {
			if strings.Contains(string(ev.Data), `"id":"`+d+`"`) {
				return true
			}
		}
	}
	return false
}

// unexpected are alerts that no story element explains.
func (r *demoResult) unexpected() []*rules.Alert {
	var out []*rules.Alert
	for _, a := range r.alerts {
		explained := false
		for i := range r.sc.Story {
			e := &r.sc.Story[i]
			for _, id := range e.Rules {
				if a.FindingInfo.Analytic.UID == id && (len(e.Devices) == 0 || alertNames(a, e.Devices)) {
					explained = true
				}
			}
			for _, id := range e.MayRaise {
				if a.FindingInfo.Analytic.UID == id && (len(e.Devices) == 0 || alertNames(a, e.Devices)) {
					explained = true
				}
			}
		}
		if !explained {
			out = append(out, a)
		}
	}
	return out
}

func (r *demoResult) ok() bool {
	for i := range r.sc.Story {
		e := &r.sc.Story[i]
		for _, id := range e.Rules {
			if len(r.fired(e, id)) == 0 {
				return false
			}
		}
	}
	return len(r.unexpected()) == 0
}

func (r *demoResult) print(w io.Writer) {
	fmt.Fprintf(w, "edgeward demo: one day at a small company (sensor %s, site %s)\n", r.sc.SensorID, r.sc.Site)
	fmt.Fprintf(w, "  %d packets, %d flows, %d alerts (%d findings) in %s\n\n",
		r.run.sensor.Packets, r.run.flows, r.run.alerts, len(r.run.findings), r.elapsed.Round(time.Millisecond))
	for i := range r.sc.Story {
		e := &r.sc.Story[i]
		fmt.Fprintf(w, "%d. %s", i+1, e.Name)
		if len(e.Devices) > 0 {
			fmt.Fprintf(w, " [%s]", strings.Join(e.Devices, ", "))
		}
		fmt.Fprintln(w)
		for _, id := range e.Rules {
			as := r.fired(e, id)
			mark := "MISSED"
			if len(as) > 0 {
				mark = "caught"
			}
			fmt.Fprintf(w, "   %-6s %-36s", mark, id)
			if len(as) > 0 {
				fmt.Fprintf(w, " %s", describe(as[0]))
			}
			fmt.Fprintln(w)
		}
	}
	if u := r.unexpected(); len(u) > 0 {
		fmt.Fprintf(w, "\nUnexpected alerts on background traffic (%d):\n", len(u))
		for _, a := range u {
			fmt.Fprintf(w, "   %-36s %s\n", a.FindingInfo.Analytic.UID, describe(a))
		}
	} else {
		fmt.Fprintf(w, "\nBackground traffic (browsing, DNS, SaaS, updates): no alerts.\n")
	}
	fmt.Fprintf(w, "\nAlerts: %s\nReport: %s\n", filepath.Join(r.dir, "alerts.jsonl"), r.reported)
}

// describe is one line about an alert: severity, device, egress and the
// rule's output fields.
func describe(a *rules.Alert) string {
	var parts []string
	parts = append(parts, strings.ToLower(a.Severity))
	if a.Device != nil && a.Device.UID != "" {
		parts = append(parts, "device "+a.Device.UID)
	}
	keys := make([]string, 0, len(a.Unmapped.Output))
	for k := range a.Unmapped.Output {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "device.id" {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%v", k, a.Unmapped.Output[k]))
	}
	if a.Count > 1 {
		parts = append(parts, fmt.Sprintf("x%d", a.Count))
	}
	return strings.Join(parts, " ")
}
