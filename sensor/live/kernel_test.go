package live_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeward/edgeward/sensor/flowtable"
	"github.com/edgeward/edgeward/sensor/live"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
)

// TestClsact attaches with a clsact qdisc and filters, as on kernels
// before 6.6, captures a connection, and removes the filters on Close.
func TestClsact(t *testing.T) {
	n := newTestNet(t)
	eb, err := live.OpenEBPF(live.EBPFConfig{Interface: n.host, Clsact: true, SweepInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer eb.Close()
	if eb.Attach() != "clsact" {
		t.Fatalf("attached with %s", eb.Attach())
	}
	out, _ := exec.Command("tc", "filter", "show", "dev", n.host, "ingress").CombinedOutput()
	if !strings.Contains(string(out), "edgeward-ingress") {
		t.Fatalf("no ingress filter:\n%s", out)
	}
	stop := capture(t, t.Context(), eb)
	var ln net.Listener
	n.inNS(t, func() (err error) {
		ln, err = net.Listen("tcp4", n.peerIP+":7001")
		return err
	})
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("tcp4", n.peerIP+":7001")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	time.Sleep(100 * time.Millisecond)
	recs, _ := stop()
	found := false
	for _, r := range recs {
		if dst, _ := r["dst"].(map[string]any); dst["port"] == float64(7001) {
			found = true
		}
	}
	if !found {
		t.Errorf("connection not among %d records", len(recs))
	}
	eb.Close()
	out, _ = exec.Command("tc", "filter", "show", "dev", n.host, "ingress").CombinedOutput()
	if strings.Contains(string(out), "edgeward") {
		t.Errorf("filter left after Close:\n%s", out)
	}
}

// TestDropCapabilities runs a CGO_ENABLED=0 build that opens a capture and
// drops its capabilities, and checks every thread's sets.
func TestDropCapabilities(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it opens an AF_PACKET socket and drops capabilities")
	}
	bin := filepath.Join(t.TempDir(), "dropcaps")
	build := exec.Command("go", "build", "-o", bin, "./testdata/dropcaps")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	threads := 0
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		want := "0000000000000000"
		if f[0] == "NoNewPrivs:" {
			want = "1"
		}
		if f[0] == "CapEff:" {
			threads++
		}
		if f[1] != want {
			t.Errorf("%s %s, want %s", f[0], f[1], want)
		}
	}
	if threads < 2 {
		t.Errorf("only %d threads checked:\n%s", threads, out)
	}
}

// countSink counts frames and nothing else.
type countSink struct{ frames atomic.Int64 }

func (s *countSink) Frame([]byte, layers.LinkType, int64)                       { s.frames.Add(1) }
func (s *countSink) Flow(*flowtable.External)                                   {}
func (s *countSink) Sample(*flowtable.External, []byte, layers.LinkType, int64) {}
func (s *countSink) Advance(int64)                                              {}

// TestAFPacketFrames sends frames as fast as a packet socket writes them
// and requires the capture to read every one without drops and without
// allocating per frame.
func TestAFPacketFrames(t *testing.T) {
	n := newTestNet(t)
	af, err := live.OpenAFPacket(live.AFPacketConfig{Interface: n.host})
	if err != nil {
		t.Fatal(err)
	}
	defer af.Close()
	w, err := afpacket.NewTPacket(afpacket.OptInterface(n.host))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	buf := gopacket.NewSerializeBuffer()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4(198, 18, 0, 1), DstIP: net.IPv4(198, 18, 0, 2)}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 9}
	udp.SetNetworkLayerForChecksum(ip)
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		ip, udp, gopacket.Payload(make([]byte, 100))); err != nil {
		t.Fatal(err)
	}
	frame := buf.Bytes()

	var sink countSink
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- af.Run(ctx, 0, &sink) }()
	const frames = 20000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range frames {
		if err := w.WritePacketData(frame); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); sink.frames.Load() < frames && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	runtime.ReadMemStats(&after)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := af.Stats()
	t.Logf("%d frames read, %+v, %.3f allocations per frame", sink.frames.Load(), st, float64(after.Mallocs-before.Mallocs)/frames)
	if got := sink.frames.Load(); got < frames || st.SocketDrops != 0 {
		t.Errorf("read %d of %d frames, %d dropped", got, frames, st.SocketDrops)
	}
	if per := float64(after.Mallocs-before.Mallocs) / frames; per > 0.05 {
		t.Errorf("%.3f allocations per frame", per)
	}
}
