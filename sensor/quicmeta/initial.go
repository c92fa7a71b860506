// Package quicmeta owns the extraction of handshake metadata from QUIC
// client Initial packets: it removes Initial packet protection (RFC 9001
// section 5), collects CRYPTO frames, reassembles the ClientHello and hands
// it to tlsmeta. Initial keys derive from public values, so this reads
// nothing a passive observer is not meant to read.
package quicmeta

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
)

// Versions with known Initial salts.
const (
	Version1       uint32 = 0x00000001
	VersionDraft29 uint32 = 0xff00001d
)

var (
	saltV1      = []byte{0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a}
	saltDraft29 = []byte{0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0, 0x43, 0x90, 0xa8, 0x99}
)

// Sentinel errors, for counting by kind.
var (
	// ErrNotQUIC means the datagram holds no long-header QUIC packet.
	ErrNotQUIC = errors.New("quicmeta: not a QUIC long-header packet")
	// ErrNoInitial means the datagram's long-header packets include no Initial.
	ErrNoInitial = errors.New("quicmeta: no Initial packet in datagram")
	// ErrUnsupportedVersion means the Initial uses a version whose salt is unknown.
	ErrUnsupportedVersion = errors.New("quicmeta: unsupported QUIC version")
	// ErrMalformed means a header or frame violates the encoding.
	ErrMalformed = errors.New("quicmeta: malformed packet")
	// ErrDecrypt means the payload failed authentication: not a client
	// Initial (e.g. a server Initial), corrupted, or a wrong DCID.
	ErrDecrypt = errors.New("quicmeta: Initial payload failed authentication")
	// ErrTooLarge means CRYPTO data lies beyond the reassembly bound.
	ErrTooLarge = errors.New("quicmeta: CRYPTO data exceeds bound")
)

// Frame types that may appear in Initial packets (RFC 9000 section 12.4).
const (
	framePadding         = 0x00
	framePing            = 0x01
	frameAck             = 0x02
	frameAckECN          = 0x03
	frameCrypto          = 0x06
	frameConnectionClose = 0x1c
	frameAppClose        = 0x1d
)

// maxCIDLen is generous: RFC 9000 limits v1 to 20 bytes, and the invariants
// (RFC 8999) to 255.
const maxCIDLen = 20

// CryptoFrame is one CRYPTO frame's data; Data aliases Initial's buffer.
type CryptoFrame struct {
	Offset uint64
	Data   []byte
}

// Initial is the decrypted content of one client Initial packet. Slices
// alias the Parser's buffers and are valid until its next Parse.
type Initial struct {
	Version      uint32
	DCID, SCID   []byte
	TokenLen     int
	PacketNumber uint64
	Crypto       []CryptoFrame
	Ping         bool
	Ack          bool
	// ConnectionClose is set when the packet carries CONNECTION_CLOSE;
	// CloseErrorCode holds its error code.
	ConnectionClose bool
	CloseErrorCode  uint64
	// UnknownFrame is the first frame type that stopped parsing, if any.
	UnknownFrame uint64
	HasUnknown   bool
}

// keys is the client Initial protection for one DCID and version.
type keys struct {
	version uint32
	dcid    [maxCIDLen]byte
	dcidLen int
	aead    cipher.AEAD
	iv      [12]byte
	hp      cipher.Block
}

// Parser decrypts client Initial packets. The zero value is ready to use.
// It keeps the keys that last opened a packet, so the Initials of one
// connection derive keys once, including those the client sends to the
// connection ID the server chose, which keep the keys of the client's first
// DCID (RFC 9001 section 5.2). Not safe for concurrent use.
type Parser struct {
	k     keys
	valid bool
	// next holds keys derived for a packet's DCID until they open it.
	next keys
	buf  []byte
	// mask and nonce live here, not on the stack: passing them to the
	// cipher interfaces would make them escape on every packet.
	mask  [16]byte
	nonce [12]byte
	dcid  [maxCIDLen]byte
	scid  [maxCIDLen]byte
}

func saltFor(version uint32) []byte {
	switch {
	case version == Version1:
		return saltV1
	case version >= VersionDraft29 && version <= 0xff000020:
		// Drafts 29 to 32 share one salt.
		return saltDraft29
	}
	return nil
}

// ClientInitialSecrets derives the client Initial AEAD key, IV and header
// protection key for a DCID (RFC 9001 section 5.2).
func ClientInitialSecrets(version uint32, dcid []byte) (key, iv, hp []byte, err error) {
	var s initialSecrets
	if !s.derive(version, dcid) {
		return nil, nil, nil, ErrUnsupportedVersion
	}
	return append([]byte(nil), s.key[:]...), append([]byte(nil), s.iv[:]...), append([]byte(nil), s.hp[:]...), nil
}

// initialSecrets holds the client Initial key material of one DCID.
type initialSecrets struct {
	key [16]byte
	iv  [12]byte
	hp  [16]byte
}

// derive computes the secrets with HMAC-SHA256 over stack buffers: the
// crypto/hkdf and crypto/hmac APIs allocate a dozen hash states per
// derivation, which once per flow was most of the cost of a new flow. The
// keys and messages here are short, so every HMAC is two sha256.Sum256.
func (s *initialSecrets) derive(version uint32, dcid []byte) bool {
	salt := saltFor(version)
	if salt == nil {
		return false
	}
	var initial, client [sha256.Size]byte
	if len(dcid) <= 64 {
		hmacSHA256(&initial, salt, dcid)
	} else {
		// Not reachable through Parse, which bounds the DCID at 20 bytes.
		prk, err := hkdf.Extract(sha256.New, dcid, salt)
		if err != nil {
			return false
		}
		copy(initial[:], prk)
	}
	expandLabel(&client, initial[:], "client in", sha256.Size)
	var t [sha256.Size]byte
	expandLabel(&t, client[:], "quic key", 16)
	copy(s.key[:], t[:])
	expandLabel(&t, client[:], "quic iv", 12)
	copy(s.iv[:], t[:])
	expandLabel(&t, client[:], "quic hp", 16)
	copy(s.hp[:], t[:])
	return true
}

// hmacSHA256 computes HMAC-SHA256(key, msg) for a key of at most 64 bytes
// and a message of at most 64 bytes.
func hmacSHA256(out *[sha256.Size]byte, key, msg []byte) {
	var buf [64 + 64]byte
	copy(buf[:64], key)
	xorPad(&buf, 0x36)
	n := copy(buf[64:], msg)
	inner := sha256.Sum256(buf[:64+n])
	xorPad(&buf, 0x36^0x5c)
	copy(buf[64:], inner[:])
	*out = sha256.Sum256(buf[:64+sha256.Size])
}

// xorPad XORs the key block at the start of buf with pad, a word at a time.
func xorPad(buf *[128]byte, pad byte) {
	p := uint64(pad) * 0x0101010101010101
	for i := 0; i < 64; i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], binary.LittleEndian.Uint64(buf[i:])^p)
	}
}

// expandLabel is HKDF-Expand-Label from RFC 8446 section 7.1 with an empty
// context, for an output of at most one hash length: T(1) truncated.
func expandLabel(out *[sha256.Size]byte, secret []byte, label string, length int) {
	var info [4 + 6 + 16 + 1]byte
	b := binary.BigEndian.AppendUint16(info[:0], uint16(length))
	b = append(b, byte(6+len(label)))
	b = append(b, "tls13 "...)
	b = append(b, label...)
	b = append(b, 0, 1) // empty context, then HKDF-Expand's counter
	hmacSHA256(out, secret, b)
}

// Forget drops the kept keys: the next packet derives its own. Use it
// between connections, whose Initials never share keys.
func (p *Parser) Forget() { p.valid = false }

// derive sets k to the client Initial keys of a version and DCID.
func (k *keys) derive(version uint32, dcid []byte) error {
	var sec initialSecrets
	if !sec.derive(version, dcid) {
		return ErrUnsupportedVersion
	}
	block, err := aes.NewCipher(sec.key[:])
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	hpBlock, err := aes.NewCipher(sec.hp[:])
	if err != nil {
		return err
	}
	k.version = version
	k.dcidLen = copy(k.dcid[:], dcid)
	k.aead = aead
	k.iv = sec.iv
	k.hp = hpBlock
	return nil
}

func (k *keys) of(version uint32, dcid []byte) bool {
	return k.version == version && string(k.dcid[:k.dcidLen]) == string(dcid)
}

// Parse finds the first Initial packet in a UDP datagram (skipping other
// coalesced long-header packets), removes its protection with the client
// Initial keys and parses its frames into in. The datagram is not modified
// or retained.
func (p *Parser) Parse(datagram []byte, in *Initial) error {
	*in = Initial{Crypto: in.Crypto[:0]}
	if len(datagram) == 0 || datagram[0]&0x80 == 0 {
		return ErrNotQUIC
	}
	for b := datagram; len(b) > 0; {
		if b[0]&0x80 == 0 {
			break // a short-header packet ends the coalesced run
		}
		h, err := parseLongHeader(b)
		if err != nil {
			return err
		}
		if h.initial {
			return p.decrypt(b[:h.end], h, in)
		}
		b = b[h.end:]
	}
	return ErrNoInitial
}

type longHeader struct {
	version    uint32
	dcid, scid []byte
	tokenLen   int
	pnOffset   int
	end        int // end of this packet in the datagram
	initial    bool
}

func parseLongHeader(b []byte) (longHeader, error) {
	var h longHeader
	if len(b) < 7 {
		return h, ErrMalformed
	}
	h.version = binary.BigEndian.Uint32(b[1:5])
	if h.version == 0 {
		return h, ErrNotQUIC // version negotiation: no packets to follow
	}
	off := 5
	dl := int(b[off])
	off++
	if off+dl+1 > len(b) {
		return h, ErrMalformed
	}
	h.dcid = b[off : off+dl]
	off += dl
	sl := int(b[off])
	off++
	if off+sl > len(b) {
		return h, ErrMalformed
	}
	h.scid = b[off : off+sl]
	off += sl
	typ := b[0] >> 4 & 3
	if saltFor(h.version) == nil {
		// Unknown versions may lay out the rest differently; stop here.
		return h, ErrUnsupportedVersion
	}
	if dl > maxCIDLen || sl > maxCIDLen {
		return h, ErrMalformed
	}
	switch typ {
	case 0: // Initial
		h.initial = true
		tl, n := readVarint(b[off:])
		if n == 0 || tl > uint64(len(b)) {
			return h, ErrMalformed
		}
		off += n
		if off+int(tl) > len(b) {
			return h, ErrMalformed
		}
		h.tokenLen = int(tl)
		off += int(tl)
	case 3: // Retry: no Length field, it fills the datagram
		h.end = len(b)
		return h, nil
	}
	length, n := readVarint(b[off:])
	if n == 0 {
		return h, ErrMalformed
	}
	off += n
	if length > uint64(len(b)-off) {
		return h, ErrMalformed
	}
	h.pnOffset = off
	h.end = off + int(length)
	return h, nil
}

func (p *Parser) decrypt(pkt []byte, h longHeader, in *Initial) error {
	if p.valid && p.k.version == h.version {
		// The kept keys first: a packet to another DCID may still be the
		// same connection's, sent to the server's connection ID.
		err := p.open(&p.k, pkt, h, in)
		if !errors.Is(err, ErrDecrypt) || p.k.of(h.version, h.dcid) {
			return err
		}
	}
	// A new connection, or the client's Initials after a Retry, which use
	// the keys of the Retry's connection ID. The keys are kept only once
	// they open the packet, so garbage does not displace the connection's.
	if err := p.next.derive(h.version, h.dcid); err != nil {
		return err
	}
	if err := p.open(&p.next, pkt, h, in); err != nil {
		return err
	}
	p.k, p.next = p.next, p.k
	p.valid = true
	return nil
}

// open removes the packet's protection with k and parses its frames.
func (p *Parser) open(k *keys, pkt []byte, h longHeader, in *Initial) error {
	// The sample starts 4 bytes after the packet number's first byte,
	// whatever the packet number's real length.
	if h.pnOffset+4+16 > len(pkt) {
		return ErrMalformed
	}
	mask := p.mask[:]
	k.hp.Encrypt(mask, pkt[h.pnOffset+4:h.pnOffset+20])

	p.buf = append(p.buf[:0], pkt...)
	b := p.buf
	b[0] ^= mask[0] & 0x0f
	pnLen := int(b[0]&3) + 1
	var pn uint64
	for i := range pnLen {
		b[h.pnOffset+i] ^= mask[1+i]
		pn = pn<<8 | uint64(b[h.pnOffset+i])
	}
	hdrLen := h.pnOffset + pnLen
	if len(b)-hdrLen < k.aead.Overhead() {
		return ErrMalformed
	}
	// Without the largest acknowledged packet number, the truncated
	// number is the best estimate; client Initials start at 0.
	p.nonce = k.iv
	for i := range 8 {
		p.nonce[4+i] ^= byte(pn >> (56 - 8*i))
	}
	plain, err := k.aead.Open(b[hdrLen:hdrLen], p.nonce[:], b[hdrLen:], b[:hdrLen])
	if err != nil {
		return ErrDecrypt
	}
	in.Version = h.version
	in.DCID = p.dcid[:copy(p.dcid[:], h.dcid)]
	in.SCID = p.scid[:copy(p.scid[:], h.scid)]
	in.TokenLen = h.tokenLen
	in.PacketNumber = pn
	return parseFrames(plain, in)
}

// parseFrames walks the frames of a decrypted Initial. It stops without
// error at a frame type that cannot appear in Initials, after recording it.
func parseFrames(b []byte, in *Initial) error {
	for len(b) > 0 {
		typ, n := readVarint(b)
		if n == 0 {
			return ErrMalformed
		}
		b = b[n:]
		switch typ {
		case framePadding:
			// Client Initials are padded to 1200 bytes: skip the zeros a
			// word at a time.
			for len(b) >= 8 && binary.LittleEndian.Uint64(b) == 0 {
				b = b[8:]
			}
			for len(b) > 0 && b[0] == 0 {
				b = b[1:]
			}
		case framePing:
			in.Ping = true
		case frameAck, frameAckECN:
			in.Ack = true
			var count uint64
			var ok bool
			// largest, delay, range count, first range
			if b, ok = skipVarints(b, 2); !ok {
				return ErrMalformed
			}
			if count, n = readVarint(b); n == 0 || count > uint64(len(b)) {
				return ErrMalformed
			}
			b = b[n:]
			extra := 1 + 2*count // first range + (gap, length) pairs
			if typ == frameAckECN {
				extra += 3
			}
			if b, ok = skipVarints(b, extra); !ok {
				return ErrMalformed
			}
		case frameCrypto:
			off, n1 := readVarint(b)
			if n1 == 0 {
				return ErrMalformed
			}
			l, n2 := readVarint(b[n1:])
			if n2 == 0 || l > uint64(len(b)-n1-n2) {
				return ErrMalformed
			}
			b = b[n1+n2:]
			in.Crypto = append(in.Crypto, CryptoFrame{Offset: off, Data: b[:l:l]})
			b = b[l:]
		case frameConnectionClose, frameAppClose:
			in.ConnectionClose = true
			code, n := readVarint(b)
			if n == 0 {
				return ErrMalformed
			}
			in.CloseErrorCode = code
			b = b[n:]
			if typ == frameConnectionClose {
				var ok bool
				if b, ok = skipVarints(b, 1); !ok {
					return ErrMalformed
				}
			}
			rl, n := readVarint(b)
			if n == 0 || rl > uint64(len(b)-n) {
				return ErrMalformed
			}
			b = b[n+int(rl):]
		default:
			in.UnknownFrame, in.HasUnknown = typ, true
			return nil
		}
	}
	return nil
}

// readVarint decodes a QUIC variable-length integer; n is 0 on truncation.
func readVarint(b []byte) (v uint64, n int) {
	if len(b) == 0 {
		return 0, 0
	}
	n = 1 << (b[0] >> 6)
	if len(b) < n {
		return 0, 0
	}
	v = uint64(b[0] & 0x3f)
	for i := 1; i < n; i++ {
		v = v<<8 | uint64(b[i])
	}
	return v, n
}

func skipVarints(b []byte, count uint64) ([]byte, bool) {
	for ; count > 0; count-- {
		_, n := readVarint(b)
		if n == 0 {
			return b, false
		}
		b = b[n:]
	}
	return b, true
}
