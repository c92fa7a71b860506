package consume

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/produce"

	"github.com/edgeward/edgeward/flow"
)

// refuseProduce refuses, while on, every produce request for one
// partition of one topic, as a broker does when that partition's leader
// is unavailable.
type refuseProduce struct {
	kafka.RoundTripper
	topic     string
	partition int32
	on        atomic.Bool
}

func (r *refuseProduce) RoundTrip(ctx context.Context, addr net.Addr, req kafka.Request) (kafka.Response, error) {
	if p, ok := req.(*produce.Request); ok && r.on.Load() {
		for _, t := range p.Topics {
			for _, pt := range t.Partitions {
				if t.Topic == r.topic && pt.Partition == r.partition {
					return nil, errors.New("partition refused by the test")
				}
			}
		}
	}
	return r.RoundTripper.RoundTrip(ctx, addr, req)
}

// TestReadyPartitionBlocked: one partition whose alerts cannot be
// published keeps the instance not ready while another partition publishes
// fine. The flag was shared: the healthy partition's next publish cleared
// it, so /readyz said ready while a partition was stuck.
func TestReadyPartitionBlocked(t *testing.T) {
	h := newHarness(t)
	h.set = loadRules(t, httpsRule)
	// Two devices on different partitions of the flows topic, whose
	// alerts go to alerts partitions 0 (healthy) and 1 (refused).
	var healthy, stuck *flow.Device
	for i := 0; healthy == nil || stuck == nil; i++ {
		id := fmt.Sprintf("LT-%03d", i)
		switch {
		case healthy == nil && partitionOf(id, 2) == 0:
			healthy = testDevice(id, fmt.Sprintf("10.1.0.%d", i+1))
		case healthy != nil && stuck == nil && partitionOf(id, 2) == 1 && partitionOf(id, flowParts) != partitionOf(healthy.ID, flowParts):
			stuck = testDevice(id, fmt.Sprintf("10.1.0.%d", i+1))
		}
	}
	flowOf := func(d *flow.Device, n int) *flow.Record {
		r := *testFlows(1)[0]
		r.ID, r.CommunityID, r.Device, r.Src.IP = fmt.Sprintf("%s-%d", d.ID, n), fmt.Sprintf("1:%s-%d", d.ID, n), d, d.IP
		r.Start = r.Start.Add(time.Duration(n) * time.Minute)
		r.End = r.Start.Add(time.Second)
		return &r
	}

	cfg := h.config(nil)
	in := &instance{reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	cfg.Registry = in.reg
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	refuse := &refuseProduce{RoundTripper: c.out.Transport, topic: h.alerts, partition: 1}
	c.out.Transport = refuse
	in.c = c
	ctx, cancel := context.WithCancel(context.Background())
	in.stop = cancel
	go func() { in.done <- c.Run(ctx) }()
	t.Cleanup(func() { in.close(t) })
	t.Cleanup(func() { refuse.on.Store(false) }) // first: close flushes
	h.waitAssigned(flowParts, in)

	ready := func() bool {
		ok, _ := c.Ready()
		return ok
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s: stats %+v", what, c.Stats())
			}
		}
	}
	waitFor("ready", ready)
	refuse.on.Store(true)
	h.produce([]*flow.Record{flowOf(stuck, 0)})
	waitFor("not ready", func() bool { return !ready() })
	for n := 1; n <= 3; n++ {
		h.produce([]*flow.Record{flowOf(healthy, n)})
		waitFor(fmt.Sprintf("%d alerts published", n), func() bool { return c.Stats().Published == uint64(n) })
		if ok, why := c.Ready(); ok {
			t.Fatalf("ready while a partition's alerts are refused (after %d published elsewhere)", n)
		} else if why != "publishing to Kafka is failing" {
			t.Errorf("not ready because %q", why)
		}
	}
	refuse.on.Store(false)
	waitFor("the stuck alert published", func() bool { return c.Stats().Published == 4 })
	waitFor("ready again", ready)
}
