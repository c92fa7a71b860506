package sensor_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// stopAfter is a context whose Err turns to Canceled after n calls, as a
// SIGTERM arriving while a capture file is read.
type stopAfter struct {
	context.Context
	n int
}

func (c *stopAfter) Err() error {
	if c.n--; c.n < 0 {
		return context.Canceled
	}
	return nil
}

// TestReadFileStoppedIsShutdown: flows flushed because the sensor was
// stopped part way through a file end with "shutdown", not "eof" (which
// says the capture ended; docs/schema.md, End reasons).
func TestReadFileStoppedIsShutdown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "udp.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 40001}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, eth, ip, udp, gopacket.Payload("x")); err != nil {
		t.Fatal(err)
	}
	for i := range 10000 {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, int64(i)*1000), CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}
		if err := w.WritePacket(ci, buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var reasons []flow.EndReason
	_, err = sensor.ReadFile(&stopAfter{Context: context.Background(), n: 1}, path, sensor.Config{NoInspect: true}, func(r *flow.Record) {
		reasons = append(reasons, r.EndReason)
	})
	if err == nil {
		t.Fatal("no error from a stopped read")
	}
	if len(reasons) != 1 || reasons[0] != flow.EndShutdown {
		t.Errorf("end reasons %v, want [shutdown]", reasons)
	}
}
