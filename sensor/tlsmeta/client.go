package tlsmeta

import (
	"golang.org/x/crypto/cryptobyte"
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

	rd      handshakeReader
	scratch []byte   // fingerprint text
	sorted  []uint16 // fingerprint sort buffer
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
	if err := h.parseBody(cryptobyte.String(msg[4 : 4+n])); err != nil {
		h.Reset()
		return err
	}
	return nil
}

func (h *ClientHello) parseBody(s cryptobyte.String) error {
	var sessionID, ciphers, compression cryptobyte.String
	if !s.ReadUint16(&h.LegacyVersion) ||
		!s.Skip(32) ||
		!s.ReadUint8LengthPrefixed(&sessionID) ||
		!s.ReadUint16LengthPrefixed(&ciphers) ||
		!s.ReadUint8LengthPrefixed(&compression) {
		return ErrMalformed
	}
	if len(ciphers)%2 != 0 {
		return ErrMalformed
	}
	for !ciphers.Empty() {
		var c uint16
		ciphers.ReadUint16(&c)
		h.CipherSuites = append(h.CipherSuites, c)
	}
	h.Version = h.LegacyVersion
	if s.Empty() { // SSLv3-style hello without extensions
		return nil
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) {
		return ErrMalformed
	}
	for !exts.Empty() {
		var typ uint16
		var body cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&body) {
			return ErrMalformed
		}
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
func (h *ClientHello) parseExtension(typ uint16, body cryptobyte.String) bool {
	switch typ {
	case extServerName:
		var list cryptobyte.String
		if !body.ReadUint16LengthPrefixed(&list) || !body.Empty() {
			return false
		}
		for !list.Empty() {
			var nameType uint8
			var name cryptobyte.String
			if !list.ReadUint8(&nameType) || !list.ReadUint16LengthPrefixed(&name) {
				return false
			}
			if nameType == 0 && h.ServerName == "" {
				h.ServerName = string(name)
			}
		}
		return true
	case extALPN:
		var list cryptobyte.String
		if !body.ReadUint16LengthPrefixed(&list) || !body.Empty() {
			return false
		}
		// One allocation for all names: they are substrings of one copy.
		all := string(list)
		off := 0
		for !list.Empty() {
			var proto cryptobyte.String
			if !list.ReadUint8LengthPrefixed(&proto) {
				return false
			}
			h.ALPN = append(h.ALPN, all[off+1:off+1+len(proto)])
			off += 1 + len(proto)
		}
		return true
	case extSupportedGroups:
		return readUint16List(&body, &h.SupportedGroups, true)
	case extSignatureAlgorithms:
		return readUint16List(&body, &h.SignatureAlgorithms, true)
	case extSupportedVersions:
		var list cryptobyte.String
		if !body.ReadUint8LengthPrefixed(&list) || !body.Empty() {
			return false
		}
		return readUint16List(&list, &h.SupportedVersions, false)
	case extECPointFormats:
		var list cryptobyte.String
		if !body.ReadUint8LengthPrefixed(&list) || !body.Empty() {
			return false
		}
		h.ECPointFormats = append(h.ECPointFormats, list...)
		return true
	}
	return true
}

// readUint16List appends a list of uint16, optionally behind a 16-bit length.
func readUint16List(s *cryptobyte.String, dst *[]uint16, prefixed bool) bool {
	list := *s
	if prefixed {
		if !s.ReadUint16LengthPrefixed(&list) || !s.Empty() {
			return false
		}
	}
	if len(list)%2 != 0 {
		return false
	}
	for !list.Empty() {
		var v uint16
		list.ReadUint16(&v)
		*dst = append(*dst, v)
	}
	return true
}

// IsGREASE reports whether v is a GREASE value (RFC 8701): 0x?a?a with both
// bytes equal.
func IsGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>8 == v&0xff
}
