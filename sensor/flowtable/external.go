package flowtable

import (
	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/decode"
)

// External is the state of a flow counted outside the table, by the eBPF
// programs in the kernel (package live loads them). The kernel counts every
// packet; the table keeps what it keeps for any flow (initiator, timeouts,
// inspection, the record) and takes the counters from External, so records
// of kernel-counted flows are built by the same code as those of captured
// frames.
//
// Counters are totals since the flow's first packet, not increments:
// passing the same External twice changes nothing.
type External struct {
	Key flow.Key // canonical (flow.Key.Canonical)
	// Gen identifies one counting of the flow. When the kernel restarts a
	// flow (idle or active timeout, a SYN reusing a closed tuple) the new
	// counting has a new Gen, and the table closes the record of the old
	// one, as Update does for a packet that restarts a flow.
	Gen         uint64
	First, Last int64 // ns since the Unix epoch
	// Closed is when FIN from both sides or an RST closed the connection
	// (ns since the Unix epoch), 0 while it is open.
	Closed int64
	// The first packet: its sender, TCP flags and ICMP type, from which
	// the table decides the initiator as it does for captured frames.
	FirstFromDst       bool
	FirstFlags         flow.TCPFlags
	ICMPType, ICMPCode uint8
	Side               [2]Side // [0]: sent by Key.Src, [1]: sent by Key.Dst
	RST                bool
	// History holds the Zeek history letters in the order seen, upper
	// case, with bit 7 set when Key.Dst sent the packet; the table turns
	// sides into initiator (upper case) and responder (lower case).
	History  [24]byte
	NHistory int
}

// Side is what one endpoint of an External flow sent.
type Side struct {
	Packets, Bytes, Payload uint64
	Flags                   flow.TCPFlags
	FIN                     bool
	MAC                     flow.MAC
}

// UpdateExternal replaces the counters of x's flow with x's, opening the
// flow, or closing the record of an earlier counting of it, as needed.
// Counters older than the ones the table holds (fewer packets in the same
// counting) are ignored, so events that overtake each other do no harm, and
// so are counters of a flow idle for the idle timeout that the table does
// not hold (it closed their record already).
func (t *Table) UpdateExternal(x *External) { t.external(x) }

// InspectExternal passes p, a payload packet of x's flow that the kernel
// sampled, to the inspector; it counts nothing. It reports false, and
// counts Stats.SampleMismatches, when p's key is not x's flow.
func (t *Table) InspectExternal(x *External, p *decode.Packet) bool {
	ck, swapped := p.Key.Canonical()
	if ck != x.Key {
		t.stats.SampleMismatches++
		return false
	}
	e := t.external(x)
	if e == nil {
		return false
	}
	if t.insp != nil && e.inspecting && !t.insp.Packet(&e.meta, swapped == e.srcIsB, p) {
		e.inspecting = false
	}
	return true
}

// Advance moves the table's clock to now (ns since the Unix epoch) and
// closes the flows whose time has come. Live captures call it when no
// packet has come for a while, so that idle flows still end.
func (t *Table) Advance(now int64) {
	if now > t.now {
		t.now = now
		if t.now >= t.due {
			t.expire()
		}
	}
}

func (t *Table) external(x *External) *entry {
	t.Advance(x.Last)
	first := x.firstPacket()
	h := t.index.hash(&x.Key, false)
	ei, ok := t.index.find(t, &x.Key, false, h)
	var e *entry
	switch {
	case !ok && t.now-x.Last >= t.idle:
		// A counting whose record the table has closed already (idle):
		// a late copy of its counters must not open a second record.
		return nil
	case !ok:
		if t.index.n >= t.cfg.MaxFlows {
			t.evict()
		}
		ei = t.alloc()
		e = t.at(ei)
		e.key = x.Key
		e.reset(&first, x.FirstFromDst, nil)
		t.index.insert(h, ei)
		t.enqueue(ei)
		t.stats.Created++
	case !t.at(ei).external || t.at(ei).gen != x.Gen:
		e = t.at(ei)
		reason, ok := e.restart(&first, t.now, t.idle, t.active)
		if !ok { // the kernel's clock decided: say why as the table would
			switch {
			case e.state == closing:
				reason = e.endReason()
			case x.First-e.last >= t.idle:
				reason = flow.EndIdle
			default:
				reason = flow.EndActive
			}
		}
		t.export(e, reason)
		if e.state == closing {
			t.closing.remove(t, ei)
		} else {
			t.lru.remove(t, ei)
		}
		e.reset(&first, x.FirstFromDst, nil)
		t.enqueue(ei)
		t.stats.Created++
	default:
		e = t.at(ei)
		if x.Side[0].Packets+x.Side[1].Packets < e.dir[0].packets+e.dir[1].packets {
			return e // an older snapshot of this counting
		}
	}
	e.external, e.gen = true, x.Gen
	t.stats.Packets += x.Side[0].Packets + x.Side[1].Packets - e.dir[0].packets - e.dir[1].packets
	e.fold(x)
	if e.state == open && (x.RST || x.Side[0].FIN && x.Side[1].FIN) {
		e.state = closing
		e.closeAt = max(x.Closed, x.First) + t.linger
		t.lru.remove(t, ei)
		t.closing.pushBack(t, ei)
		t.due = min(t.due, e.closeAt)
	}
	return e
}

// firstPacket rebuilds the facts of the flow's first packet that reset
// decides the initiator from.
func (x *External) firstPacket() decode.Packet {
	p := decode.Packet{TS: x.First, Key: x.Key, TCPFlags: x.FirstFlags, ICMPType: x.ICMPType, ICMPCode: x.ICMPCode}
	if x.FirstFromDst {
		p.Key = p.Key.Reverse()
	}
	if p.Key.Proto == flow.ProtoICMP || p.Key.Proto == flow.ProtoICMPv6 {
		_, _, p.ICMPOneWay = flow.ICMPPorts(p.Key.Proto, x.ICMPType, x.ICMPCode)
	}
	return p
}

// fold sets the entry's counters, MACs and history from x.
func (e *entry) fold(x *External) {
	if x.Last > e.last {
		e.last = x.Last
	}
	if x.First < e.first {
		e.first = x.First
	}
	for s := range 2 {
		d := s
		if e.srcIsB {
			d = 1 - s
		}
		xs, es := &x.Side[s], &e.dir[d]
		es.packets, es.bytes, es.payload, es.flags = xs.Packets, xs.Bytes, xs.Payload, xs.Flags
		es.seen &^= seenFIN
		if xs.FIN {
			es.seen |= seenFIN
		}
		e.mac[d] = xs.MAC
	}
	e.macsKnown = true
	e.rst = x.RST
	n := 0
	if e.nhistory > 0 && e.history[0] == '^' {
		n = 1
	}
	for _, c := range x.History[:min(x.NHistory, len(x.History))] {
		if n == len(e.history) {
			break
		}
		l, side := c&0x7f, int(c>>7)
		if e.srcIsB {
			side = 1 - side
		}
		if side == 1 {
			l += 'a' - 'A'
		}
		e.history[n] = l
		n++
	}
	e.nhistory = uint8(n)
}
