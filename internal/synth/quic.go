package synth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"time"
)

// Initial salts from RFC 9001 section 5.2 and draft-ietf-quic-tls-29.
var (
	saltV1 = []byte{0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
		0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a}
	saltDraft29 = []byte{0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97,
		0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0, 0x43, 0x90, 0xa8, 0x99}
)

// quicMinInitial is the datagram size clients must pad Initials to.
const quicMinInitial = 1200

// initialKeys derives the client Initial packet protection keys (RFC 9001
// section 5.2) for a destination connection ID.
func initialKeys(version uint32, dcid []byte) (key, iv, hp []byte, err error) {
	salt := saltV1
	switch version {
	case QUICv1:
	case QUICDraft29:
		salt = saltDraft29
	default:
		return nil, nil, nil, fmt.Errorf("QUIC version %#08x has no known initial salt: %w", version, ErrBadFlow)
	}
	initial, err := hkdf.Extract(sha256.New, dcid, salt)
	if err != nil {
		return nil, nil, nil, err
	}
	client, err := expandLabel(initial, "client in", 32)
	if err != nil {
		return nil, nil, nil, err
	}
	if key, err = expandLabel(client, "quic key", 16); err != nil {
		return nil, nil, nil, err
	}
	if iv, err = expandLabel(client, "quic iv", 12); err != nil {
		return nil, nil, nil, err
	}
	hp, err = expandLabel(client, "quic hp", 16)
	return key, iv, hp, err
}

// expandLabel is TLS 1.3 HKDF-Expand-Label with an empty context.
func expandLabel(secret []byte, label string, n int) ([]byte, error) {
	info := make([]byte, 0, 4+6+len(label))
	info = binary.BigEndian.AppendUint16(info, uint16(n))
	info = append(info, byte(6+len(label)))
	info = append(info, "tls13 "...)
	info = append(info, label...)
	info = append(info, 0)
	return hkdf.Expand(sha256.New, secret, string(info), n)
}

// appendVarint appends a QUIC variable-length integer in its shortest form.
func appendVarint(b []byte, v uint64) []byte {
	switch {
	case v < 1<<6:
		return append(b, byte(v))
	case v < 1<<14:
		return binary.BigEndian.AppendUint16(b, uint16(v)|0x4000)
	case v < 1<<30:
		return binary.BigEndian.AppendUint32(b, uint32(v)|0x80000000)
	}
	return binary.BigEndian.AppendUint64(b, v|0xc0<<56)
}

func varintLen(v uint64) int {
	switch {
	case v < 1<<6:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<30:
		return 4
	}
	return 8
}

func (fs *flowState) quicVersion() uint32 {
	if fs.flow.QUIC == nil || fs.flow.QUIC.Version == 0 {
		return QUICv1
	}
	return fs.flow.QUIC.Version
}

// appendInitials appends the client's protected Initial packets carrying
// crypto (the ClientHello) in CRYPTO frames, one packet per datagram, each
// padded to 1200 bytes. It returns the buffer and the start offset of each
// packet after the first.
func appendInitials(b []byte, version uint32, dcid, scid, crypto []byte) ([]byte, []int, error) {
	key, iv, hpKey, err := initialKeys(version, dcid)
	if err != nil {
		return b, nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return b, nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return b, nil, err
	}
	hp, err := aes.NewCipher(hpKey)
	if err != nil {
		return b, nil, err
	}
	const pnLen = 2
	var cuts []int
	for pn, off := 0, 0; off < len(crypto); pn++ {
		if pn > 0 {
			cuts = append(cuts, len(b))
		}
		hdr := len(b)
		b = append(b, 0xc0|pnLen-1) // long header, Initial
		b = binary.BigEndian.AppendUint32(b, version)
		b = append(b, byte(len(dcid)))
		b = append(b, dcid...)
		b = append(b, byte(len(scid)))
		b = append(b, scid...)
		b = append(b, 0)    // token length
		lenAt := len(b)     // 2-byte length varint, patched below
		b = append(b, 0, 0) //
		pnAt := len(b)
		b = binary.BigEndian.AppendUint16(b, uint16(pn))
		payAt := len(b)
		payLen := quicMinInitial - (payAt - hdr) - aead.Overhead()

		// CRYPTO frame with as much of the hello as fits, then PADDING.
		room := payLen - 1 - varintLen(uint64(off)) - 2
		k := min(room, len(crypto)-off)
		b = append(b, 0x06)
		b = appendVarint(b, uint64(off))
		b = binary.BigEndian.AppendUint16(b, uint16(k)|0x4000)
		b = append(b, crypto[off:off+k]...)
		off += k
		for len(b)-payAt < payLen {
			b = append(b, 0)
		}
		binary.BigEndian.PutUint16(b[lenAt:], uint16(pnLen+payLen+aead.Overhead())|0x4000)

		var nonce [12]byte
		copy(nonce[:], iv)
		for i := 0; i < 8; i++ {
			nonce[11-i] ^= byte(uint64(pn) >> (8 * i))
		}
		b = slices.Grow(b, aead.Overhead()) // so Seal works in place
		sealed := aead.Seal(b[payAt:payAt], nonce[:], b[payAt:], b[hdr:payAt])
		b = b[:payAt+len(sealed)]

		var mask [16]byte
		hp.Encrypt(mask[:], b[pnAt+4:pnAt+20])
		b[hdr] ^= mask[0] & 0x0f
		for i := 0; i < pnLen; i++ {
			b[pnAt+i] ^= mask[1+i]
		}
	}
	return b, cuts, nil
}

// quicPacket appends the literal header of an opaque protected packet and
// registers it, with filler as ciphertext, as one datagram of dir.
func (fs *flowState) quicPacket(dir int, t int64, longType int, dcid, scid []byte, size int) {
	off := fs.streams[dir].size
	start := len(fs.lit)
	b := fs.lit
	r := fs.rng
	if longType >= 0 {
		b = append(b, 0xc0|byte(longType)<<4|byte(r.IntN(16)))
		b = binary.BigEndian.AppendUint32(b, fs.quicVersion())
		b = append(b, byte(len(dcid)))
		b = append(b, dcid...)
		b = append(b, byte(len(scid)))
		b = append(b, scid...)
		if longType == 0 {
			b = append(b, 0) // token length
		}
		rest := size - (len(b) - start) - 2
		b = binary.BigEndian.AppendUint16(b, uint16(rest)|0x4000)
	} else {
		b = append(b, 0x40|byte(r.IntN(64)))
		b = append(b, dcid...)
	}
	fs.lit = b
	fs.addLit(dir, start, len(fs.lit))
	fs.appendFill(dir, size-(len(fs.lit)-start))
	fs.datagram(dir, t, off)
}

func (fs *flowState) scriptQUIC() error {
	f := &fs.flow
	if f.TLS == nil {
		return fmt.Errorf("kind quic needs a TLSSpec for its ClientHello: %w", ErrBadFlow)
	}
	large := f.QUIC != nil && f.QUIC.LargeHello
	fs.hello = resolveHello(f.TLS, true, large)
	fs.setupHeaders()
	r := fs.rng
	rtt := int64(f.RTT)
	var cids [24]byte
	appendRandom(cids[:0], r, 24)
	dcid, scid, serverCID := cids[0:8], cids[8:16], cids[16:24]

	// The ClientHello goes into fs.lit first, then the Initials built from
	// it; only the Initials are stream bytes.
	helloAt := len(fs.lit)
	fs.lit, _ = appendClientHello(fs.lit, &fs.hello, r, scid)
	helloEnd := len(fs.lit)
	var cuts []int
	var err error
	fs.lit, cuts, err = appendInitials(fs.lit, fs.quicVersion(), dcid, scid, fs.lit[helloAt:helloEnd])
	if err != nil {
		return err
	}
	t := f.Start.UnixNano()
	prev := helloEnd
	for _, cut := range append(cuts, len(fs.lit)) {
		off := fs.streams[c2s].size
		fs.addLit(c2s, prev, cut)
		fs.datagram(c2s, t, off)
		prev = cut
		t += fs.between(5*time.Microsecond, 50*time.Microsecond)
	}

	// Server: Initial (ServerHello) and Handshake packets, opaque.
	st := t + rtt + fs.logBetween(200*time.Microsecond, 10*time.Millisecond)
	fs.quicPacket(s2c, st, 0, scid, serverCID, quicMinInitial+r.IntN(53))
	for left := 1500 + r.IntN(3500); left > 0; left -= 1200 {
		st += fs.between(5*time.Microsecond, 50*time.Microsecond)
		fs.quicPacket(s2c, st, 2, scid, serverCID, min(left, 1200)+40)
	}
	// Client: Handshake Finished. Real clients coalesce it with an Initial
	// ACK; an opaque Initial would only fail to decrypt in dissectors.
	t = st + fs.between(100*time.Microsecond, 2*time.Millisecond)
	fs.quicPacket(c2s, t, 2, serverCID, scid, 80+r.IntN(20))

	const overhead = 30 // short header, packet number, frame header, tag
	var first int64
	for i := 0; i < f.Exchanges; i++ {
		t += fs.between(20*time.Microsecond, 200*time.Microsecond)
		switch {
		case i == 0:
			first = t
		case f.Interval > 0:
			t = max(t, fs.nextExchange(first, i))
		default:
			t += fs.logBetween(time.Millisecond, 2*time.Second)
		}
		for left := max(f.RequestBytes, 1); left > 0; left -= 1170 {
			fs.quicPacket(c2s, t, -1, serverCID, nil, min(left, 1170)+overhead)
			t += fs.between(5*time.Microsecond, 100*time.Microsecond)
		}
		st := t + rtt + fs.logBetween(100*time.Microsecond, 20*time.Millisecond)
		k := 0
		for left := f.ResponseBytes; left > 0; left -= 1220 {
			fs.quicPacket(s2c, st, -1, scid, nil, min(left, 1220)+overhead)
			if k++; k%2 == 0 || left <= 1220 {
				fs.quicPacket(c2s, st+fs.between(20*time.Microsecond, 200*time.Microsecond), -1, serverCID, nil, 33+r.IntN(12))
			}
			st += fs.between(20*time.Microsecond, 150*time.Microsecond)
		}
		t = max(t, st)
	}
	if f.End != EndIdle {
		// CONNECTION_CLOSE from the client.
		fs.quicPacket(c2s, t+fs.logBetween(time.Millisecond, 500*time.Millisecond), -1, serverCID, nil, 40+r.IntN(20))
	}
	return nil
}
