package synth

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// decoded is one packet read back from a capture by gopacket, independent
// of the code that wrote it.
type decoded struct {
	ts         time.Time
	vlan       []uint16
	proto      string
	src, dst   netip.Addr
	sport      uint16
	dport      uint16
	ipBytes    int
	tcpFlags   uint8
	payload    []byte
	packet     gopacket.Packet
	checksumOK bool
}

func readCapture(t testing.TB, data []byte) []decoded {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("opening pcap: %v", err)
	}
	var out []decoded
	for i := 1; ; i++ {
		frame, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		d, err := decodeFrame(frame)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		d.ts = ci.Timestamp
		out = append(out, d)
	}
	return out
}

func decodeFrame(frame []byte) (decoded, error) {
	var d decoded
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	d.packet = p
	// Application-layer decoders guess by port (gopacket reads UDP 1000 as
	// APSP); only failures up to the transport layer matter here.
	if el := p.ErrorLayer(); el != nil && p.TransportLayer() == nil &&
		p.Layer(layers.LayerTypeICMPv4) == nil && p.Layer(layers.LayerTypeICMPv6) == nil {
		return d, fmt.Errorf("decoding: %v", el.Error())
	}
	for _, l := range p.Layers() {
		if q, ok := l.(*layers.Dot1Q); ok {
			d.vlan = append(d.vlan, q.VLANIdentifier)
		}
	}
	var pseudo []byte
	var l4Proto byte
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		d.src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
		d.dst, _ = netip.AddrFromSlice(ip.DstIP.To4())
		d.ipBytes = len(ip.Contents) + len(ip.Payload)
		if int(ip.Length) != d.ipBytes {
			return d, fmt.Errorf("IPv4 total length %d, carried %d", ip.Length, d.ipBytes)
		}
		if onesSum(ip.Contents) != 0xffff {
			return d, fmt.Errorf("bad IPv4 header checksum")
		}
		pseudo = append(append([]byte{}, ip.Contents[12:20]...), 0, byte(ip.Protocol), byte(len(ip.Payload)>>8), byte(len(ip.Payload)))
		l4Proto = byte(ip.Protocol)
	case *layers.IPv6:
		d.src, _ = netip.AddrFromSlice(ip.SrcIP)
		d.dst, _ = netip.AddrFromSlice(ip.DstIP)
		d.ipBytes = len(ip.Contents) + len(ip.Payload)
		if int(ip.Length) != len(ip.Payload) {
			return d, fmt.Errorf("IPv6 payload length %d, carried %d", ip.Length, len(ip.Payload))
		}
		pseudo = append(append([]byte{}, ip.Contents[8:40]...), 0, 0, byte(len(ip.Payload)>>8), byte(len(ip.Payload)), 0, 0, 0, byte(ip.NextHeader))
		l4Proto = byte(ip.NextHeader)
	default:
		return d, fmt.Errorf("no IP layer")
	}
	l4 := p.NetworkLayer().LayerPayload()
	switch l4Proto {
	case 6:
		tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		d.proto, d.sport, d.dport = "tcp", uint16(tcp.SrcPort), uint16(tcp.DstPort)
		d.tcpFlags = l4[13]
		d.payload = tcp.Payload
	case 17:
		udp := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		d.proto, d.sport, d.dport = "udp", uint16(udp.SrcPort), uint16(udp.DstPort)
		d.payload = udp.Payload
	case 1:
		d.proto = "icmp"
		d.payload = l4[8:]
		pseudo = nil
	case 58:
		d.proto = "icmp"
		d.payload = l4[8:]
	default:
		return d, fmt.Errorf("unexpected protocol %d", l4Proto)
	}
	d.checksumOK = onesSum(append(pseudo, l4...)) == 0xffff
	if !d.checksumOK {
		return d, fmt.Errorf("bad %s checksum", d.proto)
	}
	return d, nil
}

// onesSum is the textbook RFC 1071 sum, deliberately unlike the optimized
// one under test.
func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// tally is what a flow looks like from its packets.
type tally struct {
	pkts, bytes [2]uint64
	flags       [2]uint8
	first, last time.Time
}

type tupleKey struct {
	proto      string
	a, b       netip.Addr
	aPort, bPo uint16
}

// attribute assigns each packet to the truth record with the same 5-tuple
// whose time span covers it, and fails on packets no record or several
// records claim.
func attribute(t *testing.T, pkts []decoded, truth []Truth) []tally {
	t.Helper()
	byKey := map[tupleKey][]int{}
	for i, tr := range truth {
		k := tupleKey{tr.Proto, tr.Src, tr.Dst, tr.Sport, tr.Dport}
		byKey[k] = append(byKey[k], i)
	}
	out := make([]tally, len(truth))
	for n, p := range pkts {
		var cands []int
		dir := 0
		for d, k := range []tupleKey{{p.proto, p.src, p.dst, p.sport, p.dport}, {p.proto, p.dst, p.src, p.dport, p.sport}} {
			for _, i := range byKey[k] {
				if !p.ts.Before(truth[i].TS) && !p.ts.After(truth[i].End) && slices.Equal(truth[i].VLAN, p.vlan) {
					cands = append(cands, i)
					dir = d
				}
			}
		}
		if len(cands) != 1 {
			t.Fatalf("packet %d (%s %s:%d -> %s:%d at %s) matches %d truth records", n+1, p.proto, p.src, p.sport, p.dst, p.dport, p.ts, len(cands))
		}
		tl := &out[cands[0]]
		tl.pkts[dir]++
		tl.bytes[dir] += uint64(p.ipBytes)
		tl.flags[dir] |= p.tcpFlags
		if tl.first.IsZero() {
			tl.first = p.ts
		}
		tl.last = p.ts
	}
	return out
}
