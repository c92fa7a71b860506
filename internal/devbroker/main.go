// Command devbroker runs a Kafka-protocol test broker for trying edgeward
// on one machine: franz-go's in-process kfake cluster on 127.0.0.1:9092
// with the edgeward topics created, until Ctrl-C.
//
//	go run ./internal/devbroker [-addr 127.0.0.1:9092] [-partitions 3] [-print edgeward.alerts.v1]
//
// It is a test broker, not for production: one process, no replication,
// records in memory (or in -dir) and gone when it stops. It is not part of
// the edgeward binary. docs/deploy.md ("Try it on one machine") walks
// through the sensor and the pipeline against it.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/edgeward/edgeward/flow"
)

// topics are the topics the daemons use by default (docs/configuration.md):
// the sensor's flows, the pipeline's alerts, dead letters and repartition.
var topics = []string{"edgeward.flows.v1", "edgeward.alerts.v1", "edgeward.flows.dlq.v1", "edgeward.repartition.v1"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil))
}

// run runs the broker until ctx ends. ready, when set, gets the address
// the broker listens on once it accepts connections.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(addr string)) int {
	fs := flag.NewFlagSet("devbroker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9092", "address to listen on, host:port (port 0: any free port); clients are told to connect to exactly this address")
	partitions := fs.Int("partitions", 3, "partitions of each topic created at start")
	topicList := fs.String("topics", strings.Join(topics, ","), "topics to create at start, comma-separated")
	dir := fs.String("dir", "", "keep the broker's records and offsets in this directory across restarts (default: in memory only)")
	printTopics := fs.String("print", "", "print the records of these topics (comma-separated) to stdout as they arrive, one per line: JSON values as they are, binary flow records decoded to JSON")
	verbose := fs.Bool("v", false, "log the broker's own messages")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: go run ./internal/devbroker [flags]

Runs an in-memory Kafka-protocol broker (franz-go's kfake) with the edgeward
topics, for trying the sensor and pipeline daemons on one machine, until
Ctrl-C. A test broker, not for production: one process, no replication,
records lost when it stops (unless -dir).

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "devbroker: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	host, port, err := splitAddr(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "devbroker: -addr: %v\n", err)
		return 2
	}
	if *partitions < 1 {
		fmt.Fprintf(stderr, "devbroker: -partitions %d: want at least 1\n", *partitions)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "devbroker")

	opts := []kfake.Opt{
		kfake.Ports(port),
		// kfake listens on 127.0.0.1; -addr may name another host.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
		kfake.DefaultNumPartitions(*partitions),
		kfake.SeedTopics(int32(*partitions), splitList(*topicList)...),
	}
	if *dir != "" {
		opts = append(opts, kfake.DataDir(*dir))
	}
	if *verbose {
		opts = append(opts, kfake.WithLogger(kfake.BasicLogger(stderr, kfake.LogLevelInfo)))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintf(stderr, "devbroker: starting the broker on %s: %v\n", *addr, err)
		return 1
	}
	defer c.Close()
	listen := c.ListenAddrs()[0]
	log.Warn("in-memory test broker, not for production: records are lost when it stops", "addr", listen,
		"topics", *topicList, "partitions", *partitions, "dir", *dir)
	if ready != nil {
		ready(listen)
	}

	if *printTopics == "" {
		<-ctx.Done()
		log.Info("stopping")
		return 0
	}
	if err := printRecords(ctx, listen, splitList(*printTopics), stdout); err != nil {
		fmt.Fprintf(stderr, "devbroker: -print: %v\n", err)
		return 1
	}
	log.Info("stopping")
	return 0
}

// printRecords writes the values of the topics' records to w, one per
// line, until ctx ends.
func printRecords(ctx context.Context, addr string, topics []string, w io.Writer) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	bw := bufio.NewWriter(w)
	var r flow.Record
	var line []byte
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var errs []error
		fetches.EachError(func(t string, p int32, err error) {
			errs = append(errs, fmt.Errorf("topic %s partition %d: %w", t, p, err))
		})
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		fetches.EachRecord(func(rec *kgo.Record) {
			line = append(line[:0], rec.Value...)
			if header(rec, "content-type") == flow.ContentType {
				if err := flow.DecodeBinary(rec.Value, &r); err != nil {
					line = fmt.Appendf(line[:0], `{"error":%q,"topic":%q,"partition":%d,"offset":%d}`, err.Error(), rec.Topic, rec.Partition, rec.Offset)
				} else {
					line = r.AppendJSON(line[:0])
				}
			}
			bw.Write(line)
			bw.WriteByte('\n')
		})
		if err := bw.Flush(); err != nil {
			return err
		}
	}
}

func header(rec *kgo.Record, key string) string {
	for _, h := range rec.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func splitAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q: bad port", addr)
	}
	if host == "" {
		return "", 0, fmt.Errorf("%q: name a host (127.0.0.1): clients connect to the address the broker advertises", addr)
	}
	return host, port, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
