package export

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/config"
	"github.com/edgeward/edgeward/internal/cputime"
	"github.com/edgeward/edgeward/internal/kafkaconn"
	"github.com/edgeward/edgeward/internal/kafkatest"
	"github.com/edgeward/edgeward/sensor/export/spool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// checkTopic reads the topic back and checks it holds records 0..n-1
// exactly once, each key on one partition and in order there.
func checkTopic(t *testing.T, c *kafkatest.Cluster, topic string, n int) {
	t.Helper()
	recs := c.Records(topic)
	seen := make(map[string]int, n)
	part := map[string]int32{}
	last := map[string]string{}
	var r flow.Record
	for _, m := range recs {
		if m.Headers[HeaderContentType] != flow.ContentType {
			t.Fatalf("partition %d offset %d: content-type %q", m.Partition, m.Offset, m.Headers[HeaderContentType])
		}
		if err := flow.DecodeBinary(m.Value, &r); err != nil {
			t.Fatalf("partition %d offset %d: %v", m.Partition, m.Offset, err)
		}
		seen[r.ID]++
		k := string(m.Key)
		if p, ok := part[k]; ok && p != m.Partition {
			t.Fatalf("key %s on partitions %d and %d", k, p, m.Partition)
		}
		part[k] = m.Partition
		if prev := last[k]; prev >= r.ID {
			t.Fatalf("key %s: record %s after %s (partition %d offset %d)", k, r.ID, prev, m.Partition, m.Offset)
		}
		last[k] = r.ID
	}
	missing, dup := 0, 0
	for i := range n {
		switch seen[fmt.Sprintf("%016x", i)] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
	}
	if len(recs) != n || missing > 0 || dup > 0 {
		t.Fatalf("topic holds %d records for %d exported: %d missing, %d duplicated", len(recs), n, missing, dup)
	}
}

func TestKafka(t *testing.T) {
	for _, comp := range []string{"lz4", "zstd", "snappy", "gzip", "none"} {
		t.Run(comp, func(t *testing.T) {
			c := kafkatest.Start(t, kafkatest.Topic(DefaultTopic, 3))
			topic := c.Topic(DefaultTopic)
			e, err := New(Config{Brokers: c.Addrs(), Topic: topic, Compression: comp, BatchRecords: 300, Linger: 10 * time.Millisecond, Spool: spool.Options{Dir: t.TempDir()}})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2000 {
				e.Export(rec(i))
			}
			if err := e.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if st := e.Stats(); st.Exported != 2000 || st.Spooled != 0 {
				t.Errorf("stats %+v", st)
			}
			checkTopic(t, c, topic, 2000)
		})
	}
}

// TestKafkaTLSAndSASL connects through the shared connection settings.
func TestKafkaTLSAndSASL(t *testing.T) {
	for _, mech := range []string{"plain", "scram-sha-256", "scram-sha-512"} {
		t.Run(mech, func(t *testing.T) {
			c := kafkatest.Start(t, kafkatest.Topic(DefaultTopic, 2), kafkatest.SASL(map[string]string{"plain": "PLAIN", "scram-sha-256": "SCRAM-SHA-256", "scram-sha-512": "SCRAM-SHA-512"}[mech], "edge", "s3cret"), kafkatest.TLS())
			pw := filepath.Join(t.TempDir(), "pw")
			os.WriteFile(pw, []byte("s3cret\n"), 0o600)
			conn := kafkaconn.Config{Brokers: c.Addrs(),
				TLS:  kafkaconn.TLS{Enabled: true, CAFile: c.CAFile()},
				SASL: kafkaconn.SASL{Mechanism: mech, Username: "edge", PasswordFile: pw}}
			tr, err := conn.Transport("edgeward-test")
			if err != nil {
				t.Fatal(err)
			}
			e, err := New(Config{Brokers: c.Addrs(), Topic: c.Topic(DefaultTopic), Transport: tr, Spool: spool.Options{Dir: t.TempDir()}})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 100 {
				e.Export(rec(i))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			e.Close(ctx)
			if st := e.Stats(); st.Exported != 100 {
				t.Fatalf("stats %+v", st)
			}
			checkTopic(t, c, c.Topic(DefaultTopic), 100)
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		c := kafkatest.Start(t, kafkatest.Topic(DefaultTopic, 1), kafkatest.SASL("PLAIN", "edge", "s3cret"))
		conn := kafkaconn.Config{Brokers: c.Addrs(), SASL: kafkaconn.SASL{Mechanism: "plain", Username: "edge", Password: config.Secret("nope")}}
		tr, _ := conn.Transport("edgeward-test")
		e, err := New(Config{Brokers: c.Addrs(), Topic: c.Topic(DefaultTopic), Transport: tr, Spool: spool.Options{Dir: t.TempDir()}, Linger: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		e.Export(rec(1))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		e.Close(ctx)
		if st := e.Stats(); st.Exported != 0 || st.Spool.Records != 1 {
			t.Errorf("stats %+v: the record should wait in the spool", st)
		}
	})
}

// TestKafkaOutage stops the broker for 31 s while the exporter keeps
// exporting, then starts it again: every record arrives exactly once, in
// order per key, the spool drains, and the metrics show it.
func TestKafkaOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 40 s")
	}
	c := kafkatest.Start(t, kafkatest.Topic(DefaultTopic, 3))
	topic := c.Topic(DefaultTopic)
	reg := prometheus.NewRegistry()
	e, err := New(Config{Brokers: c.Addrs(), Topic: topic, BatchRecords: 200, Linger: 20 * time.Millisecond,
		Handoff: 200 * time.Millisecond, RetryMin: 100 * time.Millisecond, RetryMax: time.Second,
		Spool: spool.Options{Dir: t.TempDir(), SegmentBytes: 256 << 10}, Metrics: NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // about 500 flows/s, as a busy gateway's sensor
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				e.Export(rec(int(n.Load())))
				n.Add(1)
			}
		}
	})
	waitFor := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; stats %+v", what, e.Stats())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("the first records to reach Kafka", 10*time.Second, func() bool { return e.Stats().Exported > 200 })

	c.Stop()
	down := time.Now()
	waitFor("spooling", 10*time.Second, func() bool { return e.Stats().Spooling })
	if ok, _ := e.Ready(); ok {
		t.Error("ready while the broker is down")
	}
	time.Sleep(31*time.Second - time.Since(down))
	during := e.Stats()
	if gather(t, reg, "edgeward_spool_bytes") == 0 || gather(t, reg, "edgeward_export_errors_total") == 0 || gather(t, reg, "edgeward_export_kafka_up") != 0 {
		t.Errorf("metrics during the outage: spool_bytes %v errors %v up %v", gather(t, reg, "edgeward_spool_bytes"),
			gather(t, reg, "edgeward_export_errors_total"), gather(t, reg, "edgeward_export_kafka_up"))
	}
	t.Logf("after %s down: %d exported, %d records spooled in %d bytes, %d failed writes",
		time.Since(down).Round(time.Second), during.Exported, during.Spool.Records, during.Spool.Bytes, during.Failures)

	c.Restart()
	waitFor("the spool to drain", 20*time.Second, func() bool { return !e.Stats().Spooling })
	time.Sleep(time.Second) // direct export again
	close(stop)
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := e.Stats()
	total := int(n.Load())
	t.Logf("%d records: %d spooled and replayed, spool now %d bytes", total, st.Replayed, st.Spool.Bytes)
	if st.Spooled < uint64(during.Spool.Records) || st.Replayed != st.Spooled || st.Spool.Records != 0 || st.Spool.Bytes != 0 {
		t.Errorf("stats %+v", st)
	}
	for name, want := range map[string]float64{
		"edgeward_export_records_total":         float64(total),
		"edgeward_spool_replayed_records_total": float64(st.Replayed),
		"edgeward_export_spooled_records_total": float64(st.Spooled),
		"edgeward_spool_bytes":                  0,
		"edgeward_spool_dropped_records_total":  0,
		"edgeward_export_kafka_up":              1,
	} {
		if got := gather(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	checkTopic(t, c, topic, total)
}

// BenchmarkExporter measures the exporter's cost per record against a
// broker in blackhole mode (it acknowledges without storing) running in a
// child process, so that cpu-ns/record is the client's CPU time alone
// (user+system, all its goroutines). Baselines in the same run: the same
// exporter over kafka-go's Writer (kafka-go-writer), and the encoding
// alone.
func BenchmarkExporter(b *testing.B) {
	recs := make([]*flow.Record, 1000)
	for i := range recs {
		recs[i] = rec(i)
	}
	addr := brokerProcess(b)
	for _, comp := range []string{"lz4", "zstd", "none", "kafka-go-writer/lz4"} {
		b.Run(comp, func(b *testing.B) {
			topic := DefaultTopic
			cfg := Config{Brokers: []string{addr}, Topic: topic, Compression: comp, Spool: spool.Options{Dir: b.TempDir()}}
			if name, ok := strings.CutPrefix(comp, "kafka-go-writer/"); ok {
				cfg.Compression = name
				cfg.Writer = &kafka.Writer{Addr: kafka.TCP(addr), Topic: cfg.Topic, Balancer: &kafka.Murmur2Balancer{},
					BatchSize: 1000, BatchBytes: 2 << 20, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll, Compression: kafka.Lz4}
			}
			e, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range recs { // connect, learn the partitions
				e.Export(r)
			}
			waitExported(b, e, uint64(len(recs)))
			before := e.Stats().Exported
			cpu0 := cputime.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				e.Export(recs[i%len(recs)])
			}
			if err := e.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cpu := cputime.Now() - cpu0
			if got := e.Stats().Exported - before; got != uint64(b.N) {
				b.Fatalf("exported %d of %d", got, b.N)
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/record")
		})
	}
	b.Run("encode-baseline", func(b *testing.B) {
		buf := make([]byte, 0, 1<<20)
		b.ReportAllocs()
		cpu0 := cputime.Now()
		for i := range b.N {
			if len(buf) > 1<<19 {
				buf = buf[:0]
			}
			buf = appendKey(buf, recs[i%len(recs)])
			buf = recs[i%len(recs)].AppendBinary(buf)
		}
		b.ReportMetric(float64((cputime.Now()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/record")
	})
}

// brokerProcess starts TestBrokerProcess in a child process and returns
// its address.
func brokerProcess(b *testing.B) string {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestBrokerProcess$")
	cmd.Env = append(os.Environ(), "EDGEWARD_BROKER_PROCESS=1")
	out, _ := cmd.StdoutPipe()
	stdin, _ := cmd.StdinPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("broker process: %v", err)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "broker "))
}

// TestBrokerProcess is the child of brokerProcess: a blackhole broker
// until its stdin closes.
func TestBrokerProcess(t *testing.T) {
	if os.Getenv("EDGEWARD_BROKER_PROCESS") == "" {
		t.Skip("run by BenchmarkExporter")
	}
	c := kafkatest.Start(t, kafkatest.Topic(DefaultTopic, 3), kafkatest.Blackhole())
	fmt.Printf("broker %s\n", c.Addrs()[0])
	io.Copy(io.Discard, os.Stdin)
}

func waitExported(b *testing.B, e *Exporter, n uint64) {
	deadline := time.Now().Add(10 * time.Second)
	for e.Stats().Exported < n {
		if time.Now().After(deadline) {
			b.Fatalf("warm-up: %+v", e.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFullBatchFitsBrokerLimit: with compression none, a full batch
// (BatchBytes, 1 MiB by default) on one partition is larger than the
// broker's default message.max.bytes (1,048,588 bytes for a partition's
// record batch). Kafka refuses the batch as a whole; its records are good
// and must arrive, not be dropped as rejected.
func TestFullBatchFitsBrokerLimit(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Topic(DefaultTopic, 1))
	topic := c.Topic(DefaultTopic)
	e, err := New(Config{Brokers: c.Addrs(), Topic: topic, Compression: "none", BatchRecords: 100000, Linger: time.Hour,
		RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, Spool: spool.Options{Dir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	for i := range n {
		e.Export(rec(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.Exported != n {
		t.Errorf("stats %+v: %d of %d records exported", st, st.Exported, n)
	}
	checkTopic(t, c, topic, n)
}

// TestOneRecordTooLarge: a record above the broker's limit by itself is
// dropped and counted; the records around it on its partition arrive.
func TestOneRecordTooLarge(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Topic(DefaultTopic, 1))
	topic := c.Topic(DefaultTopic)
	reg := prometheus.NewRegistry()
	e, err := New(Config{Brokers: c.Addrs(), Topic: topic, Compression: "none", BatchRecords: 100, Linger: time.Hour,
		RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, Spool: spool.Options{Dir: t.TempDir()}, Metrics: NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	const n, big = 300, 150
	for i := range n {
		r := rec(i)
		if i == big {
			r.TLS.SNI = strings.Repeat("x", 2<<20)
		}
		e.Export(r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := gather(t, reg, "edgeward_export_rejected_records_total"); got != 1 {
		t.Errorf("rejected %v records, want 1", got)
	}
	if got := len(c.Records(topic)); got != n-1 {
		t.Errorf("topic holds %d records, want %d", got, n-1)
	}
}
