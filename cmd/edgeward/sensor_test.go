package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/kafkatest"
	"github.com/edgeward/edgeward/sensor"
	"github.com/edgeward/edgeward/sensor/live"
	"github.com/edgeward/edgeward/sensor/pcapfile"
	"github.com/prometheus/client_golang/prometheus"
)

var updateDocs = flag.Bool("update", false, "rewrite docs/configuration.md")

// TestSensorToKafka runs `edgeward sensor` on a synthetic capture against
// a Kafka broker: the topic must hold exactly the records `edgeward flows`
// writes for the same capture, byte for byte once decoded.
func TestSensorToKafka(t *testing.T) {
	dir := t.TempDir()
	pcap, jsonl := filepath.Join(dir, "s.pcap"), filepath.Join(dir, "s.jsonl")
	if code, _, e := runCmd("synth", "-o", pcap, "-flows", "300"); code != 0 {
		t.Fatalf("synth: %s", e)
	}
	if code, _, e := runCmd("flows", "-r", pcap, "-o", jsonl, "-sensor-id", "gw-1", "-site", "nyc"); code != 0 {
		t.Fatalf("flows: %s", e)
	}
	want := map[string]string{}
	f, _ := os.Open(jsonl)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r flow.Record
		line := sc.Text()
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		want[r.ID] = line
	}
	f.Close()
	if len(want) < 250 {
		t.Fatalf("only %d flows", len(want))
	}

	c := kafkatest.Start(t, kafkatest.Topic("edgeward.flows.v1", 3))
	topic := c.Topic("edgeward.flows.v1")
	// The broker list comes from the environment, the rest from a file
	// and flags.
	t.Setenv("EDGEWARD_BROKERS", strings.Join(c.Addrs(), ","))
	cfgFile := filepath.Join(dir, "sensor.yml")
	os.WriteFile(cfgFile, []byte("sensor_id: gw-1\nsite: nyc\nkafka:\n  brokers: [127.0.0.1:1]\n  compression: zstd\nspool:\n  dir: "+filepath.Join(dir, "spool")+"\n"), 0o644)
	code, _, e := runCmd("sensor", "--config", cfgFile, "-r", pcap, "--flows-topic", topic, "--metrics-listen", "127.0.0.1:0")
	if code != 0 {
		t.Fatalf("sensor: code %d\n%s", code, e)
	}
	if !strings.Contains(e, "left in the spool") || !strings.Contains(e, "0 left in the spool") {
		t.Errorf("summary: %s", e)
	}

	got := c.Records(topic)
	if len(got) != len(want) {
		t.Errorf("topic holds %d records, edgeward flows wrote %d", len(got), len(want))
	}
	seen := map[string]bool{}
	var r flow.Record
	for _, m := range got {
		if err := flow.DecodeBinary(m.Value, &r); err != nil {
			t.Fatalf("partition %d offset %d: %v", m.Partition, m.Offset, err)
		}
		if seen[r.ID] {
			t.Errorf("record %s twice", r.ID)
		}
		seen[r.ID] = true
		if js := string(r.AppendJSON(nil)); js != want[r.ID] {
			t.Errorf("record %s differs from edgeward flows:\n got %s\nwant %s", r.ID, js, want[r.ID])
		}
	}
}

func TestSensorConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "bad.yml")
	os.WriteFile(cfgFile, []byte("kafka:\n  compression: lz5\n  sasl: {mechanism: plain}\nflow:\n  idle_timeout: soon\nspool:\n  max_bytes: 10\n"), 0o644)
	t.Setenv("EDGEWARD_BROKERS", "nohost")
	code, _, e := runCmd("sensor", "--config", cfgFile, "-i", "eth0", "-r", "x.pcap")
	if code != 2 {
		t.Fatalf("code %d, want 2\n%s", code, e)
	}
	for _, want := range []string{
		"problem(s) in the configuration",
		cfgFile + `:5:17: flow.idle_timeout: "soon" is not a duration`,
		cfgFile + `:2:16: kafka.compression: "lz5" is not one of none, gzip, snappy, lz4, zstd`,
		`EDGEWARD_BROKERS: kafka.brokers: "nohost" is not host:port`,
		"kafka.sasl.username: needed with a SASL mechanism",
		"kafka.sasl.password_file: a SASL mechanism needs a password",
		"--i: interface: read (-r) and interface (-i) exclude each other",
		cfgFile + ":7:14: spool.max_bytes: must be at least 1MiB",
	} {
		if !strings.Contains(e, want) {
			t.Errorf("stderr lacks %q:\n%s", want, e)
		}
	}
	t.Setenv("EDGEWARD_BROKERS", "127.0.0.1:9092")
	if code, _, e := runCmd("sensor", "-i", "edgeward-no-such-if0"); code != 1 || !strings.Contains(e, "edgeward-no-such-if0") {
		t.Errorf("live capture on a missing interface: code %d %s", code, e)
	}
	if code, _, _ := runCmd("help", "sensor"); code != 0 {
		t.Errorf("help sensor: code %d", code)
	}
	if _, out, _ := runCmd("help"); !strings.Contains(out, "sensor") {
		t.Errorf("help does not list sensor: %s", out)
	}
}

func TestSensorSecretNotLogged(t *testing.T) {
	dir := t.TempDir()
	pcap := filepath.Join(dir, "s.pcap")
	runCmd("synth", "-o", pcap, "-flows", "5")
	t.Setenv("EDGEWARD_KAFKA_SASL_PASSWORD", "hunter2")
	// Kafka unreachable: the records wait in the spool and the run ends
	// after the flush timeout.
	t.Setenv("EDGEWARD_KAFKA_SASL_MECHANISM", "plain")
	t.Setenv("EDGEWARD_KAFKA_SASL_USERNAME", "u")
	t.Setenv("EDGEWARD_KAFKA_FLUSH_TIMEOUT", "300ms")
	code, _, e := runCmd("sensor", "-r", pcap, "--brokers", "127.0.0.1:1", "--spool-dir", filepath.Join(dir, "spool"), "--metrics-listen", "")
	if code != 0 || strings.Contains(e, "hunter2") || !strings.Contains(e, "kafka.sasl.password=REDACTED") {
		t.Errorf("code %d, stderr:\n%s", code, e)
	}
	if strings.Contains(e, " 0 left in the spool") {
		t.Errorf("records should wait in the spool: %s", e)
	}
}

func TestMetricsEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	ready, why := false, "Kafka unreachable"
	srv := httptest.NewServer(metricsMux(reg, func() (bool, string) { return ready, why }))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, why) {
		t.Errorf("/readyz not ready: %d %q", code, body)
	}
	ready = true
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz ready: %d", code)
	}
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeward_test_total", Help: "x"}))
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "edgeward_test_total 0") {
		t.Errorf("/metrics: %d %q", code, body)
	}
}

// TestConfigurationDoc fails when docs/configuration.md is stale; -update
// rewrites it.
func TestConfigurationDoc(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "configuration.md")
	got := configurationDoc()
	if *updateDocs {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := os.ReadFile(path)
	if got != string(want) {
		t.Errorf("%s is stale: run go test ./cmd/edgeward -run ConfigurationDoc -update", path)
	}
}

// TestSensorMetricsListenFailsWithSpool: when the metrics address cannot
// be bound, the sensor exits with an error, also when Kafka is unreachable
// and the spool holds records from a previous run (they stay there).
func TestSensorMetricsListenFailsWithSpool(t *testing.T) {
	dir := t.TempDir()
	pcap, spoolDir := filepath.Join(dir, "s.pcap"), filepath.Join(dir, "spool")
	runCmd("synth", "-o", pcap, "-flows", "5")
	t.Setenv("EDGEWARD_KAFKA_FLUSH_TIMEOUT", "300ms")
	if code, _, e := runCmd("sensor", "-r", pcap, "--brokers", "127.0.0.1:1", "--spool-dir", spoolDir, "--metrics-listen", ""); code != 0 || strings.Contains(e, " 0 left in the spool") {
		t.Fatalf("first run: code %d, stderr:\n%s", code, e)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	type result struct {
		code   int
		stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, _, e := runCmd("sensor", "-r", pcap, "--brokers", "127.0.0.1:1", "--spool-dir", spoolDir, "--metrics-listen", busy.Addr().String())
		done <- result{code, e}
	}()
	select {
	case r := <-done:
		if r.code != 1 || !strings.Contains(r.stderr, "metrics") {
			t.Errorf("code %d, stderr:\n%s", r.code, r.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sensor did not exit 10 s after failing to serve metrics: the exporter's Close waits for Kafka without a deadline")
	}
}

// replaySource is a live source whose workers each replay the same frames
// and a few bad ones, tell the time of a quiet link, and wait for the
// stop; then they pass frames the kernel still held, as AF_PACKET does.
type replaySource struct {
	frames []pcapfile.Frame
	fed    sync.WaitGroup // each worker is done when it waits for the stop
}

// replayBad is how many bad frames each worker passes before the stop;
// replayLate, after it.
const replayBad, replayLate = 3, 2

func (s *replaySource) Workers() int { return 2 }

func (s *replaySource) Run(ctx context.Context, _ int, sink live.Sink) error {
	bad := make([]byte, 14+20) // an Ethernet frame with an all-zero IPv4 header
	bad[12] = 0x08
	first, last := s.frames[0].TS, s.frames[len(s.frames)-1].TS
	for range replayBad {
		sink.Frame(bad, layers.LinkTypeEthernet, first)
	}
	for _, f := range s.frames {
		sink.Frame(f.Data, f.Link, f.TS)
	}
	quiet := last + int64(2*time.Second)
	sink.Advance(quiet)
	s.fed.Done()
	<-ctx.Done()
	for range replayLate {
		sink.Frame(bad, layers.LinkTypeEthernet, quiet+1)
	}
	return nil
}

func (s *replaySource) Stats() live.Stats { return live.Stats{} }
func (s *replaySource) Close() error      { return nil }

// metricValues gathers g's counters and gauges by name and label values,
// as name{value,...}.
func metricValues(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var vals []string
			for _, l := range m.GetLabel() {
				vals = append(vals, l.GetValue())
			}
			name := mf.GetName()
			if len(vals) > 0 {
				name += "{" + strings.Join(vals, ",") + "}"
			}
			out[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return out
}

// TestSensorMetricsFollowLiveCapture checks what docs/operations.md says
// of edgeward_decode_errors_total and edgeward_flow_table_entries with
// live capture: they follow the capture while it runs, summed over its
// workers, and end equal to its Stats.
func TestSensorMetricsFollowLiveCapture(t *testing.T) {
	pcap := filepath.Join(t.TempDir(), "s.pcap")
	if code, _, e := runCmd("synth", "-o", pcap, "-flows", "30", "-duration", "10s"); code != 0 {
		t.Fatalf("synth: %s", e)
	}
	r, err := pcapfile.Open(pcap)
	if err != nil {
		t.Fatal(err)
	}
	src := &replaySource{}
	for fr := (pcapfile.Frame{}); r.Next(&fr) == nil; {
		fr.Data = bytes.Clone(fr.Data)
		src.frames = append(src.frames, fr)
	}
	r.Close()
	src.fed.Add(src.Workers())

	reg := prometheus.NewRegistry()
	cfg := sensor.Config{NoInspect: true, Progress: new(sensor.Progress)}
	newSensorMetrics(reg, &cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var st sensor.Stats
	done := make(chan error, 1)
	go func() {
		var err error
		st, err = sensor.Capture(ctx, src, cfg, func(*flow.Record) {})
		done <- err
	}()
	src.fed.Wait()
	running := metricValues(t, reg)
	if got, want := running["edgeward_decode_errors_total{bad_ip}"], float64(2*replayBad); got != want {
		t.Errorf("while capturing: %v bad_ip decode errors, want %v", got, want)
	}
	if running["edgeward_flow_table_entries"] == 0 {
		t.Error("while capturing: no flow table entries")
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	after := metricValues(t, reg)
	var errs float64
	for name, v := range after {
		if strings.HasPrefix(name, "edgeward_decode_errors_total{") {
			errs += v
		}
	}
	if st.Decode.BadIP != 2*(replayBad+replayLate) || after["edgeward_decode_errors_total{bad_ip}"] != float64(st.Decode.BadIP) ||
		errs != float64(st.Errors()+st.Decode.Truncated) {
		t.Errorf("after the capture: %v bad_ip and %v decode errors in all; its stats: %d bad_ip, %d errors and %d truncated",
			after["edgeward_decode_errors_total{bad_ip}"], errs, st.Decode.BadIP, st.Errors(), st.Decode.Truncated)
	}
	if got := after["edgeward_flow_table_entries"]; got != float64(st.Table.Active) {
		t.Errorf("after the capture: %v flow table entries, its stats %d", got, st.Table.Active)
	}
}
