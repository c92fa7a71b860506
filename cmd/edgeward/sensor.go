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
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/config"
	"github.com/edgeward/edgeward/internal/kafkaconn"
	"github.com/edgeward/edgeward/sensor"
	"github.com/edgeward/edgeward/sensor/export"
	"github.com/edgeward/edgeward/sensor/export/spool"
	"github.com/edgeward/edgeward/sensor/flowtable"
)

// sensorConfig is the configuration of `edgeward sensor`; the YAML keys,
// variables and flags are documented in docs/configuration.md, generated
// from these tags (go test ./cmd/edgeward -run ConfigurationDoc -update).
type sensorConfig struct {
	SensorID  string         `yaml:"sensor_id" flag:"sensor-id" help:"this sensor's id, recorded on every flow"`
	Site      string         `yaml:"site" flag:"site" help:"this sensor's site, recorded on every flow"`
	Read      string         `yaml:"read" flag:"r" help:"capture file to read (pcap or pcapng); the sensor stops at its end"`
	Interface string         `yaml:"interface" flag:"i" help:"network interface to capture from (live capture)"`
	Mode      string         `yaml:"mode" flag:"mode" default:"afpacket" enum:"afpacket|ebpf" help:"live capture method"`
	Internal  []netip.Prefix `yaml:"internal" flag:"internal" default:"10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7,fe80::/10" help:"corporate address space; flows are attributed to the device on the internal side"`
	Inventory string         `yaml:"inventory" flag:"inventory" help:"device inventory file (CSV or YAML, see docs/schema.md)"`
	Sessions  struct {
		Feed          string   `yaml:"feed" flag:"sessions" help:"VPN session feed, JSON lines (docs/egress.md)"`
		OpenVPNStatus string   `yaml:"openvpn_status" flag:"openvpn-status" help:"OpenVPN server status file whose sessions give tunnel addresses their egress"`
		WireGuard     []string `yaml:"wireguard" flag:"wireguard" help:"WireGuard interfaces on this host whose peers give tunnel addresses their egress"`
	} `yaml:"sessions"`
	Flow struct {
		IdleTimeout    time.Duration `yaml:"idle_timeout" flag:"idle-timeout" default:"60s" help:"close a flow after this long without packets"`
		ActiveTimeout  time.Duration `yaml:"active_timeout" flag:"active-timeout" default:"30m" help:"close and restart a flow open this long"`
		CloseLinger    time.Duration `yaml:"close_linger" default:"5s" help:"keep a TCP flow this long after FIN/RST for late segments"`
		MaxFlows       int           `yaml:"max_flows" flag:"max-flows" default:"1000000" help:"flows held at once; the least recently seen is evicted beyond it"`
		NoMetadata     bool          `yaml:"no_metadata" flag:"no-metadata" help:"skip payload inspection (TLS, QUIC, DNS, HTTP, DHCP, SSH metadata)"`
		InspectPackets int           `yaml:"inspect_packets" default:"8" help:"payload packets of each direction a flow's metadata is taken from"`
	} `yaml:"flow"`
	Kafka struct {
		kafkaconn.Config `yaml:",inline"`
		FlowsTopic       string        `yaml:"flows_topic" flag:"flows-topic" default:"edgeward.flows.v1" help:"topic the flow records go to, keyed by device"`
		Compression      string        `yaml:"compression" default:"lz4" enum:"none|gzip|snappy|lz4|zstd" help:"compression of record batches"`
		Format           string        `yaml:"format" default:"binary" enum:"binary|json" help:"record encoding: binary (docs/schema.md, Wire format) or JSON"`
		BatchRecords     int           `yaml:"batch_records" default:"1000" help:"records per batch"`
		Linger           time.Duration `yaml:"linger" default:"100ms" help:"how long a batch waits to fill"`
		FlushTimeout     time.Duration `yaml:"flush_timeout" default:"30s" help:"on shutdown, how long to keep sending queued and spooled records; the rest stays in the spool"`
	} `yaml:"kafka"`
	Spool struct {
		Dir      string `yaml:"dir" flag:"spool-dir" default:"/var/lib/edgeward/spool" help:"directory of the disk spool that holds records while Kafka is unreachable"`
		MaxBytes int64  `yaml:"max_bytes" unit:"bytes" default:"1GiB" help:"size cap of the spool; beyond it the oldest records are dropped (and counted)"`
	} `yaml:"spool"`
	Metrics struct {
		Listen string `yaml:"listen" flag:"metrics-listen" default:"127.0.0.1:9100" help:"address of /metrics, /healthz and /readyz; empty to serve none"`
	} `yaml:"metrics"`
	MemoryLimit int64 `yaml:"memory_limit" unit:"bytes" help:"soft memory limit of the Go heap (0: GOMEMLIMIT, or none)"`
}

// Check implements config.Checker.
func (c *sensorConfig) Check(report func(key, msg string)) {
	switch {
	case c.Read != "" && c.Interface != "":
		report("interface", "read (-r) and interface (-i) exclude each other")
	case c.Read == "" && c.Interface == "":
		report("read", "need a capture source: read (-r FILE) or interface (-i IFACE)")
	}
	if c.Flow.IdleTimeout <= 0 || c.Flow.ActiveTimeout <= 0 {
		report("flow", "idle_timeout and active_timeout must be positive")
	}
	if c.Flow.MaxFlows < 1 {
		report("flow.max_flows", "must be at least 1")
	}
	if c.Kafka.FlowsTopic == "" {
		report("kafka.flows_topic", "must not be empty")
	}
	if c.Kafka.BatchRecords < 1 {
		report("kafka.batch_records", "must be at least 1")
	}
	if c.Spool.Dir == "" {
		report("spool.dir", "must not be empty: records wait there while Kafka is unreachable")
	}
	if c.Spool.MaxBytes < 1<<20 {
		report("spool.max_bytes", "must be at least 1MiB")
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			report("metrics.listen", fmt.Sprintf("%q is not host:port", c.Metrics.Listen))
		}
	}
}

func runSensor(ctx context.Context, args []string, _, stderr io.Writer) int {
	var c sensorConfig
	l, err := config.New("sensor", &c)
	if err != nil {
		fmt.Fprintf(stderr, "edgeward sensor: %v\n", err)
		return 1
	}
	fs := l.FlagSet()
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: edgeward sensor [--config FILE] [flags]

Runs the sensor daemon: captures (-r FILE now), builds flow records and
exports them to Kafka (%s, keyed by device), keeping them in a disk
spool while Kafka is unreachable. Settings come from the YAML file, then
EDGEWARD_* variables, then flags (docs/configuration.md). Serves
/metrics, /healthz and /readyz on --metrics-listen.

Flags:
`, export.DefaultTopic)
		fs.PrintDefaults()
	}
	if err := l.Load(args, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var es config.Errors
		if errors.As(err, &es) {
			fmt.Fprintf(stderr, "edgeward sensor: %d problem(s) in the configuration:\n", len(es))
			for _, e := range es {
				fmt.Fprintf(stderr, "  %v\n", e)
			}
		} else {
			fmt.Fprintf(stderr, "edgeward sensor: %v\n", err)
		}
		return 2
	}
	log := slog.Default().With("component", "sensor")
	log.Info("starting", "version", version, "config", l)

	scfg, stopSessions, err := c.build(ctx)
	if scfg == nil {
		fmt.Fprintf(stderr, "edgeward sensor: %v\n", err)
		return 2
	}
	if err != nil {
		log.Warn("configuration loaded with problems", "err", err)
	}
	defer stopSessions()

	reg := prometheus.NewRegistry()
	capture, err := c.captureSource(reg)
	if err != nil {
		fmt.Fprintf(stderr, "edgeward sensor: %v\n", err)
		return 2
	}

	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sm := newSensorMetrics(reg, scfg)

	exp, err := c.exporter(reg)
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
		exp.Close(context.Background())
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
	sm.done(&st)
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
	if cerr != nil && !errors.Is(cerr, context.Canceled) && st.Packets == 0 {
		fmt.Fprintf(stderr, "edgeward sensor: %v\n", cerr)
		return 1
	}
	return 0
}

// build builds the sensor's processing configuration the way the
// other sensor commands do (sensorFlags), and starts following the VPN
// session sources; stop ends that.
func (c *sensorConfig) build(ctx context.Context) (*sensor.Config, func(), error) {
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
func (c *sensorConfig) captureSource(reg prometheus.Registerer) (captureFunc, error) {
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

func (c *sensorConfig) exporter(reg prometheus.Registerer) (*export.Exporter, error) {
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

// sensorMetrics are the capture side's Prometheus metrics.
type sensorMetrics struct {
	flows     *prometheus.CounterVec
	byReason  map[flow.EndReason]prometheus.Counter
	decodeErr *prometheus.CounterVec
	table     prometheus.Gauge
}

func newSensorMetrics(reg prometheus.Registerer, cfg *sensor.Config) *sensorMetrics {
	p := cfg.Progress
	m := &sensorMetrics{
		flows:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeward_flows_total", Help: "Flow records closed, by end reason."}, []string{"end_reason"}),
		decodeErr: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeward_decode_errors_total", Help: "Frames the decoder could not use, by kind."}, []string{"kind"}),
		table:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgeward_flow_table_entries", Help: "Flows held in the flow table."}),
		byReason:  map[flow.EndReason]prometheus.Counter{},
	}
	for _, r := range []flow.EndReason{flow.EndIdle, flow.EndActive, flow.EndFIN, flow.EndRST, flow.EndEvicted, flow.EndEOF, flow.EndShutdown} {
		m.byReason[r] = m.flows.WithLabelValues(string(r))
	}
	reg.MustRegister(m.flows, m.decodeErr, m.table,
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

// done adds a finished capture's decoder counters.
func (m *sensorMetrics) done(st *sensor.Stats) {
	d := &st.Decode
	for kind, n := range map[string]uint64{
		"unsupported_link": d.UnsupportedLink, "bad_link": d.BadLink, "bad_ip": d.BadIP, "bad_transport": d.BadTransport,
		"truncated": d.Truncated, "frag_invalid": d.FragInvalid, "frag_truncated": d.FragTruncated,
	} {
		m.decodeErr.WithLabelValues(kind).Add(float64(n))
	}
	m.table.Set(float64(st.Table.Active))
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
	b.WriteString(config.Reference(&sensorConfig{}))
	return b.String()
}
