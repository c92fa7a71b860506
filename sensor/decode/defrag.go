package decode

import "github.com/edgeward/edgeward/flow"

// defragger reassembles IPv4 and IPv6 datagrams with bounded memory.
//
// gopacket's ip4defrag and ip6defrag have no bound on datagrams in flight
// and ip6defrag stamps entries with the wall clock, which would make a
// replay depend on when it runs; this one keeps a fixed number of slots,
// reuses their buffers, ages them by packet time and evicts the oldest when
// full. Overlapping fragments keep the bytes that arrived first (RFC 5722
// says drop the datagram for IPv6; first-wins is what Linux and Zeek do for
// IPv4, and for both it denies an attacker the choice of what we see).
type defragger struct {
	slots   []fragSlot
	index   map[fragKey]int32
	fifo    []fifoEntry // slots by first fragment time
	free    []int32
	timeout int64 // ns
	stats   *Stats
}

type fifoEntry struct{ slot, gen int32 }

type fragKey struct {
	src, dst flow.Addr
	id       uint32
	proto    uint8 // IPv4 protocol; 0 for IPv6, whose key is (src, dst, id)
	v6       bool
}

type fragSlot struct {
	key       fragKey
	firstSeen int64
	buf       []byte
	units     []uint64 // bitmap of 8-byte units received
	have      int      // units received
	total     int      // payload length once the last fragment is in, else -1
	end       int      // highest fragment end so far
	hdrLen    int      // IP header (+ unfragmentable extension headers) of the first fragment
	next      uint8    // protocol / next header of the fragmentable part
	frags     int
	gen       int32
	inUse     bool
}

const (
	maxDatagram       = 65535
	maxFragsPerDgram  = 8192 // 64 KiB in 8-byte pieces, as gopacket and Linux allow
	defaultFragSlots  = 256
	defaultFragExpiry = 30e9
)

func newDefragger(slots int, timeout int64, stats *Stats) *defragger {
	if slots <= 0 {
		slots = defaultFragSlots
	}
	if timeout <= 0 {
		timeout = defaultFragExpiry
	}
	d := &defragger{
		slots:   make([]fragSlot, slots),
		index:   make(map[fragKey]int32, slots),
		timeout: timeout,
		stats:   stats,
	}
	for i := slots - 1; i >= 0; i-- {
		d.free = append(d.free, int32(i))
	}
	return d
}

// add stores one fragment whose payload starts at byte offset off of the
// datagram's fragmentable part. When the datagram is complete it returns the
// reassembled fragmentable part, the header length to count in IP bytes and
// the protocol of the reassembled part; the slice is valid until the next
// call.
func (d *defragger) add(k fragKey, now int64, off int, more bool, payload []byte, hdrLen int, next uint8) ([]byte, int, uint8, bool) {
	d.expire(now)
	end := off + len(payload)
	if end > maxDatagram || (more && len(payload)%8 != 0) {
		d.stats.FragInvalid++
		return nil, 0, 0, false
	}
	si, ok := d.index[k]
	if !ok {
		si = d.alloc(now)
		s := &d.slots[si]
		s.key, s.firstSeen, s.inUse = k, now, true
		s.gen++
		s.total, s.end, s.have, s.frags, s.hdrLen = -1, 0, 0, 0, 0
		clear(s.units)
		d.index[k] = si
		d.fifo = append(d.fifo, fifoEntry{si, s.gen})
	}
	s := &d.slots[si]
	s.frags++
	if s.frags > maxFragsPerDgram {
		d.stats.FragInvalid++
		d.release(si)
		return nil, 0, 0, false
	}
	if s.total >= 0 && end > s.total || !more && end < s.end {
		// Data past the last fragment's end: inconsistent, as Linux
		// judges it. Counting it would let the units past the end stand
		// in for a hole, and the hole would be reported as zeros.
		d.stats.FragInvalid++
		d.release(si)
		return nil, 0, 0, false
	}
	s.end = max(s.end, end)
	if off == 0 {
		s.hdrLen, s.next = hdrLen, next
	}
	if !more {
		if s.total >= 0 && s.total != end {
			d.stats.FragInvalid++
			d.release(si)
			return nil, 0, 0, false
		}
		s.total = end
	}
	if len(s.buf) < end {
		if cap(s.buf) < end {
			nb := make([]byte, end, max(end, 2*cap(s.buf), 2048))
			copy(nb, s.buf)
			s.buf = nb
		}
		s.buf = s.buf[:end]
	}
	if need := (end + 8*64 - 1) / (8 * 64); len(s.units) < need {
		s.units = append(s.units, make([]uint64, need-len(s.units))...)
	}
	for u := off / 8; u*8 < end; u++ {
		w, bit := u/64, uint64(1)<<(u%64)
		if s.units[w]&bit != 0 {
			continue
		}
		lo, hi := max(u*8, off), min(u*8+8, end)
		copy(s.buf[lo:hi], payload[lo-off:hi-off])
		s.units[w] |= bit
		s.have++
	}
	if s.total < 0 || s.have < (s.total+7)/8 || s.hdrLen == 0 {
		return nil, 0, 0, false
	}
	out, hl, nx := s.buf[:s.total], s.hdrLen, s.next
	d.release(si)
	d.stats.FragReassembled++
	return out, hl, nx, true
}

func (d *defragger) alloc(now int64) int32 {
	if len(d.free) == 0 {
		d.evictOldest()
	}
	si := d.free[len(d.free)-1]
	d.free = d.free[:len(d.free)-1]
	return si
}

func (d *defragger) release(si int32) {
	s := &d.slots[si]
	if !s.inUse {
		return
	}
	s.inUse = false
	delete(d.index, s.key)
	d.free = append(d.free, si)
}

// evictOldest frees the slot whose first fragment came earliest.
func (d *defragger) evictOldest() {
	for len(d.fifo) > 0 {
		e := d.fifo[0]
		d.fifo = d.fifo[1:]
		if s := &d.slots[e.slot]; s.inUse && s.gen == e.gen {
			d.stats.FragEvicted++
			d.release(e.slot)
			return
		}
	}
}

// expire drops datagrams older than the timeout, and stale fifo entries.
func (d *defragger) expire(now int64) {
	for len(d.fifo) > 0 {
		e := d.fifo[0]
		s := &d.slots[e.slot]
		live := s.inUse && s.gen == e.gen
		if live && now-s.firstSeen < d.timeout {
			break
		}
		if live {
			d.stats.FragExpired++
			d.release(e.slot)
		}
		d.fifo = d.fifo[1:]
	}
	if len(d.fifo) == 0 && cap(d.fifo) > 4*len(d.slots) {
		d.fifo = nil
	}
}
