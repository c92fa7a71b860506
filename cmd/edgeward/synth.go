package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/edgeward/edgeward/internal/synth"
)

func runSynth(_ context.Context, args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("synth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: edgeward synth -o FILE [flags]\n\nWrites a deterministic synthetic capture (a small company's gateway traffic:\nTLS, QUIC, DNS, HTTP, other TCP/UDP, ICMP) and optionally its ground truth,\none JSON flow per line. Same flags, same bytes.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	out := fs.String("o", "", "capture file to write")
	truth := fs.String("truth", "", "also write the ground truth to this file")
	var cfg synth.Config
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	fs.IntVar(&cfg.Flows, "flows", 1000, "number of flows")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Minute, "flow starts spread over this long")
	ng := fs.Bool("pcapng", false, "write pcapng instead of nanosecond pcap")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintf(stderr, "edgeward synth: %v\n", err)
		return 1
	}
	defer f.Close()
	var tw io.Writer
	if *truth != "" {
		t, err := os.Create(*truth)
		if err != nil {
			fmt.Fprintf(stderr, "edgeward synth: %v\n", err)
			return 1
		}
		defer t.Close()
		tw = t
	}
	opt := synth.Options{Seed: cfg.Seed}
	if *ng {
		opt.Format = synth.PCAPNG
	}
	st, err := synth.Render(synth.RandomFlows(cfg), f, tw, opt)
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		fmt.Fprintf(stderr, "edgeward synth: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "edgeward synth: %d flows, %d packets, %d bytes -> %s\n", st.Flows, st.Packets, st.FrameBytes, *out)
	return 0
}
