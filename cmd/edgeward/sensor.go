package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/config"
	"github.com/edgeward/edgeward/internal/daemoncfg"
	"github.com/edgeward/edgeward/sensor"
	"github.com/edgeward/edgeward/sensor/export"
	"github.com/edgeward/edgeward/sensor/export/spool"
	"github.com/edgeward/edgeward/sensor/flowtable"
)

func runSensor(ctx context.Context, args []string, _, stderr io.Writer) int {
	var c daemoncfg.Sensor
	l, err := config.New("sensor", &c)
	if err != nil {
		fmt.Fprintf(stderr, "edgeward sensor: %v\n", err)
		return 1
	}
	fs := l.FlagSet()
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: edgeward sensor [--config FILE] [flags]

Runs the sensor daemon: captures (-i IFACE live until SIGINT or SIGTERM,
with --mode afpacket or ebpf, or -r FILE to its end), builds flow records
and exports them to Kafka (%s, keyed by device), keeping them in a
disk spool while Kafka is unreachable. Settings come from the YAML file, then
EDGEWARD_* variables, then flags (docs/configuration.md). Serves
/metrics, /healthz and /readyz on --metrics-listen.

Flags:
`, export.DefaultTopic)
		fs.PrintDefaults()
	}
	if code, ok := loadConfig(l, args, "sensor", stderr); !ok {
		return code
	}
	log := slog.Default().With("component", "sensor")
	log.Info("starting", "version", version, "config", l)

	scfg, stopSessions, err := buildSensor(ctx, &c)
	if scfg == nil {
		fmt.Fprintf(stderr, "edgeward sensor: %v\n", err)
		return 2
	}
	if err != nil {
		log.Warn("configuration loaded with problems", "err", err)
	}
	defer stopSessions()

	reg := prometheus.NewRegistry()
	capture, err := captureSource(&c, reg)
	if err != nil {
		fmt.Fprintf(stderr, "edgeward sensor: %v\n", err)
		return 2
	}

	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sm := newSensorMetrics(reg, scfg)

	exp, err := newExporter(&c, reg)
	if err != nil {
		fmt.Fprintf(stderr, "edgeward sensor: %v\n", err)
		return 1
	}
	var capturing atomic.Bool
	stopHTTP, err := serveMetrics(c.Metrics.Listen, reg, func() (bool, string) {
		if !capturing.Load() {
			return false, "not capturing"
		}
		return exp.Ready()
	}, log)
	if err != nil {
		// Kafka may be unreachable: bound the wait like a shutdown does;
		// what it does not take stays in the spool.
		fctx, cancel := context.WithTimeout(context.Background(), c.Kafka.FlushTimeout)
		exp.Close(fctx)
		cancel()
		fmt.Fprintf(stderr, "edgeward sensor: metrics: %v\n", err)
		return 1
	}
	defer stopHTTP()

	capturing.Store(true)
	st, cerr := capture(ctx, *scfg, func(r *flow.Record) {
		sm.flow(r)
		exp.Export(r)
	})
	capturing.Store(false)
	if cerr != nil && !errors.Is(cerr, context.Canceled) {
		log.Error("capture", "err", cerr)
	}

	// The flow table is flushed; now Kafka gets the rest, or the spool
	// keeps it for the next start.
	fctx, cancel := context.WithTimeout(context.Background(), c.Kafka.FlushTimeout)
	defer cancel()
	if err := exp.Close(fctx); err != nil {
		log.Error("closing the exporter", "err", err)
	}
	xs := exp.Stats()
	fmt.Fprintf(stderr, "edgeward sensor: %d packets, %d flows, %d exported to Kafka (%d through the spool), %d left in the spool, %s\n",
		st.Packets, st.Table.Exported, xs.Exported, xs.Replayed, xs.Spool.Records, st.Elapsed.Round(time.Millisecond))
	// A file read part way still made records; a live capture that
	// failed (its interface went down or away) stopped before it was
	// asked to, and the service manager restarts on failure only.
	if cerr != nil && !errors.Is(cerr, context.Canceled) && (st.Packets == 0 || c.Read == "") {
		fmt.Fprintf(stderr, "edgeward sensor: %v\n", cerr)
		return 1
	}
	return 0
}

// buildSensor builds the sensor's processing configuration the way the
// other sensor commands do (sensorFlags), and starts following the VPN
// session sources; stop ends that.
func buildSensor(ctx context.Context, c *daemoncfg.Sensor) (*sensor.Config, func(), error) {
	var sf sensorFlags
	sc := &sf.cfg
	sc.Table = flowtable.Config{IdleTimeout: c.Flow.IdleTimeout, ActiveTimeout: c.Flow.ActiveTimeout, CloseLinger: c.Flow.CloseLinger, MaxFlows: c.Flow.MaxFlows}
	sc.NoInspect = c.Flow.NoMetadata
	sc.Inspect.MaxPackets = c.Flow.InspectPackets
	sc.Identity.SensorID, sc.Identity.Site = c.SensorID, c.Site
	for _, p := range c.Internal {
		sc.Identity.Internal = append(sc.Identity.Internal, p.Masked())
	}
	sf.read, sf.inv = c.Read, c.Inventory
	sf.sessions, sf.openvpn, sf.wireguard = c.Sessions.Feed, c.Sessions.OpenVPNStatus, c.Sessions.WireGuard
	sf.memLimit = int(c.MemoryLimit >> 20)
	scfg, err := sf.config()
	if scfg == nil {
		return nil, func() {}, err
	}
	sc = scfg
	sc.Progress = new(sensor.Progress)
	return sc, sf.followSessions(ctx), err
}

// captureFunc runs a capture source: to the end of a file, or until ctx
// is done for a live one. The flow table is flushed before it returns.
type captureFunc func(ctx context.Context, cfg sensor.Config, emit flowtable.Emit) (sensor.Stats, error)

// captureSource is the capture source switch: read (-r) or interface (-i).
func captureSource(c *daemoncfg.Sensor, reg prometheus.Registerer) (captureFunc, error) {
	switch {
	case c.Read != "":
		path := c.Read
		return func(ctx context.Context, cfg sensor.Config, emit flowtable.Emit) (sensor.Stats, error) {
			return sensor.ReadFile(ctx, path, cfg, emit)
		}, nil
	case c.Interface != "":
		lc := &liveCapture{iface: c.Interface, mode: c.Mode, keepNetAdmin: len(c.Sessions.WireGuard) > 0, reg: reg}
		return lc.run, nil
	}
	return nil, errors.New("no capture source")
}

func newExporter(c *daemoncfg.Sensor, reg prometheus.Registerer) (*export.Exporter, error) {
	tr, err := c.Kafka.Transport("edgeward-sensor")
	if err != nil {
		return nil, err
	}
	format, err := export.ParseFormat(c.Kafka.Format)
	if err != nil {
		return nil, err
	}
	return export.New(export.Config{
		Brokers: c.Kafka.Brokers, Topic: c.Kafka.FlowsTopic, Transport: tr,
		Compression: c.Kafka.Compression, Format: format,
		BatchRecords: c.Kafka.BatchRecords, Linger: c.Kafka.Linger,
		Spool:   spool.Options{Dir: c.Spool.Dir, MaxBytes: c.Spool.MaxBytes},
		Logger:  slog.Default().With("component", "export"),
		Metrics: export.NewMetrics(reg),
	})
}

// sensorMetrics are the capture side's Prometheus metrics. The decoder
// and flow table ones read Config.Progress, which the capture updates
// while it runs and leaves at its final counts.
type sensorMetrics struct {
	flows    *prometheus.CounterVec
	byReason map[flow.EndReason]prometheus.Counter
}

func newSensorMetrics(reg prometheus.Registerer, cfg *sensor.Config) *sensorMetrics {
	p := cfg.Progress
	m := &sensorMetrics{
		flows:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeward_flows_total", Help: "Flow records closed, by end reason."}, []string{"end_reason"}),
		byReason: map[flow.EndReason]prometheus.Counter{},
	}
	for _, r := range []flow.EndReason{flow.EndIdle, flow.EndActive, flow.EndFIN, flow.EndRST, flow.EndEvicted, flow.EndEOF, flow.EndShutdown} {
		m.byReason[r] = m.flows.WithLabelValues(string(r))
	}
	reg.MustRegister(m.flows,
		decodeErrors{p: p, desc: prometheus.NewDesc("edgeward_decode_errors_total", "Frames the decoder could not use, by kind.", []string{"kind"}, nil)},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgeward_flow_table_entries", Help: "Flows held in the flow table."},
			func() float64 { return float64(p.Flows()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgeward_packets_total", Help: "Frames read from the capture source."},
			func() float64 { return float64(p.Packets.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgeward_bytes_total", Help: "Captured bytes read from the capture source."},
			func() float64 { return float64(p.Bytes.Load()) }))
	return m
}

func (m *sensorMetrics) flow(r *flow.Record) {
	c := m.byReason[r.EndReason]
	if c == nil {
		c = m.flows.WithLabelValues(string(r.EndReason))
	}
	c.Inc()
}

// decodeErrors collects edgeward_decode_errors_total from the decoder
// counters a capture's workers published.
type decodeErrors struct {
	p    *sensor.Progress
	desc *prometheus.Desc
}

func (c decodeErrors) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c decodeErrors) Collect(ch chan<- prometheus.Metric) {
	d := c.p.Decode()
	for kind, n := range map[string]uint64{
		"unsupported_link": d.UnsupportedLink, "bad_link": d.BadLink, "bad_ip": d.BadIP, "bad_transport": d.BadTransport,
		"truncated": d.Truncated, "frag_invalid": d.FragInvalid, "frag_truncated": d.FragTruncated,
	} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), kind)
	}
}

// serveMetrics serves /metrics, /healthz and /readyz on addr ("" serves
// nothing) until stop is called.
func serveMetrics(addr string, g prometheus.Gatherer, ready func() (bool, string), log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: metricsMux(g, ready), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	log.Info("serving /metrics, /healthz and /readyz", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

func metricsMux(g prometheus.Gatherer, ready func() (bool, string)) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := ready(); !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, why+"\n")
			return
		}
		io.WriteString(w, "ready\n")
	})
	return mux
}

// configurationDoc renders docs/configuration.md from the daemons'
// configuration structs.
func configurationDoc() string {
	var b strings.Builder
	b.WriteString(`# Configuration

<!-- Generated from the configuration structs by go test ./cmd/edgeward -run ConfigurationDoc -update; do not edit. -->

The daemons read a YAML file (` + "`--config FILE`" + `), then ` + "`EDGEWARD_*`" + ` environment variables, then flags; the
later wins. Every value is checked at start and every problem is reported at once, with where the value
came from (` + "`file:line:col`" + `, the variable or the flag). Lists are YAML sequences, or comma-separated in
variables and flags; durations are Go durations (` + "`90s`, `5m`" + `); sizes take ` + "`KiB`, `MiB`, `GiB`" + `.
Secrets are never logged; prefer ` + "`password_file`" + ` to ` + "`password`" + `.

## edgeward sensor

`)
	b.WriteString(config.Reference(&daemoncfg.Sensor{}))
	b.WriteString("\n## edgeward pipeline\n\n")
	b.WriteString(config.Reference(&pipelineConfig{}))
	return b.String()
}

// loadConfig loads a daemon's configuration (file, EDGEWARD_* variables,
// flags). When it fails it prints every problem and returns the exit
// code: 0 for -h, 2 otherwise.
func loadConfig(l *config.Loader, args []string, name string, stderr io.Writer) (code int, ok bool) {
	err := l.Load(args, nil)
	if err == nil {
		return 0, true
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0, false
	}
	var es config.Errors
	if errors.As(err, &es) {
		fmt.Fprintf(stderr, "edgeward %s: %d problem(s) in the configuration:\n", name, len(es))
		for _, e := range es {
			fmt.Fprintf(stderr, "  %v\n", e)
		}
	} else {
		fmt.Fprintf(stderr, "edgeward %s: %v\n", name, err)
	}
	return 2, false
}
