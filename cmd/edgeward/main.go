// Command edgeward is the single binary of the edgeward sensor and
// pipeline. Each subcommand only parses flags and wires packages together.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"demo", "synthesize a day with a laptop-farm story, run everything on it, print what was caught", runDemo},
		{"run", "run sensor and pipeline on a capture: flows, enrichment, rules, alerts", runRun},
		{"flows", "read a capture and write its flow records as JSON lines", runFlows},
		{"sensor", "run the sensor daemon: capture, flow records, export to Kafka (with a disk spool)", runSensor},
		{"pipeline", "run the pipeline daemon: consume flows from Kafka, enrich, rules, alerts to Kafka", runPipeline},
		{"rules", "lint rule files, or run the tests inside them", runRules},
		{"synth", "write a deterministic synthetic capture and its ground truth", runSynth},
		{"version", "print the version", runVersion},
	}
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			for _, c := range commands() {
				if c.name == args[1] {
					return c.run(ctx, []string{"-h"}, stdout, stderr)
				}
			}
		}
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "edgeward: unknown command %q; run 'edgeward help' for the list\n", args[0])
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "edgeward: network-flow anomaly sensor for remote-access fraud\n\nUsage: edgeward <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'edgeward help <command>' for a command's flags.\n")
}

func runVersion(_ context.Context, _ []string, stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "edgeward %s\n", version)
	return 0
}
