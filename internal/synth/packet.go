package synth

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"time"
)

// Directions index per-direction state.
const (
	c2s = 0
	s2c = 1
)

// TCP flags as they appear in the header and in truth records.
const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagPSH = 0x08
	flagACK = 0x10
)

// pkt is one scripted packet. Payload bytes are not stored: they are the
// range [off, off+n) of the direction's stream, materialized on emit.
type pkt struct {
	at       int64 // unix nanoseconds
	off, n   uint32
	seq, ack uint32 // TCP; ICMP uses seq as the echo sequence number
	dir      uint8
	flags    uint8
	synOpts  bool
}

// part is a run of stream bytes: literal bytes from flowState.lit, or
// filler from the renderer's noise block when lit < 0.
type part struct {
	lit, n int32
}

// stream is one direction's payload bytes, in order, across all packets.
type stream struct {
	parts    []part
	size     int
	cur      int // cursor: reads are almost always sequential
	curStart int
}

// flowState is a flow being rendered: its script and everything needed to
// turn a pkt into a frame.
type flowState struct {
	flow    Flow
	ordinal int
	proto   Proto
	v6      bool
	hello   hello
	truth   Truth
	rng     *rand.Rand // valid while scripting only
	salt    int

	pkts    []pkt
	next    int
	lit     []byte
	streams [2]stream

	// ends are the addresses each direction's frames carry: the flow's
	// two endpoints swapped for s2c, except for broadcast protocols.
	ends [2]endpoints

	// per-direction header state
	ipID   [2]uint16
	ttl    [2]uint8
	window [2]uint16
	label  uint32
	icmpID uint16

	tally [2]struct {
		pkts, bytes uint64
		flags       uint8
	}
}

// endpoints are the addresses of one direction's frames.
type endpoints struct {
	src, dst   netip.AddrPort
	smac, dmac MAC
}

func (fs *flowState) reset() {
	*fs = flowState{
		pkts: fs.pkts[:0], lit: fs.lit[:0],
		streams: [2]stream{{parts: fs.streams[0].parts[:0]}, {parts: fs.streams[1].parts[:0]}},
	}
}

func (fs *flowState) init(f *Flow) error {
	fs.flow = *f
	f = &fs.flow
	if f.Kind == DHCP {
		f.Client = netip.AddrPortFrom(netip.IPv4Unspecified(), 68)
		if f.DHCP == nil || !f.DHCP.Addr.Is4() {
			return fmt.Errorf("kind dhcp needs a DHCPSpec with an IPv4 address to assign: %w", ErrBadFlow)
		}
		if !f.Server.Addr().Is4() || f.Server.Port() != 67 {
			return fmt.Errorf("DHCP server %s is not an IPv4 address with port 67: %w", f.Server, ErrBadFlow)
		}
	}
	if !f.Client.IsValid() || !f.Server.IsValid() {
		return fmt.Errorf("client %s or server %s address missing: %w", f.Client, f.Server, ErrBadFlow)
	}
	ca, sa := f.Client.Addr().Unmap(), f.Server.Addr().Unmap()
	if ca.Is4() != sa.Is4() {
		return fmt.Errorf("client %s and server %s are different address families: %w", ca, sa, ErrBadFlow)
	}
	f.Client = netip.AddrPortFrom(ca, f.Client.Port())
	f.Server = netip.AddrPortFrom(sa, f.Server.Port())
	fs.v6 = ca.Is6()
	fs.ends[c2s] = endpoints{src: f.Client, dst: f.Server, smac: f.ClientMAC, dmac: f.ServerMAC}
	fs.ends[s2c] = endpoints{src: f.Server, dst: f.Client, smac: f.ServerMAC, dmac: f.ClientMAC}
	if f.Kind == DHCP {
		bcast, bmac := netip.AddrFrom4([4]byte{255, 255, 255, 255}), MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		fs.ends[c2s].dst, fs.ends[c2s].dmac = netip.AddrPortFrom(bcast, 67), bmac
		fs.ends[s2c].dst, fs.ends[s2c].dmac = netip.AddrPortFrom(bcast, 68), bmac
	}
	fs.proto = f.Kind.proto()
	if f.Proto != ProtoAuto && f.Proto != fs.proto {
		return fmt.Errorf("kind %s runs over %s, not %s: %w", f.Kind, fs.proto, f.Proto, ErrBadFlow)
	}
	if f.RTT <= 0 {
		f.RTT = 20 * time.Millisecond
	}
	if f.Exchanges <= 0 {
		f.Exchanges = 1
	}
	if f.MSS <= 0 {
		f.MSS = 1460
		if fs.v6 {
			f.MSS = 1440
		}
	}
	f.MSS = min(f.MSS, maxSegment-100)
	if f.RequestBytes < 0 || f.ResponseBytes < 0 {
		return fmt.Errorf("negative request/response size: %w", ErrBadFlow)
	}
	for _, v := range f.VLAN {
		if v >= 4095 {
			return fmt.Errorf("VLAN ID %d out of range 0-4094: %w", v, ErrBadFlow)
		}
	}
	return nil
}

// Stream building.

func (fs *flowState) appendLit(dir int, b []byte) {
	start := len(fs.lit)
	fs.lit = append(fs.lit, b...)
	fs.addLit(dir, start, len(fs.lit))
}

// addLit registers fs.lit[from:to] as the next part of dir's stream; callers
// append to fs.lit directly to avoid a copy.
func (fs *flowState) addLit(dir, from, to int) {
	st := &fs.streams[dir]
	st.parts = append(st.parts, part{lit: int32(from), n: int32(to - from)})
	st.size += to - from
}

func (fs *flowState) add(p pkt) { fs.pkts = append(fs.pkts, p) }

// between returns a uniform duration in [lo, hi) as nanoseconds.
func (fs *flowState) between(lo, hi time.Duration) int64 {
	if hi <= lo {
		return int64(lo)
	}
	return int64(lo) + fs.rng.Int64N(int64(hi-lo))
}

// logBetween returns a log-uniform duration in [lo, hi): most values are
// short, a few are long, like think times and server latencies.
func (fs *flowState) logBetween(lo, hi time.Duration) int64 {
	return int64(float64(lo) * math.Pow(float64(hi)/float64(lo), fs.rng.Float64()))
}

// setupHeaders picks the per-direction header values real stacks vary.
func (fs *flowState) setupHeaders() {
	r := fs.rng
	fs.ipID = [2]uint16{uint16(r.Uint32()), uint16(r.Uint32())}
	fs.ttl[c2s] = [...]uint8{64, 128}[r.IntN(2)]
	fs.ttl[s2c] = [...]uint8{44, 52, 56, 57, 58, 116, 118, 121, 243}[r.IntN(9)]
	fs.window = [2]uint16{uint16(502 + r.IntN(1600)), uint16(235 + r.IntN(600))}
	fs.label = r.Uint32() & 0xfffff
	fs.icmpID = uint16(r.Uint32())
}

func (fs *flowState) appendFill(dir, n int) {
	if n <= 0 {
		return
	}
	st := &fs.streams[dir]
	st.parts = append(st.parts, part{lit: -1, n: int32(n)})
	st.size += n
}

// read copies stream bytes [off, off+len(dst)) of dir into dst.
func (fs *flowState) read(dst []byte, dir, off int, noise []byte) {
	st := &fs.streams[dir]
	if off < st.curStart {
		st.cur, st.curStart = 0, 0
	}
	for st.curStart+int(st.parts[st.cur].n) <= off {
		st.curStart += int(st.parts[st.cur].n)
		st.cur++
	}
	pi, ps := st.cur, st.curStart
	for len(dst) > 0 {
		p := st.parts[pi]
		in := off - ps
		k := min(int(p.n)-in, len(dst))
		if p.lit >= 0 {
			copy(dst[:k], fs.lit[int(p.lit)+in:])
		} else {
			src := (fs.salt + off) & (1<<16 - 1)
			copy(dst[:k], noise[src:])
		}
		dst, off = dst[k:], off+k
		if k == int(p.n)-in {
			ps += int(p.n)
			pi++
		}
	}
}

// Header sizes.

func (fs *flowState) ipHeaderLen() int {
	if fs.v6 {
		return 40
	}
	return 20
}

func (fs *flowState) l4HeaderLen(p *pkt) int {
	switch fs.proto {
	case TCP:
		if p.synOpts {
			return 32
		}
		return 20
	case UDP, ICMP:
		return 8
	}
	return 0
}

// ipLen is the IP-layer size of p: what the IP total length says and what
// truth records count. The frame builder and the truth use this one function.
func (fs *flowState) ipLen(p *pkt) int {
	return fs.ipHeaderLen() + fs.l4HeaderLen(p) + int(p.n)
}

// frame builds the Ethernet frame for p into r.buf.
func (r *renderer) frame(fs *flowState, p *pkt) []byte {
	f := &fs.flow
	b := r.buf[:0]
	e := &fs.ends[p.dir]
	src, dst, smac, dmac := e.src, e.dst, e.smac, e.dmac
	b = append(b, dmac[:]...)
	b = append(b, smac[:]...)
	for _, v := range f.VLAN {
		b = append(b, 0x81, 0x00, byte(v>>8), byte(v))
	}
	ipLen := fs.ipLen(p)
	l4Len := ipLen - fs.ipHeaderLen()
	var ipProto byte
	switch fs.proto {
	case TCP:
		ipProto = 6
	case UDP:
		ipProto = 17
	case ICMP:
		ipProto = 1
		if fs.v6 {
			ipProto = 58
		}
	}
	ipAt := len(b) + 2
	if fs.v6 {
		b = append(b, 0x86, 0xdd)
		b = binary.BigEndian.AppendUint32(b, 6<<28|fs.label)
		b = binary.BigEndian.AppendUint16(b, uint16(l4Len))
		b = append(b, ipProto, fs.ttl[p.dir])
		s16, d16 := src.Addr().As16(), dst.Addr().As16()
		b = append(b, s16[:]...)
		b = append(b, d16[:]...)
	} else {
		b = append(b, 0x08, 0x00)
		b = append(b, 0x45, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(ipLen))
		fs.ipID[p.dir]++
		b = binary.BigEndian.AppendUint16(b, fs.ipID[p.dir])
		if fs.proto == TCP {
			b = append(b, 0x40, 0) // DF
		} else {
			b = append(b, 0, 0)
		}
		b = append(b, fs.ttl[p.dir], ipProto, 0, 0)
		s4, d4 := src.Addr().As4(), dst.Addr().As4()
		b = append(b, s4[:]...)
		b = append(b, d4[:]...)
		binary.BigEndian.PutUint16(b[ipAt+10:], ^fold(sum(0, b[ipAt:ipAt+20])))
	}
	l4At := len(b)
	switch fs.proto {
	case TCP:
		b = binary.BigEndian.AppendUint16(b, src.Port())
		b = binary.BigEndian.AppendUint16(b, dst.Port())
		b = binary.BigEndian.AppendUint32(b, p.seq)
		b = binary.BigEndian.AppendUint32(b, p.ack)
		hl := byte(fs.l4HeaderLen(p) / 4)
		b = append(b, hl<<4, p.flags)
		win := fs.window[p.dir]
		if p.synOpts {
			win = [2]uint16{64240, 65160}[p.dir] // unscaled in SYNs
		}
		b = binary.BigEndian.AppendUint16(b, win)
		b = append(b, 0, 0, 0, 0) // checksum, urgent pointer
		if p.synOpts {
			b = append(b, 2, 4, byte(f.MSS>>8), byte(f.MSS), 1, 3, 3, 8, 1, 1, 4, 2)
		}
	case UDP:
		b = binary.BigEndian.AppendUint16(b, src.Port())
		b = binary.BigEndian.AppendUint16(b, dst.Port())
		b = binary.BigEndian.AppendUint16(b, uint16(l4Len))
		b = append(b, 0, 0)
	case ICMP:
		typ := byte(8)
		if fs.v6 {
			typ = 128
		}
		if p.dir == s2c {
			typ = 0
			if fs.v6 {
				typ = 129
			}
		}
		b = append(b, typ, 0, 0, 0)
		b = binary.BigEndian.AppendUint16(b, fs.icmpID)
		b = binary.BigEndian.AppendUint16(b, uint16(p.seq))
	}
	payAt := len(b)
	b = b[:payAt+int(p.n)]
	if p.n > 0 {
		fs.read(b[payAt:], int(p.dir), int(p.off), r.noise)
	}

	// Transport checksum; ICMPv4 has no pseudo-header.
	var s uint64
	if fs.proto != ICMP || fs.v6 {
		if fs.v6 {
			s = sum(s, b[ipAt+8:ipAt+40])
		} else {
			s = sum(s, b[ipAt+12:ipAt+20])
		}
		s += uint64(ipProto) + uint64(l4Len)
	}
	s = sum(s, b[l4At:])
	ck := ^fold(s)
	at := l4At + 16 // TCP
	switch fs.proto {
	case UDP:
		at = l4At + 6
		if ck == 0 {
			ck = 0xffff
		}
	case ICMP:
		at = l4At + 2
	}
	binary.BigEndian.PutUint16(b[at:], ck)

	t := &fs.tally[p.dir]
	t.pkts++
	t.bytes += uint64(ipLen)
	t.flags |= p.flags
	r.buf = b
	return b
}

// sum adds b as big-endian 16-bit words to s, eight bytes at a time. The
// 64-bit accumulator with carry makes this several times faster than a
// byte-pair loop on full-size segments.
func sum(s uint64, b []byte) uint64 {
	var c uint64
	for len(b) >= 8 {
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b), c)
		b = b[8:]
	}
	s += c
	if s < c {
		s++
	}
	s = s>>32 + s&0xffffffff // headroom for the tail below
	for len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	return s
}

// fold reduces a 64-bit one's-complement sum to 16 bits.
func fold(s uint64) uint16 {
	s = s>>32 + s&0xffffffff
	s = s>>32 + s&0xffffffff
	s = s>>16 + s&0xffff
	s = s>>16 + s&0xffff
	return uint16(s)
}
