package synth

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"time"
)

// tcpConn tracks sequence space while a TCP flow is scripted. The sensor
// is assumed next to the client: client packets follow what they answer
// by microseconds, server packets by a round trip.
type tcpConn struct {
	fs       *flowState
	isn      [2]uint32
	sent     [2]int    // stream bytes already segmented
	fin      [2]uint32 // 1 once a FIN was sent
	mss      int
	nsPerB   [2]float64 // serialization time per byte
	ackDelay [2]int64   // from a segment of dir to the peer's ACK at the sensor
}

func (c *tcpConn) nxt(dir int) uint32 {
	return c.isn[dir] + 1 + uint32(c.sent[dir]) + c.fin[dir]
}

// push segments the unsent bytes of dir's stream starting at t, as one
// application write: PSH on the last segment, the peer ACKing every second
// segment and the last. It returns the time of the last segment.
func (c *tcpConn) push(dir int, t int64) int64 {
	fs := c.fs
	size := fs.streams[dir].size
	peer := 1 - dir
	last := t
	for k := 1; c.sent[dir] < size; k++ {
		n := min(c.mss, size-c.sent[dir])
		fl := uint8(flagACK)
		if c.sent[dir]+n == size {
			fl |= flagPSH
		}
		fs.add(pkt{at: t, dir: uint8(dir), off: uint32(c.sent[dir]), n: uint32(n),
			seq: c.isn[dir] + 1 + uint32(c.sent[dir]), ack: c.nxt(peer), flags: fl})
		c.sent[dir] += n
		if k%2 == 0 || c.sent[dir] == size {
			fs.add(pkt{at: t + c.ackDelay[dir], dir: uint8(peer), seq: c.nxt(peer), ack: c.nxt(dir), flags: flagACK})
		}
		last = t
		t += int64(float64(n)*c.nsPerB[dir]) + fs.between(time.Microsecond, 8*time.Microsecond)
	}
	return last
}

func (fs *flowState) scriptTCP(cert []byte) error {
	f := &fs.flow
	fs.setupHeaders()
	r := fs.rng
	rtt := int64(f.RTT)
	cDelay := fs.between(20*time.Microsecond, 200*time.Microsecond)
	c := &tcpConn{fs: fs, isn: [2]uint32{r.Uint32(), r.Uint32()}, mss: f.MSS}
	c.nsPerB[c2s] = 8e9 / float64(5e6+r.Int64N(95e6))   // 5-100 Mbit/s up
	c.nsPerB[s2c] = 8e9 / float64(10e6+r.Int64N(290e6)) // 10-300 Mbit/s down
	c.ackDelay = [2]int64{rtt, cDelay}
	serverDelay := func() int64 { return rtt + fs.logBetween(100*time.Microsecond, 20*time.Millisecond) }

	t := f.Start.UnixNano()
	fs.add(pkt{at: t, dir: c2s, seq: c.isn[c2s], flags: flagSYN, synOpts: true})
	t += rtt
	fs.add(pkt{at: t, dir: s2c, seq: c.isn[s2c], ack: c.isn[c2s] + 1, flags: flagSYN | flagACK, synOpts: true})
	t += cDelay
	fs.add(pkt{at: t, dir: c2s, seq: c.isn[c2s] + 1, ack: c.isn[s2c] + 1, flags: flagACK})

	var appOverhead int // per-record bytes added around application data
	switch f.Kind {
	case TLS:
		var err error
		if t, appOverhead, err = fs.tlsHandshake(c, t+cDelay, serverDelay, cert); err != nil {
			return err
		}
	case HTTP:
		if f.HTTP == nil {
			return fmt.Errorf("kind http needs an HTTPSpec: %w", ErrBadFlow)
		}
	}

	var first int64 // start of the first exchange
	for i := 0; i < f.Exchanges; i++ {
		t += cDelay
		switch {
		case i == 0:
			first = t
		case f.Interval > 0:
			t = max(t, fs.nextExchange(first, i))
		default:
			t += fs.logBetween(time.Millisecond, 2*time.Second)
		}
		switch f.Kind {
		case TLS:
			fs.appendRecords(c2s, f.RequestBytes, appOverhead)
		case HTTP:
			fs.httpRequest(f.RequestBytes)
		default:
			fs.appendPayload(c2s, i, f.ClientPayload, f.RequestBytes)
		}
		if fs.streams[c2s].size > c.sent[c2s] {
			t = c.push(c2s, t)
		}
		switch f.Kind {
		case TLS:
			fs.appendRecords(s2c, f.ResponseBytes, appOverhead)
		case HTTP:
			fs.httpResponse(f.ResponseBytes)
		default:
			fs.appendPayload(s2c, i, f.ServerPayload, f.ResponseBytes)
		}
		if fs.streams[s2c].size > c.sent[s2c] {
			t = c.push(s2c, t+serverDelay())
		}
	}

	t += cDelay + fs.logBetween(100*time.Microsecond, 500*time.Millisecond)
	switch f.End {
	case EndFIN:
		fs.add(pkt{at: t, dir: c2s, seq: c.nxt(c2s), ack: c.nxt(s2c), flags: flagFIN | flagACK})
		c.fin[c2s] = 1
		t += rtt
		fs.add(pkt{at: t, dir: s2c, seq: c.nxt(s2c), ack: c.nxt(c2s), flags: flagFIN | flagACK})
		c.fin[s2c] = 1
		fs.add(pkt{at: t + cDelay, dir: c2s, seq: c.nxt(c2s), ack: c.nxt(s2c), flags: flagACK})
	case EndRST:
		fs.add(pkt{at: t, dir: c2s, seq: c.nxt(c2s), ack: c.nxt(s2c), flags: flagRST | flagACK})
	}
	return nil
}

// tlsHandshake scripts the ClientHello and the server's flight, then the
// client's finishing flight. It returns the time the client is ready to
// send application data and the per-record overhead of the version chosen.
func (fs *flowState) tlsHandshake(c *tcpConn, t int64, serverDelay func() int64, cert []byte) (int64, int, error) {
	f := &fs.flow
	if f.TLS == nil {
		return 0, 0, fmt.Errorf("kind tls needs a TLSSpec: %w", ErrBadFlow)
	}
	fs.hello = resolveHello(f.TLS, false, false)
	h := &fs.hello
	r := fs.rng

	start := len(fs.lit)
	fs.lit = appendRecordHeader(fs.lit, recordHandshake, 0x0301, 0)
	var sniOff int
	fs.lit, sniOff = appendClientHello(fs.lit, h, r, nil)
	binary.BigEndian.PutUint16(fs.lit[start+3:], uint16(len(fs.lit)-start-5))
	if h.split {
		// Cut inside the host name, the way SNI-evasion tools do, so a
		// sensor must reassemble to see it.
		cut := start + (len(fs.lit)-start)/2
		if sniOff >= 0 {
			cut = start + 5 + sniOff + max(1, len(h.sni)/2)
		}
		fs.addLit(c2s, start, cut)
		t = c.push(c2s, t)
		fs.addLit(c2s, cut, len(fs.lit))
		t = c.push(c2s, t+fs.between(10*time.Microsecond, 300*time.Microsecond))
	} else {
		fs.addLit(c2s, start, len(fs.lit))
		t = c.push(c2s, t)
	}

	// Server flight: ServerHello, then either the TLS 1.3 encrypted
	// handshake or the TLS 1.2 certificate messages in the clear.
	start = len(fs.lit)
	fs.lit = appendRecordHeader(fs.lit, recordHandshake, 0x0303, 0)
	fs.lit = appendServerHello(fs.lit, h, r)
	binary.BigEndian.PutUint16(fs.lit[start+3:], uint16(len(fs.lit)-start-5))
	certLen := 1800 + r.IntN(3500)
	if h.tls13() {
		fs.lit = append(fs.lit, recordCCS, 3, 3, 0, 1, 1)
		fs.lit = appendRecordHeader(fs.lit, recordAppData, 0x0303, certLen)
		fs.addLit(s2c, start, len(fs.lit))
		fs.appendFill(s2c, certLen)
	} else {
		// Certificate: a real DER certificate, so dissectors parse it.
		certLen = len(cert)
		fs.lit = appendRecordHeader(fs.lit, recordHandshake, 0x0303, certLen+10)
		fs.lit = append(fs.lit, 11, byte((certLen+6)>>16), byte((certLen+6)>>8), byte(certLen+6))
		fs.lit = append(fs.lit, byte((certLen+3)>>16), byte((certLen+3)>>8), byte(certLen+3))
		fs.lit = append(fs.lit, byte(certLen>>16), byte(certLen>>8), byte(certLen))
		fs.lit = append(fs.lit, cert...)
		fs.lit = append(fs.lit, recordHandshake, 3, 3, 0, 4, 14, 0, 0, 0) // ServerHelloDone
		fs.addLit(s2c, start, len(fs.lit))
	}
	t = c.push(s2c, t+serverDelay())
	t += fs.between(100*time.Microsecond, 2*time.Millisecond) // client verifies the chain

	if h.tls13() {
		fs.appendLit(c2s, []byte{recordCCS, 3, 3, 0, 1, 1, recordAppData, 3, 3, 0, 53})
		fs.appendFill(c2s, 53)
		return t, 17, nil
	}
	// TLS 1.2: ClientKeyExchange, ChangeCipherSpec, Finished; the server
	// answers with its own ChangeCipherSpec and Finished.
	start = len(fs.lit)
	fs.lit = append(fs.lit, recordHandshake, 3, 3, 0, 37, 16, 0, 0, 33, 32)
	fs.lit = appendRandom(fs.lit, r, 32)
	fs.lit = append(fs.lit, recordCCS, 3, 3, 0, 1, 1, recordHandshake, 3, 3, 0, 40)
	fs.addLit(c2s, start, len(fs.lit))
	fs.appendFill(c2s, 40)
	t = c.push(c2s, t)
	fs.appendLit(s2c, []byte{recordCCS, 3, 3, 0, 1, 1, recordHandshake, 3, 3, 0, 40})
	fs.appendFill(s2c, 40)
	t = c.push(s2c, t+serverDelay())
	return t, 24, nil
}

// appendPayload appends exchange i's n application bytes to dir's stream:
// the literal first, in the first exchange only, then filler.
func (fs *flowState) appendPayload(dir, i int, literal []byte, n int) {
	if i == 0 && len(literal) > 0 {
		fs.appendLit(dir, literal)
		n -= len(literal)
	}
	fs.appendFill(dir, n)
}

// nextExchange is when exchange i of a flow with an Interval starts, given
// the first exchange's start: i intervals later, plus up to a tenth of one.
func (fs *flowState) nextExchange(first int64, i int) int64 {
	iv := fs.flow.Interval
	return first + int64(i)*int64(iv) + fs.between(0, iv/10)
}

// appendRecords frames n application bytes as TLS application data records.
func (fs *flowState) appendRecords(dir, n, overhead int) {
	const maxRecord = 16384
	for n > 0 {
		k := min(n, maxRecord)
		fs.appendLit(dir, []byte{recordAppData, 3, 3, byte((k + overhead) >> 8), byte(k + overhead)})
		fs.appendFill(dir, k+overhead)
		n -= k
	}
}

func (fs *flowState) httpRequest(body int) {
	h := fs.flow.HTTP
	method, path := h.Method, h.Path
	if method == "" {
		method = "GET"
		if body > 0 {
			method = "POST"
		}
	}
	if path == "" {
		path = "/"
	}
	start := len(fs.lit)
	b := fs.lit
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, h.Host...)
	if h.UserAgent != "" {
		b = append(b, "\r\nUser-Agent: "...)
		b = append(b, h.UserAgent...)
	}
	b = append(b, "\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n"...)
	if body > 0 {
		b = append(b, "Content-Type: application/octet-stream\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(body), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	fs.lit = b
	fs.addLit(c2s, start, len(fs.lit))
	fs.appendFill(c2s, body)
}

func (fs *flowState) httpResponse(body int) {
	start := len(fs.lit)
	b := fs.lit
	b = append(b, "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/octet-stream\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(body), 10)
	b = append(b, "\r\nConnection: keep-alive\r\n\r\n"...)
	fs.lit = b
	fs.addLit(s2c, start, len(fs.lit))
	fs.appendFill(s2c, body)
}
