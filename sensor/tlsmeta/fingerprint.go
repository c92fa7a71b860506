package tlsmeta

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"slices"
)

// Transport is the first character of a JA4 fingerprint.
type Transport byte

const (
	TCP  Transport = 't'
	QUIC Transport = 'q'
	DTLS Transport = 'd'
)

// AppendJA3 appends the JA3 string
// SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats
// with GREASE values left out, as Wireshark computes it.
func (h *ClientHello) AppendJA3(dst []byte) []byte {
	// Values are written as whole words at a running offset, so the buffer
	// is sized once: at most 6 bytes per value with its separator, plus
	// 8 bytes of slack for the last word store.
	l := len(dst)
	need := 6*(1+len(h.CipherSuites)+len(h.Extensions)+len(h.SupportedGroups)+len(h.ECPointFormats)) + 4 + 8
	b := slices.Grow(dst, need)[:l+need]
	w, n := decimalWord(h.LegacyVersion)
	binary.LittleEndian.PutUint64(b[l:l+8], w)
	pos := l + n
	pos = putDecimalList(b, pos, h.CipherSuites)
	pos = putDecimalList(b, pos, h.Extensions)
	pos = putDecimalList(b, pos, h.SupportedGroups)
	sep := uint64(',')
	for _, f := range h.ECPointFormats {
		w, n := decimalWord(uint16(f))
		binary.LittleEndian.PutUint64(b[pos:pos+8], sep|w<<8)
		pos += 1 + n
		sep = '-'
	}
	if sep == ',' {
		b[pos] = ','
		pos++
	}
	return b[:pos]
}

// putDecimalList writes ',' and the non-GREASE values of vs in decimal,
// separated by '-', at b[pos:], and returns the offset after them. b must
// have 8 bytes of slack after the last value.
func putDecimalList(b []byte, pos int, vs []uint16) int {
	sep := uint64(',')
	for _, v := range vs {
		if IsGREASE(v) {
			continue
		}
		// decimalWord, inlined by hand: the call and its spills would
		// cost as much as the conversion.
		r := uint32(v) % 10000
		w := uint64('0'+uint32(v)/10000) |
			uint64(decimalPairs[r/100])<<8 |
			uint64(decimalPairs[r%100])<<24
		n := 1 + b2i(v >= 10) + b2i(v >= 100) + b2i(v >= 1000) + b2i(v >= 10000)
		binary.LittleEndian.PutUint64(b[pos:pos+8], sep|w>>(8*uint(5-n))<<8)
		pos += 1 + n
		sep = '-'
	}
	if sep == ',' {
		b[pos] = ','
		pos++
	}
	return pos
}

// decimalPairs holds the two-digit decimal forms of 0 to 99, each as a
// little-endian uint16 (first digit in the low byte).
var decimalPairs = func() (t [100]uint16) {
	for i := range t {
		t[i] = uint16('0'+i/10) | uint16('0'+i%10)<<8
	}
	return t
}()

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// decimalWord returns the n decimal digits of v in the low bytes of w, in
// memory order for a little-endian store. It does not branch on the
// magnitude of v (strconv.AppendUint is general and several times slower
// for these short numbers): all five digits are formed, and the leading
// zeros shifted out.
func decimalWord(v uint16) (w uint64, n int) {
	r := uint32(v) % 10000
	w = uint64('0'+uint32(v)/10000) |
		uint64(decimalPairs[r/100])<<8 |
		uint64(decimalPairs[r%100])<<24
	n = 1 + b2i(v >= 10) + b2i(v >= 100) + b2i(v >= 1000) + b2i(v >= 10000)
	return w >> (8 * uint(5-n)), n
}

// AppendJA3Hash appends the lower-case hex MD5 of the JA3 string.
func (h *ClientHello) AppendJA3Hash(dst []byte) []byte {
	h.scratch = h.AppendJA3(h.scratch[:0])
	sum := md5.Sum(h.scratch)
	return appendHex(dst, sum[:])
}

// JA3 returns the JA3 string.
func (h *ClientHello) JA3() string { return string(h.AppendJA3(nil)) }

// JA3Hash returns the JA3 fingerprint (hex MD5 of the JA3 string).
func (h *ClientHello) JA3Hash() string {
	var b [32]byte
	return string(h.AppendJA3Hash(b[:0]))
}

// JA4 returns the FoxIO JA4 fingerprint of the ClientHello.
func (h *ClientHello) JA4(t Transport) string {
	var b [36]byte
	return string(h.AppendJA4(b[:0], t))
}

// AppendJA4 appends the FoxIO JA4 fingerprint (TLS client part only, see
// https://github.com/FoxIO-LLC/ja4/blob/main/technical_details/JA4.md):
//
//	{t|q|d}{version}{d|i}{ciphers:02}{extensions:02}{alpn}_{cipher hash}_{extension hash}
func (h *ClientHello) AppendJA4(dst []byte, t Transport) []byte {
	// One pass over the extensions gives the SNI flag, the count, and the
	// list to sort for the extension hash (without SNI and ALPN).
	h.sorted = slices.Grow(h.sorted[:0], len(h.CipherSuites)+len(h.Extensions)+len(h.SignatureAlgorithms))
	exts := h.sorted[:0]
	sni := byte('i')
	nExt := 0
	for _, e := range h.Extensions {
		if IsGREASE(e) {
			continue
		}
		nExt++
		switch e {
		case extServerName:
			sni = 'd'
		case extALPN:
		default:
			exts = append(exts, e)
		}
	}
	ciphers := appendNonGREASE(exts[len(exts):], h.CipherSuites)

	dst = slices.Grow(dst, 36)
	dst = append(dst, byte(t))
	dst = append(dst, versionCode(h.Version)...)
	dst = append(dst, sni)
	dst = appendCount(dst, len(ciphers))
	dst = appendCount(dst, nExt)
	dst = appendALPNCode(dst, h.ALPN)
	dst = append(dst, '_')

	// Cipher hash: sorted hex list.
	sortUint16s(ciphers)
	dst = h.appendHash12(dst, ciphers, nil)
	dst = append(dst, '_')

	// Extension hash: sorted extensions without SNI and ALPN, then the
	// signature algorithms in wire order.
	sortUint16s(exts)
	sigs := appendNonGREASE(ciphers[:0], h.SignatureAlgorithms)
	return h.appendHash12(dst, exts, sigs)
}

// appendHash12 appends the first 12 hex digits of the SHA-256 of the
// comma-separated 4-digit hex forms of list, followed by '_' and those of
// suffix if suffix is not empty; or 12 zeros if list is empty.
func (h *ClientHello) appendHash12(dst []byte, list, suffix []uint16) []byte {
	if len(list) == 0 {
		return append(dst, "000000000000"...)
	}
	// The text is written with a leading separator, skipped when hashing.
	need := 5*(len(list)+len(suffix)) + 8
	b := slices.Grow(h.scratch[:0], need)[:need]
	pos := putHexList(b, 0, ',', list)
	if len(suffix) > 0 {
		pos = putHexList(b, pos, '_', suffix)
	}
	h.scratch = b
	sum := sha256.Sum256(b[1:pos])
	return appendHex(dst, sum[:6])
}

// putHexList writes the values of vs as 4-digit lower-case hex at b[pos:],
// each preceded by a separator: first for the first value, ',' for the
// others. It returns the offset after them; b must have 3 bytes of slack.
func putHexList(b []byte, pos int, first byte, vs []uint16) int {
	sep := uint64(first)
	for _, v := range vs {
		// Spread the nibbles over the bytes of a word, most significant
		// in the low byte, and map 0-9 and 10-15 to their digits at once.
		x := uint32(v)
		x = x>>12 | x>>8&0xf<<8 | x>>4&0xf<<16 | x&0xf<<24
		letters := (x + 0x06060606) >> 4 & 0x01010101
		x += 0x30303030 + letters*('a'-'0'-10)
		binary.LittleEndian.PutUint64(b[pos:pos+8], sep|uint64(x)<<8)
		pos += 5
		sep = ','
	}
	return pos
}

// sortUint16s sorts s in place. Hellos list a few dozen values at most, where
// insertion sort beats the general pdqsort.
func sortUint16s(s []uint16) {
	if len(s) > 48 {
		slices.Sort(s)
		return
	}
	for i := 1; i < len(s); i++ {
		v := s[i]
		j := i
		for ; j > 0 && s[j-1] > v; j-- {
			s[j] = s[j-1]
		}
		s[j] = v
	}
}

func versionCode(v uint16) string {
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0002:
		return "s2"
	case 0xfeff:
		return "d1"
	case 0xfefd:
		return "d2"
	case 0xfefc:
		return "d3"
	}
	return "00"
}

func appendCount(dst []byte, n int) []byte {
	n = min(n, 99)
	return append(dst, byte('0'+n/10), byte('0'+n%10))
}

// appendALPNCode appends the first and last characters of the first ALPN
// value, or of its hex form when either is not an ASCII letter or digit.
func appendALPNCode(dst []byte, alpn []string) []byte {
	if len(alpn) == 0 || len(alpn[0]) == 0 {
		return append(dst, '0', '0')
	}
	p := alpn[0]
	first, last := p[0], p[len(p)-1]
	if isAlnum(first) && isAlnum(last) {
		return append(dst, first, last)
	}
	return append(dst, hexDigits[first>>4], hexDigits[last&0x0f])
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func appendNonGREASE(dst, vs []uint16) []uint16 {
	dst = slices.Grow(dst, len(vs))
	for _, v := range vs {
		if !IsGREASE(v) {
			dst = append(dst, v)
		}
	}
	return dst
}

const hexDigits = "0123456789abcdef"

func appendHex(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}
