package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/pipeline"
	"github.com/edgeward/edgeward/pipeline/enrich"
	"github.com/edgeward/edgeward/pipeline/report"
	"github.com/edgeward/edgeward/rules"
	builtinpack "github.com/edgeward/edgeward/rules/builtin"
	"github.com/edgeward/edgeward/sensor"
)

// listFlag is a repeatable string flag; each use may hold several values
// separated by commas.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// pipelineFlags are the enrichment and rule flags of the commands that run
// the pipeline.
type pipelineFlags struct {
	rules     listFlag
	noBuiltin bool
	geoip     string
	asn       string
	anon      string
	intel     listFlag
}

func (f *pipelineFlags) register(fs *flag.FlagSet) {
	fs.Var(&f.rules, "rules", "rule file or directory adding to (or, by rule id, overriding) the built-in pack; repeatable")
	fs.BoolVar(&f.noBuiltin, "no-builtin", false, "do not load the built-in rule pack")
	fs.StringVar(&f.geoip, "geoip", "", "GeoIP country database (MaxMind GeoIP2/GeoLite2 Country or City, or ip-location-db country mmdb)")
	fs.StringVar(&f.asn, "asn", "", "ASN database (MaxMind GeoLite2-ASN schema)")
	fs.StringVar(&f.anon, "anon", "", "anonymizer database (MaxMind GeoIP2-Anonymous-IP schema)")
	fs.Var(&f.intel, "intel", "intel list file or directory (CIDRs, domains, AS numbers, JA4); repeatable")
}

// build loads the rules and databases. Missing databases are warnings,
// logged once; bad rules are errors.
func (f *pipelineFlags) build(log *slog.Logger) (*pipeline.Pipeline, *enrich.Enricher, error) {
	set, err := loadRuleSet(f.rules, !f.noBuiltin)
	if err != nil {
		return nil, nil, err
	}
	enr, err := enrich.New(enrich.Config{GeoIP: f.geoip, ASN: f.asn, Anon: f.anon, Intel: f.intel, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	p, err := pipeline.New(pipeline.Config{Rules: set, Enrich: enr, Logger: log})
	if err != nil {
		enr.Close()
		return nil, nil, err
	}
	return p, enr, nil
}

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: edgeward run -r FILE | -i IFACE [-mode afpacket|ebpf] [-o alerts.jsonl] [--report report.html] [flags]

Runs the sensor and the pipeline in one process: capture -> flows ->
enrichment -> rules (the built-in laptop-farm pack plus --rules) -> alerts,
written as JSON lines (OCSF Detection Findings, class 2004). A summary and,
on a terminal, a progress bar go to stderr.

Flags:
`)
		fs.PrintDefaults()
	}
	var sf sensorFlags
	sf.register(fs)
	var pf pipelineFlags
	pf.register(fs)
	out := fs.String("o", "", "write alerts to this file instead of stdout")
	flowsOut := fs.String("flows", "", "also write every flow record (JSON lines) to this file")
	reportOut := fs.String("report", "", "write a self-contained HTML report to this file")
	progress := fs.String("progress", "auto", "progress bar on stderr: auto (on a terminal, after a second), always, never")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := sf.checkSource(fs); err != nil {
		fmt.Fprintf(stderr, "edgeward run: %v\n", err)
		fs.Usage()
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	scfg, err := sf.config()
	if err != nil {
		fmt.Fprintf(stderr, "edgeward run: %v\n", err)
		if scfg == nil {
			return 2
		}
	}
	defer sf.followSessions(ctx)()
	p, enr, err := pf.build(log)
	if err != nil {
		fmt.Fprintf(stderr, "edgeward run: %v\n", err)
		return 2
	}
	defer enr.Close()

	job := localJob{
		sensor: *scfg, pipe: p, capture: sf.source(nil), input: sf.read, stderr: stderr, progress: *progress,
	}
	var closers []func() error
	create := func(path string) (*bufio.Writer, error) {
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		closers = append(closers, func() error { return errors.Join(bw.Flush(), f.Close()) })
		return bw, nil
	}
	job.alerts = bufio.NewWriterSize(stdout, 1<<16)
	closers = append(closers, job.alerts.(*bufio.Writer).Flush)
	if *out != "" {
		if job.alerts, err = create(*out); err != nil {
			fmt.Fprintf(stderr, "edgeward run: %v\n", err)
			return 1
		}
	}
	if *flowsOut != "" {
		if job.flows, err = create(*flowsOut); err != nil {
			fmt.Fprintf(stderr, "edgeward run: %v\n", err)
			return 1
		}
	}
	var reportFile *os.File
	if *reportOut != "" {
		// Created now, so that a path that cannot be written fails before
		// a long capture rather than after it.
		if reportFile, err = os.Create(*reportOut); err != nil {
			fmt.Fprintf(stderr, "edgeward run: %v\n", err)
			return 1
		}
		job.report = report.New()
	}
	res, rerr := job.run(ctx)
	var cerr error
	for _, c := range closers {
		cerr = errors.Join(cerr, c())
	}
	if job.report != nil {
		if err := writeReport(reportFile, job.report, report.Meta{
			Title: "edgeward report", Generated: time.Now().UTC(), Inputs: []string{sf.read + sf.iface},
			SensorID: scfg.Identity.SensorID, Site: scfg.Identity.Site, Version: version,
		}); err != nil {
			cerr = errors.Join(cerr, err)
		}
	}
	res.summary(stderr)
	if rerr != nil {
		fmt.Fprintf(stderr, "edgeward run: %v\n", rerr)
	}
	if cerr != nil {
		fmt.Fprintf(stderr, "edgeward run: writing output: %v\n", cerr)
		return 1
	}
	if rerr != nil && res.sensor.Packets == 0 {
		return 1
	}
	return 0
}

// writeReport writes the report to f and closes it.
func writeReport(f *os.File, r *report.Report, m report.Meta) error {
	bw := bufio.NewWriter(f)
	if err := r.WriteHTML(bw, m); err != nil {
		f.Close()
		return fmt.Errorf("report: %w", err)
	}
	return errors.Join(bw.Flush(), f.Close())
}

// localJob runs sensor and pipeline in one process. A channel of record
// batches stands where Kafka stands between the daemons, so that the two
// halves use a core each.
type localJob struct {
	sensor   sensor.Config
	pipe     *pipeline.Pipeline
	capture  captureFunc
	input    string         // the capture file, for progress; "" for live capture
	alerts   io.Writer      // alert JSON lines
	flows    io.Writer      // flow JSON lines; nil: not written
	report   *report.Report // nil: none
	stderr   io.Writer
	progress string
	// onAlert, when set, sees every alert (the demo summary).
	onAlert func(*rules.Alert)
}

// runResult is what a local run did.
type runResult struct {
	sensor   sensor.Stats
	flows    int64
	alerts   int64
	byRule   map[string]int
	findings map[string]bool
	elapsed  time.Duration
}

const batchSize = 256

func (j *localJob) run(ctx context.Context) (runResult, error) {
	res := runResult{byRule: map[string]int{}, findings: map[string]bool{}}
	start := time.Now()
	var prog sensor.Progress
	j.sensor.Progress = &prog
	var nFlows, nAlerts atomic.Int64

	batches := make(chan []*flow.Record, 16)
	free := make(chan []*flow.Record, 32)
	g, gctx := errgroup.WithContext(ctx)
	stopBar := j.startProgress(&prog, &nFlows, &nAlerts)
	defer stopBar()

	// Sensor: records are reused by the flow table after emit returns, so
	// each is cloned into the batch the pipeline will own.
	g.Go(func() error {
		defer close(batches)
		var batch []*flow.Record
		send := func() bool {
			select {
			case batches <- batch:
			case <-gctx.Done():
				return false
			}
			select {
			case batch = <-free:
				batch = batch[:0]
			default:
				batch = make([]*flow.Record, 0, batchSize)
			}
			return true
		}
		batch = make([]*flow.Record, 0, batchSize)
		st, err := j.capture(gctx, j.sensor, func(r *flow.Record) {
			batch = append(batch, r.Clone())
			if len(batch) == batchSize {
				send()
			}
		})
		if len(batch) > 0 {
			send()
		}
		res.sensor = st
		return err
	})

	// Pipeline: enrich, rules, alerts, report. The alerts and the flows
	// fail apart: a flows file that cannot be written stops the flows,
	// not the alerts.
	g.Go(func() error {
		var (
			buf        []byte
			aerr, ferr error
		)
		emit := func(a *rules.Alert) {
			nAlerts.Add(1)
			if a.ActivityID == rules.ActivityCreate {
				res.byRule[a.FindingInfo.Analytic.UID]++
			}
			res.findings[a.FindingInfo.UID] = true
			if j.report != nil {
				j.report.Alert(a)
			}
			if j.onAlert != nil {
				j.onAlert(a)
			}
			if aerr != nil {
				return
			}
			b, err := json.Marshal(a)
			if err != nil {
				aerr = err
				return
			}
			_, aerr = j.alerts.Write(append(b, '\n'))
		}
		for batch := range batches {
			for _, r := range batch {
				j.pipe.Process(r, emit)
				if j.report != nil {
					e := j.pipe.Enrichment()
					j.report.Flow(r, report.FlowInfo{DstCountry: e.Dst.Country, DstASN: e.Dst.ASN, DstASOrg: e.Dst.ASOrg, EgressCountry: e.Egress.Country})
				}
				if j.flows != nil && ferr == nil {
					buf = r.AppendJSON(buf[:0])
					_, ferr = j.flows.Write(append(buf, '\n'))
				}
			}
			nFlows.Add(int64(len(batch)))
			select {
			case free <- batch:
			default:
			}
		}
		j.pipe.Flush(emit)
		if ferr != nil {
			ferr = fmt.Errorf("writing flows: %w", ferr)
		}
		if aerr != nil {
			aerr = fmt.Errorf("writing alerts: %w", aerr)
		}
		return errors.Join(aerr, ferr)
	})
	err := g.Wait()
	res.flows, res.alerts, res.elapsed = nFlows.Load(), nAlerts.Load(), time.Since(start)
	return res, err
}

// startProgress draws a one-line progress bar on stderr while the job runs,
// from the first second on, when stderr is a terminal (or always/never as
// asked). It returns the function that stops and clears it.
func (j *localJob) startProgress(p *sensor.Progress, flows, alerts *atomic.Int64) func() {
	show := j.progress == "always" && j.input != ""
	if j.progress == "auto" && j.input != "" {
		if f, ok := j.stderr.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				show = true
			}
		}
	}
	if !show {
		return func() {}
	}
	var size int64
	if fi, err := os.Stat(j.input); err == nil {
		size = fi.Size()
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		start := time.Now()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		drawn := false
		for {
			select {
			case <-done:
				if drawn {
					fmt.Fprint(j.stderr, "\r\033[K")
				}
				return
			case now := <-t.C:
				el := now.Sub(start)
				if el < time.Second {
					continue
				}
				pk := p.Packets.Load()
				// Each record has a 16-byte header on disk.
				frac := 0.0
				if size > 0 {
					frac = min(1, float64(p.Bytes.Load()+16*pk)/float64(size))
				}
				const width = 24
				n := int(frac * width)
				bar := strings.Repeat("#", n) + strings.Repeat(".", width-n)
				fmt.Fprintf(j.stderr, "\r\033[K[%s] %3.0f%%  %d packets  %d flows  %d alerts  %.0f packets/s",
					bar, frac*100, pk, flows.Load(), alerts.Load(), float64(pk)/el.Seconds())
				drawn = true
			}
		}
	}()
	return func() {
		select {
		case <-done:
		default:
			close(done)
			<-stopped
		}
	}
}

func (r *runResult) summary(w io.Writer) {
	rate := 0.0
	if s := r.elapsed.Seconds(); s > 0 {
		rate = float64(r.sensor.Packets) / s
	}
	fmt.Fprintf(w, "edgeward run: %d packets, %d flows, %d alerts (%d findings), %s, %.0f packets/s\n",
		r.sensor.Packets, r.flows, r.alerts, len(r.findings), r.elapsed.Round(time.Millisecond), rate)
	if len(r.byRule) == 0 {
		return
	}
	ids := make([]string, 0, len(r.byRule))
	for id := range r.byRule {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(a, b int) bool {
		if r.byRule[ids[a]] != r.byRule[ids[b]] {
			return r.byRule[ids[a]] > r.byRule[ids[b]]
		}
		return ids[a] < ids[b]
	})
	for _, id := range ids {
		fmt.Fprintf(w, "  %5d  %s\n", r.byRule[id], id)
	}
}

// loadRuleSet compiles the built-in pack (unless builtin is false) and the
// user's rule paths against the pipeline's schema.
func loadRuleSet(paths []string, builtin bool) (*rules.Set, error) {
	schema, err := pipeline.Schema()
	if err != nil {
		return nil, err
	}
	opts := rules.Options{Schema: schema}
	if builtin {
		opts.Builtin = builtinpack.FS()
	}
	return rules.Load(paths, opts)
}
