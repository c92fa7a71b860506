package decode

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/corpus"
	"github.com/edgeward/edgeward/internal/synth"
	"github.com/edgeward/edgeward/sensor/pcapfile"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var (
	macA = net.HardwareAddr{0xdc, 0xa6, 0x32, 1, 2, 3}
	macB = net.HardwareAddr{0x00, 0x1b, 0x21, 4, 5, 6}
	ip4A = net.IP{198, 18, 0, 1}
	ip4B = net.IP{198, 18, 0, 2}
	ip6A = net.ParseIP("2001:db8::1")
	ip6B = net.ParseIP("2001:db8::2")
)

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func eth(et layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: et}
}
func ipv4(p layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: p, SrcIP: ip4A, DstIP: ip4B, Id: 7}
}
func ipv6(p layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: p, SrcIP: ip6A, DstIP: ip6B}
}
func tcpSeg(ip interface{ gopacket.NetworkLayer }, flags string) *layers.TCP {
	t := &layers.TCP{SrcPort: 51000, DstPort: 443, Seq: 1000, Ack: 2000, DataOffset: 5, Window: 512}
	for _, c := range flags {
		switch c {
		case 'S':
			t.SYN = true
		case 'A':
			t.ACK = true
		case 'F':
			t.FIN = true
		case 'P':
			t.PSH = true
		}
	}
	t.SetNetworkLayerForChecksum(ip)
	return t
}
func udpDgram(ip interface{ gopacket.NetworkLayer }, sport, dport layers.UDPPort) *layers.UDP {
	u := &layers.UDP{SrcPort: sport, DstPort: dport}
	u.SetNetworkLayerForChecksum(ip)
	return u
}

func addr(s string) flow.Addr { return flow.AddrFrom(netip.MustParseAddr(s)) }

func TestDecode(t *testing.T) {
	payload := gopacket.Payload(bytes.Repeat([]byte{0x16}, 100))
	ip := ipv4(layers.IPProtocolTCP)
	tcpFrame := serialize(t, eth(layers.EthernetTypeIPv4), ip, tcpSeg(ip, "PA"), payload)
	ip6 := ipv6(layers.IPProtocolUDP)
	udp6Frame := serialize(t, eth(layers.EthernetTypeIPv6), ip6, udpDgram(ip6, 5353, 53), payload)

	tcpKey := flow.Key{Src: addr("198.18.0.1"), Dst: addr("198.18.0.2"), SrcPort: 51000, DstPort: 443, Proto: 6}

	qinqIP := ipv4(layers.IPProtocolTCP)
	qinq := serialize(t, eth(layers.EthernetTypeQinQ),
		&layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 20, Type: layers.EthernetTypeIPv4},
		qinqIP, tcpSeg(qinqIP, "S"))
	qinqKey := tcpKey
	qinqKey.VLAN, qinqKey.NVLAN = [2]uint16{10, 20}, 2

	mplsIP := ipv4(layers.IPProtocolTCP)
	mpls := serialize(t, eth(layers.EthernetTypeMPLSUnicast),
		&layers.MPLS{Label: 100, TTL: 64}, &layers.MPLS{Label: 200, StackBottom: true, TTL: 64},
		mplsIP, tcpSeg(mplsIP, "S"))

	sllIP := ipv4(layers.IPProtocolTCP)
	// Linux cooked header: packet type, ARPHRD, address length, 8-byte address, protocol.
	sllHdr := []byte{0, 0, 0, 1, 0, 6, 0xdc, 0xa6, 0x32, 1, 2, 3, 0, 0, 0x08, 0x00}
	sll := append(sllHdr, serialize(t, sllIP, tcpSeg(sllIP, "S"))...)

	rawIP := ipv4(layers.IPProtocolTCP)
	raw := serialize(t, rawIP, tcpSeg(rawIP, "S"))

	loopIP := ipv6(layers.IPProtocolTCP)
	loop := serialize(t, &layers.Loopback{Family: layers.ProtocolFamilyIPv6Darwin}, loopIP, tcpSeg(loopIP, "S"))

	// IPv6 with hop-by-hop and destination options before UDP.
	extIP := ipv6(layers.IPProtocolIPv6HopByHop)
	hbh := &layers.IPv6HopByHop{}
	hbh.NextHeader = layers.IPProtocolIPv6Destination
	hbh.Options = []*layers.IPv6HopByHopOption{{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}
	dst := &layers.IPv6Destination{}
	dst.NextHeader = layers.IPProtocolUDP
	dst.Options = []*layers.IPv6DestinationOption{{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}
	ext := serialize(t, eth(layers.EthernetTypeIPv6), extIP, hbh, dst, udpDgram(extIP, 5353, 53), payload)

	// VXLAN carrying an ICMP echo; GRE carrying TCP.
	inner := ipv4(layers.IPProtocolICMPv4)
	outer := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{192, 0, 2, 2}}
	vx := serialize(t, eth(layers.EthernetTypeIPv4), outer, udpDgram(outer, 40000, 4789),
		&layers.VXLAN{ValidIDFlag: true, VNI: 42}, eth(layers.EthernetTypeIPv4), inner,
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 1, Seq: 1}, gopacket.Payload(make([]byte, 56)))
	greOuter := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolGRE, SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{192, 0, 2, 2}}
	greInner := ipv4(layers.IPProtocolTCP)
	gre := serialize(t, eth(layers.EthernetTypeIPv4), greOuter, &layers.GRE{Protocol: layers.EthernetTypeIPv4}, greInner, tcpSeg(greInner, "S"))

	arp := serialize(t, eth(layers.EthernetTypeARP), &layers.ARP{AddrType: 1, Protocol: 0x0800, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: 1, SourceHwAddress: macA, SourceProtAddress: ip4A, DstHwAddress: make([]byte, 6), DstProtAddress: ip4B})

	// A 60-byte Ethernet frame: the bare SYN is padded, and padding is not payload.
	synIP := ipv4(layers.IPProtocolTCP)
	padded := serialize(t, eth(layers.EthernetTypeIPv4), synIP, tcpSeg(synIP, "S"))
	padded = append(padded, make([]byte, 60-len(padded))...)

	tests := []struct {
		name    string
		link    layers.LinkType
		data    []byte
		want    Result
		key     flow.Key
		ipBytes uint32
		plen    uint32
		check   func(t *testing.T, p *Packet)
	}{
		{"ethernet ipv4 tcp", layers.LinkTypeEthernet, tcpFrame, OK, tcpKey, 140, 100, func(t *testing.T, p *Packet) {
			if p.TCPFlags != flow.FlagPSH|flow.FlagACK || p.Seq != 1000 || !bytes.Equal(p.Payload, payload) || p.SrcMAC != flow.MAC(macA) {
				t.Errorf("flags %v seq %d mac %v payload %d bytes", p.TCPFlags, p.Seq, p.SrcMAC, len(p.Payload))
			}
		}},
		{"ethernet ipv6 udp", layers.LinkTypeEthernet, udp6Frame, OK,
			flow.Key{Src: addr("2001:db8::1"), Dst: addr("2001:db8::2"), SrcPort: 5353, DstPort: 53, Proto: 17}, 148, 100, nil},
		{"qinq", layers.LinkTypeEthernet, qinq, OK, qinqKey, 40, 0, nil},
		{"mpls", layers.LinkTypeEthernet, mpls, OK, tcpKey, 40, 0, nil},
		{"linux sll", layers.LinkTypeLinuxSLL, sll, OK, tcpKey, 40, 0, nil},
		{"raw ip", layers.LinkTypeRaw, raw, OK, tcpKey, 40, 0, nil},
		{"bsd loopback ipv6", layers.LinkTypeNull, loop, OK,
			flow.Key{Src: addr("2001:db8::1"), Dst: addr("2001:db8::2"), SrcPort: 51000, DstPort: 443, Proto: 6}, 60, 0, nil},
		{"ipv6 extension headers", layers.LinkTypeEthernet, ext, OK,
			flow.Key{Src: addr("2001:db8::1"), Dst: addr("2001:db8::2"), SrcPort: 5353, DstPort: 53, Proto: 17}, 164, 100, nil},
		{"vxlan", layers.LinkTypeEthernet, vx, OK,
			flow.Key{Src: addr("198.18.0.1"), Dst: addr("198.18.0.2"), SrcPort: 8, DstPort: 0, Proto: 1}, 84, 60, func(t *testing.T, p *Packet) {
				c := p.Carriers[0]
				if p.NCarriers != 1 || c.Type != VXLAN || c.VNI != 42 || c.Key.DstPort != 4789 || c.IPBytes != 134 {
					t.Errorf("carrier %+v (n=%d)", c, p.NCarriers)
				}
			}},
		{"gre", layers.LinkTypeEthernet, gre, OK, tcpKey, 40, 0, func(t *testing.T, p *Packet) {
			if p.NCarriers != 1 || p.Carriers[0].Type != GRE || p.Carriers[0].Key.Proto != 47 {
				t.Errorf("carrier %+v", p.Carriers[0])
			}
		}},
		{"arp", layers.LinkTypeEthernet, arp, NotIP, flow.Key{}, 0, 0, nil},
		{"padding", layers.LinkTypeEthernet, padded, OK, tcpKey, 40, 0, func(t *testing.T, p *Packet) {
			if len(p.Payload) != 0 {
				t.Errorf("payload %d bytes from padding", len(p.Payload))
			}
		}},
		{"truncated tcp header", layers.LinkTypeEthernet, tcpFrame[:14+20+10], OK, tcpKey, 140, 0, nil},
		{"empty", layers.LinkTypeEthernet, nil, Bad, flow.Key{}, 0, 0, nil},
		{"unknown link", 147, tcpFrame, Bad, flow.Key{}, 0, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, layersOnly := range []bool{false, true} {
				d := New(Config{})
				d.layersOnly = layersOnly
				var p Packet
				r := d.Decode(tc.data, tc.link, 1, &p)
				if r != tc.want {
					t.Fatalf("layersOnly=%v: result %d, want %d (stats %+v)", layersOnly, r, tc.want, d.Stats)
				}
				if r != OK {
					continue
				}
				if p.Key != tc.key || p.IPBytes != tc.ipBytes || p.PayloadLen != tc.plen {
					t.Errorf("layersOnly=%v: key %+v ip %d plen %d; want %+v ip %d plen %d", layersOnly, p.Key, p.IPBytes, p.PayloadLen, tc.key, tc.ipBytes, tc.plen)
				}
				if tc.check != nil {
					tc.check(t, &p)
				}
			}
		})
	}
}

func TestFragments(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 100) // 1600 bytes of UDP payload
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{}, &layers.UDP{SrcPort: 5353, DstPort: 53, Length: uint16(8 + len(payload))}, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	u := buf.Bytes()
	frag4 := func(off int, more bool, b []byte) []byte {
		ip := ipv4(layers.IPProtocolUDP)
		ip.Id = 99
		ip.FragOffset = uint16(off / 8)
		if more {
			ip.Flags = layers.IPv4MoreFragments
		}
		return serialize(t, eth(layers.EthernetTypeIPv4), ip, gopacket.Payload(b))
	}
	frag6 := func(off int, more bool, b []byte) []byte {
		ip := ipv6(layers.IPProtocolIPv6Fragment)
		fh := &layers.IPv6Fragment{NextHeader: layers.IPProtocolUDP, FragmentOffset: uint16(off / 8), MoreFragments: more, Identification: 77}
		return serialize(t, eth(layers.EthernetTypeIPv6), ip, fh, gopacket.Payload(b))
	}
	for _, tc := range []struct {
		name    string
		frames  [][]byte
		ipBytes uint32
	}{
		{"ipv4 in order", [][]byte{frag4(0, true, u[:800]), frag4(800, false, u[800:])}, uint32(20 + len(u))},
		{"ipv4 reversed", [][]byte{frag4(800, false, u[800:]), frag4(0, true, u[:800])}, uint32(20 + len(u))},
		{"ipv4 duplicate", [][]byte{frag4(0, true, u[:800]), frag4(0, true, u[:800]), frag4(800, false, u[800:])}, uint32(20 + len(u))},
		{"ipv6 three pieces", [][]byte{frag6(0, true, u[:512]), frag6(1024, false, u[1024:]), frag6(512, true, u[512:1024])}, uint32(40 + len(u))}, // the fragment header is not part of the reassembled datagram (RFC 8200)
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := New(Config{})
			var p Packet
			for i, f := range tc.frames {
				r := d.Decode(f, layers.LinkTypeEthernet, int64(i), &p)
				if i < len(tc.frames)-1 {
					if r != Held {
						t.Fatalf("fragment %d: result %d, want Held", i, r)
					}
					continue
				}
				if r != OK {
					t.Fatalf("last fragment: result %d (stats %+v)", r, d.Stats)
				}
			}
			if p.Key.SrcPort != 5353 || p.Key.DstPort != 53 || p.IPBytes != tc.ipBytes || !bytes.Equal(p.Payload, payload) {
				t.Errorf("ports %d/%d ipBytes %d (want %d) payload ok=%v", p.Key.SrcPort, p.Key.DstPort, p.IPBytes, tc.ipBytes, bytes.Equal(p.Payload, payload))
			}
		})
	}

	t.Run("bounded and expiring", func(t *testing.T) {
		d := New(Config{FragSlots: 4, FragTimeout: 10})
		var p Packet
		for i := range 10 { // ten incomplete datagrams through four slots
			ip := ipv4(layers.IPProtocolUDP)
			ip.Id, ip.Flags = uint16(i), layers.IPv4MoreFragments
			d.Decode(serialize(t, eth(layers.EthernetTypeIPv4), ip, gopacket.Payload(make([]byte, 64))), layers.LinkTypeEthernet, 0, &p)
		}
		if d.Stats.FragEvicted != 6 || len(d.defrag.index) != 4 {
			t.Errorf("evicted %d, holding %d; want 6, 4", d.Stats.FragEvicted, len(d.defrag.index))
		}
		d.Decode(frag4(0, true, u[:800]), layers.LinkTypeEthernet, 100, &p)
		if d.Stats.FragExpired != 4 {
			t.Errorf("expired %d, want 4", d.Stats.FragExpired)
		}
	})
}

// TestFastPathMatchesLayers decodes every Ethernet frame of the corpus and
// of a synthesized capture twice, through the hand-written fast path and
// through gopacket's layers only, and requires identical results.
func TestFastPathMatchesLayers(t *testing.T) {
	var files []string // the corpus when present, always the synthesized capture
	if d := corpusDirOrEmpty(t); d != "" {
		files, _ = filepath.Glob(filepath.Join(d, "pcaps", "*"))
	}
	synthPath := filepath.Join(t.TempDir(), "synth.pcap")
	f, err := os.Create(synthPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.Generate(synth.Config{Seed: 3, Flows: 2000}, f, nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	files = append(files, synthPath)
	frames := 0
	for _, path := range files {
		r, err := pcapfile.Open(path)
		if err != nil {
			continue
		}
		fast, slow := New(Config{}), New(Config{})
		slow.layersOnly = true
		var fr pcapfile.Frame
		var pf, ps Packet
		for r.Next(&fr) == nil {
			rf := fast.Decode(fr.Data, fr.Link, fr.TS, &pf)
			rs := slow.Decode(fr.Data, fr.Link, fr.TS, &ps)
			frames++
			if rf != rs || !samePacket(&pf, &ps) {
				t.Errorf("%s frame %d: fast %d %+v\nlayers %d %+v", filepath.Base(path), r.Packets(), rf, pf, rs, ps)
			}
		}
		r.Close()
	}
	t.Logf("%d frames from %d captures decoded identically", frames, len(files))
}

func corpusDirOrEmpty(t *testing.T) (dir string) {
	t.Run("corpus", func(t *testing.T) { dir = corpus.Dir(t) })
	return dir
}

// FuzzDecode feeds arbitrary bytes under every link type: no panic, and the
// fast path and the layers path agree.
func FuzzDecode(f *testing.F) {
	ip := ipv4(layers.IPProtocolTCP)
	f.Add(serialize(f, eth(layers.EthernetTypeIPv4), ip, tcpSeg(ip, "S")), uint8(0))
	ip6 := ipv6(layers.IPProtocolUDP)
	f.Add(serialize(f, eth(layers.EthernetTypeIPv6), ip6, udpDgram(ip6, 1, 4789), &layers.VXLAN{ValidIDFlag: true, VNI: 1}), uint8(0))
	f.Add([]byte{0x45, 0, 0, 20}, uint8(3))
	links := []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2, layers.LinkTypeRaw, layers.LinkTypeNull}
	fast, slow := New(Config{FragSlots: 8}), New(Config{FragSlots: 8})
	slow.layersOnly = true
	var ts int64
	f.Fuzz(func(t *testing.T, data []byte, li uint8) {
		link := links[int(li)%len(links)]
		ts++
		var pf, ps Packet
		rf := fast.Decode(data, link, ts, &pf)
		rs := slow.Decode(data, link, ts, &ps)
		if rf != rs || !samePacket(&pf, &ps) {
			t.Errorf("fast %d %+v\nlayers %d %+v", rf, pf, rs, ps)
		}
	})
}

// samePacket compares decoded packets; an empty payload equals a nil one.
func samePacket(a, b *Packet) bool {
	x, y := *a, *b
	if len(x.Payload) == 0 {
		x.Payload = nil
	}
	if len(y.Payload) == 0 {
		y.Payload = nil
	}
	return reflect.DeepEqual(x, y)
}
