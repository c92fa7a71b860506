package flowtable

import (
	"net/netip"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/decode"
)

type state uint8

const (
	open state = iota
	closing
)

// direction holds what one endpoint sent, in 32 bytes: the two of a flow
// fill its second cache line.
type direction struct {
	packets, bytes, payload uint64
	seqEnd                  uint32 // highest sequence number + payload seen
	historySeen             uint16 // bit per history letter already recorded
	flags                   flow.TCPFlags
	seen                    uint8 // seenSeq, seenFIN
}

const (
	seenSeq = 1 << iota // seqEnd is set
	seenFIN
)

// entry is one flow, in four cache lines. It holds no pointers, so a table
// of a million of them costs the garbage collector nothing to scan. The
// first line holds what a packet's lookup compares and checks (the key,
// the state, the times), the second the counters it updates; the rest is
// read when the flow starts, ends, or moves in the lists. TestEntryLayout
// keeps it so.
type entry struct {
	key        flow.Key // canonical
	state      state
	srcIsB     bool // the initiator is key.Dst (the canonical key's second endpoint)
	rst        bool
	macsKnown  bool // both MACs are set; skip the per-packet check
	inspecting bool // the Inspector still wants this flow's packets
	last       int64
	first      int64

	dir [2]direction

	prev, next int32
	meta       int32 // the Inspector's slot, -1 for none
	nhistory   uint8
	icmpOneWay bool
	icmpType   uint8
	icmpCode   uint8
	external   bool   // counted outside the table (UpdateExternal)
	icmpInit   bool   // icmpType and icmpCode are the initiator's
	enq        int64  // when the flow was last put at the LRU list's tail
	closeAt    int64  // when a closing flow's linger ends
	gen        uint64 // External.Gen of the counting this record holds
	history    [24]byte
	mac        [2]flow.MAC // initiator, responder
	tunnel     tunnelInfo
}

type tunnelInfo struct {
	Type     decode.TunnelType
	Src, Dst flow.Addr
	VNI      uint32
}

// endpoints returns the initiator's and responder's addresses.
func (e *entry) endpoints() (flow.Addr, flow.Addr) {
	if e.srcIsB {
		return e.key.Dst, e.key.Src
	}
	return e.key.Src, e.key.Dst
}

func (e *entry) endReason() flow.EndReason {
	if e.rst {
		return flow.EndRST
	}
	return flow.EndFIN
}

// reset starts a new record for the flow with packet p, which travels
// against the canonical key when swapped.
func (e *entry) reset(p *decode.Packet, swapped bool, tun *decode.Carrier) {
	key, prev, next := e.key, e.prev, e.next
	*e = entry{key: key, first: p.TS, last: p.TS, prev: prev, next: next, meta: -1, inspecting: true}
	// The initiator is the sender of the first packet, except that a
	// SYN-ACK names its receiver (who sent the SYN we missed; Zeek instead
	// keeps the sender and logs conn_state OTH), and a midstream TCP
	// segment or UDP datagram sent from a well-known port (< 1024) to a
	// higher one is taken as a reply whose request we missed: a server
	// answering a client (53 -> 33000, 67 -> 68), in the spirit of Zeek's
	// likely-server-port heuristic.
	senderIsInitiator := true
	switch p.Key.Proto {
	case flow.ProtoTCP:
		if p.TCPFlags&flow.FlagSYN != 0 {
			senderIsInitiator = p.TCPFlags&flow.FlagACK == 0
		} else {
			senderIsInitiator = !looksLikeReply(p)
		}
	case flow.ProtoUDP:
		senderIsInitiator = !looksLikeReply(p)
	case flow.ProtoICMP, flow.ProtoICMPv6:
		e.icmpType, e.icmpCode, e.icmpOneWay = p.ICMPType, p.ICMPCode, p.ICMPOneWay
		senderIsInitiator = !isICMPReply(p.Key.Proto, p.ICMPType)
		e.icmpInit = senderIsInitiator
	}
	e.srcIsB = swapped == senderIsInitiator
	if !senderIsInitiator && p.Key.Proto == flow.ProtoTCP {
		e.addHistory(0, '^')
	}
	if tun != nil {
		e.tunnel = tunnelInfo{Type: tun.Type, Src: tun.Key.Src, Dst: tun.Key.Dst, VNI: tun.VNI}
	}
}

// looksLikeReply: a packet from a well-known port to a higher one, unless
// it goes to a broadcast or multicast group, which never initiates.
func looksLikeReply(p *decode.Packet) bool {
	if p.Key.SrcPort >= 1024 || p.Key.SrcPort >= p.Key.DstPort {
		return false
	}
	d := p.Key.Dst.Netip()
	return !d.IsMulticast() && d != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

func isICMPReply(proto, typ uint8) bool {
	if proto == flow.ProtoICMP {
		switch typ {
		case 0, 14, 16, 18: // echo, timestamp, information, mask replies
			return true
		}
		return false
	}
	return typ == 129 || typ == 131 || typ == 136
}

// restart reports whether p must start a new record of this flow, and why
// the current one ends: the flow was idle longer than the idle timeout (the
// lazy LRU may not have closed it yet), it has been open longer than the
// active timeout, or a fresh SYN reuses the tuple of a closed connection.
func (e *entry) restart(p *decode.Packet, now, idle, active int64) (flow.EndReason, bool) {
	switch {
	case e.state == closing && p.TCPFlags&(flow.FlagSYN|flow.FlagACK) == flow.FlagSYN:
		return e.endReason(), true
	case p.TS-e.last >= idle:
		if e.state == closing {
			return e.endReason(), true
		}
		return flow.EndIdle, true
	case now-e.first >= active:
		if e.state == closing {
			return e.endReason(), true
		}
		return flow.EndActive, true
	}
	return "", false
}

// account adds p to the flow and reports whether it closed the
// connection (FIN seen from both sides, or RST).
func (e *entry) account(p *decode.Packet, swapped bool) bool {
	d := 0
	if swapped != e.srcIsB {
		d = 1
	}
	if p.TCPFlags&flow.FlagSYN != 0 && p.Key.Proto == flow.ProtoTCP && (e.dir[0].flags|e.dir[1].flags)&flow.FlagSYN == 0 {
		// The connection's first SYN names the initiator (its sender, or a
		// SYN-ACK's receiver), also when packets before it were taken for
		// the other side's: reordered at capture, or a guess from ports.
		if (d == 0) != (p.TCPFlags&flow.FlagACK == 0) {
			e.flip()
			d = 1 - d
		}
	}
	if p.TS > e.last {
		e.last = p.TS
	}
	if p.TS < e.first {
		e.first = p.TS
	}
	s := &e.dir[d]
	s.packets++
	s.bytes += uint64(p.IPBytes)
	s.payload += uint64(p.PayloadLen)
	if !e.macsKnown {
		if e.mac[d].IsZero() {
			e.mac[d] = p.SrcMAC
		}
		if e.mac[1-d].IsZero() {
			e.mac[1-d] = p.DstMAC
		}
		e.macsKnown = !e.mac[0].IsZero() && !e.mac[1].IsZero()
	}
	if p.Key.Proto != flow.ProtoTCP {
		if d == 0 && !e.icmpInit && (p.Key.Proto == flow.ProtoICMP || p.Key.Proto == flow.ProtoICMPv6) {
			// The record names the initiator's first message, not the
			// reply that reached the sensor before it.
			e.icmpType, e.icmpCode, e.icmpInit = p.ICMPType, p.ICMPCode, true
		}
		return false
	}
	f := p.TCPFlags
	s.flags |= f
	e.tcpHistory(d, p)
	if f&flow.FlagRST != 0 {
		e.rst = true
		return true
	}
	if f&flow.FlagFIN != 0 {
		s.seen |= seenFIN
	}
	return e.dir[0].seen&e.dir[1].seen&seenFIN != 0
}

// flip makes the responder the initiator: counters, MACs and history
// letters change sides, and the history notes the flip once with '^'.
func (e *entry) flip() {
	e.srcIsB = !e.srcIsB
	e.dir[0], e.dir[1] = e.dir[1], e.dir[0]
	e.mac[0], e.mac[1] = e.mac[1], e.mac[0]
	for i, c := range e.history[:e.nhistory] {
		switch {
		case c >= 'a' && c <= 'z':
			e.history[i] = c - ('a' - 'A')
		case c >= 'A' && c <= 'Z':
			e.history[i] = c + ('a' - 'A')
		}
	}
	if (e.dir[0].historySeen|e.dir[1].historySeen)&historyBit('^') == 0 {
		e.addHistory(0, '^')
	}
}

// tcpHistory records Zeek conn.log history letters: upper case from the
// initiator, lower case from the responder, each letter once per side.
func (e *entry) tcpHistory(d int, p *decode.Packet) {
	f := p.TCPFlags
	switch {
	case f&flow.FlagSYN != 0 && f&(flow.FlagFIN|flow.FlagRST) != 0:
		e.addHistory(d, 'Q')
	case f&flow.FlagSYN != 0 && f&flow.FlagACK != 0:
		e.addHistory(d, 'H')
	case f&flow.FlagSYN != 0:
		e.addHistory(d, 'S')
	}
	if f&flow.FlagFIN != 0 {
		e.addHistory(d, 'F')
	}
	if f&flow.FlagRST != 0 {
		e.addHistory(d, 'R')
	}
	s := &e.dir[d]
	if p.PayloadLen > 0 {
		end := p.Seq + p.PayloadLen
		if s.seen&seenSeq != 0 && int32(end-s.seqEnd) <= 0 {
			e.addHistory(d, 'T')
		} else {
			e.addHistory(d, 'D')
		}
		if s.seen&seenSeq == 0 || int32(end-s.seqEnd) > 0 {
			s.seqEnd = end
			s.seen |= seenSeq
		}
	} else if f&(flow.FlagSYN|flow.FlagFIN|flow.FlagRST|flow.FlagACK) == flow.FlagACK {
		e.addHistory(d, 'A')
	}
}

// historyBit is a history letter's bit in direction.historySeen.
func historyBit(c byte) uint16 {
	switch c {
	case 'S':
		return 1 << 0
	case 'H':
		return 1 << 1
	case 'A':
		return 1 << 2
	case 'D':
		return 1 << 3
	case 'F':
		return 1 << 4
	case 'R':
		return 1 << 5
	case 'T':
		return 1 << 6
	case 'Q':
		return 1 << 7
	case '^':
		return 1 << 8
	}
	return 1 << 15
}

func (e *entry) addHistory(d int, c byte) {
	bit := historyBit(c)
	s := &e.dir[d]
	if s.historySeen&bit != 0 || int(e.nhistory) >= len(e.history) {
		return
	}
	s.historySeen |= bit
	if d == 1 && c != '^' {
		c += 'a' - 'A'
	}
	e.history[e.nhistory] = c
	e.nhistory++
}
