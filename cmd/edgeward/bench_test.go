package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/cputime"
	"github.com/edgeward/edgeward/internal/demo"
	"github.com/edgeward/edgeward/rules"
)

// BenchmarkPipelineStages measures the pipeline half on decoded records:
// enrichment (the demo's GeoIP, ASN and anonymizer databases), the
// built-in pack and alert encoding, on the flows of the demo day (about
// 7k records, mostly benign, with the story's alerts). It reports
// flows per CPU-second, the per-core rate on a shared machine.
//
//	go test ./cmd/edgeward -run '^$' -bench PipelineStages -benchtime 2000000x
func BenchmarkPipelineStages(b *testing.B) {
	sc, err := demo.Build(demo.Options{Dir: b.TempDir(), Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	var sf sensorFlags
	sf.read, sf.inv, sf.sessions = sc.Capture, sc.Inventory, sc.Sessions
	sf.cfg.Identity.Site, sf.cfg.Identity.SensorID = sc.Site, sc.SensorID
	for _, p := range sc.Internal {
		sf.cfg.Identity.Internal = append(sf.cfg.Identity.Internal, p)
	}
	scfg, err := sf.config()
	if err != nil {
		b.Fatal(err)
	}
	var recs []*flow.Record
	if _, err := sf.source(nil)(context.Background(), *scfg, func(r *flow.Record) { recs = append(recs, r.Clone()) }); err != nil {
		b.Fatal(err)
	}
	pf := pipelineFlags{geoip: sc.GeoIP, asn: sc.ASN, anon: sc.Anon}
	p, enr, err := pf.build(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer enr.Close()
	starts := make([]time.Time, len(recs))
	durs := make([]time.Duration, len(recs))
	span := recs[len(recs)-1].End.Sub(recs[0].Start) + time.Hour
	for i, r := range recs {
		starts[i], durs[i] = r.Start, r.End.Sub(r.Start)
	}
	alerts := 0
	emit := func(a *rules.Alert) {
		alerts++
		if _, err := json.Marshal(a); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	cpu0 := cputime.Now()
	for i := 0; b.Loop(); i++ {
		j := i % len(recs)
		r := recs[j]
		// Each pass over the day is a later day, so windows move on.
		r.Start = starts[j].Add(time.Duration(i/len(recs)) * span)
		r.End = r.Start.Add(durs[j])
		p.Process(r, emit)
	}
	cpu := cputime.Now() - cpu0
	if cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "flows/cpu-s")
	}
	b.ReportMetric(float64(alerts)/float64(b.N)*1000, "alerts/kflow")
}
