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
