package consume

import (
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// metrics are the consumer's Prometheus metrics.
type metrics struct {
	consumed    prometheus.Counter
	dlq         *prometheus.CounterVec
	lag         *prometheus.GaugeVec
	repLag      *prometheus.GaugeVec
	assigned    *prometheus.GaugeVec
	generations *prometheus.CounterVec
	evaluations prometheus.Counter
	alerts      *prometheus.CounterVec
	published   prometheus.Counter
	forwarded   prometheus.Counter
	repConsumed prometheus.Counter
	duplicates  prometheus.Counter
	unrouted    prometheus.Counter
	held        prometheus.Gauge
	late        prometheus.Counter
	replayed    *prometheus.CounterVec
	pubErrors   prometheus.Counter
	commitErr   prometheus.Counter
	lost        prometheus.Counter
	// The rule set as a whole; the engines' own reload metrics are
	// dropped from the merged engine metrics.
	loaded         prometheus.Gauge
	reloadFailures prometheus.Counter
	lastReloadOK   prometheus.Gauge
	engines        *engineMetrics
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		consumed:       prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_consumed_records_total", Help: "Records read from the flows topic (replayed ones included)."}),
		dlq:            prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeward_dlq_records_total", Help: "Records sent to the dead-letter topic, by reason (decode, version, content_type, repartition_too_large)."}, []string{"reason"}),
		lag:            prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "edgeward_consumer_lag", Help: "Records of the flows topic not yet read, by partition this instance owns."}, []string{"partition"}),
		repLag:         prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "edgeward_repartition_lag", Help: "Records of the repartition topic not yet read, by partition this instance owns."}, []string{"partition"}),
		assigned:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "edgeward_assigned_partitions", Help: "Partitions this instance owns, by topic."}, []string{"topic"}),
		generations:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeward_consumer_generations_total", Help: "Consumer group generations joined (rebalances), by topic."}, []string{"topic"}),
		evaluations:    prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_rules_evaluations_total", Help: "Flows run through the rules (flows topic and repartition topic)."}),
		alerts:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeward_alerts_total", Help: "Alerts opened (activity Create), by rule, severity and category."}, []string{"rule", "severity", "category"}),
		published:      prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_alerts_published_total", Help: "Alerts (Create and Update) acknowledged by the alerts topic."}),
		forwarded:      prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_repartition_forwarded_total", Help: "Flows sent to the repartition topic for rules not keyed by device (once per key group)."}),
		repConsumed:    prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_repartition_consumed_total", Help: "Records read from the repartition topic."}),
		duplicates:     prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_repartition_duplicates_total", Help: "Repartitioned flows dropped because they were forwarded again after a crash or rebalance."}),
		unrouted:       prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_repartition_unrouted_total", Help: "Repartitioned flows whose key group the running rules no longer have."}),
		held:           prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgeward_repartition_held_records", Help: "Repartitioned flows waiting in the reorder buffer for their turn in export order (reorder_delay)."}),
		late:           prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_repartition_reorder_late_total", Help: "Repartitioned flows evaluated after a flow the sensor exported later: they arrived more than reorder_delay behind it."}),
		replayed:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeward_rebuild_records_total", Help: "Records re-read before the committed offset to rebuild rule state on taking over a partition, by topic."}, []string{"topic"}),
		pubErrors:      prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_publish_errors_total", Help: "Failed attempts to publish a batch's alerts, forwarded flows and dead letters (retried)."}),
		commitErr:      prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_commit_errors_total", Help: "Failed offset commits (the next commit covers them)."}),
		lost:           prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_partition_resets_total", Help: "Partitions whose state was dropped because their batch could not be published before they were reassigned; their next owner re-reads them."}),
		loaded:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgeward_rules_loaded", Help: "Rules in the running set."}),
		reloadFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_rules_reload_failures_total", Help: "Rule reloads rejected because the new set was invalid."}),
		lastReloadOK:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgeward_rules_last_reload_successful", Help: "1 if the last rule reload succeeded, else 0."}),
		engines:        newEngineMetrics(),
	}
	m.lastReloadOK.Set(1)
	if reg != nil {
		reg.MustRegister(m.consumed, m.dlq, m.lag, m.repLag, m.assigned, m.generations, m.evaluations, m.alerts, m.published,
			m.forwarded, m.repConsumed, m.duplicates, m.unrouted, m.held, m.late, m.replayed, m.pubErrors, m.commitErr, m.lost,
			m.loaded, m.reloadFailures, m.lastReloadOK, m.engines)
	}
	return m
}

// engineMetrics merges the rule engines' metrics. Every partition has its
// own engines (their state is the partition's), each registering the
// rules' metrics on a private registry; this collector sums their
// counters by label set, and keeps the counts of released partitions so
// that the sums never go down.
type engineMetrics struct {
	mu      sync.Mutex
	live    map[*prometheus.Registry]bool
	retired map[string]*family
	descs   map[string]*prometheus.Desc
}

// family is a summed counter family.
type family struct {
	help   string
	labels []string
	series map[string]*series // by label values joined with NUL
}

type series struct {
	values []string
	v      float64
}

// engineSkip are engine families that describe one engine, not the sum:
// the consumer exports its own.
var engineSkip = [...]string{"edgeward_rules_loaded", "edgeward_rules_reload_failures_total", "edgeward_rules_last_reload_successful"}

func newEngineMetrics() *engineMetrics {
	return &engineMetrics{live: map[*prometheus.Registry]bool{}, retired: map[string]*family{}, descs: map[string]*prometheus.Desc{}}
}

// registry returns a registry for a new partition's engines.
func (m *engineMetrics) registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	m.mu.Lock()
	m.live[reg] = true
	m.mu.Unlock()
	return reg
}

// release keeps the counts of a released partition's engines.
func (m *engineMetrics) release(reg *prometheus.Registry) {
	mfs, _ := reg.Gather()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.live[reg] {
		return
	}
	delete(m.live, reg)
	add(m.retired, mfs)
}

// Describe sends nothing: the families depend on the rules loaded, so the
// collector is unchecked.
func (m *engineMetrics) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (m *engineMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	sum := map[string]*family{}
	for name, f := range m.retired {
		c := &family{help: f.help, labels: f.labels, series: make(map[string]*series, len(f.series))}
		for k, s := range f.series {
			c.series[k] = &series{values: s.values, v: s.v}
		}
		sum[name] = c
	}
	regs := make([]*prometheus.Registry, 0, len(m.live))
	for reg := range m.live {
		regs = append(regs, reg)
	}
	m.mu.Unlock()
	for _, reg := range regs {
		mfs, _ := reg.Gather()
		add(sum, mfs)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, f := range sum {
		key := name + "\x00" + strings.Join(f.labels, "\x00")
		d := m.descs[key]
		if d == nil {
			d = prometheus.NewDesc(name, f.help, f.labels, nil)
			m.descs[key] = d
		}
		for _, s := range f.series {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, s.v, s.values...)
		}
	}
}

// add sums the counter families of mfs into sum.
func add(sum map[string]*family, mfs []*dto.MetricFamily) {
	for _, mf := range mfs {
		if mf.GetType() != dto.MetricType_COUNTER || slices.Contains(engineSkip[:], mf.GetName()) {
			continue
		}
		for _, mt := range mf.GetMetric() {
			labels := make([]string, 0, len(mt.GetLabel()))
			values := make([]string, 0, len(mt.GetLabel()))
			for _, lp := range mt.GetLabel() {
				labels, values = append(labels, lp.GetName()), append(values, lp.GetValue())
			}
			f := sum[mf.GetName()]
			if f == nil {
				f = &family{help: mf.GetHelp(), labels: labels, series: map[string]*series{}}
				sum[mf.GetName()] = f
			}
			if !slices.Equal(f.labels, labels) {
				continue // not one of ours: engines register fixed label sets
			}
			k := strings.Join(values, "\x00")
			s := f.series[k]
			if s == nil {
				s = &series{values: values}
				f.series[k] = s
			}
			s.v += mt.GetCounter().GetValue()
		}
	}
}
