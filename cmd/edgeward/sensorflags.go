package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/edgeward/edgeward/sensor"
	"github.com/edgeward/edgeward/sensor/egress"
	"github.com/edgeward/edgeward/sensor/flowtable"
	"github.com/edgeward/edgeward/sensor/inventory"
	"github.com/edgeward/edgeward/sensor/live"
)

// sensorFlags are the capture and flow-building flags shared by the
// commands that run the sensor (flows, run).
type sensorFlags struct {
	cfg  sensor.Config
	read string
	// Live capture instead of read.
	iface, mode, filter string
	internal            string
	inv                 string
	memLimit            int
	// VPN egress sessions (docs/egress.md); config loads them.
	sessions, openvpn string
	wireguard         []string
	egress            *egress.Sources
	// inventory serves the -inventory file; followSessions reloads it
	// when it changes.
	inventory *inventory.Store
	log       *slog.Logger // nil: slog.Default()
}

func (f *sensorFlags) register(fs *flag.FlagSet) {
	c := &f.cfg
	fs.StringVar(&f.read, "r", "", "capture file to read (pcap or pcapng, detected from its contents)")
	fs.StringVar(&f.iface, "i", "", "capture live from this interface until SIGINT or SIGTERM, then flush every open flow")
	fs.StringVar(&f.mode, "mode", "afpacket", "live capture: afpacket (AF_PACKET sockets, portable) or ebpf (TC programs counting in the kernel)")
	fs.StringVar(&f.filter, "bpf-filter", "", "afpacket: capture only what this classic BPF filter passes, given as `tcpdump -ddd EXPR` prints it (tcpdump syntax with -tags pcap)")
	fs.DurationVar(&c.Table.IdleTimeout, "idle-timeout", flowtable.DefaultIdleTimeout, "close a flow after this long without packets")
	fs.DurationVar(&c.Table.ActiveTimeout, "active-timeout", flowtable.DefaultActiveTimeout, "close and restart a flow open this long")
	fs.DurationVar(&c.Table.CloseLinger, "close-linger", flowtable.DefaultCloseLinger, "keep a TCP flow this long after FIN/RST for late segments")
	fs.IntVar(&c.Table.MaxFlows, "max-flows", flowtable.DefaultMaxFlows, "flows held at once; the least recently seen is evicted beyond it")
	fs.BoolVar(&c.NoInspect, "no-metadata", false, "skip payload inspection (TLS, QUIC, DNS, HTTP, DHCP, SSH metadata)")
	fs.IntVar(&c.Inspect.MaxPackets, "inspect-packets", 8, "payload packets of each direction a flow's metadata is taken from")
	fs.StringVar(&c.Identity.Site, "site", "", "this sensor's site, recorded on every flow")
	fs.StringVar(&c.Identity.SensorID, "sensor-id", "", "this sensor's id, recorded on every flow")
	fs.StringVar(&f.internal, "internal", "", "corporate prefixes, comma-separated (default RFC 1918, ULA and link-local)")
	fs.StringVar(&f.inv, "inventory", "", "device inventory file (CSV or YAML, see docs/schema.md)")
	fs.StringVar(&f.sessions, "sessions", "", "VPN session feed, JSON lines (see docs/egress.md): flows of tunnel addresses get the session's public address as egress")
	fs.StringVar(&f.openvpn, "openvpn-status", "", "OpenVPN server status file (status-version 1, 2 or 3) whose sessions give flows of tunnel addresses their egress")
	fs.Func("wireguard", "WireGuard interface on this host whose peers give flows of tunnel addresses their egress (repeatable)", func(v string) error {
		f.wireguard = append(f.wireguard, v)
		return nil
	})
	fs.IntVar(&f.memLimit, "memory-limit", 0, "soft memory limit in MiB for the Go heap (0: GOMEMLIMIT, or none); the garbage collector works harder near it")
}

// config builds the sensor configuration from the parsed flags. A nil
// config means the flags are unusable; a non-nil one with an error means
// a warning (an inventory with bad lines, which were skipped).
func (f *sensorFlags) config() (*sensor.Config, error) {
	c := f.cfg
	if f.internal != "" {
		for _, p := range strings.Split(f.internal, ",") {
			pfx, err := netip.ParsePrefix(strings.TrimSpace(p))
			if err != nil {
				return nil, fmt.Errorf("-internal: %w", err)
			}
			c.Identity.Internal = append(c.Identity.Internal, pfx.Masked())
		}
	}
	var warn error
	if f.inv != "" {
		inv, err := inventory.NewStore(inventory.Config{Path: f.inv, Logger: f.logger()})
		if inv == nil {
			return nil, fmt.Errorf("inventory: %w", err)
		}
		if err != nil { // bad lines are reported and skipped; the rest loads
			warn = errors.Join(warn, fmt.Errorf("inventory: %w", err))
		}
		f.inventory = inv
		c.Identity.Inventory = inv
	}
	if f.sessions != "" || f.openvpn != "" || len(f.wireguard) > 0 {
		ecfg := egress.Config{WireGuard: f.wireguard, Logger: slog.Default()}
		if f.sessions != "" {
			ecfg.Feeds = []string{f.sessions}
		}
		if f.openvpn != "" {
			ecfg.OpenVPNStatus = []string{f.openvpn}
		}
		src, err := egress.Open(ecfg)
		if src == nil {
			return nil, fmt.Errorf("sessions: %w", err)
		}
		if err != nil { // bad lines are reported and skipped; the rest loads
			warn = errors.Join(warn, fmt.Errorf("sessions: %w", err))
		}
		f.egress = src
		c.Identity.Sessions = src.Store()
	}
	if f.memLimit > 0 {
		debug.SetMemoryLimit(int64(f.memLimit) << 20)
	}
	return &c, warn
}

// followSessions keeps what config loaded up to date until the returned
// stop is called: the VPN sessions (file changes, WireGuard polls) and the
// inventory (file changes; a file that no longer loads leaves the previous
// inventory in use, and skipped devices are logged with file:line).
func (f *sensorFlags) followSessions(ctx context.Context) (stop func()) {
	if f.egress == nil && f.inventory == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if f.egress != nil {
		wg.Go(func() { f.egress.Run(ctx) })
	}
	if f.inventory != nil {
		wg.Go(func() {
			if err := f.inventory.Run(ctx); err != nil {
				f.logger().Warn("inventory changes are not followed", "component", "inventory", "err", err)
			}
		})
	}
	return func() {
		cancel()
		wg.Wait()
		if f.egress != nil {
			f.egress.Close()
		}
	}
}

func (f *sensorFlags) logger() *slog.Logger {
	if f.log != nil {
		return f.log
	}
	return slog.Default()
}

// checkSource checks that exactly one capture source was given, and no
// argument after the flags of fs.
func (f *sensorFlags) checkSource(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: a capture file is given with -r, and flags go before any argument", fs.Arg(0))
	}
	if (f.read == "") == (f.iface == "") {
		return errors.New("need -r FILE or -i IFACE")
	}
	if f.iface == "" && (f.filter != "" || f.mode != "afpacket") {
		return errors.New("-mode and -bpf-filter apply to live capture (-i)")
	}
	return nil
}

// source is the capture the flags ask for: the file to its end, or the
// interface until ctx ends. stats, when set, gets a live capture's
// counters at the end.
func (f *sensorFlags) source(stats func(live.Stats)) captureFunc {
	if f.iface == "" {
		path := f.read
		return func(ctx context.Context, cfg sensor.Config, emit flowtable.Emit) (sensor.Stats, error) {
			return sensor.ReadFile(ctx, path, cfg, emit)
		}
	}
	lc := &liveCapture{iface: f.iface, mode: f.mode, filter: f.filter, keepNetAdmin: len(f.wireguard) > 0, stats: stats}
	return lc.run
}
