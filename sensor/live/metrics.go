package live

import "github.com/prometheus/client_golang/prometheus"

// Collector exports a source's loss counters as
// edgeward_capture_drops_total{source}, source being "socket" (AF_PACKET
// ring full), "ringbuf" (eBPF ring buffer full) or "map_full" (eBPF flows
// map full). Register it with the daemon's registry.
func Collector(src Source) prometheus.Collector { return collector{src} }

type collector struct{ src Source }

var dropsDesc = prometheus.NewDesc("edgeward_capture_drops_total",
	"Packets or events the live capture lost, by where they were lost.", []string{"source"}, nil)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- dropsDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Stats()
	ch <- prometheus.MustNewConstMetric(dropsDesc, prometheus.CounterValue, float64(s.SocketDrops), "socket")
	ch <- prometheus.MustNewConstMetric(dropsDesc, prometheus.CounterValue, float64(s.RingbufDrops), "ringbuf")
	ch <- prometheus.MustNewConstMetric(dropsDesc, prometheus.CounterValue, float64(s.MapFull), "map_full")
}
