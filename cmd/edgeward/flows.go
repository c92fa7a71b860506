package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor"
	"github.com/edgeward/edgeward/sensor/flowtable"
	"github.com/edgeward/edgeward/sensor/live"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

func runFlows(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("flows", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: edgeward flows -r FILE [-o FILE] [flags]\n       edgeward flows -i IFACE [-mode afpacket|ebpf] [-o FILE] [flags]\n\nReads a pcap or pcapng capture, or captures live from an interface until\nSIGINT or SIGTERM, and writes one JSON flow record per line (schema\nedgeward.flow/v1, see docs/schema.md). A summary goes to stderr. Live\ncapture needs CAP_NET_RAW (afpacket) or CAP_BPF, CAP_NET_ADMIN and\nCAP_PERFMON (ebpf); see docs/deploy.md.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var sf sensorFlags
	sf.register(fs)
	out := fs.String("o", "", "write records to this file instead of stdout")
	verbose := fs.Bool("v", false, "also print the decoder's and flow table's counters to stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := sf.checkSource(fs); err != nil {
		fmt.Fprintf(stderr, "edgeward flows: %v\n", err)
		fs.Usage()
		return 2
	}
	if os.Getenv("GOGC") == "" {
		// The flow table is large and pointer-free: collecting at half the
		// live heap keeps peak RSS near it for little extra GC work.
		debug.SetGCPercent(50)
	}
	cfg, err := sf.config()
	if err != nil {
		fmt.Fprintf(stderr, "edgeward flows: %v\n", err)
		if cfg == nil {
			return 2
		}
	}
	defer sf.followSessions(ctx)()

	var w io.Writer = stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintf(stderr, "edgeward flows: %v\n", err)
			return 1
		}
		defer f.Close()
		w = f
	}
	// Records are appended to one buffer, written out a MiB at a time:
	// no second copy through a bufio.Writer.
	const flushAt = 1 << 20
	var (
		buf  = make([]byte, 0, flushAt+64<<10)
		werr error
	)
	emit := func(r *flow.Record) {
		if werr != nil {
			return
		}
		buf = r.AppendJSON(buf)
		buf = append(buf, '\n')
		if len(buf) >= flushAt {
			_, werr = w.Write(buf)
			buf = buf[:0]
		}
	}
	capture := sf.source(nil)
	if *verbose {
		capture = sf.source(func(ls live.Stats) { fmt.Fprintf(stderr, "capture: %+v\n", ls) })
	}
	st, rerr := capture(ctx, *cfg, emit)
	if werr == nil && len(buf) > 0 {
		_, werr = w.Write(buf)
	}
	rate := 0.0
	if s := st.Elapsed.Seconds(); s > 0 {
		rate = float64(st.Packets) / s
	}
	fmt.Fprintf(stderr, "edgeward flows: %d packets, %d flows, %d errors, %s, %.0f packets/s\n",
		st.Packets, st.Table.Exported, st.Errors(), st.Elapsed.Round(1e5), rate)
	if *verbose {
		fmt.Fprintf(stderr, "decode: %+v\nflow table: %+v\ninspect: %+v\n", st.Decode, st.Table, st.Inspect)
	}
	if rerr != nil {
		fmt.Fprintf(stderr, "edgeward flows: %v\n", rerr)
	}
	if werr != nil {
		fmt.Fprintf(stderr, "edgeward flows: writing records: %v\n", werr)
		return 1
	}
	if rerr != nil && st.Packets == 0 {
		return 1
	}
	return 0
}

// liveCapture is a live capture as -i, -mode and -bpf-filter ask for it.
type liveCapture struct {
	iface, mode, filter string
	// keepNetAdmin keeps CAP_NET_ADMIN after the capture is open: WireGuard
	// peers are read over netlink.
	keepNetAdmin bool
	reg          prometheus.Registerer // capture drop counters; nil: none
	stats        func(live.Stats)      // called with the capture's counters at the end
}

// run opens the capture, drops the capabilities it no longer needs, and
// captures until ctx ends, flushing every open flow.
func (lc *liveCapture) run(ctx context.Context, cfg sensor.Config, emit flowtable.Emit) (sensor.Stats, error) {
	src, err := openLive(lc.iface, lc.mode, lc.filter, cfg.Table)
	if err != nil {
		return sensor.Stats{}, err
	}
	defer src.Close()
	var keep []uintptr
	if lc.keepNetAdmin {
		keep = append(keep, unix.CAP_NET_ADMIN)
	}
	if err := live.DropCapabilities(src, keep...); errors.Is(err, live.ErrDropUnsupported) {
		slog.Warn("capture keeps its capabilities", "component", "capture", "err", err)
	} else if err != nil {
		return sensor.Stats{}, err
	}
	if lc.reg != nil {
		if err := lc.reg.Register(live.Collector(src)); err != nil {
			return sensor.Stats{}, err
		}
	}
	st, err := sensor.Capture(ctx, src, cfg, emit)
	if lc.stats != nil {
		lc.stats(src.Stats())
	}
	return st, err
}

// openLive opens the live capture -i, -mode and -bpf-filter ask for.
func openLive(iface, mode, filter string, table flowtable.Config) (live.Source, error) {
	switch mode {
	case "afpacket":
		return live.OpenAFPacket(live.AFPacketConfig{Interface: iface, Filter: filter})
	case "ebpf":
		if filter != "" {
			return nil, errors.New("-bpf-filter applies to -mode afpacket only")
		}
		return live.OpenEBPF(live.EBPFConfig{Interface: iface, Flow: table, Logger: slog.Default()})
	}
	return nil, fmt.Errorf("-mode %q: want afpacket or ebpf", mode)
}
