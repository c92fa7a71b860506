package decode

import (
	"bytes"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestFragmentBeyondEndLeavesNoHole: a fragment that reaches past the end
// the last fragment gave must not make a datagram with a hole look
// complete (its missing bytes would be reported as zeros).
func TestFragmentBeyondEndLeavesNoHole(t *testing.T) {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{}, &layers.UDP{SrcPort: 5353, DstPort: 53, Length: 32}, gopacket.Payload(bytes.Repeat([]byte{'x'}, 24))); err != nil {
		t.Fatal(err)
	}
	u := buf.Bytes()
	frag := func(off int, more bool, b []byte) []byte {
		ip := ipv4(layers.IPProtocolUDP)
		ip.Id = 5
		ip.FragOffset = uint16(off / 8)
		if more {
			ip.Flags = layers.IPv4MoreFragments
		}
		return serialize(t, eth(layers.EthernetTypeIPv4), ip, gopacket.Payload(b))
	}
	d := New(Config{})
	var p Packet
	frames := [][]byte{
		frag(0, true, u[:16]),           // bytes 0-15
		frag(24, false, u[24:32]),       // bytes 24-31: the datagram is 32 bytes
		frag(40, true, make([]byte, 8)), // past the end: must not count
	}
	for i, f := range frames {
		if r := d.Decode(f, layers.LinkTypeEthernet, int64(i), &p); r == OK {
			t.Fatalf("fragment %d completed a datagram missing bytes 16-23: payload %q", i, p.Payload)
		}
	}
}

// TestSCTPPorts: SCTP has ports, and Community ID (which edgeward promises
// to compute as Suricata does) hashes them; without them every association
// between two hosts is one flow with ports 0.
func TestSCTPPorts(t *testing.T) {
	sctp := []byte{0x0b, 0x59, 0x96, 0x0c, 0, 0, 0, 1, 0, 0, 0, 0} // 2905 -> 38412, verification tag 1
	f := serialize(t, eth(layers.EthernetTypeIPv4), ipv4(layers.IPProtocolSCTP), gopacket.Payload(sctp))
	var p Packet
	if r := New(Config{}).Decode(f, layers.LinkTypeEthernet, 0, &p); r != OK {
		t.Fatalf("result %d", r)
	}
	if p.Key.SrcPort != 2905 || p.Key.DstPort != 38412 {
		t.Errorf("SCTP ports %d -> %d, want 2905 -> 38412", p.Key.SrcPort, p.Key.DstPort)
	}
}
