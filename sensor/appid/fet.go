package appid

import (
	"encoding/binary"
	"math/bits"
)

// appFullyEncrypted is the app a fully-encrypted first packet names.
const appFullyEncrypted = "fully_encrypted"

// fullyEncrypted flags a TCP flow whose client's first payload looks like
// uniformly random bytes, as Shadowsocks, VMess, Obfs4 and Psiphon's OSSH
// do, using the exemption rules the Great Firewall was measured to apply
// (Wu et al., "How the Great Firewall of China Detects and Blocks Fully
// Encrypted Traffic", USENIX Security 2023, section 4): a first packet is
// exempt if its average set bits per byte is <= 3.4 or >= 4.6, if its
// first six bytes are printable ASCII, if more than half of it is
// printable, if it has a run of more than 20 printable bytes, or if it
// looks like TLS or HTTP. Everything else is treated as fully encrypted.
// The paper measured about 0.6% of ordinary connections misclassified this
// way, which is why it ranks below every name match and is only a hint.
//
// Unlike the censor, which only sees the client, the server's first payload
// must look fully encrypted too (or be absent): Shadowsocks-style servers
// answer with random bytes, while proprietary binary protocols answer with
// structured, zero-rich headers. This removes most of those false
// positives, including captures that began mid-connection.
func fullyEncrypted(in *Input) (Result, bool) {
	if in.Proto != TCP || in.QUIC || !looksRandom(clip(in.ClientFirst)) {
		return Result{}, false
	}
	if s := clip(in.ServerFirst); len(s) > 0 && !looksRandom(s) {
		return Result{}, false
	}
	return Result{appFullyEncrypted, SourcePayload, CategoryProxy}, true
}

// looksRandom applies the exemption rules to one payload. Set bits and
// printable bytes are counted a word at a time (printable: 0x20-0x7e, a
// SWAR range test per byte). A run of more than 20 printable bytes holds at
// least one whole aligned word of them, so the byte-wise run scan is only
// needed when such a word was seen, which random bytes almost never show.
func looksRandom(b []byte) bool {
	if len(b) < 16 {
		return false
	}
	if (b[0] >= 0x14 && b[0] <= 0x17) && b[1] == 0x03 { // Ex5: a TLS record
		return false
	}
	const lows, highs = 0x0101010101010101, 0x8080808080808080
	var ones, printable int
	fullWord := false
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		ones += bits.OnesCount64(w)
		// High bit of each byte: low seven bits >= 0x20, low seven bits
		// <= 0x7e, and the byte's own high bit clear.
		lo := w &^ highs
		m := (lo + 0x60*lows) &^ (lo + lows) &^ w & highs
		printable += bits.OnesCount64(m)
		fullWord = fullWord || m == highs
	}
	for _, c := range b[i:] {
		ones += bits.OnesCount8(c)
		if isPrintable(c) {
			printable++
		}
	}
	avg := float64(ones) / float64(len(b))
	switch {
	case avg <= 3.4 || avg >= 4.6: // Ex1
	case printableASCII(b[:6]): // Ex2
	case printable*2 > len(b): // Ex3
	case fullWord && printableRun(b, 21): // Ex4
	default:
		return true
	}
	return false
}

func isPrintable(c byte) bool { return c >= 0x20 && c <= 0x7e }

// printableRun reports whether b holds n printable bytes in a row.
func printableRun(b []byte, n int) bool {
	run := 0
	for _, c := range b {
		if !isPrintable(c) {
			run = 0
		} else if run++; run >= n {
			return true
		}
	}
	return false
}

func printableASCII(b []byte) bool {
	for _, c := range b {
		if !isPrintable(c) {
			return false
		}
	}
	return true
}
