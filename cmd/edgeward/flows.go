package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor"
)

func runFlows(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("flows", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: edgeward flows -r FILE [-o FILE] [flags]\n\nReads a pcap or pcapng capture and writes one JSON flow record per line\n(schema edgeward.flow/v1, see docs/schema.md). A summary goes to stderr.\n\nFlags:\n")
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
	if sf.read == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "edgeward flows: need -r FILE (live capture comes with -i in a later release)")
		fs.Usage()
		return 2
	}
	cfg, err := sf.config()
	if err != nil {
		fmt.Fprintf(stderr, "edgeward flows: %v\n", err)
		if cfg == nil {
			return 2
		}
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
	st, rerr := sensor.ReadFile(ctx, sf.read, *cfg, emit)
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
