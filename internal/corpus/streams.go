package corpus

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"sort"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/ip4defrag"
	"github.com/gopacket/gopacket/ip6defrag"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// ReadCapture decodes every packet of a pcap or pcapng file, chosen by magic
// number since several corpus files carry the wrong extension. Packets read
// before a read error are kept and an unreadable file header gives none,
// since corrupt files are part of the corpus.
func ReadCapture(t testing.TB, path string) []gopacket.Packet {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("opening capture: %v", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, err := br.Peek(4)
	if err != nil {
		return nil // empty file
	}
	var src gopacket.PacketDataSource
	var lt layers.LinkType
	if bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		r, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Logf("%s: pcapng header: %v", path, err)
			return nil
		}
		src, lt = r, r.LinkType()
	} else {
		r, err := pcapgo.NewReader(br)
		if err != nil {
			t.Logf("%s: pcap header: %v", path, err)
			return nil
		}
		src, lt = r, r.LinkType()
	}
	var pkts []gopacket.Packet
	for {
		data, ci, err := src.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Logf("%s: packet %d: %v (keeping the packets before it)", path, len(pkts)+1, err)
			break
		}
		p := gopacket.NewPacket(data, lt, gopacket.Default)
		p.Metadata().CaptureInfo = ci
		pkts = append(pkts, p)
	}
	return pkts
}

// Datagram is one UDP payload with its endpoints.
type Datagram struct {
	Src, Dst netip.AddrPort
	Payload  []byte
}

// UDPDatagrams returns the UDP payloads of pkts in capture order,
// reassembling IPv4 and IPv6 fragments first.
func UDPDatagrams(pkts []gopacket.Packet) []Datagram {
	d4 := ip4defrag.NewIPv4Defragmenter()
	d6 := ip6defrag.NewIPv6Defragmenter()
	var out []Datagram
	for _, p := range pkts {
		var srcIP, dstIP netip.Addr
		var udp *layers.UDP
		switch ip := p.NetworkLayer().(type) {
		case *layers.IPv4:
			srcIP, _ = netip.AddrFromSlice(ip.SrcIP)
			dstIP, _ = netip.AddrFromSlice(ip.DstIP)
			if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
				whole, err := d4.DefragIPv4(ip)
				if err != nil || whole == nil {
					continue
				}
				q := gopacket.NewPacket(whole.Payload, whole.Protocol.LayerType(), gopacket.Default)
				udp, _ = q.Layer(layers.LayerTypeUDP).(*layers.UDP)
			}
		case *layers.IPv6:
			srcIP, _ = netip.AddrFromSlice(ip.SrcIP)
			dstIP, _ = netip.AddrFromSlice(ip.DstIP)
			if fg, ok := p.Layer(layers.LayerTypeIPv6Fragment).(*layers.IPv6Fragment); ok {
				whole := d6.DefragIPv6(ip, fg)
				if whole == nil {
					continue
				}
				q := gopacket.NewPacket(whole.Payload, whole.NextHeader.LayerType(), gopacket.Default)
				udp, _ = q.Layer(layers.LayerTypeUDP).(*layers.UDP)
			}
		}
		if udp == nil {
			udp, _ = p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		}
		if udp == nil || len(udp.Payload) == 0 {
			continue
		}
		out = append(out, Datagram{
			Src:     netip.AddrPortFrom(srcIP, uint16(udp.SrcPort)),
			Dst:     netip.AddrPortFrom(dstIP, uint16(udp.DstPort)),
			Payload: udp.Payload,
		})
	}
	return out
}

// TCPStream is one reassembled TCP connection: the bytes of each direction
// in sequence order, and the offsets in them at which a segment began.
type TCPStream struct {
	Client, Server netip.AddrPort
	C2S, S2C       []byte
	C2SStarts      []int
	S2CStarts      []int

	half [2]halfStream // client to server, server to client
}

// halfStream collects one direction's segments until TCPStreams assembles them.
type halfStream struct {
	isn     uint32 // sequence number of the first payload byte
	started bool
	segs    []segment
}

type segment struct {
	seq     uint32
	payload []byte
}

func (h *halfStream) add(tcp *layers.TCP) {
	if tcp.SYN {
		h.isn, h.started = tcp.Seq+1, true
		return
	}
	if len(tcp.Payload) == 0 {
		return
	}
	if !h.started { // no SYN captured: start at the first payload
		h.isn, h.started = tcp.Seq, true
	}
	h.segs = append(h.segs, segment{tcp.Seq, tcp.Payload})
}

// assemble orders the segments by sequence number, drops retransmissions and
// overlaps, and stops at the first hole.
func (h *halfStream) assemble() (data []byte, starts []int) {
	sort.SliceStable(h.segs, func(i, j int) bool { return h.segs[i].seq-h.isn < h.segs[j].seq-h.isn })
	next := h.isn
	for _, sg := range h.segs {
		off := int32(next - sg.seq)
		switch {
		case off < 0:
			return data, starts // hole
		case int(off) >= len(sg.payload):
			continue // retransmission
		}
		starts = append(starts, len(data))
		data = append(data, sg.payload[off:]...)
		next += uint32(len(sg.payload)) - uint32(off)
	}
	return data, starts
}

// TCPStreams groups the TCP segments of pkts into connections in order of
// first appearance and reassembles them; the client is the sender of the
// SYN, or of the first packet seen when the SYN was not captured.
func TCPStreams(pkts []gopacket.Packet) []*TCPStream {
	type key struct{ a, b netip.AddrPort }
	byKey := map[key]*TCPStream{}
	var out []*TCPStream
	for _, p := range pkts {
		tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !ok || p.NetworkLayer() == nil {
			continue
		}
		srcIP, _ := netip.AddrFromSlice(p.NetworkLayer().NetworkFlow().Src().Raw())
		dstIP, _ := netip.AddrFromSlice(p.NetworkLayer().NetworkFlow().Dst().Raw())
		src := netip.AddrPortFrom(srcIP, uint16(tcp.SrcPort))
		dst := netip.AddrPortFrom(dstIP, uint16(tcp.DstPort))
		s, ok := byKey[key{src, dst}]
		if !ok {
			s, ok = byKey[key{dst, src}]
		}
		if !ok || (tcp.SYN && !tcp.ACK && s.Client != src) {
			s = &TCPStream{Client: src, Server: dst}
			if tcp.SYN && tcp.ACK {
				s.Client, s.Server = dst, src
			}
			byKey[key{src, dst}] = s
			delete(byKey, key{dst, src})
			out = append(out, s)
		}
		dir := 0
		if src != s.Client {
			dir = 1
		}
		s.half[dir].add(tcp)
	}
	for _, s := range out {
		s.C2S, s.C2SStarts = s.half[0].assemble()
		s.S2C, s.S2CStarts = s.half[1].assemble()
		s.half = [2]halfStream{}
	}
	return out
}
