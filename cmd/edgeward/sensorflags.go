package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"runtime/debug"
	"strings"

	"github.com/edgeward/edgeward/sensor"
	"github.com/edgeward/edgeward/sensor/flowtable"
	"github.com/edgeward/edgeward/sensor/inventory"
)

// sensorFlags are the capture and flow-building flags shared by the
// commands that run the sensor (flows, run).
type sensorFlags struct {
	cfg      sensor.Config
	read     string
	internal string
	inv      string
	memLimit int
}

func (f *sensorFlags) register(fs *flag.FlagSet) {
	c := &f.cfg
	fs.StringVar(&f.read, "r", "", "capture file to read (pcap or pcapng, detected from its contents)")
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
		inv, err := inventory.LoadFile(f.inv)
		if inv == nil {
			return nil, fmt.Errorf("inventory: %w", err)
		}
		if err != nil { // bad lines are reported and skipped; the rest loads
			warn = errors.Join(warn, fmt.Errorf("inventory: %w", err))
		}
		c.Identity.Inventory = inv
	}
	if f.memLimit > 0 {
		debug.SetMemoryLimit(int64(f.memLimit) << 20)
	}
	return &c, warn
}
