package synth

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// maxDatagram is the largest generic UDP payload we send in one datagram.
const maxDatagram = 1400

// datagram scripts one UDP datagram (or ICMP message) carrying the unsent
// tail of dir's stream, starting at byte off.
func (fs *flowState) datagram(dir int, t int64, off int) {
	n := fs.streams[dir].size - off
	fs.add(pkt{at: t, dir: uint8(dir), off: uint32(off), n: uint32(n)})
}

func (fs *flowState) scriptUDP() {
	f := &fs.flow
	fs.setupHeaders()
	rtt := int64(f.RTT)
	t := f.Start.UnixNano()
	for i := 0; i < f.Exchanges; i++ {
		switch {
		case i == 0:
		case f.Interval > 0:
			t = max(t, fs.nextExchange(f.Start.UnixNano(), i))
		default:
			t += fs.logBetween(time.Millisecond, time.Second)
		}
		var req, resp []byte // literals, in the first exchange only
		if i == 0 {
			req, resp = f.ClientPayload, f.ServerPayload
		}
		for left := max(f.RequestBytes, len(req), 0); ; {
			k := fs.appendDatagram(c2s, min(left, maxDatagram), &req)
			fs.datagram(c2s, t, fs.streams[c2s].size-k)
			left -= k
			if left <= 0 {
				break
			}
			t += fs.between(5*time.Microsecond, 200*time.Microsecond)
		}
		rt := t + rtt + fs.logBetween(50*time.Microsecond, 5*time.Millisecond)
		for left := max(f.ResponseBytes, len(resp)); left > 0; {
			k := fs.appendDatagram(s2c, min(left, maxDatagram), &resp)
			fs.datagram(s2c, rt, fs.streams[s2c].size-k)
			left -= k
			rt += fs.between(5*time.Microsecond, 200*time.Microsecond)
		}
		if f.ResponseBytes > 0 || i == 0 && len(f.ServerPayload) > 0 {
			t = rt
		}
	}
}

// appendDatagram appends one datagram of n bytes to dir's stream and
// returns its size: the pending literal (which it consumes) and filler, or
// the whole literal when that is longer than n.
func (fs *flowState) appendDatagram(dir, n int, literal *[]byte) int {
	if len(*literal) == 0 {
		fs.appendFill(dir, n)
		return n
	}
	lit := *literal
	*literal = nil
	fs.appendLit(dir, lit)
	fs.appendFill(dir, n-len(lit))
	return max(n, len(lit))
}

func (fs *flowState) scriptICMP() {
	f := &fs.flow
	fs.setupHeaders()
	size := f.RequestBytes
	if size == 0 {
		size = 56
	}
	t := f.Start.UnixNano()
	for i := 0; i < f.Exchanges; i++ {
		// Both streams hold the same filler at the same offsets, so the
		// reply echoes the request's payload byte for byte.
		off := fs.streams[c2s].size
		fs.appendFill(c2s, size)
		fs.appendFill(s2c, size)
		fs.add(pkt{at: t, dir: c2s, off: uint32(off), n: uint32(size), seq: uint32(i + 1)})
		fs.add(pkt{at: t + int64(f.RTT), dir: s2c, off: uint32(off), n: uint32(size), seq: uint32(i + 1)})
		t += int64(time.Second) + fs.between(0, time.Millisecond)
	}
}

func (fs *flowState) scriptDNS() error {
	f := &fs.flow
	d := f.DNS
	if d == nil || d.Name == "" {
		return fmt.Errorf("kind dns needs a DNSSpec with a name: %w", ErrBadFlow)
	}
	if d.Type == 0 {
		spec := *d
		spec.Type = TypeA
		f.DNS = &spec
		d = f.DNS
	}
	fs.setupHeaders()
	id := uint16(fs.rng.Uint32())
	t := f.Start.UnixNano()

	start := len(fs.lit)
	b := binary.BigEndian.AppendUint16(fs.lit, id)
	b = append(b, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0) // RD, one question
	var err error
	if b, err = appendDNSName(b, d.Name); err != nil {
		return err
	}
	b = binary.BigEndian.AppendUint16(b, d.Type)
	b = append(b, 0, 1) // class IN
	question := b[start+12:]
	fs.lit = b
	fs.addLit(c2s, start, len(fs.lit))
	fs.datagram(c2s, t, 0)

	start = len(fs.lit)
	b = binary.BigEndian.AppendUint16(fs.lit, id)
	b = append(b, 0x81, 0x80|d.RCode&0x0f, 0, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(d.Answers)))
	b = append(b, 0, 0, 0, 0)
	b = append(b, question...)
	owner := 12 // compression pointer target: the question name
	for _, a := range d.Answers {
		typ := a.Type
		switch {
		case typ != 0:
		case a.Target != "":
			typ = TypeCNAME
		case a.Addr.Is6() && !a.Addr.Is4In6():
			typ = TypeAAAA
		default:
			typ = TypeA
		}
		b = append(b, 0xc0|byte(owner>>8), byte(owner))
		b = binary.BigEndian.AppendUint16(b, typ)
		b = append(b, 0, 1)
		b = binary.BigEndian.AppendUint32(b, a.TTL)
		rdAt := len(b)
		b = append(b, 0, 0)
		switch typ {
		case TypeA:
			v := a.Addr.Unmap().As4()
			b = append(b, v[:]...)
		case TypeAAAA:
			v := a.Addr.As16()
			b = append(b, v[:]...)
		case TypeCNAME:
			owner = len(b) - start
			if b, err = appendDNSName(b, a.Target); err != nil {
				return err
			}
		case TypeTXT:
			b = append(b, byte(len(a.Target)))
			b = append(b, a.Target...)
		default:
			b = append(b, a.Target...)
		}
		binary.BigEndian.PutUint16(b[rdAt:], uint16(len(b)-rdAt-2))
	}
	fs.lit = b
	fs.addLit(s2c, start, len(fs.lit))
	fs.datagram(s2c, t+int64(f.RTT)+fs.logBetween(20*time.Microsecond, 80*time.Millisecond), 0)
	return nil
}

// appendDNSName appends name in uncompressed label form.
func appendDNSName(b []byte, name string) ([]byte, error) {
	name = strings.TrimSuffix(name, ".")
	if len(name) > 253 {
		return b, fmt.Errorf("DNS name %q longer than 253 bytes: %w", name, ErrBadFlow)
	}
	for name != "" {
		label, rest, _ := strings.Cut(name, ".")
		if len(label) == 0 || len(label) > 63 {
			return b, fmt.Errorf("DNS name %q has an empty or over-long label: %w", name, ErrBadFlow)
		}
		b = append(b, byte(len(label)))
		b = append(b, label...)
		name = rest
	}
	return append(b, 0), nil
}
