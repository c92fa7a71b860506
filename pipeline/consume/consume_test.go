package consume

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/findingtest"
	"github.com/edgeward/edgeward/internal/kafkatest"
	"github.com/edgeward/edgeward/pipeline"
	"github.com/edgeward/edgeward/rules"
	"github.com/edgeward/edgeward/rules/builtin"
)

// Topic partitions of the tests.
const (
	flowParts   = 4
	repartParts = 3
)

// harness is a cluster with the pipeline's topics and the built-in rules.
type harness struct {
	t       testing.TB
	c       *kafkatest.Cluster
	set     *rules.Set
	flows   string
	alerts  string
	dlq     string
	repart  string
	groupID string
	stamp   int64 // export stamp of the last record produce wrote
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	c := kafkatest.Start(t,
		kafkatest.Topic(DefaultFlowsTopic, flowParts), kafkatest.Topic(DefaultAlertsTopic, 2),
		kafkatest.Topic(DefaultDLQTopic, 1), kafkatest.Topic(DefaultRepartitionTopic, repartParts))
	h := &harness{
		t: t, c: c, set: builtinRules(t),
		flows: c.Topic(DefaultFlowsTopic), alerts: c.Topic(DefaultAlertsTopic),
		dlq: c.Topic(DefaultDLQTopic), repart: c.Topic(DefaultRepartitionTopic),
		groupID: "edgeward-test-" + strings.ReplaceAll(t.Name(), "/", "-"),
	}
	c.FastGroups()
	return h
}

func builtinRules(t testing.TB) *rules.Set {
	t.Helper()
	schema, err := pipeline.Schema()
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Load(nil, rules.Options{Schema: schema, Builtin: builtin.FS()})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// sessionTimeout is the consumer group session timeout of the tests: the
// in-process broker lets it go below Kafka's 6s minimum.
func sessionTimeout(c *kafkatest.Cluster) time.Duration {
	if c.Real() {
		return 6 * time.Second
	}
	return time.Second
}

func (h *harness) config(reg prometheus.Registerer) Config {
	return Config{
		Brokers: h.c.Addrs(), GroupID: h.groupID,
		FlowsTopic: h.flows, AlertsTopic: h.alerts, DLQTopic: h.dlq, RepartitionTopic: h.repart,
		Rules: h.set, Rebuild: time.Hour, CommitInterval: 100 * time.Millisecond, MaxWait: 100 * time.Millisecond,
		SessionTimeout: sessionTimeout(h.c), HeartbeatInterval: 100 * time.Millisecond, RebalanceTimeout: 5 * time.Second,
		Logger: testLogger(h.t), Registry: reg,
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// instance is a running Consumer.
type instance struct {
	c    *Consumer
	reg  *prometheus.Registry
	stop context.CancelFunc
	done chan error
}

func (h *harness) start(cfg Config) *instance {
	h.t.Helper()
	in := &instance{reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	cfg.Registry = in.reg
	c, err := New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	in.c = c
	ctx, cancel := context.WithCancel(context.Background())
	in.stop = cancel
	go func() { in.done <- c.Run(ctx) }()
	h.t.Cleanup(func() { in.close(h.t) })
	return in
}

// close stops the instance gracefully and waits for it.
func (in *instance) close(t testing.TB) {
	in.stop()
	select {
	case err := <-in.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		in.done <- nil // for a second close
	case <-time.After(30 * time.Second):
		t.Errorf("the consumer did not stop")
	}
}

// produce writes records to the flows topic as the sensor does: binary,
// keyed by device.
func (h *harness) produce(recs []*flow.Record) {
	h.t.Helper()
	cl := h.c.Client(kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	var krs []*kgo.Record
	for _, r := range recs {
		h.stamp++ // as the sensor's exporter stamps records, in export order
		krs = append(krs, &kgo.Record{Topic: h.flows, Key: []byte(deviceKey(r)), Value: r.AppendBinary(nil),
			Headers: []kgo.RecordHeader{{Key: HeaderContentType, Value: []byte(flow.ContentType)},
				{Key: flow.HeaderExported, Value: strconv.AppendInt(nil, h.stamp, 10)}}})
	}
	if err := cl.ProduceSync(context.Background(), krs...).FirstErr(); err != nil {
		h.t.Fatal(err)
	}
}

// deviceKey is the sensor's message key (sensor/export).
func deviceKey(r *flow.Record) string {
	if d := r.Device; d != nil {
		if d.ID != "" {
			return d.ID
		}
		if d.IP.IsValid() {
			return d.IP.String()
		}
	}
	return r.Src.IP.String()
}

// partitionOf is the flows partition of a key (murmur2, as the sensor and
// franz-go's default partitioner place it).
func partitionOf(key string, n int) int {
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	return (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: []byte(key)}, parts...)
}

// waitDone waits until the group has committed every record of the flows
// and repartition topics.
func (h *harness) waitDone(timeout time.Duration) {
	h.t.Helper()
	h.c.WaitCommitted(timeout, h.groupID, h.flows, h.groupID+".repartition", h.repart)
}

// published reads the alerts topic.
func (h *harness) published() []*rules.Alert {
	h.t.Helper()
	var out []*rules.Alert
	for _, m := range h.c.Records(h.alerts) {
		var a rules.Alert
		if err := json.Unmarshal(m.Value, &a); err != nil {
			h.t.Fatalf("alerts partition %d offset %d: %v", m.Partition, m.Offset, err)
		}
		if m.Headers[HeaderFindingUID] != a.FindingInfo.UID || m.Headers[HeaderContentType] != "application/json" {
			h.t.Errorf("alert headers %v", m.Headers)
		}
		if want := string(alertKey(&a)); string(m.Key) != want {
			h.t.Errorf("alert key %q, want %q", m.Key, want)
		}
		out = append(out, &a)
	}
	return out
}

// inProcess runs the records through one pipeline in order, as edgeward
// run does, and returns its alerts.
func inProcess(t testing.TB, set *rules.Set, recs []*flow.Record) []*rules.Alert {
	t.Helper()
	p, err := pipeline.New(pipeline.Config{Rules: set})
	if err != nil {
		t.Fatal(err)
	}
	var out []*rules.Alert
	emit := func(a *rules.Alert) { c := *a; out = append(out, &c) }
	for _, r := range recs {
		p.Process(r, emit)
	}
	p.Flush(emit)
	return out
}

func ruleCounts(fs map[string]*findingtest.Finding) string {
	n := map[string]int{}
	for _, f := range fs {
		n[f.Rule]++
	}
	var ids []string
	for id := range n {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "%s=%d ", id, n[id])
	}
	return b.String()
}

// Devices of testFlows: office laptops, and remote ones behind the VPN.
var (
	farmA  = testDevice("LT-0101", "10.99.0.11")
	farmB  = testDevice("LT-0102", "10.99.0.12")
	home   = testDevice("LT-0103", "10.99.0.13")
	office = []*flow.Device{
		testDevice("LT-0001", "10.10.0.21"), testDevice("LT-0002", "10.10.0.22"),
		testDevice("LT-0003", "10.10.0.23"), testDevice("LT-0004", "10.10.0.24"),
		testDevice("LT-0005", "10.10.0.25"), testDevice("LT-0006", "10.10.0.26"),
	}
	sharedEgress = netip.MustParseAddr("203.0.113.50")
)

func testDevice(id, ip string) *flow.Device {
	return &flow.Device{ID: id, IP: netip.MustParseAddr(ip), AssignedSite: "nyc", AssignedCountry: "US", MatchedBy: "ip"}
}

// testFlows is n minutes of a small company's flows: browsing, remote
// access tools on two office laptops, a LAN RDP session, and two remote
// laptops sharing one home address (the laptop farm) while a third works
// from its own.
func testFlows(n int) []*flow.Record {
	base := time.Date(2026, 11, 17, 14, 0, 0, 0, time.UTC)
	var out []*flow.Record
	seq := 0
	add := func(t time.Time, d *flow.Device, dst string, port uint16, app string, direction string, egress netip.Addr) {
		seq++
		r := &flow.Record{
			Schema: flow.Schema, ID: fmt.Sprintf("F%06d", seq), Start: t, End: t.Add(2 * time.Second), DurationS: 2,
			EndReason: flow.EndFIN, Proto: "tcp", Direction: direction,
			Src:    flow.Endpoint{IP: d.IP, Port: uint16(40000 + seq%20000), Packets: 10, Bytes: 2000},
			Dst:    flow.Endpoint{IP: netip.MustParseAddr(dst), Port: port, Packets: 12, Bytes: 9000},
			Sensor: &flow.Sensor{ID: "gw-nyc-1", Site: "nyc"}, Device: d, App: app,
		}
		if app != "" {
			r.AppSource, r.AppCategory = "payload", "remote_access"
		}
		if egress.IsValid() {
			r.Egress = &flow.Egress{IP: egress, Port: 51820, Source: "feed"}
		}
		r.CommunityID = fmt.Sprintf("1:%d", seq)
		out = append(out, r)
	}
	for m := range n {
		t := base.Add(time.Duration(m) * time.Minute)
		for i, d := range office {
			add(t.Add(time.Duration(i)*time.Second), d, "192.0.2.10", 443, "", "outbound", netip.Addr{})
		}
		if m%5 == 1 {
			add(t.Add(10*time.Second), office[0], "198.51.100.7", 443, "anydesk", "outbound", netip.Addr{})
			add(t.Add(11*time.Second), office[1], "198.51.100.8", 5938, "teamviewer", "outbound", netip.Addr{})
		}
		if m%9 == 4 {
			add(t.Add(13*time.Second), office[0], "198.51.100.8", 5938, "teamviewer", "outbound", netip.Addr{})
		}
		if m%7 == 3 {
			add(t.Add(12*time.Second), office[2], office[3].IP.String(), 3389, "rdp", "internal", netip.Addr{})
		}
		if m >= n/3 {
			add(t.Add(20*time.Second), farmA, "192.0.2.20", 443, "", "outbound", sharedEgress)
		}
		if m >= n/2 {
			add(t.Add(21*time.Second), farmB, "192.0.2.21", 443, "", "outbound", sharedEgress)
		}
		add(t.Add(22*time.Second), home, "192.0.2.22", 443, "", "outbound", netip.MustParseAddr("203.0.113.77"))
	}
	return out
}

// TestConsume runs one instance over the test flows: it must publish the
// findings one in-process pipeline raises, commit everything, and count
// what it did.
func TestConsume(t *testing.T) {
	h := newHarness(t)
	recs := testFlows(60)
	h.produce(recs)
	in := h.start(h.config(nil))
	h.waitDone(30 * time.Second)
	in.close(t)

	want := findingtest.Fold(inProcess(t, h.set, recs))
	got := findingtest.Fold(h.published())
	if len(want) < 5 {
		t.Fatalf("the fixture raises only %s", ruleCounts(want))
	}
	findingtest.Compare(t, got, want, "in-process")
	t.Logf("findings: %s", ruleCounts(got))
	st := in.c.Stats()
	if st.Consumed != uint64(len(recs)) || st.DLQ != 0 || st.Published == 0 || st.Forwarded == 0 {
		t.Errorf("stats %+v, %d records", st, len(recs))
	}
	metrics := gather(t, in.reg)
	for _, want := range []string{
		fmt.Sprintf("edgeward_consumed_records_total %d", len(recs)),
		`edgeward_rules_matches_total{mode="alert",rule="laptop_farm.shared_egress_ip"}`,
		`edgeward_alerts_total{category="laptop_farm",rule="laptop_farm.shared_egress_ip",severity="High"} 1`,
		"edgeward_rules_loaded " + fmt.Sprint(len(h.set.Rules())),
		"edgeward_rules_last_reload_successful 1",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// gather renders a registry's metrics in the text format, sorted.
func gather(t testing.TB, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			name := mf.GetName()
			if len(ls) > 0 {
				name += "{" + strings.Join(ls, ",") + "}"
			}
			lines = append(lines, fmt.Sprintf("%s %g", name, v))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// waitAssigned waits until each instance owns n partitions of the flows
// topic.
func (h *harness) waitAssigned(n int, ins ...*instance) {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	want := fmt.Sprintf(`edgeward_assigned_partitions{topic=%q} %d`, h.flows, n)
	for _, in := range ins {
		for !strings.Contains(gather(h.t, in.reg), want) {
			if time.Now().After(deadline) {
				h.t.Fatalf("instances do not own %d partitions each:\n%s", n, gather(h.t, in.reg))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestSharedEgressAcrossInstances is the aggregation acceptance test: the
// built-in laptop_farm.shared_egress_ip (devices per egress address) fires
// exactly once with two instances, the two devices' flows being on
// partitions of different instances.
func TestSharedEgressAcrossInstances(t *testing.T) {
	h := newHarness(t)
	pa, pb := partitionOf(farmA.ID, flowParts), partitionOf(farmB.ID, flowParts)
	// The range assignor gives each of two members half the partitions.
	if pa/(flowParts/2) == pb/(flowParts/2) {
		t.Fatalf("%s (partition %d) and %s (partition %d) would share an instance", farmA.ID, pa, farmB.ID, pb)
	}
	a, b := h.start(h.config(nil)), h.start(h.config(nil))
	h.waitAssigned(flowParts/2, a, b)
	recs := testFlows(90)
	h.produce(recs)
	h.waitDone(30 * time.Second)
	a.close(t)
	b.close(t)

	got := findingtest.Fold(h.published())
	var shared []*findingtest.Finding
	for _, f := range got {
		if f.Rule == "laptop_farm.shared_egress_ip" {
			shared = append(shared, f)
		}
	}
	if len(shared) != 1 || shared[0].Group != `{"egress.ip":"203.0.113.50"}` {
		t.Errorf("shared_egress_ip findings: %+v, want one for 203.0.113.50", shared)
	}
	findingtest.Compare(t, got, findingtest.Fold(inProcess(t, h.set, recs)), "in-process")
	sa, sb := a.c.Stats(), b.c.Stats()
	if sa.Consumed == 0 || sb.Consumed == 0 || sa.Consumed+sb.Consumed != uint64(len(recs)) {
		t.Errorf("instances consumed %d and %d of %d records", sa.Consumed, sb.Consumed, len(recs))
	}
}

// TestRebalance moves partitions while flows arrive: a second instance
// joins mid-stream and the first leaves later. The instance that takes a
// partition over rebuilds its rule state from the partition's history, so
// the findings are still those of one in-process pipeline.
func TestRebalance(t *testing.T) {
	h := newHarness(t)
	recs := testFlows(120)
	third := len(recs) / 3
	a := h.start(h.config(nil))
	h.produce(recs[:third])
	h.waitDone(30 * time.Second)
	b := h.start(h.config(nil))
	h.waitAssigned(flowParts/2, a, b)
	h.produce(recs[third : 2*third])
	h.waitDone(30 * time.Second)
	a.close(t)
	h.waitAssigned(flowParts, b)
	h.produce(recs[2*third:])
	h.waitDone(30 * time.Second)
	b.close(t)

	findingtest.Compare(t, findingtest.Fold(h.published()), findingtest.Fold(inProcess(t, h.set, recs)), "in-process")
	if m := gather(t, b.reg); !strings.Contains(m, "edgeward_rebuild_records_total") {
		t.Errorf("the second instance rebuilt nothing:\n%s", m)
	}
}

// TestPoison is the poison acceptance test: damaged, wrong-version and
// foreign records go to the dead-letter topic with the reason and where
// they were read, are counted, and the consumer keeps going.
func TestPoison(t *testing.T) {
	h := newHarness(t)
	recs := testFlows(30)
	wrongVersion := recs[0].AppendBinary(nil)
	wrongVersion[0] = 9
	truncated := recs[1].AppendBinary(nil)
	truncated = truncated[:len(truncated)-3]
	jsonFlow := recs[2].AppendJSON(nil)
	type poison struct {
		value  []byte
		ct     string
		reason string
		err    string
	}
	poisons := []poison{
		{wrongVersion, flow.ContentType, ReasonVersion, "unknown flow wire format version 9"},
		{truncated, flow.ContentType, ReasonDecode, "truncated"},
		{[]byte("\x01\x05\xff\xff\xff\xff\xff"), "", ReasonDecode, "flow record: byte"},
		{[]byte("{not json"), flow.ContentTypeJSON, ReasonDecode, "JSON flow record"},
		{[]byte("hello"), "text/plain", ReasonContentType, `content type "text/plain" is not a flow record`},
		{nil, flow.ContentType, ReasonDecode, "empty record"},
	}
	cl := h.c.Client(kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	produce := func(key string, value []byte, ct string) {
		r := &kgo.Record{Topic: h.flows, Key: []byte(key), Value: value}
		if ct != "" {
			r.Headers = []kgo.RecordHeader{{Key: HeaderContentType, Value: []byte(ct)}, {Key: "trace", Value: []byte(key)}}
		}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	h.produce(recs[:len(recs)/2])
	for i, p := range poisons {
		produce(fmt.Sprintf("poison-%d", i), p.value, p.ct)
	}
	produce(deviceKey(recs[2]), jsonFlow, flow.ContentTypeJSON) // JSON is fine
	h.produce(recs[len(recs)/2:])
	in := h.start(h.config(nil))
	h.waitDone(30 * time.Second)
	in.close(t)

	dead := h.c.Records(h.dlq)
	if len(dead) != len(poisons) {
		t.Fatalf("%d dead letters, want %d", len(dead), len(poisons))
	}
	byKey := map[string]kafkatest.Record{}
	for _, d := range dead {
		byKey[string(d.Key)] = d
	}
	for i, p := range poisons {
		d, ok := byKey[fmt.Sprintf("poison-%d", i)]
		switch {
		case !ok:
			t.Errorf("poison %d not in the dead-letter topic", i)
			continue
		case string(d.Value) != string(p.value):
			t.Errorf("poison %d: value %q, want the original %q", i, d.Value, p.value)
		case d.Headers[HeaderDLQReason] != p.reason:
			t.Errorf("poison %d: reason %q, want %q", i, d.Headers[HeaderDLQReason], p.reason)
		case !strings.Contains(d.Headers[HeaderDLQError], p.err) || !strings.Contains(d.Headers[HeaderDLQError], h.flows+" partition "):
			t.Errorf("poison %d: error %q, want it to say %q and where", i, d.Headers[HeaderDLQError], p.err)
		case d.Headers[HeaderDLQTopic] != h.flows || d.Headers[HeaderDLQPartition] == "" || d.Headers[HeaderDLQOffset] == "":
			t.Errorf("poison %d: origin headers %v", i, d.Headers)
		case p.ct != "" && (d.Headers["trace"] != fmt.Sprintf("poison-%d", i) || d.Headers[HeaderContentType] != p.ct):
			t.Errorf("poison %d: original headers not kept: %v", i, d.Headers)
		}
	}
	st := in.c.Stats()
	if st.DLQ != uint64(len(poisons)) || st.Consumed != uint64(len(recs)+len(poisons)+1) {
		t.Errorf("stats %+v", st)
	}
	m := gather(t, in.reg)
	for _, want := range []string{`edgeward_dlq_records_total{reason="decode"} 4`, `edgeward_dlq_records_total{reason="version"} 1`, `edgeward_dlq_records_total{reason="content_type"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The good records, the JSON one included, were processed.
	all := append(append(append([]*flow.Record(nil), recs[:len(recs)/2]...), recs[2]), recs[len(recs)/2:]...)
	findingtest.Compare(t, findingtest.Fold(h.published()), findingtest.Fold(inProcess(t, h.set, all)), "in-process")
}

// metricValue is the value of one series in gather's rendering, or -1.
func metricValue(t testing.TB, reg *prometheus.Registry, series string) float64 {
	t.Helper()
	for _, l := range strings.Split(gather(t, reg), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return -1
}

// TestRebuildMetrics: an instance that takes over partitions rebuilds
// their rule state from history without publishing the alerts again;
// its per-rule metrics must not count those alerts again either, or
// every takeover (rolling restart, crash) counts the last kafka.rebuild
// of alerts twice across the fleet.
func TestRebuildMetrics(t *testing.T) {
	h := newHarness(t)
	recs := testFlows(60)
	h.produce(recs)
	a := h.start(h.config(nil))
	h.waitDone(30 * time.Second)
	a.close(t)
	const rule = "laptop_farm.shared_egress_ip"
	series := fmt.Sprintf(`edgeward_rules_alerts_total{rule=%q}`, rule)
	if v := metricValue(t, a.reg, series); v != 1 {
		t.Fatalf("the first instance: %s %g, want 1", series, v)
	}

	b := h.start(h.config(nil))
	// b re-reads both topics' history to rebuild, and publishes nothing.
	fwd := a.c.Stats().Forwarded
	deadline := time.Now().Add(30 * time.Second)
	for metricValue(t, b.reg, "edgeward_consumed_records_total") != float64(len(recs)) ||
		metricValue(t, b.reg, "edgeward_repartition_consumed_total") != float64(fwd) ||
		metricValue(t, b.reg, "edgeward_repartition_held_records") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the second instance did not re-read the history:\n%s", gather(t, b.reg))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := b.c.Stats(); st.Published != 0 {
		t.Fatalf("the rebuilding instance published %d alerts", st.Published)
	}
	opened := metricValue(t, b.reg, fmt.Sprintf(`edgeward_alerts_total{category="laptop_farm",rule=%q,severity="High"}`, rule))
	if v := metricValue(t, b.reg, series); v > 0 {
		t.Errorf("the rebuilding instance counts %s %g (edgeward_alerts_total %g): alerts its predecessor opened and counted", series, v, opened)
	}
}

// TestCommittedPastEnd: a committed offset past the end of a partition
// (its log truncated by an unclean leader election, or offsets reset by
// hand) is out of range. The consumer must start again from the first
// offset, as Kafka's auto.offset.reset=earliest does.
// Without a rebuild the first fetch is out of range; with one, the
// records before the committed offset would be taken for a replay.
func TestCommittedPastEnd(t *testing.T) {
	for _, rebuild := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprint("rebuild=", rebuild), func(t *testing.T) { testCommittedPastEnd(t, rebuild) })
	}
}

func testCommittedPastEnd(t *testing.T, rebuild time.Duration) {
	h := newHarness(t)
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = h.groupID, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = h.flows
	for p := range int32(flowParts) {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, 1000
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	// Before topic ids, which the in-process broker wants from v10 on.
	resp, err := req.RequestWith(context.Background(), h.c.Client(kgo.MaxVersions(kversion.V3_0_0())))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.Topics[0].Partitions {
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			t.Fatalf("committing partition %d: %v", p.Partition, err)
		}
	}
	recs := testFlows(30)
	h.produce(recs)
	cfg := h.config(nil)
	cfg.Rebuild = rebuild
	in := h.start(cfg)
	h.waitDone(20 * time.Second)
	in.close(t)
	findingtest.Compare(t, findingtest.Fold(h.published()), findingtest.Fold(inProcess(t, h.set, recs)), "in-process")
}
