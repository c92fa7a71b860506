package appid

import "math/bits"

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

// looksRandom applies the exemption rules to one payload.
func looksRandom(b []byte) bool {
	if len(b) < 16 {
		return false
	}
	if (b[0] >= 0x14 && b[0] <= 0x17) && b[1] == 0x03 { // Ex5: a TLS record
		return false
	}
	var ones, printable, run, maxRun int
	for _, c := range b {
		ones += bits.OnesCount8(c)
		if c >= 0x20 && c <= 0x7e {
			printable++
			run++
			maxRun = max(maxRun, run)
		} else {
			run = 0
		}
	}
	avg := float64(ones) / float64(len(b))
	switch {
	case avg <= 3.4 || avg >= 4.6: // Ex1
	case printableASCII(b[:6]): // Ex2
	case printable*2 > len(b): // Ex3
	case maxRun > 20: // Ex4
	default:
		return true
	}
	return false
}

func printableASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
