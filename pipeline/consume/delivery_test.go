package consume

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/findingtest"
)

// waitProcessed waits until the instance has read n records of the flows
// topic and fwd() of the repartition topic.
func (h *harness) waitProcessed(in *instance, n uint64, fwd func() uint64) {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := in.c.Stats()
		if st.Consumed == n && metricValue(h.t, in.reg, "edgeward_repartition_consumed_total") == float64(fwd()) {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("the instance did not process the records: %+v\n%s", st, gather(h.t, in.reg))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestShutdownCommits: at a graceful shutdown each worker finishes its
// batch, publishes what its engines close and commits
// (docs/architecture-kafka.md, Shutdown), the repartitioned flows still
// held in the reorder buffer included: they are evaluated and published at
// shutdown. Without that commit the next owner processes the records since
// the last periodic commit again and repeats their alerts.
func TestShutdownCommits(t *testing.T) {
	h := newHarness(t)
	recs := testFlows(40)
	h.produce(recs)
	cfg := h.config(nil)
	cfg.CommitInterval = time.Hour // only the shutdown commits
	cfg.ReorderDelay = time.Hour   // every repartitioned flow is still held at shutdown
	a := h.start(cfg)
	forwarded := func() uint64 { return a.c.Stats().Forwarded }
	h.waitProcessed(a, uint64(len(recs)), forwarded)
	a.close(t)
	first := len(h.c.Records(h.alerts))
	h.waitDone(5 * time.Second)

	// The next owner only rebuilds the state: it re-reads both topics
	// and publishes nothing before its own shutdown closes what it
	// rebuilt.
	cfg.CommitInterval, cfg.ReorderDelay = 100*time.Millisecond, time.Millisecond
	b := h.start(cfg)
	h.waitProcessed(b, uint64(len(recs)), forwarded)
	time.Sleep(500 * time.Millisecond) // the reorder delay, and a publish
	if st := b.c.Stats(); st.Published != 0 {
		t.Errorf("the next owner published %d alerts again (%d the first time)", st.Published, first)
	}
	b.close(t)
	findingtest.Compare(t, findingtest.Fold(h.published()), findingtest.Fold(inProcess(t, h.set, recs)), "in-process")
}

// setTopicConfig sets one configuration of a topic.
func (h *harness) setTopicConfig(topic, name, value string) {
	h.t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Value = name, kmsg.StringPtr(value)
	r.Configs = append(r.Configs, c)
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(context.Background(), h.c.Client())
	if err == nil && len(resp.Resources) == 1 {
		err = kerr.ErrorForCode(resp.Resources[0].ErrorCode)
	}
	if err != nil {
		h.t.Fatalf("setting %s=%s on %s: %v", name, value, topic, err)
	}
}

// TestDeadLetterNearMaxBytes: a poison record that the flows topic took,
// close to its max.message.bytes, does not fit the dead-letter topic once
// the reason headers are added. It must neither stop its partition (the
// records after it are processed and committed) nor vanish uncounted.
func TestDeadLetterNearMaxBytes(t *testing.T) {
	// Kafka's default limit (1048588), and a topic's own lower one.
	for _, limit := range []int{0, 16 << 10} {
		t.Run(fmt.Sprint("max.message.bytes=", limit), func(t *testing.T) { testDeadLetterNearMaxBytes(t, limit) })
	}
}

func testDeadLetterNearMaxBytes(t *testing.T, limit int) {
	h := newHarness(t)
	if limit > 0 {
		h.setTopicConfig(h.flows, "max.message.bytes", strconv.Itoa(limit))
		h.setTopicConfig(h.dlq, "max.message.bytes", strconv.Itoa(limit))
	} else {
		limit = 1048588
	}
	poison := make([]byte, limit-200) // random: lz4 does not shrink it
	rand.Read(poison)
	poison[0] = 1 // the binary format's version, then garbage
	recs := testFlows(20)
	h.produce(recs[:len(recs)/2])
	cl := h.c.Client(kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), kgo.ProducerBatchMaxBytes(int32(limit)))
	r := &kgo.Record{Topic: h.flows, Key: []byte(deviceKey(recs[0])), Value: poison,
		Headers: []kgo.RecordHeader{{Key: HeaderContentType, Value: []byte(flow.ContentType)}}}
	if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
		t.Fatalf("the flows topic refuses the poison record: %v", err)
	}
	h.produce(recs[len(recs)/2:])
	in := h.start(h.config(nil))
	h.waitDone(20 * time.Second)
	in.close(t)

	if st := in.c.Stats(); st.DLQ != 1 {
		t.Errorf("stats %+v, want one dead letter", st)
	}
	dead := h.c.Records(h.dlq)
	if len(dead) != 1 || dead[0].Headers[HeaderDLQReason] != ReasonDecode || dead[0].Headers[HeaderDLQOffset] == "" ||
		!strings.Contains(dead[0].Headers[HeaderDLQTruncated], "too large") {
		t.Errorf("dead letters %+v, want the poison record's reason and origin, saying it was truncated", dead)
	}
	findingtest.Compare(t, findingtest.Fold(h.published()), findingtest.Fold(inProcess(t, h.set, recs)), "in-process")
}

// TestRepartitionAbsentIntKey: Matcher.AppendKey (the repartition key)
// writes an absent int field as "\x01absent", the engine's own group key
// as "0\x01absent". Both are one-to-one functions of the same values, so
// every flow of a group, the group of the absent value included, still
// reaches one partition and one engine state: the findings equal the
// in-process pipeline's.
func TestRepartitionAbsentIntKey(t *testing.T) {
	h := newHarness(t)
	h.set = loadRules(t, `
- rule: devices_per_egress_port
  title: t
  severity: low
  category: c
  match: dst.port == 443
  aggregate: {type: value_count, field: device.ip, group_by: [egress.port], window: 1h, condition: {gte: 3}}
  suppress: {for: 24h}
`)
	if got := Repartitioned(h.set); len(got["egress.port"]) != 1 {
		t.Fatalf("key groups %v, want the rule keyed by egress.port", got)
	}
	recs := testFlows(20) // the office laptops have no egress: egress.port is absent
	h.produce(recs)
	in := h.start(h.config(nil))
	h.waitDone(30 * time.Second)
	in.close(t)

	parts := map[string]map[int32]bool{}
	for _, r := range h.c.Records(h.repart) {
		if parts[string(r.Key)] == nil {
			parts[string(r.Key)] = map[int32]bool{}
		}
		parts[string(r.Key)][r.Partition] = true
	}
	if len(parts) != 2 || len(parts["\x01absent"]) != 1 || len(parts["51820"]) != 1 {
		t.Errorf("repartition keys and their partitions: %v", parts)
	}
	want := findingtest.Fold(inProcess(t, h.set, recs))
	if len(want) != 2 {
		t.Fatalf("the fixture raises %s, want two groups", ruleCounts(want))
	}
	findingtest.Compare(t, findingtest.Fold(h.published()), want, "in-process")
}

// httpsRule raises an alert per flow to port 443.
const httpsRule = `
- rule: https
  title: t
  severity: low
  category: c
  match: dst.port == 443
`

// TestPublishLargeBatch: one fetch of flows (up to 1 MiB compressed) can
// raise thousands of alerts for one device, that is one partition of the
// alerts topic. Their write must fit Kafka's default max.message.bytes
// (1048588, checked per partition's record batch), or the broker refuses
// it on every retry and the partition never moves again.
func TestPublishLargeBatch(t *testing.T) {
	h := newHarness(t)
	h.set = loadRules(t, httpsRule)
	base := testFlows(1)[0]
	var recs []*flow.Record
	for i := range 8000 {
		r := *base
		r.ID, r.CommunityID = fmt.Sprintf("F%07d", i), fmt.Sprintf("1:%d", i)
		r.Start = base.Start.Add(time.Duration(i) * time.Second)
		r.End = r.Start.Add(2 * time.Second)
		r.Src.Port = uint16(1024 + i)
		recs = append(recs, &r)
	}
	h.produce(recs)
	in := h.start(h.config(nil))
	h.waitDone(30 * time.Second)
	in.close(t)
	if st := in.c.Stats(); st.Published != uint64(len(recs)) {
		t.Errorf("stats %+v, want an alert per flow", st)
	}
}

// TestRepartitionTooLarge: a valid flow that the flows topic took but
// whose copy for the repartition topic is over that topic's
// max.message.bytes (a lower limit there, or the routing headers) goes to
// the dead-letter topic with its origin, counted, instead of being retried
// for good: the partition goes on, and the flows after it are processed.
func TestRepartitionTooLarge(t *testing.T) {
	h := newHarness(t)
	h.setTopicConfig(h.repart, "max.message.bytes", "4096")
	recs := testFlows(20)
	var big *flow.Record
	for _, r := range recs {
		if r.Egress != nil && r.Egress.IP == sharedEgress { // forwarded: the shared-egress rule groups by it
			c := *r
			big = &c
			break
		}
	}
	big.ID, big.CommunityID = "F-big", "1:big"
	junk := make([]byte, 4000) // random hex: lz4 keeps it near its size
	rand.Read(junk)
	big.TLS = &flow.TLS{SNI: "big.example", JA3String: fmt.Sprintf("%x", junk)}
	h.produce(recs[:len(recs)/2])
	h.produce([]*flow.Record{big})
	h.produce(recs[len(recs)/2:])
	in := h.start(h.config(nil))
	h.waitDone(20 * time.Second)
	in.close(t)

	dead := h.c.Records(h.dlq)
	if len(dead) != 1 || dead[0].Headers[HeaderDLQReason] != ReasonRepartitionTooLarge ||
		dead[0].Headers[HeaderDLQTopic] != h.flows || dead[0].Headers[HeaderDLQOffset] == "" {
		for _, d := range dead {
			t.Logf("dead letter: %d bytes, headers %v", len(d.Value), d.Headers)
		}
		t.Fatalf("%d dead letters, want the large flow with its reason and origin", len(dead))
	}
	var r flow.Record
	if err := flow.DecodeBinary(dead[0].Value, &r); err != nil || r.ID != big.ID {
		t.Errorf("dead letter holds record %q (%v), want %q", r.ID, err, big.ID)
	}
	if st := in.c.Stats(); st.DLQ != 1 {
		t.Errorf("stats %+v, want one dead letter", st)
	}
	findingtest.Compare(t, findingtest.Fold(h.published()), findingtest.Fold(inProcess(t, h.set, recs)), "in-process without the large flow")
}
