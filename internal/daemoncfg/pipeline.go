package daemoncfg

import (
	"fmt"
	"time"

	"github.com/edgeward/edgeward/internal/kafkaconn"
)

// Pipeline is the configuration of `edgeward pipeline`; the YAML keys,
// variables and flags are documented in docs/configuration.md, generated
// from these tags (go test ./cmd/edgeward -run ConfigurationDoc -update).
type Pipeline struct {
	Kafka struct {
		kafkaconn.Config  `yaml:",inline"`
		FlowsTopic        string        `yaml:"flows_topic" flag:"flows-topic" default:"edgeward.flows.v1" help:"topic the flow records are read from"`
		AlertsTopic       string        `yaml:"alerts_topic" flag:"alerts-topic" default:"edgeward.alerts.v1" help:"topic the alerts (OCSF Detection Findings, JSON) go to, keyed by device"`
		DLQTopic          string        `yaml:"dlq_topic" flag:"dlq-topic" default:"edgeward.flows.dlq.v1" help:"dead-letter topic: records that cannot be decoded, with the reason and their origin in headers"`
		RepartitionTopic  string        `yaml:"repartition_topic" flag:"repartition-topic" default:"edgeward.repartition.v1" help:"internal topic re-keying the flows of rules whose state is not keyed by device (docs/architecture-kafka.md); empty: run every rule on the flows partitions, correct with a single instance only"`
		GroupID           string        `yaml:"group_id" flag:"group-id" default:"edgeward-pipeline" help:"consumer group of the flows topic; the repartition topic's is <group_id>.repartition"`
		Rebuild           time.Duration `yaml:"rebuild" default:"24h" help:"on taking over a partition, re-read this much of its history (by record time) before the committed offset to rebuild rule windows and open alerts, without publishing their alerts again; 0: start at the committed offset"`
		ReorderDelay      time.Duration `yaml:"reorder_delay" default:"2s" help:"how long a flow on the repartition topic waits for flows the sensor exported before it to arrive from other partitions, so that rules keyed by something else than the device see the sensor's export order (as edgeward run does)"`
		CommitInterval    time.Duration `yaml:"commit_interval" default:"1s" help:"how often offsets whose alerts are acknowledged are committed"`
		SessionTimeout    time.Duration `yaml:"session_timeout" default:"30s" help:"how long the group waits for a silent instance before giving its partitions to the others"`
		HeartbeatInterval time.Duration `yaml:"heartbeat_interval" default:"3s" help:"how often an instance tells the group it is alive"`
		FlushTimeout      time.Duration `yaml:"flush_timeout" default:"30s" help:"on shutdown, how long to keep trying to publish the last batch and the alerts closed by the shutdown"`
	} `yaml:"kafka"`
	Rules struct {
		Builtin bool     `yaml:"builtin" flag:"builtin" default:"true" help:"load the built-in rule pack"`
		Paths   []string `yaml:"paths" flag:"rules" help:"rule files or directories adding to (or, by rule id, overriding) the built-in pack; reloaded when they change"`
	} `yaml:"rules"`
	Enrich struct {
		GeoIP string   `yaml:"geoip" flag:"geoip" help:"GeoIP country database (MaxMind GeoIP2/GeoLite2 Country or City, or ip-location-db country mmdb); reloaded when it changes"`
		ASN   string   `yaml:"asn" flag:"asn" help:"ASN database (GeoLite2-ASN schema)"`
		Anon  string   `yaml:"anon" flag:"anon" help:"anonymizer database (GeoIP2-Anonymous-IP schema)"`
		Intel []string `yaml:"intel" flag:"intel" help:"intel list files or directories (CIDRs, domains, AS numbers, JA4)"`
	} `yaml:"enrich"`
	Metrics struct {
		Listen string `yaml:"listen" flag:"metrics-listen" default:"127.0.0.1:9101" help:"address of /metrics, /healthz and /readyz; empty to serve none"`
	} `yaml:"metrics"`
	MemoryLimit int64 `yaml:"memory_limit" unit:"bytes" help:"soft memory limit of the Go heap (0: GOMEMLIMIT, or none)"`
}

// Check implements config.Checker.
func (c *Pipeline) Check(report func(key, msg string)) {
	for _, kv := range [][2]string{{"kafka.flows_topic", c.Kafka.FlowsTopic}, {"kafka.alerts_topic", c.Kafka.AlertsTopic}, {"kafka.dlq_topic", c.Kafka.DLQTopic}, {"kafka.group_id", c.Kafka.GroupID}} {
		if kv[1] == "" {
			report(kv[0], "must not be empty")
		}
	}
	topics := map[string]string{}
	for _, kv := range [][2]string{{"flows_topic", c.Kafka.FlowsTopic}, {"alerts_topic", c.Kafka.AlertsTopic}, {"dlq_topic", c.Kafka.DLQTopic}, {"repartition_topic", c.Kafka.RepartitionTopic}} {
		if kv[1] == "" {
			continue
		}
		if other, dup := topics[kv[1]]; dup {
			report("kafka."+kv[0], fmt.Sprintf("%q is also kafka.%s", kv[1], other))
		}
		topics[kv[1]] = kv[0]
	}
	if c.Kafka.Rebuild < 0 {
		report("kafka.rebuild", "must not be negative")
	}
	for _, kd := range []struct {
		key string
		d   time.Duration
	}{{"kafka.reorder_delay", c.Kafka.ReorderDelay}, {"kafka.commit_interval", c.Kafka.CommitInterval}, {"kafka.session_timeout", c.Kafka.SessionTimeout}, {"kafka.heartbeat_interval", c.Kafka.HeartbeatInterval}, {"kafka.flush_timeout", c.Kafka.FlushTimeout}} {
		if kd.d <= 0 {
			report(kd.key, "must be positive")
		}
	}
	if c.Kafka.HeartbeatInterval >= c.Kafka.SessionTimeout && c.Kafka.SessionTimeout > 0 {
		report("kafka.heartbeat_interval", "must be shorter than session_timeout")
	}
	if !c.Rules.Builtin && len(c.Rules.Paths) == 0 {
		report("rules.builtin", "no rules: builtin is false and paths is empty")
	}
	checkListen(c.Metrics.Listen, report)
	checkMemoryLimit(c.MemoryLimit, report)
}
