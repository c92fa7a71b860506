package tlsmeta

import (
	"slices"

	"github.com/edgeward/edgeward/sensor/intern"
)

// Extension types the parser looks into.
const (
	extServerName          = 0x0000
	extSupportedGroups     = 0x000a
	extECPointFormats      = 0x000b
	extSignatureAlgorithms = 0x000d
	extALPN                = 0x0010
	extSupportedVersions   = 0x002b
)

// ClientHello holds the metadata of one ClientHello. The zero value is ready
// to use; reuse one value per goroutine to avoid allocating: its slices are
// truncated and refilled by every parse. Lists keep GREASE values and wire
// order; the fingerprint methods drop GREASE themselves.
//
// A ClientHello is not safe for concurrent use, including the fingerprint
// methods, which use internal scratch space.
type ClientHello struct {
	// LegacyVersion is the client_version field (0x0303 for TLS 1.2 and 1.3).
	LegacyVersion uint16
	// Version is the highest non-GREASE value of supported_versions, or
	// LegacyVersion when that extension is absent.
	Version             uint16
	CipherSuites        []uint16
	Extensions          []uint16 // extension types in wire order
	ServerName          string   // first host_name of server_name, "" if none
	ALPN                []string // protocol names in wire order
	SupportedGroups     []uint16
	ECPointFormats      []uint8
	SignatureAlgorithms []uint16
	SupportedVersions   []uint16
	// MalformedExtensions counts extensions whose body could not be parsed;
	// their type is still listed in Extensions, as fingerprinting tools do.
	MalformedExtensions int
	// Names, when set, shares ServerName strings across hellos; Reset
	// keeps it.
	Names *intern.Table

	rd       handshakeReader
	scratch  []byte   // fingerprint text
	sorted   []uint16 // fingerprint sort buffer
	lastALPN string   // backing string of the last ALPN list, reused if equal
}

// Reset clears the parsed fields, keeping allocated capacity.
func (h *ClientHello) Reset() {
	h.LegacyVersion = 0
	h.Version = 0
	h.CipherSuites = h.CipherSuites[:0]
	h.Extensions = h.Extensions[:0]
	h.ServerName = ""
	h.ALPN = h.ALPN[:0]
	h.SupportedGroups = h.SupportedGroups[:0]
	h.ECPointFormats = h.ECPointFormats[:0]
	h.SignatureAlgorithms = h.SignatureAlgorithms[:0]
	h.SupportedVersions = h.SupportedVersions[:0]
	h.MalformedExtensions = 0
}

// ParseStream parses the ClientHello at the start of the client-to-server
// bytes of a TCP stream. stream must hold the stream's bytes from its first
// byte, in order; the ClientHello may span several TLS records and any
// number of segments. It returns ErrNeedMore while stream is a valid but
// incomplete prefix: call again with the longer stream. stream is not
// retained.
func (h *ClientHello) ParseStream(stream []byte) error {
	h.rd.reset(stream)
	msg, err := h.rd.next()
	h.rd.stream, h.rd.rec = nil, nil
	if err != nil {
		if err == errEndOfHandshake {
			return ErrMalformed
		}
		return err
	}
	return h.ParseHandshake(msg)
}

// ParseHandshake parses a ClientHello handshake message (type, 3-byte
// length, body) without TLS record framing, as carried in QUIC CRYPTO
// frames. Bytes after the message are ignored. It returns ErrNeedMore when
// msg is a prefix of a message. msg is not retained.
func (h *ClientHello) ParseHandshake(msg []byte) error {
	h.Reset()
	if len(msg) >= 1 && msg[0] != typeClientHello {
		return ErrUnexpectedMessage
	}
	if len(msg) < 4 {
		return ErrNeedMore
	}
	n := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
	if n > MaxHandshakeLen {
		return ErrTooLarge
	}
	if len(msg) < 4+n {
		return ErrNeedMore
	}
	if err := h.parseBody(msg[4 : 4+n]); err != nil {
		h.Reset()
		return err
	}
	return nil
}

// be16 reads a big-endian uint16; callers have checked len(b) >= 2.
func be16(b []byte) int { return int(b[0])<<8 | int(b[1]) }

// parseBody parses the ClientHello body with plain offset arithmetic: it
// runs once per flow, and the cryptobyte helpers cost several times more.
func (h *ClientHello) parseBody(b []byte) error {
	// legacy_version, random, legacy_session_id length
	if len(b) < 2+32+1 {
		return ErrMalformed
	}
	h.LegacyVersion = uint16(be16(b))
	off := 2 + 32
	off += 1 + int(b[off]) // session id
	if off+2 > len(b) {
		return ErrMalformed
	}
	nc := be16(b[off:])
	off += 2
	if nc > len(b)-off {
		return ErrMalformed
	}
	ciphers := b[off : off+nc]
	off += nc
	if off >= len(b) {
		return ErrMalformed // no compression methods
	}
	off += 1 + int(b[off])
	if off > len(b) || nc%2 != 0 {
		return ErrMalformed
	}
	h.CipherSuites = appendUint16s(h.CipherSuites, ciphers)
	h.Version = h.LegacyVersion
	if off == len(b) { // SSLv3-style hello without extensions
		return nil
	}
	if off+2 > len(b) {
		return ErrMalformed
	}
	ne := be16(b[off:])
	off += 2
	if ne > len(b)-off {
		return ErrMalformed
	}
	exts := b[off : off+ne]
	if cap(h.Extensions) < 32 {
		h.Extensions = make([]uint16, 0, 32)
	}
	for len(exts) > 0 {
		if len(exts) < 4 {
			return ErrMalformed
		}
		typ := uint16(be16(exts))
		n := be16(exts[2:])
		if n > len(exts)-4 {
			return ErrMalformed
		}
		body := exts[4 : 4+n]
		exts = exts[4+n:]
		h.Extensions = append(h.Extensions, typ)
		if !h.parseExtension(typ, body) {
			h.MalformedExtensions++
		}
	}
	// "Highest" is numeric, as in the JA4 reference implementations, so an
	// unknown experimental version (e.g. 0x7f1c) outranks 0x0304.
	var highest uint16
	for _, v := range h.SupportedVersions {
		if !IsGREASE(v) && v > highest {
			highest = v
		}
	}
	if highest != 0 {
		h.Version = highest
	}
	return nil
}

// parseExtension reports whether body was well formed.
func (h *ClientHello) parseExtension(typ uint16, body []byte) bool {
	switch typ {
	case extServerName:
		if len(body) < 2 || be16(body) != len(body)-2 {
			return false
		}
		for list := body[2:]; len(list) > 0; {
			if len(list) < 3 {
				return false
			}
			nameType := list[0]
			n := be16(list[1:])
			if n > len(list)-3 {
				return false
			}
			name := list[3 : 3+n]
			list = list[3+n:]
			if nameType == 0 && h.ServerName == "" {
				h.ServerName = h.Names.Bytes(name)
			}
		}
		return true
	case extALPN:
		if len(body) < 2 || be16(body) != len(body)-2 {
			return false
		}
		// One allocation for all names: they are substrings of one copy.
		// Most clients send one of a few lists, so the last copy is reused
		// when the bytes match: the comparison does not allocate.
		all := h.lastALPN
		if string(body[2:]) != all {
			all = string(body[2:])
			h.lastALPN = all
		}
		for off := 0; off < len(all); {
			n := int(all[off])
			if n > len(all)-off-1 {
				return false
			}
			h.ALPN = append(h.ALPN, all[off+1:off+1+n])
			off += 1 + n
		}
		return true
	case extSupportedGroups:
		return readUint16List(body, &h.SupportedGroups)
	case extSignatureAlgorithms:
		return readUint16List(body, &h.SignatureAlgorithms)
	case extSupportedVersions:
		if len(body) < 1 || int(body[0]) != len(body)-1 || len(body)%2 != 1 {
			return false
		}
		h.SupportedVersions = appendUint16s(h.SupportedVersions, body[1:])
		return true
	case extECPointFormats:
		if len(body) < 1 || int(body[0]) != len(body)-1 {
			return false
		}
		h.ECPointFormats = append(h.ECPointFormats, body[1:]...)
		return true
	}
	return true
}

// readUint16List appends a list of uint16 behind a 16-bit length that must
// span body exactly.
func readUint16List(body []byte, dst *[]uint16) bool {
	if len(body) < 2 || be16(body) != len(body)-2 || len(body)%2 != 0 {
		return false
	}
	*dst = appendUint16s(*dst, body[2:])
	return true
}

// appendUint16s appends the big-endian uint16s of b; len(b) is even.
func appendUint16s(dst []uint16, b []byte) []uint16 {
	n := len(b) / 2
	l := len(dst)
	dst = slices.Grow(dst, n)[:l+n]
	out := dst[l:]
	b = b[:2*len(out)]
	for i := range out {
		out[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	return dst
}

// IsGREASE reports whether v is a GREASE value (RFC 8701): 0x?a?a with both
// bytes equal.
func IsGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>8 == v&0xff
}
