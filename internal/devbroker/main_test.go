package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/syncbuf"
	"github.com/edgeward/edgeward/pipeline/consume"
	"github.com/edgeward/edgeward/sensor/export"
)

// TestBroker starts the broker, checks the topics it creates, produces an
// alert and a binary flow record and reads them back from -print.
func TestBroker(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncbuf.Buffer
	addrc := make(chan string, 1)
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-partitions", "2", "-print", "edgeward.alerts.v1,edgeward.flows.v1"},
			&stdout, &stderr, func(a string) { addrc <- a })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case code := <-done:
		t.Fatalf("exited with %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "not for production") {
		t.Errorf("no warning that it is a test broker: %s", stderr.String())
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("edgeward.alerts.v1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]int{}
	for _, tp := range meta.Topics {
		parts[*tp.Topic] = len(tp.Partitions)
	}
	for _, name := range topics {
		if parts[name] != 2 {
			t.Errorf("topic %s has %d partitions, want 2 (all: %v)", name, parts[name], parts)
		}
	}

	alert := `{"class_name":"Detection Finding","message":"test"}`
	r := flow.Record{Schema: flow.Schema, ID: "f1", Proto: "tcp", Start: time.Unix(1700000000, 0).UTC(), End: time.Unix(1700000060, 0).UTC()}
	recs := []*kgo.Record{
		{Value: []byte(alert)},
		{Topic: "edgeward.flows.v1", Value: r.AppendBinary(nil), Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte(flow.ContentType)}}},
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var back flow.Record
	if err := flow.DecodeBinary(recs[1].Value, &back); err != nil {
		t.Fatal(err)
	}
	want := []string{alert, string(back.AppendJSON(nil))}
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		slices.Sort(lines)
		slices.Sort(want)
		if slices.Equal(lines, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("printed:\n%s\nwant:\n%s", stdout.String(), strings.Join(want, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop after the context ended")
	}
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no port", []string{"-addr", "localhost"}, "-addr: address localhost: missing port"},
		{"no host", []string{"-addr", ":9092"}, "name a host"},
		{"bad port", []string{"-addr", "127.0.0.1:http"}, "bad port"},
		{"no partitions", []string{"-partitions", "0"}, "want at least 1"},
		{"argument", []string{"extra"}, `unexpected argument "extra"`},
		{"unknown flag", []string{"-brokers", "x"}, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr syncbuf.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr, nil)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("code %d, stderr %q; want 2 and %q", code, stderr.String(), tc.want)
			}
		})
	}
}

// TestTopics checks that the broker creates the topics the daemons use
// by default.
func TestTopics(t *testing.T) {
	want := []string{export.DefaultTopic, consume.DefaultAlertsTopic, consume.DefaultDLQTopic, consume.DefaultRepartitionTopic, consume.DefaultFlowsTopic}
	for _, name := range want {
		if !slices.Contains(topics, name) {
			t.Errorf("devbroker does not create %s", name)
		}
	}
}
