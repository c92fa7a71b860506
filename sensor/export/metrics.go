package export

import (
	"github.com/edgeward/edgeward/sensor/export/spool"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the exporter's Prometheus metrics.
type Metrics struct {
	records  prometheus.Counter
	errors   prometheus.Counter
	batches  prometheus.Counter
	spooled  prometheus.Counter
	replayed prometheus.Counter
	rejected prometheus.Counter
	skipped  prometheus.Counter // spooled records this version cannot read
	up       prometheus.Gauge

	reg   prometheus.Registerer
	spool []prometheus.Collector
}

// NewMetrics creates the metrics and registers them on reg (if not nil).
// The spool's gauges are registered when an Exporter starts.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		records:  prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_export_records_total", Help: "Flow records Kafka acknowledged (acks=all), sent directly or replayed from the spool."}),
		errors:   prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_export_errors_total", Help: "Kafka writes that failed (each after the client's retries); their records went to the spool."}),
		batches:  prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_export_batches_total", Help: "Batches Kafka acknowledged."}),
		spooled:  prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_export_spooled_records_total", Help: "Flow records written to the disk spool because Kafka was unreachable or behind."}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_spool_replayed_records_total", Help: "Flow records sent from the spool to Kafka."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_export_rejected_records_total", Help: "Flow records Kafka refused for good (too large, invalid); dropped, not retried."}),
		skipped:  prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_spool_unreadable_records_total", Help: "Spooled flow records this version cannot read (spooled by a newer version before a downgrade); skipped, so lost."}),
		up:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgeward_export_kafka_up", Help: "1 when the last Kafka write succeeded and nothing waits in the spool, else 0."}),
		reg:      reg,
	}
	if reg != nil {
		reg.MustRegister(m.records, m.errors, m.batches, m.spooled, m.replayed, m.rejected, m.skipped, m.up)
	}
	return m
}

// watch registers the spool's gauges, replacing those of a previous spool.
func (m *Metrics) watch(sp *spool.Spool) {
	if m.reg == nil {
		return
	}
	for _, c := range m.spool {
		m.reg.Unregister(c)
	}
	m.spool = []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgeward_spool_bytes", Help: "Bytes of the disk spool's segments."},
			func() float64 { return float64(sp.Stats().Bytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgeward_spool_segments", Help: "Segment files in the disk spool."},
			func() float64 { return float64(sp.Stats().Segments) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgeward_spool_records", Help: "Flow records waiting in the disk spool."},
			func() float64 { return float64(sp.Stats().Records) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgeward_spool_dropped_records_total", Help: "Flow records dropped, oldest first, because the spool reached its size cap."},
			func() float64 { return float64(sp.Stats().Dropped) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgeward_spool_torn_records_total", Help: "Damaged records (a crash mid-write) skipped when the spool was opened."},
			func() float64 { return float64(sp.Stats().Torn) }),
	}
	m.reg.MustRegister(m.spool...)
}
