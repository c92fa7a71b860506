// Package decode turns captured frames into the few facts the flow table
// needs: the directional flow key, sizes, TCP state and the transport
// payload. It walks gopacket's layer decoders directly (the
// DecodingLayerParser pattern without its per-layer map lookups), reuses
// every layer struct, and allocates nothing per packet.
//
// It handles Ethernet, 802.1Q/QinQ, MPLS, PPPoE, Linux SLL and SLL2, raw IP
// and BSD loopback link layers; IPv4 and IPv6 with extension headers; IP
// fragments (reassembled with bounded memory); and VXLAN and GRE tunnels,
// whose inner packet is the flow while the outer packet is also reported
// as the carrier flow (Zeek logs both, and so does tshark's conversation
// table).
package decode

import (
	"encoding/binary"

	"github.com/edgeward/edgeward/flow"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Result says what Decode made of a frame.
type Result uint8

const (
	// OK: the Packet describes an IP packet.
	OK Result = iota
	// NotIP: a valid frame that carries no IP (ARP, LLDP, STP, ...).
	NotIP
	// Held: an IP fragment kept until its datagram is complete; the
	// datagram is reported with the fragment that completes it.
	Held
	// Bad: a malformed or unsupported frame, counted in Stats.
	Bad
)

// Stats counts what the decoder saw, by kind, instead of logging per packet.
type Stats struct {
	Frames          uint64 // frames given to Decode
	NotIP           uint64
	UnsupportedLink uint64 // link types the decoder does not know
	BadLink         uint64 // malformed link layer headers
	BadIP           uint64 // malformed IP headers
	BadTransport    uint64 // TCP/UDP headers too short to hold their ports
	Truncated       uint64 // packets whose capture stops inside a header
	Tunnels         uint64 // packets decapsulated from VXLAN or GRE
	FragHeld        uint64 // fragments stored for reassembly
	FragReassembled uint64 // datagrams completed
	FragExpired     uint64 // incomplete datagrams dropped after the timeout
	FragEvicted     uint64 // incomplete datagrams dropped because every slot was in use
	FragInvalid     uint64 // fragments dropped as inconsistent or oversized
	FragTruncated   uint64 // fragments not fully captured, so never reassembled
}

// TunnelType names an encapsulation.
type TunnelType uint8

// Tunnel types.
const (
	NoTunnel TunnelType = iota
	VXLAN
	GRE
)

func (t TunnelType) String() string {
	switch t {
	case VXLAN:
		return "vxlan"
	case GRE:
		return "gre"
	}
	return ""
}

// Carrier is the outer packet of a tunnel, itself a flow (VXLAN over UDP,
// GRE as IP protocol 47).
type Carrier struct {
	Key            flow.Key
	SrcMAC, DstMAC flow.MAC
	IPBytes        uint32
	PayloadLen     uint32
	Type           TunnelType
	VNI            uint32 // VXLAN VNI or GRE key
}

// MaxTunnelDepth bounds nested encapsulation.
const MaxTunnelDepth = 2

// Packet is what Decode reports about one frame. The Payload slice points
// into the frame (or the reassembly buffer) and is valid until the next call.
type Packet struct {
	TS             int64    // capture time, ns since the Unix epoch
	Key            flow.Key // Src is the sender of this packet
	SrcMAC, DstMAC flow.MAC // of the Ethernet header nearest the IP packet
	IPBytes        uint32   // IP header + payload, from the IP length fields
	PayloadLen     uint32   // transport payload length, from the headers
	Payload        []byte   // the captured part of the transport payload
	TCPFlags       flow.TCPFlags
	Seq, Ack       uint32
	ICMPType       uint8
	ICMPCode       uint8
	ICMPOneWay     bool // an ICMP type without a request/reply counterpart
	Carriers       [MaxTunnelDepth]Carrier
	NCarriers      int
}

// Config bounds the decoder's reassembly state.
type Config struct {
	FragSlots   int   // datagrams under reassembly at once (default 256)
	FragTimeout int64 // ns before an incomplete datagram is dropped (default 30 s)
}

// Decoder decodes frames. It is not safe for concurrent use; give each
// capture worker its own.
type Decoder struct {
	Stats Stats

	eth    layers.Ethernet
	dot1q  layers.Dot1Q
	sll    layers.LinuxSLL
	sll2   layers.LinuxSLL2
	loop   layers.Loopback
	ip4    layers.IPv4
	ip6    layers.IPv6
	tcp    layers.TCP
	udp    layers.UDP
	vxlan  layers.VXLAN
	gre    layers.GRE
	defrag *defragger

	layersOnly bool // skip the hand-written fast path (tests compare both)
}

// New returns a Decoder.
func New(cfg Config) *Decoder {
	d := &Decoder{}
	d.defrag = newDefragger(cfg.FragSlots, cfg.FragTimeout, &d.Stats)
	return d
}

var nodf = gopacket.NilDecodeFeedback

// Link types beyond gopacket's constants: DLT_RAW is 12 or 14 on some BSDs,
// and LINKTYPE_IPV4/IPV6 carry raw IP of one version.
const (
	linkRawBSD12 layers.LinkType = 12
	linkRawBSD14 layers.LinkType = 14
	linkIPv4     layers.LinkType = 228
	linkIPv6     layers.LinkType = 229
)

// Decode decodes one frame of the given link type captured at ts (ns).
func (d *Decoder) Decode(data []byte, link layers.LinkType, ts int64, p *Packet) Result {
	d.Stats.Frames++
	if link == layers.LinkTypeEthernet && !d.layersOnly {
		// The fast path sets every field it reports; clearing the whole
		// Packet (its carrier array included) costs more than the rest.
		p.TS, p.NCarriers, p.TCPFlags, p.Seq, p.Ack = ts, 0, 0, 0, 0
		p.ICMPType, p.ICMPCode, p.ICMPOneWay, p.Payload = 0, 0, false, nil
		if r, ok := d.fast(data, p); ok {
			return r
		}
	}
	*p = Packet{TS: ts}
	switch link {
	case layers.LinkTypeEthernet:
		return d.ethernet(data, p, 0)
	case layers.LinkTypeLinuxSLL:
		if d.sll.DecodeFromBytes(data, nodf) != nil {
			return d.badLink()
		}
		return d.ethertype(d.sll.EthernetType, d.sll.Payload, p, 0)
	case layers.LinkTypeLinuxSLL2:
		if d.sll2.DecodeFromBytes(data, nodf) != nil {
			return d.badLink()
		}
		return d.ethertype(d.sll2.ProtocolType, d.sll2.Payload, p, 0)
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		if d.loop.DecodeFromBytes(data, nodf) != nil {
			return d.badLink()
		}
		switch d.loop.Family {
		case layers.ProtocolFamilyIPv4:
			return d.ipv4(d.loop.Payload, p, 0)
		case layers.ProtocolFamilyIPv6BSD, layers.ProtocolFamilyIPv6FreeBSD, layers.ProtocolFamilyIPv6Darwin, layers.ProtocolFamilyIPv6Linux:
			return d.ipv6(d.loop.Payload, p, 0)
		}
		d.Stats.NotIP++
		return NotIP
	case layers.LinkTypeRaw, linkRawBSD12, linkRawBSD14, linkIPv4, linkIPv6:
		return d.ipByVersion(data, p, 0)
	}
	d.Stats.UnsupportedLink++
	return Bad
}

func (d *Decoder) badLink() Result {
	d.Stats.BadLink++
	return Bad
}

func (d *Decoder) ipByVersion(data []byte, p *Packet, depth int) Result {
	if len(data) == 0 {
		d.Stats.BadIP++
		return Bad
	}
	switch data[0] >> 4 {
	case 4:
		return d.ipv4(data, p, depth)
	case 6:
		return d.ipv6(data, p, depth)
	}
	d.Stats.BadIP++
	return Bad
}

func (d *Decoder) ethernet(data []byte, p *Packet, depth int) Result {
	if d.eth.DecodeFromBytes(data, nodf) != nil {
		return d.badLink()
	}
	p.SrcMAC = flow.MAC(d.eth.SrcMAC)
	p.DstMAC = flow.MAC(d.eth.DstMAC)
	if d.eth.EthernetType < 0x0600 { // 802.3 length field: LLC, never IP here
		d.Stats.NotIP++
		return NotIP
	}
	return d.ethertype(d.eth.EthernetType, d.eth.Payload, p, depth)
}

// ethertype follows VLAN tags, MPLS label stacks and PPPoE to the IP header.
func (d *Decoder) ethertype(et layers.EthernetType, data []byte, p *Packet, depth int) Result {
	for range 16 { // bound on stacked tags
		switch et {
		case layers.EthernetTypeIPv4:
			return d.ipv4(data, p, depth)
		case layers.EthernetTypeIPv6:
			return d.ipv6(data, p, depth)
		case layers.EthernetTypeDot1Q, layers.EthernetTypeQinQ, 0x9100:
			if d.dot1q.DecodeFromBytes(data, nodf) != nil {
				return d.badLink()
			}
			if p.Key.NVLAN < flow.MaxVLAN {
				p.Key.VLAN[p.Key.NVLAN] = d.dot1q.VLANIdentifier
				p.Key.NVLAN++
			}
			et, data = d.dot1q.Type, d.dot1q.Payload
		case layers.EthernetTypeMPLSUnicast, layers.EthernetTypeMPLSMulticast:
			// gopacket has no DecodingLayer for MPLS; a label is 4 bytes
			// and bit 8 of the third byte marks the bottom of the stack.
			for {
				if len(data) < 4 {
					return d.badLink()
				}
				bottom := data[2]&1 != 0
				data = data[4:]
				if bottom {
					break
				}
			}
			return d.ipByVersion(data, p, depth)
		case layers.EthernetTypePPPoESession:
			// 6-byte PPPoE header, then the 2-byte PPP protocol.
			if len(data) < 8 {
				return d.badLink()
			}
			switch binary.BigEndian.Uint16(data[6:8]) {
			case 0x0021:
				return d.ipv4(data[8:], p, depth)
			case 0x0057:
				return d.ipv6(data[8:], p, depth)
			}
			d.Stats.NotIP++
			return NotIP
		default:
			d.Stats.NotIP++
			return NotIP
		}
	}
	return d.badLink()
}

func (d *Decoder) ipv4(data []byte, p *Packet, depth int) Result {
	ip := &d.ip4
	if ip.DecodeFromBytes(data, nodf) != nil || ip.Version != 4 && ip.Version != 0 {
		d.Stats.BadIP++
		return Bad
	}
	if data[0]>>4 != 4 {
		d.Stats.BadIP++
		return Bad
	}
	src, dst := flow.AddrFrom4(ip.SrcIP), flow.AddrFrom4(ip.DstIP)
	hdr := int(ip.IHL) * 4
	ipBytes := uint32(ip.Length)
	l4len := int(ip.Length) - hdr
	payload := ip.Payload
	proto := uint8(ip.Protocol)
	if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
		if len(payload) < l4len {
			d.Stats.FragTruncated++
			return Bad
		}
		k := fragKey{src: src, dst: dst, id: uint32(ip.Id), proto: proto}
		out, hl, _, ok := d.defrag.add(k, p.TS, int(ip.FragOffset)*8, ip.Flags&layers.IPv4MoreFragments != 0, payload, hdr, proto)
		if !ok {
			d.Stats.FragHeld++
			return Held
		}
		payload, l4len, ipBytes = out, len(out), uint32(hl+len(out))
	}
	return d.transport(proto, src, dst, payload, l4len, ipBytes, p, depth)
}

func (d *Decoder) ipv6(data []byte, p *Packet, depth int) Result {
	ip := &d.ip6
	if len(data) == 0 || data[0]>>4 != 6 || ip.DecodeFromBytes(data, nodf) != nil {
		d.Stats.BadIP++
		return Bad
	}
	src, dst := flow.AddrFrom16(ip.SrcIP), flow.AddrFrom16(ip.DstIP)
	next := uint8(ip.NextHeader)
	hdr := 40
	rest := ip.Payload
	l4len := int(ip.Length)
	if ip.HopByHop != nil {
		next = uint8(ip.HopByHop.NextHeader)
		n := ip.HopByHop.ActualLength
		hdr += n
		l4len -= n
	}
	if ip.Length == 0 { // jumbogram: the HopByHop option gave the length
		l4len = len(rest)
	}
	ipBytes := uint32(hdr + l4len)
	for range 8 { // bound on chained extension headers
		switch next {
		case 0, 43, 60, 135, 139, 140: // hop-by-hop, routing, destination, mobility, HIP, shim6
			if len(rest) < 2 {
				d.Stats.Truncated++
				return Bad
			}
			n := (int(rest[1]) + 1) * 8
			if n > len(rest) {
				d.Stats.Truncated++
				return Bad
			}
			next, rest, hdr, l4len = rest[0], rest[n:], hdr+n, l4len-n
		case 51: // authentication header counts its length in 4-byte units
			if len(rest) < 2 {
				d.Stats.Truncated++
				return Bad
			}
			n := (int(rest[1]) + 2) * 4
			if n > len(rest) {
				d.Stats.Truncated++
				return Bad
			}
			next, rest, hdr, l4len = rest[0], rest[n:], hdr+n, l4len-n
		case 44: // fragment
			if len(rest) < 8 {
				d.Stats.Truncated++
				return Bad
			}
			fnext := rest[0]
			off := int(binary.BigEndian.Uint16(rest[2:4]) &^ 7)
			more := rest[3]&1 != 0
			id := binary.BigEndian.Uint32(rest[4:8])
			rest, hdr, l4len = rest[8:], hdr+8, l4len-8
			if off == 0 && !more { // atomic fragment (RFC 6946)
				next = fnext
				continue
			}
			if len(rest) < l4len {
				d.Stats.FragTruncated++
				return Bad
			}
			k := fragKey{src: src, dst: dst, id: id, v6: true}
			out, hl, nx, ok := d.defrag.add(k, p.TS, off, more, rest[:l4len], hdr-8, fnext)
			if !ok {
				d.Stats.FragHeld++
				return Held
			}
			next, rest, l4len, hdr = nx, out, len(out), hl
			ipBytes = uint32(hl + len(out))
		default:
			if l4len < 0 {
				d.Stats.BadIP++
				return Bad
			}
			return d.transport(next, src, dst, rest, l4len, ipBytes, p, depth)
		}
	}
	d.Stats.BadIP++
	return Bad
}

// transport fills the key and counters from the transport header. l4len is
// the transport length the IP header claims; data is what was captured.
func (d *Decoder) transport(proto uint8, src, dst flow.Addr, data []byte, l4len int, ipBytes uint32, p *Packet, depth int) Result {
	if len(data) > l4len && l4len >= 0 {
		data = data[:l4len] // drop Ethernet padding
	}
	p.Key.Src, p.Key.Dst, p.Key.Proto = src, dst, proto
	p.Key.SrcPort, p.Key.DstPort = 0, 0
	p.IPBytes = ipBytes
	p.PayloadLen = uint32(max(l4len, 0))
	p.Payload = data
	switch proto {
	case flow.ProtoTCP:
		if len(data) < 20 {
			return d.shortPorts(data, p)
		}
		// A header cut short by the snaplen still yields ports, flags and
		// sequence numbers: DecodeFromBytes fills them before failing.
		err := d.tcp.DecodeFromBytes(data, nodf)
		t := &d.tcp
		p.Key.SrcPort, p.Key.DstPort = uint16(t.SrcPort), uint16(t.DstPort)
		p.TCPFlags = flow.TCPFlags(data[13])
		p.Seq, p.Ack = t.Seq, t.Ack
		hl := int(t.DataOffset) * 4
		p.PayloadLen = uint32(max(l4len-hl, 0))
		if err != nil {
			if t.DataOffset < 5 {
				d.Stats.BadTransport++
				return Bad
			}
			d.Stats.Truncated++
			p.Payload = nil
			return OK
		}
		p.Payload = t.Payload
	case flow.ProtoUDP:
		if len(data) < 8 {
			return d.shortPorts(data, p)
		}
		err := d.udp.DecodeFromBytes(data, nodf)
		p.Key.SrcPort, p.Key.DstPort = uint16(d.udp.SrcPort), uint16(d.udp.DstPort)
		p.PayloadLen = uint32(max(l4len-8, 0))
		if err != nil { // a UDP length field of 1 to 7: keep the ports, not the payload
			d.Stats.BadTransport++
			p.Payload = nil
			return OK
		}
		p.Payload = d.udp.Payload
		if p.Key.DstPort == 4789 && depth < MaxTunnelDepth && len(p.Payload) >= 8 {
			return d.vxlanInner(p, depth)
		}
	case flow.ProtoICMP, flow.ProtoICMPv6:
		if len(data) < 2 {
			d.Stats.Truncated++
			return OK
		}
		p.ICMPType, p.ICMPCode = data[0], data[1]
		p.Key.SrcPort, p.Key.DstPort, p.ICMPOneWay = flow.ICMPPorts(proto, data[0], data[1])
		p.PayloadLen = uint32(max(l4len-4, 0)) // after type, code, checksum: as Zeek counts
		p.Payload = nil
	case 132: // SCTP: the ports open its 12-byte common header; chunks are not inspected
		if len(data) < 4 {
			d.Stats.BadTransport++
			return Bad
		}
		if len(data) < 12 {
			d.Stats.Truncated++
		}
		p.Key.SrcPort = binary.BigEndian.Uint16(data[0:2])
		p.Key.DstPort = binary.BigEndian.Uint16(data[2:4])
		p.PayloadLen = uint32(max(l4len-12, 0))
		p.Payload = nil
	case 47: // GRE
		if depth < MaxTunnelDepth {
			return d.greInner(p, depth)
		}
	}
	return OK
}

// shortPorts salvages the ports of a TCP or UDP header cut short.
func (d *Decoder) shortPorts(data []byte, p *Packet) Result {
	if len(data) < 4 {
		d.Stats.BadTransport++
		return Bad
	}
	d.Stats.Truncated++
	p.Key.SrcPort = binary.BigEndian.Uint16(data[0:2])
	p.Key.DstPort = binary.BigEndian.Uint16(data[2:4])
	if p.Key.Proto == flow.ProtoTCP && len(data) >= 14 {
		p.TCPFlags = flow.TCPFlags(data[13])
	}
	p.Payload = nil
	p.PayloadLen = 0
	return OK
}

// pushCarrier records the packet decoded so far as the carrier of a tunnel
// and resets the fields the inner packet will fill.
func (d *Decoder) pushCarrier(p *Packet, t TunnelType, vni uint32) {
	c := &p.Carriers[p.NCarriers]
	*c = Carrier{Key: p.Key, SrcMAC: p.SrcMAC, DstMAC: p.DstMAC, IPBytes: p.IPBytes, PayloadLen: p.PayloadLen, Type: t, VNI: vni}
	p.NCarriers++
	d.Stats.Tunnels++
	vlans, n := p.Key.VLAN, p.Key.NVLAN
	*p = Packet{TS: p.TS, Carriers: p.Carriers, NCarriers: p.NCarriers, SrcMAC: p.SrcMAC, DstMAC: p.DstMAC}
	p.Key.VLAN, p.Key.NVLAN = vlans, n
}

func (d *Decoder) vxlanInner(p *Packet, depth int) Result {
	if d.vxlan.DecodeFromBytes(p.Payload, nodf) != nil || !d.vxlan.ValidIDFlag {
		return OK // not VXLAN after all: an ordinary UDP flow
	}
	inner := d.vxlan.Payload
	d.pushCarrier(p, VXLAN, d.vxlan.VNI)
	if r := d.ethernet(inner, p, depth+1); r != OK {
		return d.carrierOnly(p, r)
	}
	return OK
}

func (d *Decoder) greInner(p *Packet, depth int) Result {
	if d.gre.DecodeFromBytes(p.Payload, nodf) != nil {
		return OK // count the GRE packet as an IP protocol 47 flow
	}
	inner := d.gre.Payload
	var key uint32
	if d.gre.KeyPresent {
		key = d.gre.Key
	}
	et := d.gre.Protocol
	d.pushCarrier(p, GRE, key)
	var r Result
	if et == layers.EthernetTypeTransparentEthernetBridging {
		r = d.ethernet(inner, p, depth+1)
	} else {
		r = d.ethertype(et, inner, p, depth+1)
	}
	if r != OK {
		return d.carrierOnly(p, r)
	}
	return OK
}

// carrierOnly turns a tunnel whose inner packet is not IP (or is held for
// reassembly, or broken) back into the plain carrier packet, so the outer
// flow still counts it.
func (d *Decoder) carrierOnly(p *Packet, _ Result) Result {
	p.NCarriers--
	c := p.Carriers[p.NCarriers]
	ts, carriers, n := p.TS, p.Carriers, p.NCarriers
	*p = Packet{TS: ts, Key: c.Key, SrcMAC: c.SrcMAC, DstMAC: c.DstMAC, IPBytes: c.IPBytes, PayloadLen: c.PayloadLen, Carriers: carriers, NCarriers: n}
	return OK
}
