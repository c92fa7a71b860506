package enrich

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	collectors   []prometheus.Collector
	dbLookups    [len(roles)][nOutcomes]prometheus.Counter
	reloads      *prometheus.CounterVec
	epoch        *prometheus.GaugeVec
	intelEntries *prometheus.GaugeVec
	intelSkipped prometheus.Gauge
}

func newMetrics(c *cache) *metrics {
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgeward_enrich_database_lookups_total",
		Help: "Database lookups (cache misses for public addresses), by database and result (found, not_found, error).",
	}, []string{"database", "result"})
	m := &metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgeward_enrich_reloads_total",
			Help: "Reloads of a database or the intel lists after a change on disk, by database and result (ok, error); after an error the previous one stays in use.",
		}, []string{"database", "result"}),
		epoch: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edgeward_enrich_database_build_epoch_seconds",
			Help: "Build time (metadata build_epoch) of the database in use, by database.",
		}, []string{"database"}),
		intelEntries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edgeward_enrich_intel_entries",
			Help: "Entries in the intel lists in use, by kind (ip, domain, asn, ja4).",
		}, []string{"kind"}),
		intelSkipped: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edgeward_enrich_intel_skipped_entries",
			Help: "Intel list entries skipped as malformed in the lists in use.",
		}),
	}
	for i, role := range roles {
		for o, name := range outcomeNames {
			m.dbLookups[i][o] = lookups.WithLabelValues(role, name)
		}
	}
	// The cache counts under its shard locks; these read the sums when
	// scraped, so a flow pays no atomic operation for them.
	addrLookups := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "edgeward_enrich_lookups_total",
		Help: "Address lookups (three per flow at most: src, dst, egress).",
	}, func() float64 { l, _ := c.counts(); return float64(l) })
	hits := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "edgeward_enrich_cache_hits_total",
		Help: "Address lookups answered from the cache.",
	}, func() float64 { _, h := c.counts(); return float64(h) })
	m.collectors = []prometheus.Collector{lookups, m.reloads, m.epoch, m.intelEntries, m.intelSkipped, addrLookups, hits}
	return m
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
