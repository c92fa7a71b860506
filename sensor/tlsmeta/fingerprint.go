package tlsmeta

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
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
	dst = strconv.AppendUint(dst, uint64(h.LegacyVersion), 10)
	dst = append(dst, ',')
	dst = appendDecimalList(dst, h.CipherSuites)
	dst = append(dst, ',')
	dst = appendDecimalList(dst, h.Extensions)
	dst = append(dst, ',')
	dst = appendDecimalList(dst, h.SupportedGroups)
	dst = append(dst, ',')
	for i, f := range h.ECPointFormats {
		if i > 0 {
			dst = append(dst, '-')
		}
		dst = strconv.AppendUint(dst, uint64(f), 10)
	}
	return dst
}

func appendDecimalList(dst []byte, vs []uint16) []byte {
	first := true
	for _, v := range vs {
		if IsGREASE(v) {
			continue
		}
		if !first {
			dst = append(dst, '-')
		}
		first = false
		dst = strconv.AppendUint(dst, uint64(v), 10)
	}
	return dst
}

// AppendJA3Hash appends the lower-case hex MD5 of the JA3 string.
func (h *ClientHello) AppendJA3Hash(dst []byte) []byte {
	h.scratch = h.AppendJA3(h.scratch[:0])
	sum := md5.Sum(h.scratch)
	return hex.AppendEncode(dst, sum[:])
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
	dst = append(dst, byte(t))
	dst = append(dst, versionCode(h.Version)...)
	sni := byte('i')
	if slices.Contains(h.Extensions, extServerName) {
		sni = 'd'
	}
	dst = append(dst, sni)
	dst = appendCount(dst, h.CipherSuites)
	dst = appendCount(dst, h.Extensions)
	dst = appendALPNCode(dst, h.ALPN)
	dst = append(dst, '_')

	// Cipher hash: sorted hex list.
	h.sorted = appendNonGREASE(h.sorted[:0], h.CipherSuites)
	slices.Sort(h.sorted)
	h.scratch = appendHexList(h.scratch[:0], h.sorted)
	dst = appendHash12(dst, h.scratch, len(h.sorted) == 0)
	dst = append(dst, '_')

	// Extension hash: sorted extensions without SNI and ALPN, then the
	// signature algorithms in wire order.
	h.sorted = h.sorted[:0]
	for _, e := range h.Extensions {
		if !IsGREASE(e) && e != extServerName && e != extALPN {
			h.sorted = append(h.sorted, e)
		}
	}
	slices.Sort(h.sorted)
	empty := len(h.sorted) == 0
	h.scratch = appendHexList(h.scratch[:0], h.sorted)
	h.sorted = appendNonGREASE(h.sorted[:0], h.SignatureAlgorithms)
	if len(h.sorted) > 0 {
		h.scratch = append(h.scratch, '_')
		h.scratch = appendHexList(h.scratch, h.sorted)
	}
	return appendHash12(dst, h.scratch, empty)
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

func appendCount(dst []byte, vs []uint16) []byte {
	n := 0
	for _, v := range vs {
		if !IsGREASE(v) {
			n++
		}
	}
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
	const digits = "0123456789abcdef"
	return append(dst, digits[first>>4], digits[last&0x0f])
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func appendNonGREASE(dst, vs []uint16) []uint16 {
	for _, v := range vs {
		if !IsGREASE(v) {
			dst = append(dst, v)
		}
	}
	return dst
}

func appendHexList(dst []byte, vs []uint16) []byte {
	const digits = "0123456789abcdef"
	for i, v := range vs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, digits[v>>12], digits[v>>8&0xf], digits[v>>4&0xf], digits[v&0xf])
	}
	return dst
}

func appendHash12(dst, text []byte, empty bool) []byte {
	if empty {
		return append(dst, "000000000000"...)
	}
	sum := sha256.Sum256(text)
	return hex.AppendEncode(dst, sum[:6])
}
