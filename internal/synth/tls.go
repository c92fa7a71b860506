package synth

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// TLS extension types the builder knows how to fill in. Any other listed
// type is sent with an empty body.
const (
	extServerName          uint16 = 0
	extStatusRequest       uint16 = 5
	extSupportedGroups     uint16 = 10
	extPointFormats        uint16 = 11
	extSignatureAlgorithms uint16 = 13
	extALPN                uint16 = 16
	extSCT                 uint16 = 18
	extPadding             uint16 = 21
	extEMS                 uint16 = 23
	extCompressCert        uint16 = 27
	extSessionTicket       uint16 = 35
	extRecordSizeLimit     uint16 = 28
	extDelegatedCreds      uint16 = 34
	extSupportedVersions   uint16 = 43
	extPSKModes            uint16 = 45
	extSigAlgsCert         uint16 = 50
	extKeyShare            uint16 = 51
	extQUICParams          uint16 = 57
	extALPS                uint16 = 17513
	extECH                 uint16 = 0xfe0d
	extRenegotiationInfo   uint16 = 0xff01
)

// Named groups with key share sizes we emit.
const (
	groupSecp256r1      uint16 = 23
	groupSecp384r1      uint16 = 24
	groupX25519         uint16 = 29
	groupX25519MLKEM768 uint16 = 0x11ec
)

// Defaults resemble a current Chromium build without extension shuffling.
var (
	defaultSuites = []uint16{
		0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030,
		0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
	}
	defaultExtensions = []uint16{
		extServerName, extEMS, extRenegotiationInfo, extSupportedGroups,
		extPointFormats, extSessionTicket, extALPN, extStatusRequest,
		extSignatureAlgorithms, extSCT, extKeyShare, extPSKModes,
		extSupportedVersions, extCompressCert, extALPS, extPadding,
	}
	defaultQUICSuites     = []uint16{0x1301, 0x1302, 0x1303}
	defaultQUICExtensions = []uint16{
		extServerName, extSupportedGroups, extSignatureAlgorithms, extALPN,
		extSupportedVersions, extPSKModes, extKeyShare, extQUICParams,
		extCompressCert,
	}
	defaultGroups      = []uint16{groupX25519, groupSecp256r1, groupSecp384r1}
	defaultPointFormat = []uint8{0}
	defaultSigAlgs     = []uint16{0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601}
	defaultVersions    = []uint16{0x0304, 0x0303}
	quicVersions       = []uint16{0x0304}
)

// hello is a TLSSpec with every default resolved. Both the wire builder and
// the JA3 computation read it, so the truth cannot drift from the bytes.
type hello struct {
	sni          string
	alpn         []string
	version      uint16
	suites       []uint16
	extensions   []uint16 // already filtered: no SNI/ALPN entries when empty
	groups       []uint16
	pointFormats []uint8
	sigAlgs      []uint16
	versions     []uint16
	grease       bool
	split        bool
	quic         bool
}

func resolveHello(s *TLSSpec, quic, largeHello bool) hello {
	if s == nil {
		s = &TLSSpec{}
	}
	h := hello{
		sni: s.SNI, alpn: s.ALPN, version: s.Version, suites: s.CipherSuites,
		groups: s.SupportedGroups, pointFormats: s.PointFormats,
		sigAlgs: s.SignatureAlgorithms, versions: s.SupportedVersions,
		grease: s.GREASE, split: s.SplitClientHello && !quic, quic: quic,
	}
	if h.version == 0 {
		h.version = 0x0303
	}
	exts := s.Extensions
	switch {
	case quic:
		if h.suites == nil {
			h.suites = defaultQUICSuites
		}
		if exts == nil {
			exts = defaultQUICExtensions
		}
		if h.versions == nil {
			h.versions = quicVersions
		}
	default:
		if h.suites == nil {
			h.suites = defaultSuites
		}
		if exts == nil {
			exts = defaultExtensions
		}
		if h.versions == nil {
			h.versions = defaultVersions
		}
	}
	if h.groups == nil {
		h.groups = defaultGroups
	}
	if largeHello && !slices.Contains(h.groups, groupX25519MLKEM768) {
		h.groups = append([]uint16{groupX25519MLKEM768}, h.groups...)
	}
	if h.pointFormats == nil {
		h.pointFormats = defaultPointFormat
	}
	if h.sigAlgs == nil {
		h.sigAlgs = defaultSigAlgs
	}
	if (h.sni == "" && slices.Contains(exts, extServerName)) || (len(h.alpn) == 0 && slices.Contains(exts, extALPN)) {
		exts = slices.DeleteFunc(slices.Clone(exts), func(e uint16) bool {
			return (e == extServerName && h.sni == "") || (e == extALPN && len(h.alpn) == 0)
		})
	}
	h.extensions = exts
	return h
}

// tls13 reports whether the server will answer with TLS 1.3.
func (h *hello) tls13() bool {
	return slices.Contains(h.extensions, extSupportedVersions) && slices.Contains(h.versions, 0x0304)
}

func (h *hello) has(ext uint16) bool { return slices.Contains(h.extensions, ext) }

// ja3 returns the JA3 string and its MD5 hex digest. GREASE values never
// appear in h, so nothing needs filtering.
func (h *hello) ja3() (string, string) {
	var b strings.Builder
	b.WriteString(strconv.Itoa(int(h.version)))
	b.WriteByte(',')
	joinU16(&b, h.suites)
	b.WriteByte(',')
	joinU16(&b, h.extensions)
	b.WriteByte(',')
	if h.has(extSupportedGroups) {
		joinU16(&b, h.groups)
	}
	b.WriteByte(',')
	if h.has(extPointFormats) {
		for i, p := range h.pointFormats {
			if i > 0 {
				b.WriteByte('-')
			}
			b.WriteString(strconv.Itoa(int(p)))
		}
	}
	s := b.String()
	sum := md5.Sum([]byte(s))
	return s, hex.EncodeToString(sum[:])
}

func joinU16(b *strings.Builder, v []uint16) {
	for i, x := range v {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(strconv.Itoa(int(x)))
	}
}

// greaseValue picks one of the 16 RFC 8701 reserved values.
func greaseValue(r *rand.Rand) uint16 {
	n := uint16(r.IntN(16))
	return n<<12 | 0x0a00 | n<<4 | 0x0a
}

// keyShareLen is the public key size clients send for a group.
func keyShareLen(g uint16) int {
	switch g {
	case groupSecp256r1:
		return 65
	case groupSecp384r1:
		return 97
	case 25:
		return 133
	case 30:
		return 56
	case groupX25519MLKEM768:
		return 1216
	}
	return 32
}

// keyShareGroups is the list of groups a client sends shares for: the first
// group, plus X25519 alongside a hybrid post-quantum group as Chromium does.
func (h *hello) keyShareGroups() []uint16 {
	if len(h.groups) == 0 {
		return nil
	}
	if h.groups[0] == groupX25519MLKEM768 && len(h.groups) > 1 && h.groups[1] == groupX25519 {
		return h.groups[:2]
	}
	return h.groups[:1]
}

// appendClientHello appends a ClientHello handshake message (without the
// record header) and returns the buffer and the offset of the SNI host
// name, or -1. quicSCID is the source connection ID advertised in QUIC
// transport parameters.
func appendClientHello(b []byte, h *hello, r *rand.Rand, quicSCID []byte) ([]byte, int) {
	start := len(b)
	var greaseSuite, greaseExt1, greaseExt2, greaseGroup, greaseVersion uint16
	if h.grease {
		greaseSuite, greaseExt1, greaseGroup, greaseVersion = greaseValue(r), greaseValue(r), greaseValue(r), greaseValue(r)
		greaseExt2 = greaseValue(r)
		if greaseExt2 == greaseExt1 {
			greaseExt2 ^= 0x1010
		}
	}
	b = append(b, 1, 0, 0, 0) // msg_type client_hello, length patched below
	b = binary.BigEndian.AppendUint16(b, h.version)
	b = appendRandom(b, r, 32)
	if h.quic {
		b = append(b, 0)
	} else {
		b = append(b, 32)
		b = appendRandom(b, r, 32)
	}
	suitesLen := 2 * len(h.suites)
	if h.grease {
		suitesLen += 2
	}
	b = binary.BigEndian.AppendUint16(b, uint16(suitesLen))
	if h.grease {
		b = binary.BigEndian.AppendUint16(b, greaseSuite)
	}
	for _, s := range h.suites {
		b = binary.BigEndian.AppendUint16(b, s)
	}
	b = append(b, 1, 0) // compression methods: null
	extStart := len(b)
	b = append(b, 0, 0)
	sniOff := -1
	if h.grease {
		b = binary.BigEndian.AppendUint16(b, greaseExt1)
		b = append(b, 0, 0)
	}
	for i, ext := range h.extensions {
		if h.grease && i == len(h.extensions)-1 && ext == extPadding {
			b = binary.BigEndian.AppendUint16(b, greaseExt2)
			b = append(b, 0, 1, 0)
		}
		b = binary.BigEndian.AppendUint16(b, ext)
		bodyAt := len(b)
		b = append(b, 0, 0)
		switch ext {
		case extServerName:
			b = binary.BigEndian.AppendUint16(b, uint16(len(h.sni)+3))
			b = append(b, 0)
			b = binary.BigEndian.AppendUint16(b, uint16(len(h.sni)))
			sniOff = len(b) - start
			b = append(b, h.sni...)
		case extStatusRequest:
			b = append(b, 1, 0, 0, 0, 0)
		case extSupportedGroups:
			n := 2 * len(h.groups)
			if h.grease {
				n += 2
			}
			b = binary.BigEndian.AppendUint16(b, uint16(n))
			if h.grease {
				b = binary.BigEndian.AppendUint16(b, greaseGroup)
			}
			for _, g := range h.groups {
				b = binary.BigEndian.AppendUint16(b, g)
			}
		case extPointFormats:
			b = append(b, byte(len(h.pointFormats)))
			b = append(b, h.pointFormats...)
		case extSignatureAlgorithms, extSigAlgsCert:
			b = binary.BigEndian.AppendUint16(b, uint16(2*len(h.sigAlgs)))
			for _, a := range h.sigAlgs {
				b = binary.BigEndian.AppendUint16(b, a)
			}
		case extALPN:
			b = appendALPN(b, h.alpn)
		case extCompressCert:
			b = append(b, 2, 0, 2) // brotli
		case extSupportedVersions:
			n := 2 * len(h.versions)
			if h.grease {
				n += 2
			}
			b = append(b, byte(n))
			if h.grease {
				b = binary.BigEndian.AppendUint16(b, greaseVersion)
			}
			for _, v := range h.versions {
				b = binary.BigEndian.AppendUint16(b, v)
			}
		case extPSKModes:
			b = append(b, 1, 1) // psk_dhe_ke
		case extKeyShare:
			listAt := len(b)
			b = append(b, 0, 0)
			if h.grease {
				b = binary.BigEndian.AppendUint16(b, greaseGroup)
				b = append(b, 0, 1, 0)
			}
			for _, g := range h.keyShareGroups() {
				b = binary.BigEndian.AppendUint16(b, g)
				b = binary.BigEndian.AppendUint16(b, uint16(keyShareLen(g)))
				b = appendRandom(b, r, keyShareLen(g))
			}
			binary.BigEndian.PutUint16(b[listAt:], uint16(len(b)-listAt-2))
		case extQUICParams:
			b = appendQUICTransportParams(b, quicSCID)
		case extALPS:
			b = append(b, 0, 3, 2, 'h', '2')
		case extRenegotiationInfo:
			b = append(b, 0)
		case extDelegatedCreds:
			b = append(b, 0, 8, 4, 3, 5, 3, 6, 3, 2, 3)
		case extRecordSizeLimit:
			b = append(b, 0x40, 0x01)
		case extECH:
			// GREASE ECH: an outer hello with a random config and payload.
			b = append(b, 0, 0, 1, 0, 1, byte(r.IntN(256)), 0, 32)
			b = appendRandom(b, r, 32)
			b = append(b, 0, 144)
			b = appendRandom(b, r, 144)
		case extPadding:
			// BoringSSL pads hellos between 256 and 511 bytes to 512 so
			// buggy middleboxes don't choke on them.
			if n := len(b) - start; n > 0xff && n < 0x200 {
				pad := 0x200 - n
				b = append(b, make([]byte, pad)...)
			}
		}
		binary.BigEndian.PutUint16(b[bodyAt:], uint16(len(b)-bodyAt-2))
	}
	if h.grease && (len(h.extensions) == 0 || h.extensions[len(h.extensions)-1] != extPadding) {
		b = binary.BigEndian.AppendUint16(b, greaseExt2)
		b = append(b, 0, 1, 0)
	}
	binary.BigEndian.PutUint16(b[extStart:], uint16(len(b)-extStart-2))
	n := len(b) - start - 4
	b[start+1], b[start+2], b[start+3] = byte(n>>16), byte(n>>8), byte(n)
	return b, sniOff
}

func appendALPN(b []byte, protos []string) []byte {
	n := 0
	for _, p := range protos {
		n += 1 + len(p)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	for _, p := range protos {
		b = append(b, byte(len(p)))
		b = append(b, p...)
	}
	return b
}

func appendQUICTransportParams(b []byte, scid []byte) []byte {
	b = append(b,
		0x01, 0x04, 0x80, 0x00, 0x75, 0x30, // max_idle_timeout 30000
		0x03, 0x02, 0x45, 0xc0, // max_udp_payload_size 1472
		0x04, 0x04, 0x80, 0xf0, 0x00, 0x00, // initial_max_data
		0x05, 0x04, 0x80, 0x60, 0x00, 0x00, // initial_max_stream_data_bidi_local
		0x06, 0x04, 0x80, 0x60, 0x00, 0x00, // initial_max_stream_data_bidi_remote
		0x07, 0x04, 0x80, 0x60, 0x00, 0x00, // initial_max_stream_data_uni
		0x08, 0x02, 0x40, 0x64, // initial_max_streams_bidi 100
		0x09, 0x02, 0x40, 0x67, // initial_max_streams_uni 103
	)
	b = append(b, 0x0f, byte(len(scid))) // initial_source_connection_id
	return append(b, scid...)
}

// appendRandom appends n pseudo-random bytes from r.
func appendRandom(b []byte, r *rand.Rand, n int) []byte {
	for n >= 8 {
		b = binary.LittleEndian.AppendUint64(b, r.Uint64())
		n -= 8
	}
	if n > 0 {
		v := r.Uint64()
		for ; n > 0; n-- {
			b = append(b, byte(v))
			v >>= 8
		}
	}
	return b
}

// serverChoice is what a plausible server picks from a ClientHello.
func (h *hello) serverChoice() (suite, group uint16) {
	tls13 := h.tls13()
	for _, s := range h.suites {
		if (s>>8 == 0x13) == tls13 {
			suite = s
			break
		}
	}
	if suite == 0 && len(h.suites) > 0 {
		suite = h.suites[0]
	}
	if ks := h.keyShareGroups(); len(ks) > 0 {
		group = ks[0]
	}
	return suite, group
}

// appendServerHello appends a ServerHello handshake message.
func appendServerHello(b []byte, h *hello, r *rand.Rand) []byte {
	start := len(b)
	suite, group := h.serverChoice()
	b = append(b, 2, 0, 0, 0)
	b = append(b, 3, 3)
	b = appendRandom(b, r, 32)
	if h.quic {
		b = append(b, 0)
	} else {
		b = append(b, 32)
		b = appendRandom(b, r, 32)
	}
	b = binary.BigEndian.AppendUint16(b, suite)
	b = append(b, 0)
	extStart := len(b)
	b = append(b, 0, 0)
	if h.tls13() {
		b = append(b, 0, byte(extSupportedVersions), 0, 2, 3, 4)
		n := keyShareLen(group)
		if group == groupX25519MLKEM768 {
			n = 1120 // ML-KEM ciphertext plus X25519 share
		}
		b = binary.BigEndian.AppendUint16(b, extKeyShare)
		b = binary.BigEndian.AppendUint16(b, uint16(n+4))
		b = binary.BigEndian.AppendUint16(b, group)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		b = appendRandom(b, r, n)
	} else {
		b = append(b, 0xff, 0x01, 0, 1, 0)
		if h.has(extEMS) {
			b = append(b, 0, byte(extEMS), 0, 0)
		}
		if h.has(extPointFormats) {
			b = append(b, 0, byte(extPointFormats), 0, 2, 1, 0)
		}
		if len(h.alpn) > 0 && h.has(extALPN) {
			b = binary.BigEndian.AppendUint16(b, extALPN)
			b = binary.BigEndian.AppendUint16(b, uint16(len(h.alpn[0])+3))
			b = appendALPN(b, h.alpn[:1])
		}
	}
	binary.BigEndian.PutUint16(b[extStart:], uint16(len(b)-extStart-2))
	n := len(b) - start - 4
	b[start+1], b[start+2], b[start+3] = byte(n>>16), byte(n>>8), byte(n)
	return b
}

// appendRecordHeader appends a TLS record header.
func appendRecordHeader(b []byte, typ byte, version uint16, n int) []byte {
	b = append(b, typ)
	b = binary.BigEndian.AppendUint16(b, version)
	return binary.BigEndian.AppendUint16(b, uint16(n))
}

// TLS record content types.
const (
	recordCCS       byte = 20
	recordHandshake byte = 22
	recordAppData   byte = 23
)
