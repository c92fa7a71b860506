package kafkatest

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func produce(t *testing.T, c *Cluster, topic string, from, n int) {
	t.Helper()
	cl := c.Client(kgo.DefaultProduceTopic(topic))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := from; i < from+n; i++ {
		r := &kgo.Record{Key: []byte(fmt.Sprint(i % 3)), Value: []byte(fmt.Sprint(i)), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
}

func TestStopRestartKeepsRecords(t *testing.T) {
	c := Start(t, Topic("t", 3))
	topic := c.Topic("t")
	produce(t, c, topic, 0, 10)
	if got := c.Records(topic); len(got) != 10 || got[0].Headers["h"] != "v" {
		t.Fatalf("read %d records: %+v", len(got), got)
	}
	addrs := c.Addrs()
	c.Stop()
	if conn, err := net.DialTimeout("tcp", addrs[0], time.Second); err == nil {
		conn.Close()
		t.Fatal("stopped broker still accepts connections")
	}
	c.Restart()
	if got := c.Addrs(); got[0] != addrs[0] {
		t.Fatalf("restarted on %v, was %v", got, addrs)
	}
	produce(t, c, topic, 10, 5)
	got := c.Records(topic)
	if len(got) != 15 {
		t.Fatalf("after restart: %d records, want 15", len(got))
	}
	seen := map[string]bool{}
	for _, r := range got {
		seen[string(r.Value)] = true
	}
	if len(seen) != 15 {
		t.Errorf("%d distinct values", len(seen))
	}
}

func TestSASLAndTLS(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			c := Start(t, Topic("t", 1), SASL(mech, "u", "p"), TLS())
			if c.CAFile() == "" {
				t.Fatal("no CA file")
			}
			produce(t, c, c.Topic("t"), 0, 2)
			if got := c.Records(c.Topic("t")); len(got) != 2 {
				t.Errorf("read %d records", len(got))
			}
		})
	}
}

func TestEmptyTopic(t *testing.T) {
	c := Start(t, Topic("empty", 2))
	if got := c.Records(c.Topic("empty")); len(got) != 0 {
		t.Errorf("got %d records", len(got))
	}
}
