package consume

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/pipeline"
	"github.com/edgeward/edgeward/rules"
)

// testWorker is a worker of a Consumer that never connects: for the
// worker's own logic, without a broker.
func testWorker(t *testing.T, set *rules.Set, repartition bool) *worker {
	t.Helper()
	c, err := New(Config{Brokers: []string{"127.0.0.1:1"}, Rules: set, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	s := c.flows
	if repartition {
		s = c.repart
	}
	w := newWorker(s, 0)
	w.reset()
	return w
}

func loadRules(t *testing.T, text string) *rules.Set {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r.yml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	schema, err := pipeline.Schema()
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Load([]string{path}, rules.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// TestForwardKeylessGroup: a key group without fields (a suppression
// with no key) must send every flow to one partition of the repartition
// topic. kafka-go's murmur2 balancer spreads a nil key at random, so the
// key must be empty, never nil, also for a worker's first forward.
func TestForwardKeylessGroup(t *testing.T) {
	w := testWorker(t, loadRules(t, `
- rule: telnet
  title: t
  severity: low
  category: c
  match: dst.port == 23
  suppress: {for: 1h}
`), false)
	rec := testFlows(1)[0]
	rec.Dst.Port = 23
	hdr := []kafka.Header{{Key: HeaderContentType, Value: []byte(flow.ContentType)}}
	for i := range 2 {
		w.val = rec.AppendBinary(w.val[:0])
		w.flow(int64(i), hdr)
	}
	if len(w.out) != 2 {
		t.Fatalf("%d messages queued, want 2 forwarded flows", len(w.out))
	}
	for i, m := range w.out {
		if m.Topic != w.c.cfg.RepartitionTopic || m.Key == nil {
			t.Errorf("forward %d: topic %s, key %v (nil: a random partition)", i, m.Topic, m.Key)
		}
	}
}

// TestDecodeSchemaVersion: a record of a schema this build does not know
// is dead-lettered with reason version, not evaluated as if it were v1
// (docs/operations.md, Upgrading).
func TestDecodeSchemaVersion(t *testing.T) {
	w := testWorker(t, builtinRules(t), false)
	rec := testFlows(1)[0]
	rec.Schema = "edgeward.flow/v2"
	for _, tc := range []struct {
		ct  string
		val []byte
	}{
		{flow.ContentTypeJSON, rec.AppendJSON(nil)},
		{flow.ContentType, rec.AppendBinary(nil)},
	} {
		reason, err := w.decode(tc.val, []kafka.Header{{Key: HeaderContentType, Value: []byte(tc.ct)}})
		if reason != ReasonVersion || err == nil || !strings.Contains(err.Error(), "edgeward.flow/v2") {
			t.Errorf("%s record of schema %s: reason %q, err %v; want %q", tc.ct, rec.Schema, reason, err, ReasonVersion)
		}
	}
	rec.Schema = flow.Schema
	if reason, err := w.decode(rec.AppendJSON(nil), nil); err != nil {
		t.Errorf("a v1 JSON record: %s %v", reason, err)
	}
}
