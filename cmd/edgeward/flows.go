package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor"
	"github.com/edgeward/edgeward/sensor/flowtable"
	"github.com/edgeward/edgeward/sensor/inventory"
)

func runFlows(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("flows", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: edgeward flows -r FILE [-o FILE] [flags]\n\nReads a pcap or pcapng capture and writes one JSON flow record per line\n(schema edgeward.flow/v1, see docs/schema.md). A summary goes to stderr.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var cfg sensor.Config
	in := fs.String("r", "", "capture file to read (pcap or pcapng, detected from its contents)")
	out := fs.String("o", "", "write records to this file instead of stdout")
	verbose := fs.Bool("v", false, "also print the decoder's and flow table's counters to stderr")
	fs.DurationVar(&cfg.Table.IdleTimeout, "idle-timeout", flowtable.DefaultIdleTimeout, "close a flow after this long without packets")
	fs.DurationVar(&cfg.Table.ActiveTimeout, "active-timeout", flowtable.DefaultActiveTimeout, "close and restart a flow open this long")
	fs.DurationVar(&cfg.Table.CloseLinger, "close-linger", flowtable.DefaultCloseLinger, "keep a TCP flow this long after FIN/RST for late segments")
	fs.IntVar(&cfg.Table.MaxFlows, "max-flows", flowtable.DefaultMaxFlows, "flows held at once; the least recently seen is evicted beyond it")
	fs.BoolVar(&cfg.NoInspect, "no-metadata", false, "skip payload inspection (TLS, QUIC, DNS, HTTP, DHCP, SSH metadata)")
	fs.IntVar(&cfg.Inspect.MaxPackets, "inspect-packets", 8, "payload packets of each direction a flow's metadata is taken from")
	fs.StringVar(&cfg.Identity.Site, "site", "", "this sensor's site, recorded on every flow")
	fs.StringVar(&cfg.Identity.SensorID, "sensor-id", "", "this sensor's id, recorded on every flow")
	internal := fs.String("internal", "", "corporate prefixes, comma-separated (default RFC 1918, ULA and link-local)")
	invPath := fs.String("inventory", "", "device inventory file (CSV or YAML, see docs/schema.md)")
	memLimit := fs.Int("memory-limit", 0, "soft memory limit in MiB for the Go heap (0: GOMEMLIMIT, or none); the garbage collector works harder near it")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *in == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "edgeward flows: need -r FILE (live capture comes with -i in a later release)")
		fs.Usage()
		return 2
	}

	if *internal != "" {
		for _, p := range strings.Split(*internal, ",") {
			pfx, err := netip.ParsePrefix(strings.TrimSpace(p))
			if err != nil {
				fmt.Fprintf(stderr, "edgeward flows: -internal: %v\n", err)
				return 2
			}
			cfg.Identity.Internal = append(cfg.Identity.Internal, pfx.Masked())
		}
	}
	if *invPath != "" {
		inv, err := inventory.LoadFile(*invPath)
		if err != nil { // bad lines are reported and skipped; the rest loads
			fmt.Fprintf(stderr, "edgeward flows: inventory: %v\n", err)
		}
		if inv == nil {
			return 1
		}
		cfg.Identity.Inventory = inv
	}
	if *memLimit > 0 {
		debug.SetMemoryLimit(int64(*memLimit) << 20)
	}

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
	bw := bufio.NewWriterSize(w, 1<<20)
	var (
		buf  []byte
		werr error
	)
	emit := func(r *flow.Record) {
		if werr != nil {
			return
		}
		buf = r.AppendJSON(buf[:0])
		buf = append(buf, '\n')
		_, werr = bw.Write(buf)
	}
	st, rerr := sensor.ReadFile(ctx, *in, cfg, emit)
	if werr == nil {
		werr = bw.Flush()
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
