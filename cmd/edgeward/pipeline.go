package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/edgeward/edgeward/internal/config"
	"github.com/edgeward/edgeward/internal/daemoncfg"
	"github.com/edgeward/edgeward/pipeline"
	"github.com/edgeward/edgeward/pipeline/consume"
	"github.com/edgeward/edgeward/pipeline/enrich"
	"github.com/edgeward/edgeward/rules"
	builtinpack "github.com/edgeward/edgeward/rules/builtin"
)

// pipelineConfig is the configuration of `edgeward pipeline`
// (internal/daemoncfg, where the Helm chart's tests load it too).
type pipelineConfig = daemoncfg.Pipeline

func runPipeline(ctx context.Context, args []string, _, stderr io.Writer) int {
	var c pipelineConfig
	l, err := config.New("pipeline", &c)
	if err != nil {
		fmt.Fprintf(stderr, "edgeward pipeline: %v\n", err)
		return 1
	}
	fs := l.FlagSet()
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: edgeward pipeline [--config FILE] [flags]

Runs the pipeline daemon: a consumer group reads flow records from Kafka
(%s), enriches them, runs the rules (the built-in pack plus --rules,
hot reloaded) and publishes alerts to %s, keyed by device,
committing offsets only once their alerts are acknowledged. Run several
instances with the same group to share the partitions. Settings come from
the YAML file, then EDGEWARD_* variables, then flags
(docs/configuration.md). Serves /metrics, /healthz and /readyz on
--metrics-listen.

Flags:
`, consume.DefaultFlowsTopic, consume.DefaultAlertsTopic)
		fs.PrintDefaults()
	}
	if code, ok := loadConfig(l, args, "pipeline", stderr); !ok {
		return code
	}
	log := slog.Default().With("component", "pipeline")
	log.Info("starting", "version", version, "config", l)
	if c.MemoryLimit > 0 {
		debug.SetMemoryLimit(c.MemoryLimit)
	}

	schema, err := pipeline.Schema()
	if err != nil {
		fmt.Fprintf(stderr, "edgeward pipeline: %v\n", err)
		return 1
	}
	ropts := rules.Options{Schema: schema}
	if c.Rules.Builtin {
		ropts.Builtin = builtinpack.FS()
	}
	set, err := rules.Load(c.Rules.Paths, ropts)
	if err != nil {
		var ds rules.Diagnostics
		if errors.As(err, &ds) {
			fmt.Fprintf(stderr, "edgeward pipeline: %d problem(s) in the rules:\n", len(ds))
			for _, d := range ds {
				fmt.Fprintf(stderr, "  %s\n", d.String())
			}
		} else {
			fmt.Fprintf(stderr, "edgeward pipeline: rules: %v\n", err)
		}
		return 2
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	enr, err := enrich.New(enrich.Config{
		GeoIP: c.Enrich.GeoIP, ASN: c.Enrich.ASN, Anon: c.Enrich.Anon, Intel: c.Enrich.Intel,
		Logger: slog.Default().With("component", "enrich"), Registry: reg,
	})
	if err != nil {
		fmt.Fprintf(stderr, "edgeward pipeline: %v\n", err)
		return 2
	}
	defer enr.Close()

	dialer, err := c.Kafka.Dialer("edgeward-pipeline")
	if err != nil {
		fmt.Fprintf(stderr, "edgeward pipeline: %v\n", err)
		return 2
	}
	tr, err := c.Kafka.Transport("edgeward-pipeline")
	if err != nil {
		fmt.Fprintf(stderr, "edgeward pipeline: %v\n", err)
		return 2
	}
	cons, err := consume.New(consume.Config{
		Brokers: c.Kafka.Brokers, Dialer: dialer, Transport: tr, GroupID: c.Kafka.GroupID,
		FlowsTopic: c.Kafka.FlowsTopic, AlertsTopic: c.Kafka.AlertsTopic, DLQTopic: c.Kafka.DLQTopic,
		RepartitionTopic: c.Kafka.RepartitionTopic, NoRepartition: c.Kafka.RepartitionTopic == "",
		Rules: set, Enrich: enr, Rebuild: c.Kafka.Rebuild, ReorderDelay: c.Kafka.ReorderDelay, CommitInterval: c.Kafka.CommitInterval,
		SessionTimeout: c.Kafka.SessionTimeout, HeartbeatInterval: c.Kafka.HeartbeatInterval, FlushTimeout: c.Kafka.FlushTimeout,
		Logger: slog.Default(), Registry: reg,
	})
	if err != nil {
		fmt.Fprintf(stderr, "edgeward pipeline: %v\n", err)
		return 2
	}
	stopHTTP, err := serveMetrics(c.Metrics.Listen, reg, cons.Ready, log)
	if err != nil {
		fmt.Fprintf(stderr, "edgeward pipeline: metrics: %v\n", err)
		return 1
	}
	defer stopHTTP()

	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return cons.Run(gctx) })
	// Reloads that cannot run are logged; the pipeline goes on with what
	// it loaded.
	g.Go(func() error {
		if err := enr.Run(gctx); err != nil {
			log.Error("database and intel reloads are off", "err", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := cons.WatchRules(gctx, c.Rules.Paths, ropts); err != nil {
			log.Error("rule reloads are off", "err", err)
		}
		return nil
	})
	err = g.Wait()
	st := cons.Stats()
	fmt.Fprintf(stderr, "edgeward pipeline: %d records consumed, %d alerts published, %d flows repartitioned, %d dead letters, %s\n",
		st.Consumed, st.Published, st.Forwarded, st.DLQ, time.Since(start).Round(time.Millisecond))
	if err != nil {
		fmt.Fprintf(stderr, "edgeward pipeline: %v\n", err)
		return 1
	}
	return 0
}
