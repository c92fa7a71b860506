package inspect

// stream reassembles the start of one direction of a TCP connection, in
// order, from its first payload segment on, into a bounded buffer: retransmitted bytes are dropped, a few
// out-of-order segments are held until the gap before them fills, and
// anything past the bound is ignored. The parsers only need the first
// kilobytes (a ClientHello, a request header, a banner).
//
// The first segment is not copied: buf borrows it, since most directions
// are parsed from their first segment alone (a ClientHello, a TLS 1.3
// ServerHello, a request). The caller settles the stream before that
// segment's memory is reused if its bytes may be parsed again, or forgets
// them; add settles first.
type stream struct {
	next     uint32 // sequence number of the byte after buf
	anchored bool
	buf      []byte // the in-order bytes
	own      []byte // buf's storage unless borrowed
	borrowed bool
	held     []segment
	limit    int
}

type segment struct {
	seq  uint32
	data []byte
}

const maxHeld = 4

func (s *stream) reset(limit int) {
	s.next, s.anchored, s.held, s.limit = 0, false, s.held[:0], limit
	s.forget()
}

// settle copies borrowed bytes into the stream's own storage.
func (s *stream) settle() {
	if s.borrowed {
		s.own = append(s.own[:0], s.buf...)
		s.buf, s.borrowed = s.own, false
	}
}

// forget drops the in-order bytes of a direction that is parsed.
func (s *stream) forget() {
	s.buf, s.borrowed = s.own[:0], false
}

// expect anchors the stream at seq, the byte after the direction's SYN, so
// that a first payload segment captured after a later one is not mistaken
// for the stream's start.
func (s *stream) expect(seq uint32) {
	s.next, s.anchored = seq, true
}

// add takes one segment and reports whether the in-order bytes grew.
func (s *stream) add(seq uint32, data []byte) bool {
	s.settle()
	if len(data) == 0 || len(s.buf) >= s.limit {
		return false
	}
	if !s.anchored || len(s.buf) == 0 && len(s.held) == 0 && seq == s.next {
		// The first segment: nothing held, nothing before it.
		s.next, s.anchored = seq, true
		n := min(len(data), s.limit)
		s.buf, s.borrowed = data[:n:n], true
		s.next += uint32(n)
		return true
	}
	grew := s.appendInOrder(seq, data)
	if !grew {
		return false
	}
	for progress := true; progress && len(s.held) > 0; {
		progress = false
		for i := 0; i < len(s.held); i++ {
			h := s.held[i]
			if int32(h.seq-s.next) <= 0 {
				s.appendInOrder(h.seq, h.data)
				s.held = append(s.held[:i], s.held[i+1:]...)
				progress = true
				i--
			}
		}
	}
	return true
}

func (s *stream) appendInOrder(seq uint32, data []byte) bool {
	off := int32(seq - s.next)
	if off > 0 { // a gap before this segment: hold a copy
		if len(s.held) < maxHeld && int(off) < s.limit {
			s.held = append(s.held, segment{seq, append([]byte(nil), data...)})
		}
		return false
	}
	skip := int(-off)
	if skip >= len(data) { // entirely a retransmission
		return false
	}
	data = data[skip:]
	if room := s.limit - len(s.buf); len(data) > room {
		data = data[:room]
	}
	s.buf = append(s.buf, data...)
	s.own = s.buf // keep grown storage for the next flow
	s.next += uint32(len(data))
	return true
}
