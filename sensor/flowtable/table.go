// Package flowtable keeps the bidirectional flow state of one capture
// worker and turns it into flow.Records.
//
// Time is an input: every decision (idle, active and close timeouts) uses
// packet timestamps, so replaying a capture gives the same records every
// time. The per-packet path allocates nothing: entries live in fixed-size
// chunks indexed by int32, keyed by a packed canonical flow.Key, and linked
// into a lazily kept LRU list (idle expiry and eviction pop its head) or, once
// closed by FIN or RST, into a closing list that holds them for a short
// linger so trailing ACKs and retransmissions still count.
package flowtable

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/decode"
)

// Config sets the table's timeouts and size. Zero values take the defaults.
type Config struct {
	// IdleTimeout closes a flow that has seen no packet for this long
	// (default 60 s).
	IdleTimeout time.Duration
	// ActiveTimeout closes a flow that has been open this long and starts a
	// new record for its later packets (default 300 s).
	ActiveTimeout time.Duration
	// CloseLinger keeps a TCP flow after FIN from both sides or RST so that
	// late segments land in it (default 5 s, as Zeek's tcp_close_delay).
	CloseLinger time.Duration
	// MaxFlows bounds the flows held at once; when full, the least recently
	// seen flow is closed with end_reason "evicted" (default 1,048,576).
	MaxFlows int
}

// Defaults.
const (
	DefaultIdleTimeout   = 60 * time.Second
	DefaultActiveTimeout = 300 * time.Second
	DefaultCloseLinger   = 5 * time.Second
	DefaultMaxFlows      = 1 << 20
)

func (c Config) withDefaults() Config {
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.ActiveTimeout <= 0 {
		c.ActiveTimeout = DefaultActiveTimeout
	}
	if c.CloseLinger <= 0 {
		c.CloseLinger = DefaultCloseLinger
	}
	if c.MaxFlows <= 0 {
		c.MaxFlows = DefaultMaxFlows
	}
	return c
}

// Stats counts what the table did.
type Stats struct {
	Packets  uint64 // packets accounted to flows (carrier packets count once more)
	Created  uint64 // flow records opened
	Exported uint64
	Evicted  uint64 // flows closed early because the table was full
	Active   int    // flows held now
	// SampleMismatches counts payload samples of externally counted
	// flows whose decoded key is not the flow's (InspectExternal).
	SampleMismatches uint64
}

// Inspector looks into the first payload packets of each flow and adds
// what it learns to the flow's record (package inspect implements it).
// slot is the flow's inspection state, -1 before the first call.
type Inspector interface {
	// Packet inspects a packet; false means the flow needs no more.
	Packet(slot *int32, fromInitiator bool, p *decode.Packet) bool
	// Finish writes the flow's metadata into its record before Emit.
	Finish(slot int32, r *flow.Record)
	// Release frees the slot after Emit.
	Release(slot int32)
}

// Emit receives each finished record. The record is reused after Emit
// returns: copy what you keep.
type Emit func(*flow.Record)

// Table is the flow table of one capture worker; not safe for concurrent use.
type Table struct {
	cfg                  Config
	idle, active, linger int64
	emit                 Emit
	insp                 Inspector
	index                index
	chunks               [][]entry
	free                 []int32
	lru, closing         list
	now                  int64
	due                  int64 // no flow can expire before (a lower bound)
	stats                Stats
	rec                  flow.Record
	recTCP               flow.TCP
	recICMP              flow.ICMP
	recTunnel            flow.Tunnel
	recVLAN              []uint16
	carrierPkt           decode.Packet
}

const (
	chunkBits = 12
	chunkSize = 1 << chunkBits
	none      = -1
)

// New returns a table that passes finished records to emit.
func New(cfg Config, emit Emit) *Table {
	cfg = cfg.withDefaults()
	return &Table{
		cfg:     cfg,
		idle:    int64(cfg.IdleTimeout),
		active:  int64(cfg.ActiveTimeout),
		linger:  int64(cfg.CloseLinger),
		emit:    emit,
		index:   newIndex(),
		lru:     list{head: none, tail: none},
		closing: list{head: none, tail: none},
	}
}

// SetInspector makes the table pass payload packets to insp.
func (t *Table) SetInspector(insp Inspector) { t.insp = insp }

// Stats returns the table's counters.
func (t *Table) Stats() Stats {
	s := t.stats
	s.Active = t.index.n
	return s
}

func (t *Table) at(i int32) *entry { return &t.chunks[i>>chunkBits][i&(chunkSize-1)] }

// Update accounts one decoded packet (and the tunnel packets that carried
// it) and closes flows whose time has come.
func (t *Table) Update(p *decode.Packet) {
	t.Advance(p.TS)
	for i := range p.NCarriers {
		c := &p.Carriers[i]
		cp := &t.carrierPkt
		cp.TS, cp.Key, cp.SrcMAC, cp.DstMAC, cp.IPBytes, cp.PayloadLen = p.TS, c.Key, c.SrcMAC, c.DstMAC, c.IPBytes, c.PayloadLen
		t.update(cp, nil)
	}
	var tun *decode.Carrier
	if p.NCarriers > 0 {
		tun = &p.Carriers[p.NCarriers-1]
	}
	t.update(p, tun)
}

func (t *Table) update(p *decode.Packet, tun *decode.Carrier) {
	t.stats.Packets++
	swapped := canonical(&p.Key)
	h := t.index.hash(&p.Key, swapped)
	ei, ok := t.index.find(t, &p.Key, swapped, h)
	var e *entry
	if ok {
		e = t.at(ei)
		if reason, ok := e.restart(p, t.now, t.idle, t.active); ok {
			t.export(e, reason)
			if e.state == closing {
				t.closing.remove(t, ei)
			} else {
				t.lru.remove(t, ei)
			}
			e.reset(p, swapped, tun)
			t.enqueue(ei)
			t.stats.Created++
		}
	} else {
		if t.index.n >= t.cfg.MaxFlows {
			t.evict()
		}
		ei = t.alloc()
		e = t.at(ei)
		e.key, _ = p.Key.Canonical()
		e.reset(p, swapped, tun)
		t.index.insert(h, ei)
		t.enqueue(ei)
		t.stats.Created++
	}
	closed := e.account(p, swapped)
	if t.insp != nil && e.inspecting && !t.insp.Packet(&e.meta, swapped == e.srcIsB, p) {
		e.inspecting = false
	}
	if closed && e.state == open {
		// FIN from both sides or RST: linger, then close.
		e.state = closing
		e.closeAt = t.now + t.linger
		t.lru.remove(t, ei)
		t.closing.pushBack(t, ei)
		t.due = min(t.due, e.closeAt)
	}
}

func (t *Table) alloc() int32 {
	if n := len(t.free); n > 0 {
		i := t.free[n-1]
		t.free = t.free[:n-1]
		return i
	}
	n := int32(len(t.chunks)) << chunkBits
	t.chunks = append(t.chunks, make([]entry, chunkSize))
	for i := int32(chunkSize - 1); i > 0; i-- {
		t.free = append(t.free, n+i)
	}
	return n
}

// enqueue appends an open flow to the LRU list, stamped with the time.
func (t *Table) enqueue(ei int32) {
	t.at(ei).enq = t.now
	t.lru.pushBack(t, ei)
	t.due = min(t.due, t.now+t.idle)
}

// expire closes idle flows and closing flows whose linger has passed.
//
// The LRU list is kept lazily, as the CLOCK algorithm keeps its ring: a
// packet only stamps its flow's last-seen time and never relinks the list
// (relinking touches two more entries, the most expensive memory traffic
// per packet). The list is ordered by enqueue time, so when its head was
// enqueued less than an idle timeout ago nothing can be idle; a head that
// saw packets since it was enqueued goes back to the tail. A flow therefore
// closes between one and two idle timeouts after its last packet, and its
// record still ends at that packet. Callers skip it while now is before
// due, the earliest time either list's head can close.
func (t *Table) expire() {
	for t.lru.head != none {
		hi := t.lru.head
		e := t.at(hi)
		if t.now-e.enq < t.idle {
			break
		}
		if t.now-e.last >= t.idle {
			t.drop(hi, &t.lru, flow.EndIdle)
			continue
		}
		t.lru.remove(t, hi)
		t.enqueue(hi)
	}
	for t.closing.head != none {
		e := t.at(t.closing.head)
		if t.now < e.closeAt {
			break
		}
		t.drop(t.closing.head, &t.closing, e.endReason())
	}
	t.due = math.MaxInt64
	if t.lru.head != none {
		t.due = t.at(t.lru.head).enq + t.idle
	}
	if t.closing.head != none {
		t.due = min(t.due, t.at(t.closing.head).closeAt)
	}
}

// evict closes the least recently seen flow, approximately: heads that saw
// packets since they were enqueued get a second chance, up to a bound.
func (t *Table) evict() {
	l := &t.lru
	if l.head == none {
		l = &t.closing
	}
	for range 64 {
		hi := l.head
		if l != &t.lru || hi == l.tail {
			break
		}
		if e := t.at(hi); e.last <= e.enq {
			break
		}
		l.remove(t, hi)
		t.enqueue(hi)
	}
	t.drop(l.head, l, flow.EndEvicted)
	t.stats.Evicted++
}

func (t *Table) drop(ei int32, l *list, reason flow.EndReason) {
	e := t.at(ei)
	t.export(e, reason)
	l.remove(t, ei)
	t.index.remove(t.index.hash(&e.key, false), ei)
	t.free = append(t.free, ei)
}

// Flush closes every flow, oldest activity first, with the given reason
// (eof at the end of a capture, shutdown when the sensor stops).
func (t *Table) Flush(reason flow.EndReason) {
	for t.closing.head != none {
		t.drop(t.closing.head, &t.closing, t.at(t.closing.head).endReason())
	}
	for t.lru.head != none {
		t.drop(t.lru.head, &t.lru, reason)
	}
}

func (t *Table) export(e *entry, reason flow.EndReason) {
	t.stats.Exported++
	r := &t.rec
	ini, res := e.endpoints()
	k := flow.Key{Src: ini, Dst: res, SrcPort: e.key.SrcPort, DstPort: e.key.DstPort, Proto: e.key.Proto,
		NVLAN: e.key.NVLAN, VLAN: e.key.VLAN}
	if e.srcIsB {
		k.SrcPort, k.DstPort = e.key.DstPort, e.key.SrcPort
	}
	*r = flow.Record{
		Schema:      flow.Schema,
		ID:          flowID(&e.key, e.first),
		CommunityID: flow.CommunityID(k, e.icmpOneWay),
		Start:       time.Unix(0, e.first).UTC(),
		End:         time.Unix(0, e.last).UTC(),
		DurationS:   float64(e.last-e.first) / 1e9,
		EndReason:   reason,
		Proto:       flow.ProtoName(k.Proto),
		VLAN:        t.vlans(&k),
	}
	s, d := &e.dir[0], &e.dir[1]
	r.Src = flow.Endpoint{IP: k.Src.Netip(), Port: k.SrcPort, MAC: e.mac[0], Packets: s.packets, Bytes: s.bytes, PayloadBytes: s.payload}
	r.Dst = flow.Endpoint{IP: k.Dst.Netip(), Port: k.DstPort, MAC: e.mac[1], Packets: d.packets, Bytes: d.bytes, PayloadBytes: d.payload}
	switch k.Proto {
	case flow.ProtoTCP:
		t.recTCP = flow.TCP{SrcFlags: s.flags, DstFlags: d.flags, History: string(e.history[:e.nhistory])}
		r.TCP = &t.recTCP
	case flow.ProtoICMP, flow.ProtoICMPv6:
		r.Src.Port, r.Dst.Port = 0, 0
		t.recICMP = flow.ICMP{Type: e.icmpType, Code: e.icmpCode}
		r.ICMP = &t.recICMP
	}
	if e.tunnel.Type != decode.NoTunnel {
		t.recTunnel = flow.Tunnel{Type: e.tunnel.Type.String(), Src: e.tunnel.Src.Netip(), Dst: e.tunnel.Dst.Netip(), VNI: e.tunnel.VNI}
		r.Tunnel = &t.recTunnel
	}
	if t.insp != nil {
		t.insp.Finish(e.meta, r)
	}
	t.emit(r)
	if t.insp != nil {
		t.insp.Release(e.meta)
		e.meta = -1
	}
}

// vlans returns the key's VLAN ids in a slice the table reuses.
func (t *Table) vlans(k *flow.Key) []uint16 {
	if k.NVLAN == 0 {
		return nil
	}
	t.recVLAN = append(t.recVLAN[:0], k.VLAN[:k.NVLAN]...)
	return t.recVLAN
}

// flowID is a deterministic record id: replaying a capture yields the same
// ids, and a flow's later records (after an active timeout) get new ones.
func flowID(k *flow.Key, first int64) string {
	// A fixed 64-bit mix of the key's words (deterministic, unlike
	// hash/maphash), finished as in splitmix64.
	v := uint64(first)
	for _, w := range [...]uint64{
		binary.LittleEndian.Uint64(k.Src[:8]), binary.LittleEndian.Uint64(k.Src[8:]),
		binary.LittleEndian.Uint64(k.Dst[:8]), binary.LittleEndian.Uint64(k.Dst[8:]),
		uint64(k.SrcPort)<<48 | uint64(k.DstPort)<<32 | uint64(k.Proto)<<24 | uint64(k.NVLAN)<<16,
		uint64(k.VLAN[0])<<16 | uint64(k.VLAN[1]),
	} {
		v = (v ^ w) * 0x9e3779b97f4a7c15
		v ^= v >> 29
	}
	v ^= v >> 31
	v *= 0xbf58476d1ce4e5b9
	v ^= v >> 27
	var out [16]byte
	for i := 15; i >= 0; i-- {
		out[i] = "0123456789abcdef"[v&0xf]
		v >>= 4
	}
	return string(out[:])
}

// list is an intrusive doubly linked list of entries.
type list struct{ head, tail int32 }

func (l *list) pushBack(t *Table, i int32) {
	e := t.at(i)
	e.prev, e.next = l.tail, none
	if l.tail != none {
		t.at(l.tail).next = i
	} else {
		l.head = i
	}
	l.tail = i
}

func (l *list) remove(t *Table, i int32) {
	e := t.at(i)
	if e.prev != none {
		t.at(e.prev).next = e.next
	} else {
		l.head = e.next
	}
	if e.next != none {
		t.at(e.next).prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = none, none
}
