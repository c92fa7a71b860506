package live_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/edgeward/edgeward/sensor/live"
)

// runSource runs src with a counting sink and returns a channel with Run's
// result and the cancel function.
func runSource(t *testing.T, src live.Source) (<-chan error, context.CancelFunc) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, 0, &countSink{}) }()
	return done, cancel
}

func udpTo(t *testing.T, addr string, n int) {
	t.Helper()
	c, err := net.Dial("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range n {
		c.Write([]byte("hello"))
	}
}

// TestAFPacketLinkDown: an interface that goes down while the capture runs
// ends Run with an error that says so.
func TestAFPacketLinkDown(t *testing.T) {
	n := newTestNet(t)
	af, err := live.OpenAFPacket(live.AFPacketConfig{Interface: n.host})
	if err != nil {
		t.Fatal(err)
	}
	defer af.Close()
	done, cancel := runSource(t, af)
	defer cancel()
	time.Sleep(100 * time.Millisecond)
	run(t, "ip", "link", "set", n.host, "down")
	select {
	case err := <-done:
		t.Logf("Run: %v", err)
		if err == nil || !strings.Contains(err.Error(), "down") {
			t.Errorf("Run after the link went down: %v; want an error that says the interface is down", err)
		}
	case <-time.After(3 * time.Second):
		t.Log("Run still going 3 s after the link went down")
	}
}

// TestEBPFLinkDeleted: an interface deleted while the capture runs ends
// Run with an error naming it, instead of capturing nothing forever.
func TestEBPFLinkDeleted(t *testing.T) {
	for _, clsact := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcx", true: "clsact"}[clsact], func(t *testing.T) {
			n := newTestNet(t)
			eb, err := live.OpenEBPF(live.EBPFConfig{Interface: n.host, Clsact: clsact, SweepInterval: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer eb.Close()
			done, cancel := runSource(t, eb)
			defer cancel()
			time.Sleep(100 * time.Millisecond)
			run(t, "ip", "link", "del", n.host)
			select {
			case err := <-done:
				t.Logf("Run: %v", err)
				if err == nil || !strings.Contains(err.Error(), n.host) {
					t.Errorf("Run after the interface was deleted: %v", err)
				}
			case <-time.After(3 * time.Second):
				t.Errorf("Run still capturing 3 s after %s was deleted", n.host)
			}
		})
	}
}

// TestStatsAfterClose: the drop and packet counters are Prometheus counters
// (live.Collector); the sensor keeps serving /metrics after the capture is
// closed, while Kafka flushes, so they must not fall back to zero.
func TestStatsAfterClose(t *testing.T) {
	n := newTestNet(t)
	eb, err := live.OpenEBPF(live.EBPFConfig{Interface: n.host, SweepInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done, cancel := runSource(t, eb)
	udpTo(t, n.peerIP+":9", 10)
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	before := eb.Stats()
	eb.Close()
	after := eb.Stats()
	if before.Packets == 0 || after != before {
		t.Errorf("stats before Close %+v, after %+v", before, after)
	}
}

// TestAFPacketDropsAfterClose: the rings' drops survive Close (the
// counter stays exported), and Stats may run while Close does (a scrape
// during shutdown; run with -race).
func TestAFPacketDropsAfterClose(t *testing.T) {
	n := newTestNet(t)
	af, err := live.OpenAFPacket(live.AFPacketConfig{Interface: n.host, RingBytes: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing reads the ring: 2 MiB hold some 10,000 small frames.
	udpTo(t, n.peerIP+":9", 40000)
	time.Sleep(200 * time.Millisecond)
	before := af.Stats()
	scraped := make(chan struct{})
	go func() {
		defer close(scraped)
		for range 1000 {
			af.Stats()
		}
	}()
	af.Close()
	<-scraped
	after := af.Stats()
	if before.SocketDrops == 0 || after.SocketDrops < before.SocketDrops {
		t.Errorf("socket drops before Close %d, after %d", before.SocketDrops, after.SocketDrops)
	}
}

// TestAFPacketNoSuchInterface: a mistyped interface name says so, not
// that the sensor lacks CAP_NET_RAW (which sends an operator chasing
// capabilities when the fix is the name).
func TestAFPacketNoSuchInterface(t *testing.T) {
	_, err := live.OpenAFPacket(live.AFPacketConfig{Interface: "ew-nosuch0"})
	if err == nil || !strings.Contains(err.Error(), "no such network interface") || strings.Contains(err.Error(), "CAP_NET_RAW") {
		t.Errorf("OpenAFPacket: %v, want no such network interface, without a capability hint", err)
	}
}
