package decode

import (
	"encoding/binary"

	"github.com/edgeward/edgeward/flow"
)

// fast decodes the common case by hand, the way flow exporters do: Ethernet
// with at most two VLAN tags, an unfragmented IPv4 packet or an IPv6 packet
// without extension headers, and a complete TCP, UDP or ICMP header. It
// reports false for anything else, and Decode then takes the general path
// through gopacket's layers. Both paths must produce identical Packets:
// TestFastPathMatchesLayers and FuzzFastPath check that on every corpus
// frame and on random bytes.
func (d *Decoder) fast(data []byte, p *Packet) (Result, bool) {
	if len(data) < 14 {
		return 0, false
	}
	et := binary.BigEndian.Uint16(data[12:14])
	off := 14
	var vlan [flow.MaxVLAN]uint16
	nvlan := uint8(0)
	for et == 0x8100 || et == 0x88a8 || et == 0x9100 {
		if nvlan == flow.MaxVLAN || len(data) < off+4 {
			return 0, false
		}
		vlan[nvlan] = binary.BigEndian.Uint16(data[off:]) & 0x0fff
		nvlan++
		et = binary.BigEndian.Uint16(data[off+2:])
		off += 4
	}
	var (
		src, dst flow.Addr
		proto    uint8
		ipBytes  int
		hdr      int
	)
	ip := data[off:]
	switch et {
	case 0x0800:
		if len(ip) < 20 || ip[0]>>4 != 4 {
			return 0, false
		}
		hdr = int(ip[0]&0x0f) * 4
		ipBytes = int(binary.BigEndian.Uint16(ip[2:4]))
		if hdr < 20 || ipBytes < hdr || len(ip) < hdr || binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 {
			return 0, false // options beyond the capture, TSO zero length, fragments
		}
		proto = ip[9]
		src, dst = flow.AddrFrom4(ip[12:16]), flow.AddrFrom4(ip[16:20])
	case 0x86dd:
		if len(ip) < 40 || ip[0]>>4 != 6 {
			return 0, false
		}
		proto = ip[6]
		hdr = 40
		ipBytes = 40 + int(binary.BigEndian.Uint16(ip[4:6]))
		if ipBytes == 40 {
			return 0, false // jumbogram, or no payload at all
		}
		src, dst = flow.AddrFrom16(ip[8:24]), flow.AddrFrom16(ip[24:40])
	default:
		return 0, false
	}
	l4len := ipBytes - hdr
	l4 := ip[hdr:min(len(ip), ipBytes)]
	switch proto {
	case flow.ProtoTCP:
		if len(l4) < 20 {
			return 0, false
		}
		hl := int(l4[12]>>4) * 4
		if hl < 20 || hl > len(l4) {
			return 0, false
		}
		p.Key.SrcPort = binary.BigEndian.Uint16(l4[0:2])
		p.Key.DstPort = binary.BigEndian.Uint16(l4[2:4])
		p.Seq = binary.BigEndian.Uint32(l4[4:8])
		p.Ack = binary.BigEndian.Uint32(l4[8:12])
		p.TCPFlags = flow.TCPFlags(l4[13])
		p.PayloadLen = uint32(max(l4len-hl, 0))
		p.Payload = l4[hl:]
	case flow.ProtoUDP:
		if len(l4) < 8 {
			return 0, false
		}
		p.Key.SrcPort = binary.BigEndian.Uint16(l4[0:2])
		p.Key.DstPort = binary.BigEndian.Uint16(l4[2:4])
		if p.Key.DstPort == 4789 { // maybe VXLAN: the general path decapsulates
			p.Key.SrcPort, p.Key.DstPort = 0, 0
			return 0, false
		}
		ulen := int(binary.BigEndian.Uint16(l4[4:6]))
		if ulen != 0 && ulen < 8 {
			p.Key.SrcPort, p.Key.DstPort = 0, 0
			return 0, false
		}
		p.PayloadLen = uint32(max(l4len-8, 0))
		p.Payload = l4[8:]
		if ulen >= 8 && ulen < len(l4) { // the UDP length bounds the payload, as gopacket does
			p.Payload = l4[8:ulen]
		}
	case flow.ProtoICMP, flow.ProtoICMPv6:
		if len(l4) < 2 {
			return 0, false
		}
		p.ICMPType, p.ICMPCode = l4[0], l4[1]
		p.Key.SrcPort, p.Key.DstPort, p.ICMPOneWay = flow.ICMPPorts(proto, l4[0], l4[1])
		p.PayloadLen = uint32(max(l4len-4, 0))
	default:
		return 0, false
	}
	p.SrcMAC = flow.MAC(data[6:12])
	p.DstMAC = flow.MAC(data[0:6])
	p.Key.Src, p.Key.Dst, p.Key.Proto = src, dst, proto
	p.Key.VLAN, p.Key.NVLAN = vlan, nvlan
	p.IPBytes = uint32(ipBytes)
	return OK, true
}
