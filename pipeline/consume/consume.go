// Package consume runs the pipeline on Kafka: a consumer group reads flow
// records from the flows topic, enriches them and runs the rules (package
// pipeline, the same code as edgeward run), and publishes the alerts to
// the alerts topic keyed by device. Offsets are committed only after the
// alerts of the records before them are acknowledged by every in-sync
// replica: delivery is at least once, and a repeated alert has the same
// finding uid (rules.Alert), so consumers fold repeats.
//
// Rule state (aggregate windows, open alerts) lives in memory, one rule
// engine per partition: the sensor keys flows by device, so a partition
// holds every flow of its devices and rules whose state is keyed by the
// device see everything they need. Rules keyed by something else (one
// egress address shared by several devices) go through the repartition
// topic: the flows they match are forwarded keyed by the rule's state key,
// and a second consumer group on that topic runs those rules, one engine
// per partition and key (the Kafka Streams repartition pattern). See
// docs/architecture-kafka.md.
//
// When a partition changes owner (a rebalance, a crash), its new owner
// rebuilds the state by re-reading the partition from Config.Rebuild
// before the committed offset, without publishing again the alerts of the
// records before that offset (their previous owner did, before it
// committed). Records that cannot be decoded go to the dead-letter topic
// with the reason in their headers; they never stop the consumer.
package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	_ "github.com/edgeward/edgeward/internal/kafkalz4" // cheaper lz4 writes for the alert and internal topics
	"github.com/edgeward/edgeward/pipeline"
	"github.com/edgeward/edgeward/rules"
)

// Defaults of Config.
const (
	DefaultGroupID          = "edgeward-pipeline"
	DefaultFlowsTopic       = "edgeward.flows.v1"
	DefaultAlertsTopic      = "edgeward.alerts.v1"
	DefaultDLQTopic         = "edgeward.flows.dlq.v1"
	DefaultRepartitionTopic = "edgeward.repartition.v1"
)

// Message headers.
const (
	HeaderContentType = "content-type" // of flows (as the sensor sets it) and of alerts
	HeaderFindingUID  = "finding-uid"  // alerts: finding_info.uid
	// Repartitioned flows carry the key group (the state key's fields,
	// comma-separated) and where the flow was read: "partition/offset" of
	// the flows topic, which makes forwarding a flow twice harmless.
	HeaderRoute  = "edgeward-route"
	HeaderSource = "edgeward-source"
	// Dead letters keep the record's key, value and headers, and add why
	// and where it was read.
	HeaderDLQReason    = "dlq-reason"
	HeaderDLQError     = "dlq-error"
	HeaderDLQTopic     = "dlq-topic"
	HeaderDLQPartition = "dlq-partition"
	HeaderDLQOffset    = "dlq-offset"
	// A dead letter too large for its topic keeps only the headers above
	// and this one, which says what it left out.
	HeaderDLQTruncated = "dlq-truncated"
)

// Dead-letter reasons.
const (
	ReasonDecode      = "decode"       // a damaged binary record or bad JSON
	ReasonVersion     = "version"      // a record of a wire version or schema this build does not read
	ReasonContentType = "content_type" // a content type that is not a flow record
	// A valid flow whose copy for the repartition topic is over that
	// topic's max.message.bytes: the key groups the copy was for miss it.
	ReasonRepartitionTooLarge = "repartition_too_large"
)

// DefaultReorderDelay is Config.ReorderDelay's default.
const DefaultReorderDelay = 2 * time.Second

// fetchBytes is the most one fetch of a partition returns.
const fetchBytes = 1 << 20

// batchBytes bounds the messages of one write (worker.write), so that the
// record batch of each partition stays under Kafka's default
// max.message.bytes (1048588, compressed): the broker refuses a larger one
// on every retry, which would stop the partition for good, and one fetch
// of flows can raise megabytes of alerts for one device. The producer's
// BatchBytes stays larger: it refuses outright a single message above it,
// where the broker judges a large but compressible record by its
// compressed size.
const batchBytes = 1_000_000

// Config configures a Consumer.
type Config struct {
	Brokers []string
	// Dialer is for the group coordinator, Transport for fetching and
	// producing: TLS and SASL (package kafkaconn). nil: plain TCP.
	Dialer    *kafka.Dialer
	Transport *kafka.Transport
	// GroupID is the flows topic's consumer group; the repartition topic's
	// is GroupID + ".repartition".
	GroupID          string
	FlowsTopic       string
	AlertsTopic      string
	DLQTopic         string
	RepartitionTopic string
	// NoRepartition runs every rule on the flows topic's partitions:
	// correct only when one instance owns them all.
	NoRepartition bool

	// Rules is the rule set, compiled against pipeline.Schema(); SetRules
	// replaces it. Enrich may be nil.
	Rules  *rules.Set
	Enrich pipeline.Enricher

	// Rebuild is how much history, by record time, a partition's new
	// owner re-reads before the committed offset to rebuild rule state;
	// 0 starts at the committed offset.
	Rebuild time.Duration
	// ReorderDelay is how long a repartitioned flow waits for flows the
	// sensor exported before it to arrive from other partitions (see
	// reorder.go); default 2s.
	ReorderDelay time.Duration
	// CommitInterval is how often acknowledged offsets are committed;
	// default 1s.
	CommitInterval time.Duration
	// MaxWait bounds how long a fetch waits for records; default 250ms.
	MaxWait time.Duration
	// Group membership: defaults 30s, 3s and 30s.
	SessionTimeout, HeartbeatInterval, RebalanceTimeout time.Duration
	// FlushTimeout bounds how long shutdown keeps trying to publish the
	// last batch and the alerts the engines close; default 30s.
	FlushTimeout time.Duration

	Logger   *slog.Logger          // nil: discard
	Registry prometheus.Registerer // nil: metrics are kept but not registered
}

func (c *Config) defaults() error {
	if len(c.Brokers) == 0 {
		return errors.New("consume: no Kafka brokers")
	}
	if c.Rules == nil {
		return errors.New("consume: no rule set")
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.GroupID, DefaultGroupID)
	def(&c.FlowsTopic, DefaultFlowsTopic)
	def(&c.AlertsTopic, DefaultAlertsTopic)
	def(&c.DLQTopic, DefaultDLQTopic)
	def(&c.RepartitionTopic, DefaultRepartitionTopic)
	dur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	dur(&c.CommitInterval, time.Second)
	dur(&c.ReorderDelay, DefaultReorderDelay)
	dur(&c.MaxWait, 250*time.Millisecond)
	dur(&c.SessionTimeout, 30*time.Second)
	dur(&c.HeartbeatInterval, 3*time.Second)
	dur(&c.RebalanceTimeout, 30*time.Second)
	dur(&c.FlushTimeout, 30*time.Second)
	if c.Dialer == nil {
		c.Dialer = &kafka.Dialer{Timeout: 5 * time.Second, DualStack: true, ClientID: "edgeward-pipeline"}
	}
	if c.Transport == nil {
		c.Transport = &kafka.Transport{ClientID: "edgeward-pipeline"}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Consumer runs the pipeline on Kafka.
type Consumer struct {
	cfg    Config
	log    *slog.Logger
	m      *metrics
	client *kafka.Client
	out    *kafka.Writer
	plan   atomic.Pointer[plan]

	flows, repart  *stage
	publishFailing atomic.Int32 // workers whose publishing is failing
	stats          struct{ consumed, dlq, published, forwarded atomic.Uint64 }
}

// New checks the configuration and the rule set. It does not connect:
// Run does.
func New(cfg Config) (*Consumer, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	c := &Consumer{
		cfg: cfg, log: cfg.Logger.With("component", "consume"),
		m:      newMetrics(cfg.Registry),
		client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: cfg.Transport, Timeout: 30 * time.Second},
		out:    newWriter(&cfg),
	}
	if err := c.SetRules(cfg.Rules); err != nil {
		return nil, err
	}
	c.flows = &stage{c: c, name: "flows", topic: cfg.FlowsTopic, group: cfg.GroupID, lag: c.m.lag}
	c.repart = &stage{c: c, name: "repartition", topic: cfg.RepartitionTopic, group: cfg.GroupID + ".repartition", lag: c.m.repLag, repartition: true}
	return c, nil
}

// newWriter is the writer of the pipeline's output (alerts, repartitioned
// flows, dead letters). It gathers the messages of concurrent
// WriteMessages calls into one record batch per partition.
func newWriter(cfg *Config) *kafka.Writer {
	return &kafka.Writer{
		Addr: kafka.TCP(cfg.Brokers...), Transport: cfg.Transport,
		Balancer:     &kafka.Murmur2Balancer{}, // the Java client's partitioner
		RequiredAcks: kafka.RequireAll, BatchSize: 10000, BatchBytes: 16 << 20, BatchTimeout: 2 * time.Millisecond,
		Compression: kafka.Lz4, WriteTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, MaxAttempts: 1,
	}
}

// SetRules replaces the rule set (hot reload): every partition's engines
// swap to it before their next batch, keeping the state of unchanged
// rules.
func (c *Consumer) SetRules(set *rules.Set) error {
	p := newPlan(set, !c.cfg.NoRepartition)
	// Catch a set compiled without the pipeline's schema here, not in a
	// partition.
	if _, err := pipeline.New(pipeline.Config{Rules: p.local}); err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	c.plan.Store(p)
	c.m.loaded.Set(float64(len(set.Rules())))
	c.log.Info("rules split by state key", "rules", len(set.Rules()), "local", len(p.local.Rules()), "repartitioned", p.repartitioned())
	return nil
}

// Run consumes until ctx is done, then finishes the batch in hand,
// publishes what the engines close, commits and leaves the groups. Kafka
// errors are logged and retried; Run returns an error only for a
// configuration Kafka rejects outright.
func (c *Consumer) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.flows.run(gctx) })
	if !c.cfg.NoRepartition {
		g.Go(func() error { return c.repart.run(gctx) })
	}
	err := g.Wait()
	if cerr := c.out.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("consume: closing the producer: %w", cerr)
	}
	return err
}

// Ready reports whether the consumer is a member of its groups and
// publishing works, with the reason when it is not (for /readyz).
func (c *Consumer) Ready() (bool, string) {
	stages := []*stage{c.flows}
	if !c.cfg.NoRepartition {
		stages = append(stages, c.repart)
	}
	for _, s := range stages {
		switch {
		case s.missing.Load():
			return false, fmt.Sprintf("topic %s does not exist", s.topic)
		case !s.joined.Load():
			return false, fmt.Sprintf("not a member of consumer group %s yet", s.group)
		}
	}
	if c.publishFailing.Load() > 0 {
		return false, "publishing to Kafka is failing"
	}
	return true, ""
}

// Stats are counts since New.
type Stats struct {
	Consumed  uint64 // records read from the flows topic
	DLQ       uint64 // records sent to the dead-letter topic
	Published uint64 // alerts acknowledged by the alerts topic
	Forwarded uint64 // flows sent to the repartition topic
}

// Stats returns counts since New.
func (c *Consumer) Stats() Stats {
	return Stats{
		Consumed: c.stats.consumed.Load(), DLQ: c.stats.dlq.Load(),
		Published: c.stats.published.Load(), Forwarded: c.stats.forwarded.Load(),
	}
}
