// Package daemoncfg holds the configuration of the edgeward daemons as
// structs that package config loads (defaults, YAML file, EDGEWARD_*
// variables, flags) and renders into docs/configuration.md. They live
// outside cmd/edgeward so that what else writes these files, the Helm
// chart's tests, can load them with the daemons' own loader.
package daemoncfg

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/edgeward/edgeward/internal/kafkaconn"
)

// Sensor is the configuration of `edgeward sensor`; the YAML keys,
// variables and flags are documented in docs/configuration.md, generated
// from these tags (go test ./cmd/edgeward -run ConfigurationDoc -update).
type Sensor struct {
	SensorID  string         `yaml:"sensor_id" flag:"sensor-id" help:"this sensor's id, recorded on every flow"`
	Site      string         `yaml:"site" flag:"site" help:"this sensor's site, recorded on every flow"`
	Read      string         `yaml:"read" flag:"r" help:"capture file to read (pcap or pcapng); the sensor stops at its end"`
	Interface string         `yaml:"interface" flag:"i" help:"network interface to capture from (live capture)"`
	Mode      string         `yaml:"mode" flag:"mode" default:"afpacket" enum:"afpacket|ebpf" help:"live capture method"`
	Internal  []netip.Prefix `yaml:"internal" flag:"internal" default:"10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,169.254.0.0/16,fc00::/7,fe80::/10" help:"corporate address space; flows are attributed to the device on the internal side"`
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
		Dir      string `yaml:"dir" flag:"spool-dir" default:"/var/lib/edgeward/spool" help:"directory of the disk spool that holds records while Kafka is unreachable; one sensor per directory (a second one refuses to start, naming the first one's pid)"`
		MaxBytes int64  `yaml:"max_bytes" unit:"bytes" default:"1GiB" help:"size cap of the spool; beyond it the oldest records are dropped (and counted)"`
	} `yaml:"spool"`
	Metrics struct {
		Listen string `yaml:"listen" flag:"metrics-listen" default:"127.0.0.1:9100" help:"address of /metrics, /healthz and /readyz; empty to serve none"`
	} `yaml:"metrics"`
	MemoryLimit int64 `yaml:"memory_limit" unit:"bytes" help:"soft memory limit of the Go heap (0: GOMEMLIMIT, or none)"`
}

// Check implements config.Checker.
func (c *Sensor) Check(report func(key, msg string)) {
	switch {
	case c.Read != "" && c.Interface != "":
		report("interface", "read (-r) and interface (-i) exclude each other")
	case c.Read == "" && c.Interface == "":
		report("read", "need a capture source: read (-r FILE) or interface (-i IFACE)")
	}
	// Each key reported by itself, so the problem says where its value came from.
	if c.Flow.IdleTimeout <= 0 {
		report("flow.idle_timeout", "must be positive")
	}
	if c.Flow.ActiveTimeout <= 0 {
		report("flow.active_timeout", "must be positive")
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
	checkListen(c.Metrics.Listen, report)
	checkMemoryLimit(c.MemoryLimit, report)
}

// checkMemoryLimit checks a daemon's memory_limit: a limit under 1MiB
// would have the sensor run without one and the pipeline collect
// garbage without pause.
func checkMemoryLimit(limit int64, report func(key, msg string)) {
	if limit < 0 || limit > 0 && limit < 1<<20 {
		report("memory_limit", "must be 0 (none) or at least 1MiB")
	}
}

// checkListen checks a daemon's metrics.listen: empty, or host:port.
func checkListen(listen string, report func(key, msg string)) {
	if listen == "" {
		return
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		report("metrics.listen", fmt.Sprintf("%q is not host:port", listen))
	}
}
