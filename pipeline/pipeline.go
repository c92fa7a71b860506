package pipeline

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/pipeline/enrich"
	"github.com/edgeward/edgeward/rules"
)

// Enricher looks up what the pipeline knows about a flow's addresses and
// names (enrich.Enricher implements it).
type Enricher interface {
	Enrich(rec *flow.Record, r *enrich.Result)
}

// Config configures a Pipeline.
type Config struct {
	// Rules is the rule set to run; compile it against Schema().
	Rules *rules.Set
	// Enrich may be nil: the enrichment fields are then absent.
	Enrich    Enricher
	Logger    *slog.Logger
	Registry  prometheus.Registerer
	MaxGroups int // per rule, see rules.EngineConfig
}

// Pipeline is the per-flow half of edgeward after the sensor: enrich a
// record, evaluate the rules on it, hand the alerts on. One Pipeline
// belongs to one goroutine; run several (one per consumer) to use more
// cores.
type Pipeline struct {
	enr    Enricher
	engine *rules.Engine
	in     rules.Input
	res    enrich.Result
	h      handles
}

// handles are the rule fields enrichment fills, by side.
type handles struct {
	side  [3]sideHandles // src, dst, egress
	intel [4]rules.Handle
}

type sideHandles struct {
	country, asn, asOrg rules.Handle
	anon                [5]rules.Handle
}

// New builds a pipeline running cfg.Rules.
func New(cfg Config) (*Pipeline, error) {
	if cfg.Rules == nil {
		return nil, fmt.Errorf("pipeline: no rule set")
	}
	p := &Pipeline{
		enr: cfg.Enrich,
		engine: rules.NewEngine(cfg.Rules, rules.EngineConfig{
			Logger: cfg.Logger, Registry: cfg.Registry, MaxGroups: cfg.MaxGroups,
		}),
	}
	s := cfg.Rules.Schema()
	get := func(name string) (rules.Handle, error) {
		h, ok := s.Handle(name)
		if !ok {
			return h, fmt.Errorf("pipeline: rule set compiled without the enrichment field %s; compile it with pipeline.Schema()", name)
		}
		return h, nil
	}
	var err error
	for i, side := range Sides {
		sh := &p.h.side[i]
		if sh.country, err = get(side + ".geo.country"); err != nil {
			return nil, err
		}
		if sh.asn, err = get(side + ".as.number"); err != nil {
			return nil, err
		}
		if sh.asOrg, err = get(side + ".as.org"); err != nil {
			return nil, err
		}
		for j, flag := range AnonFlags {
			if sh.anon[j], err = get(side + ".anon." + flag); err != nil {
				return nil, err
			}
		}
	}
	for i, k := range IntelKinds {
		if p.h.intel[i], err = get("intel." + k); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Engine is the rule engine, for hot reload (Engine.Swap) and metrics.
func (p *Pipeline) Engine() *rules.Engine { return p.engine }

// Enrichment is what enrichment found for the flow last processed; valid
// until the next call to Process.
func (p *Pipeline) Enrichment() *enrich.Result { return &p.res }

// Process enriches rec, evaluates the rules and calls emit for every
// alert. rec is not retained.
func (p *Pipeline) Process(rec *flow.Record, emit func(*rules.Alert)) {
	p.res = enrich.Result{}
	if p.enr != nil {
		p.enr.Enrich(rec, &p.res)
	}
	in := &p.in
	in.Reset(rec)
	p.setSide(&p.h.side[0], &p.res.Src)
	p.setSide(&p.h.side[1], &p.res.Dst)
	if rec.Egress != nil {
		p.setSide(&p.h.side[2], &p.res.Egress)
	}
	for i, v := range [...]string{p.res.Intel.IP, p.res.Intel.Domain, p.res.Intel.ASN, p.res.Intel.JA4} {
		if v != "" {
			in.SetString(p.h.intel[i], v)
		}
	}
	p.engine.Evaluate(in, emit)
}

func (p *Pipeline) setSide(h *sideHandles, s *enrich.Side) {
	in := &p.in
	if s.Country != "" {
		in.SetString(h.country, s.Country)
	}
	if s.ASN != 0 {
		in.SetInt(h.asn, int64(s.ASN))
	}
	if s.ASOrg != "" {
		in.SetString(h.asOrg, s.ASOrg)
	}
	if s.AnonKnown {
		a := &s.Anon
		for i, v := range [...]bool{a.VPN, a.Hosting, a.Tor, a.PublicProxy, a.ResidentialProxy} {
			in.SetBool(h.anon[i], v)
		}
	}
}

// Flush closes the open alerts and windows (end of input, shutdown).
func (p *Pipeline) Flush(emit func(*rules.Alert)) { p.engine.Flush(emit) }
