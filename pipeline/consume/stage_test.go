package consume

import (
	"fmt"
	"testing"
	"time"

	"github.com/edgeward/edgeward/internal/kafkatest"
)

// TestMissingFlowsTopic: a flows topic that does not exist (a typo in
// kafka.flows_topic) makes the instance not ready, saying why, and does
// not spin the consumer group through generations.
func TestMissingFlowsTopic(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Topic(DefaultAlertsTopic, 1), kafkatest.Topic(DefaultDLQTopic, 1), kafkatest.Topic(DefaultRepartitionTopic, 1))
	c.FastGroups()
	h := &harness{t: t, c: c, set: builtinRules(t), flows: c.Topic("edgeward.flow.v1"), alerts: c.Topic(DefaultAlertsTopic),
		dlq: c.Topic(DefaultDLQTopic), repart: c.Topic(DefaultRepartitionTopic), groupID: "edgeward-test-missing"}
	in := h.start(h.config(nil))
	time.Sleep(3 * time.Second)
	ok, why := in.c.Ready()
	if want := fmt.Sprintf("topic %s does not exist", h.flows); ok || why != want {
		t.Errorf("Ready %v %q, want false %q", ok, why, want)
	}
	if n := metricValue(t, in.reg, fmt.Sprintf("edgeward_consumer_generations_total{topic=%q}", h.flows)); n > 5 {
		t.Errorf("%g consumer group generations in 3 s", n)
	}
}

// TestLagOutOfGroup: an instance that drops out of its group (here the
// broker goes away) owns no partition, and its lag series go with them:
// summed over the fleet, a stale last value would count a partition twice
// once another member takes it. They come back when it owns them again.
func TestLagOutOfGroup(t *testing.T) {
	h := newHarness(t)
	in := h.start(h.config(nil))
	h.waitAssigned(flowParts, in)
	series := `edgeward_consumer_lag{partition="0"}`
	waitMetric(t, in.reg, series+" 0")
	h.c.Stop()
	waitMetric(t, in.reg, fmt.Sprintf("edgeward_assigned_partitions{topic=%q} 0", h.flows))
	if v := metricValue(t, in.reg, series); v != -1 {
		t.Errorf("%s = %g with no partition owned", series, v)
	}
	h.c.Restart()
	h.waitAssigned(flowParts, in)
	waitMetric(t, in.reg, series+" 0")
}
