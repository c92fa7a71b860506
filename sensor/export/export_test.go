package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/export/spool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
)

// fakeKafka is an in-memory Writer that can be told to fail.
type fakeKafka struct {
	mu      sync.Mutex
	got     []kafka.Message // copies
	down    bool
	partial func(m kafka.Message) bool // messages that fail while up
	writes  int
	discard bool // count only
	n       int
}

func (f *fakeKafka) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if f.down {
		return errors.New("dial tcp 127.0.0.1:9: connect: connection refused")
	}
	var we kafka.WriteErrors
	if f.partial != nil {
		we = make(kafka.WriteErrors, len(msgs))
	}
	for i, m := range msgs {
		if f.partial != nil && f.partial(m) {
			we[i] = errors.New("not leader for partition")
			continue
		}
		f.n++
		if f.discard {
			continue
		}
		hdr := slices.Clone(m.Headers) // values are slices of the exporter's reused buffers
		for j := range hdr {
			hdr[j].Value = slices.Clone(hdr[j].Value)
		}
		f.got = append(f.got, kafka.Message{Key: slices.Clone(m.Key), Value: slices.Clone(m.Value), Headers: hdr})
	}
	if we.Count() > 0 {
		return we
	}
	return nil
}

func (f *fakeKafka) Close() error { return nil }

func (f *fakeKafka) set(down bool, partial func(kafka.Message) bool) {
	f.mu.Lock()
	f.down, f.partial = down, partial
	f.mu.Unlock()
}

func (f *fakeKafka) messages() []kafka.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

// rec returns record i of a stream: 20 devices, ids in order.
func rec(i int) *flow.Record {
	r := &flow.Record{
		Schema: flow.Schema, ID: fmt.Sprintf("%016x", i), Proto: "tcp", EndReason: flow.EndFIN,
		Start: time.Unix(1700000000+int64(i), 0).UTC(), End: time.Unix(1700000001+int64(i), 0).UTC(), DurationS: 1,
		Src:    flow.Endpoint{IP: netip.AddrFrom4([4]byte{10, 0, byte(i % 20 / 256), byte(i % 20)}), Port: uint16(40000 + i%1000), Packets: 10, Bytes: 1200, PayloadBytes: 600},
		Dst:    flow.Endpoint{IP: netip.MustParseAddr("203.0.113.9"), Port: 443, Packets: 8, Bytes: 5000, PayloadBytes: 4600, Name: "relay.example.net", NameSource: "sni"},
		TCP:    &flow.TCP{SrcFlags: flow.FlagSYN | flow.FlagACK, DstFlags: flow.FlagSYN | flow.FlagACK, History: "ShADadFf"},
		TLS:    &flow.TLS{SNI: "relay.example.net", ALPN: []string{"h2"}, Version: "1.3", JA4: "t13d1516h2_8daaf6152771_e5627efa2ab1"},
		Sensor: &flow.Sensor{ID: "gw-1", Site: "nyc"},
	}
	if i%20 < 15 {
		r.Device = &flow.Device{IP: r.Src.IP, ID: fmt.Sprintf("LT-%04d", i%20)}
	}
	return r
}

func newExporter(t testing.TB, w Writer, cfg Config) *Exporter {
	t.Helper()
	cfg.Writer = w
	if cfg.Spool.Dir == "" {
		cfg.Spool.Dir = t.TempDir()
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

// checkStream decodes messages and checks that they are records from..to
// exactly once, that each key's records are in order, and that the export
// stamps follow the order of export (the record ids), spooled or not.
func checkStream(t *testing.T, msgs []kafka.Message, n int) {
	t.Helper()
	seen := map[string]int{}
	last := map[string]string{}
	stamps := map[string]uint64{}
	for i, m := range msgs {
		var r flow.Record
		if err := flow.DecodeBinary(m.Value, &r); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		seen[r.ID]++
		st, err := strconv.ParseUint(string(stampHeader(&m)), 10, 64)
		if err != nil {
			t.Fatalf("message %d: export stamp: %v (headers %v)", i, err, m.Headers)
		}
		stamps[r.ID] = st
		if want := string(appendKey(nil, &r)); string(m.Key) != want {
			t.Fatalf("message %d key %q, want %q", i, m.Key, want)
		}
		if prev, ok := last[string(m.Key)]; ok && prev >= r.ID {
			t.Fatalf("key %s: record %s after %s", m.Key, r.ID, prev)
		}
		last[string(m.Key)] = r.ID
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
	if missing > 0 || dup > 0 || len(seen) != n {
		t.Fatalf("%d messages for %d records: %d missing, %d duplicated, %d distinct", len(msgs), n, missing, dup, len(seen))
	}
	for i := 1; i < n; i++ {
		a, b := fmt.Sprintf("%016x", i-1), fmt.Sprintf("%016x", i)
		if stamps[a] >= stamps[b] {
			t.Fatalf("record %s exported after %s has stamp %d, not above %d", b, a, stamps[b], stamps[a])
		}
	}
}

func TestExportDirect(t *testing.T) {
	f := &fakeKafka{}
	e := newExporter(t, f, Config{BatchRecords: 100, Linger: time.Hour})
	for i := range 1050 {
		e.Export(rec(i))
	}
	if err := e.Close(context.Background()); err != nil { // flushes the last partial batch
		t.Fatal(err)
	}
	msgs := f.messages()
	checkStream(t, msgs, 1050)
	if h := msgs[0].Headers; len(h) != 3 || h[0].Key != "content-type" || string(h[0].Value) != flow.ContentType || string(h[1].Value) != flow.Schema || h[2].Key != flow.HeaderExported {
		t.Errorf("headers %v", h)
	}
	if st := e.Stats(); st.Exported != 1050 || st.Spooled != 0 || st.Spooling {
		t.Errorf("stats %+v", st)
	}
	if f.writes != 11 {
		t.Errorf("%d writes, want 11 batches", f.writes)
	}
	e.Export(rec(0)) // after Close: ignored
}

func TestLingerFlushes(t *testing.T) {
	f := &fakeKafka{}
	e := newExporter(t, f, Config{BatchRecords: 1000, Linger: 20 * time.Millisecond})
	e.Export(rec(1))
	deadline := time.Now().Add(5 * time.Second)
	for len(f.messages()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if len(f.messages()) != 1 {
		t.Fatal("a lone record was not sent after the linger time")
	}
}

func TestKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    flow.Record
		want string
	}{
		{"inventory id", flow.Record{Device: &flow.Device{ID: "LT-1", IP: netip.MustParseAddr("10.0.0.1")}, Src: flow.Endpoint{IP: netip.MustParseAddr("10.0.0.9")}}, "LT-1"},
		{"device address", flow.Record{Device: &flow.Device{IP: netip.MustParseAddr("10.0.0.1")}, Src: flow.Endpoint{IP: netip.MustParseAddr("198.51.100.1")}}, "10.0.0.1"},
		{"initiator", flow.Record{Src: flow.Endpoint{IP: netip.MustParseAddr("2001:db8::1")}}, "2001:db8::1"},
	} {
		if got := string(appendKey(nil, &tc.r)); got != tc.want {
			t.Errorf("%s: key %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestOutageSpoolsThenReplaysInOrder runs records through a Kafka that
// fails for a while: none is lost or duplicated, each key's records stay
// in order, and the spool is empty at the end.
func TestOutageSpoolsThenReplaysInOrder(t *testing.T) {
	f := &fakeKafka{}
	reg := prometheus.NewRegistry()
	e := newExporter(t, f, Config{BatchRecords: 50, Linger: 5 * time.Millisecond, Handoff: 50 * time.Millisecond,
		RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond, Metrics: NewMetrics(reg), Spool: spool.Options{SegmentBytes: 64 << 10}})
	n := 0
	feed := func(k int) {
		for range k {
			e.Export(rec(n))
			n++
		}
	}
	feed(500)
	f.set(true, nil)
	feed(3000)
	time.Sleep(50 * time.Millisecond)
	if ok, why := e.Ready(); ok || why == "" {
		t.Error("ready while Kafka is down")
	}
	feed(1000)
	f.set(false, nil)
	feed(1500)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkStream(t, f.messages(), n)
	st := e.Stats()
	if st.Spooled == 0 || st.Replayed != st.Spooled || st.Failures == 0 || st.Spool.Records != 0 || st.Spooling {
		t.Errorf("stats %+v", st)
	}
	for name, want := range map[string]float64{"edgeward_export_records_total": float64(n), "edgeward_spool_replayed_records_total": float64(st.Replayed)} {
		if got := gather(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

func gather(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestPartialFailure: when Kafka takes only some partitions' records, only
// the others are spooled and sent again.
func TestPartialFailure(t *testing.T) {
	f := &fakeKafka{}
	e := newExporter(t, f, Config{BatchRecords: 40, Linger: time.Millisecond, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond})
	f.set(false, func(m kafka.Message) bool { return string(m.Key) == "LT-0003" })
	for i := range 400 {
		e.Export(rec(i))
	}
	time.Sleep(30 * time.Millisecond)
	f.set(false, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkStream(t, f.messages(), 400)
	// The first failure spools only LT-0003's records; the records
	// after it follow them through the spool, to keep their order.
	if st := e.Stats(); st.Failures == 0 || st.Spooled == 0 || st.Spooled >= 400 {
		t.Errorf("stats %+v", st)
	}
}

// TestSpoolSurvivesRestart: records spooled when the exporter stopped go
// out first after the next start.
func TestSpoolSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	down := &fakeKafka{down: true}
	e := newExporter(t, down, Config{BatchRecords: 10, Linger: time.Millisecond, Spool: spool.Options{Dir: dir}})
	for i := range 100 {
		e.Export(rec(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	e.Close(ctx)
	if st := e.Stats(); st.Spool.Records != 100 {
		t.Fatalf("spool holds %d records after close, want 100", st.Spool.Records)
	}

	up := &fakeKafka{}
	e = newExporter(t, up, Config{BatchRecords: 10, Linger: time.Millisecond, Spool: spool.Options{Dir: dir}})
	for i := 100; i < 150; i++ {
		e.Export(rec(i))
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	msgs := up.messages()
	checkStream(t, msgs, 150)
	var first flow.Record
	flow.DecodeBinary(msgs[0].Value, &first)
	if first.ID != fmt.Sprintf("%016x", 0) {
		t.Errorf("first record after restart is %s, want the oldest spooled one", first.ID)
	}
}

func TestJSONFormat(t *testing.T) {
	f := &fakeKafka{}
	e := newExporter(t, f, Config{Format: JSON})
	e.Export(rec(7))
	e.Close(context.Background())
	m := f.messages()[0]
	if string(m.Value) != string(rec(7).AppendJSON(nil)) || string(m.Headers[0].Value) != "application/json" {
		t.Errorf("message %s headers %v", m.Value, m.Headers)
	}
}

func TestExportAllocs(t *testing.T) {
	e := newExporter(t, &fakeKafka{discard: true}, Config{BatchRecords: 100, Linger: time.Hour})
	r := rec(3)
	for range 1000 { // warm the batch pool
		e.Export(r)
	}
	if a := testing.AllocsPerRun(2000, func() { e.Export(r) }); a > 0.05 {
		t.Errorf("Export: %.2f allocations per record", a)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{{Brokers: []string{"x:1"}}, {Spool: spool.Options{Dir: t.TempDir()}}, {Brokers: []string{"x:1"}, Spool: spool.Options{Dir: t.TempDir()}, Compression: "brotli"}} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted it", c)
		}
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("format xml accepted")
	}
	_ = testutil.ToFloat64
}

// TestSpoolRecordStamp: a spooled record keeps its export stamp, and one
// spooled before stamps existed (no stamp flag) still reads, without one.
func TestSpoolRecordStamp(t *testing.T) {
	e := newExporter(t, &fakeKafka{}, Config{})
	h := e.headers[Binary]
	stampedMsg := kafka.Message{Key: []byte("LT-1"), Value: []byte{1, 2, 3},
		Headers: append(slices.Clip(h), kafka.Header{Key: HeaderExported, Value: []byte("1795305471176346905")})}
	old := kafka.Message{Key: []byte("LT-2"), Value: []byte{4, 5}, Headers: h}
	_, recs := payloads(nil, nil, Binary, []kafka.Message{stampedMsg, old}, nil)
	if len(recs) != 2 || recs[0][0] != byte(Binary)|stamped || recs[1][0] != byte(Binary) {
		t.Fatalf("spool records %x", recs)
	}
	for i, want := range []kafka.Message{stampedMsg, old} {
		m, ok := e.message(recs[i])
		if !ok || string(m.Key) != string(want.Key) || string(m.Value) != string(want.Value) {
			t.Fatalf("record %d: %v %q %v", i, ok, m.Key, m.Value)
		}
		if got, st := stampHeader(&m), stampHeader(&want); string(got) != string(st) || (got == nil) != (st == nil) || len(m.Headers) != len(want.Headers) {
			t.Errorf("record %d: stamp %q, want %q (headers %v)", i, got, st, m.Headers)
		}
	}
	// A record cut inside its stamp is damaged: format, key length, key,
	// stamp length, then 5 of the stamp's 19 digits.
	if _, ok := e.message(recs[0][:1+1+len("LT-1")+1+5]); ok {
		t.Error("a record cut inside its stamp read")
	}
}

// TestStamps: export stamps are the batch's start, moved past the previous
// stamp, whether formatted afresh or by incrementing the previous digits.
func TestStamps(t *testing.T) {
	for _, tc := range []struct {
		name   string
		starts []int64 // batch start per record, ns
		want   []int64
	}{
		{"one batch", []int64{1795305471176346905, 1795305471176346905, 1795305471176346905}, []int64{1795305471176346905, 1795305471176346906, 1795305471176346907}},
		{"carry", []int64{1795305471176346998, 1795305471176346998, 1795305471176346998}, []int64{1795305471176346998, 1795305471176346999, 1795305471176347000}},
		{"another digit", []int64{998, 998, 998}, []int64{998, 999, 1000}},
		{"next batch", []int64{1000, 1000, 5000, 5000}, []int64{1000, 1001, 5000, 5001}},
		{"clock steps back", []int64{5000, 5000, 4000, 4000}, []int64{5000, 5001, 5002, 5003}},
		{"before the epoch", []int64{-7, -7}, []int64{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Exporter{}
			var got []string
			for _, start := range tc.starts {
				got = append(got, string(e.appendStamp(nil, &batch{start: time.Unix(0, start)})))
			}
			var want []string
			for _, w := range tc.want {
				want = append(want, strconv.FormatInt(w, 10))
			}
			if !slices.Equal(got, want) {
				t.Errorf("stamps %v, want %v", got, want)
			}
		})
	}
}

// gatedKafka is a fakeKafka whose next write, once hold is called, waits
// until release.
type gatedKafka struct {
	fakeKafka
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedKafka) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	g.mu.Lock()
	gate, entered := g.gate, g.entered
	g.gate = nil
	g.mu.Unlock()
	if gate != nil {
		close(entered)
		<-gate
	}
	return g.fakeKafka.WriteMessages(ctx, msgs...)
}

// TestSegmentDroppedWhileSentIsNotCountedDropped: the cap drops the
// segment whose records the sender is writing to Kafka; Kafka then takes
// them. They were delivered, so edgeward_spool_dropped_records_total must
// not count them: every record is either delivered or counted dropped,
// never both, never neither, and none is delivered twice.
func TestSegmentDroppedWhileSentIsNotCountedDropped(t *testing.T) {
	f := &gatedKafka{}
	f.down = true
	e := newExporter(t, f, Config{BatchRecords: 10, Linger: time.Millisecond, Handoff: 10 * time.Millisecond,
		RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond,
		Spool: spool.Options{MaxBytes: 30_000, SegmentBytes: 5_000}})
	n := 0
	feed := func(k int) {
		for range k {
			e.Export(rec(n))
			n++
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: %+v", what, e.Stats())
			}
		}
	}
	feed(40)
	waitFor("40 spooled records", func() bool { return e.Stats().Spool.Records == 40 })

	// Kafka answers, but slowly: the sender is inside its write of the
	// oldest spooled records when the cap drops their segment.
	f.mu.Lock()
	f.entered, f.gate = make(chan struct{}), make(chan struct{})
	entered, gate := f.entered, f.gate
	f.down = false
	f.mu.Unlock()
	<-entered
	feed(200)
	waitFor("all records spooled", func() bool { return e.Stats().Spooled == uint64(n) })
	close(gate)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}

	seen := map[string]int{}
	for _, m := range f.messages() {
		var r flow.Record
		if err := flow.DecodeBinary(m.Value, &r); err != nil {
			t.Fatal(err)
		}
		seen[r.ID]++
	}
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	st := e.Stats()
	if st.Spool.Dropped == 0 {
		t.Fatalf("the cap dropped nothing: %+v", st)
	}
	if dups > 0 || len(seen)+int(st.Spool.Dropped) != n {
		t.Errorf("%d records: %d delivered (%d twice) + %d counted dropped = %d",
			n, len(seen), dups, st.Spool.Dropped, len(seen)+int(st.Spool.Dropped))
	}
}

// spoolRecords are n records as the exporter spools them, with stamps.
func spoolRecords(e *Exporter, n int) [][]byte {
	b := &batch{start: time.Unix(1700000000, 0)}
	for i := range n {
		r := rec(i)
		k := len(b.buf)
		b.buf = appendKey(b.buf, r)
		v := len(b.buf)
		b.buf = r.AppendBinary(b.buf)
		end := len(b.buf)
		b.buf = e.appendStamp(b.buf, b)
		b.spans = append(b.spans, span{k, v, end, len(b.buf)})
	}
	var m messages
	_, recs := payloads(nil, nil, Binary, m.build(b, e.headers[Binary]), nil)
	return recs
}

// TestUnreadableSpoolRecordsCounted: records spooled by a newer version,
// in a form this one cannot read (after a downgrade), are skipped: lost,
// so counted in a metric and logged once with how many.
func TestUnreadableSpoolRecordsCounted(t *testing.T) {
	dir := t.TempDir()
	sp, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	recs := spoolRecords(newExporter(t, &fakeKafka{}, Config{}), 8)
	for _, i := range []int{1, 2, 4, 6, 7} {
		recs[i][0] |= 0x40 // a flag this version does not know
	}
	sp.Append(recs...)
	sp.Close()

	var log bytes.Buffer
	reg := prometheus.NewRegistry()
	f := &fakeKafka{}
	e := newExporter(t, f, Config{Spool: spool.Options{Dir: dir}, Metrics: NewMetrics(reg), Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(f.messages()); n != 3 {
		t.Errorf("%d records sent, want the 3 readable ones", n)
	}
	if n := strings.Count(log.String(), "cannot read"); n != 1 || !strings.Contains(log.String(), "records=5") {
		t.Errorf("want one warning with records=5, got %d:\n%s", n, log.String())
	}
	if got := gather(t, reg, "edgeward_spool_unreadable_records_total"); got != 5 {
		t.Errorf("edgeward_spool_unreadable_records_total = %v, want 5", got)
	}
}

// BenchmarkReplayDecode decodes a batch of spooled records into messages,
// as the sender does before replaying them.
func BenchmarkReplayDecode(b *testing.B) {
	e := newExporter(b, &fakeKafka{}, Config{})
	recs := spoolRecords(e, 1000)
	b.ReportAllocs()
	for b.Loop() {
		e.pending = e.pending[:0]
		e.decode(recs)
	}
	if len(e.pending) != len(recs) {
		b.Fatalf("%d messages from %d records", len(e.pending), len(recs))
	}
}
