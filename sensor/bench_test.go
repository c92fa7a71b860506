package sensor_test

import (
	"context"
	"os"
	"testing"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor"
)

// BenchmarkReadFile measures the whole `edgeward flows` path (read, decode,
// flow table, JSON encoding) on a capture. EDGEWARD_BENCH_PCAP names the
// capture; by default the shared generator makes a small one.
func BenchmarkReadFile(b *testing.B) {
	path := os.Getenv("EDGEWARD_BENCH_PCAP")
	if path == "" {
		path, _ = makeCapture(b, 20000, 60)
	}
	var buf []byte
	emit := func(r *flow.Record) { buf = r.AppendJSON(buf[:0]) }
	var pkts int64
	b.ResetTimer()
	for b.Loop() {
		st, err := sensor.ReadFile(context.Background(), path, sensor.Config{}, emit)
		if err != nil {
			b.Fatal(err)
		}
		pkts += st.Packets
	}
	b.ReportMetric(float64(pkts)/b.Elapsed().Seconds(), "packets/s")
}

// BenchmarkReadFileNoMetadata is BenchmarkReadFile without payload
// inspection: the flow core and device attribution.
func BenchmarkReadFileNoMetadata(b *testing.B) {
	path := os.Getenv("EDGEWARD_BENCH_PCAP")
	if path == "" {
		path, _ = makeCapture(b, 20000, 60)
	}
	var buf []byte
	emit := func(r *flow.Record) { buf = r.AppendJSON(buf[:0]) }
	var pkts int64
	for b.Loop() {
		st, err := sensor.ReadFile(context.Background(), path, sensor.Config{NoInspect: true}, emit)
		if err != nil {
			b.Fatal(err)
		}
		pkts += st.Packets
	}
	b.ReportMetric(float64(pkts)/b.Elapsed().Seconds(), "packets/s")
}
