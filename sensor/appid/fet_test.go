package appid

import (
	"math/bits"
	"math/rand/v2"
	"testing"
)

// looksRandomBytewise is the exemption rules as the paper states them, a
// byte at a time: the reference looksRandom's word-at-a-time counting must
// agree with.
func looksRandomBytewise(b []byte) bool {
	if len(b) < 16 || (b[0] >= 0x14 && b[0] <= 0x17) && b[1] == 0x03 {
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
	return !(avg <= 3.4 || avg >= 4.6 || printableASCII(b[:6]) || printable*2 > len(b) || maxRun > 20)
}

func TestLooksRandomMatchesBytewise(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	// Byte sources: uniform, printable, and the printable range's edges;
	// each buffer may get one printable stretch of 14-28 bytes at any
	// offset, around the run rule's bound and word boundaries.
	gen := []func() byte{
		func() byte { return byte(r.IntN(256)) },
		func() byte { return byte(0x20 + r.IntN(0x5f)) },
		func() byte { return [...]byte{0x1f, 0x20, 0x7e, 0x7f, 0x80, 0x9f, 0xa0, 0xfe, 0xff}[r.IntN(9)] },
	}
	for n := range 100000 {
		b := make([]byte, r.IntN(MaxPayload+1))
		g := gen[n%len(gen)]
		for i := range b {
			b[i] = g()
		}
		if n%2 == 0 && len(b) > 0 {
			start := r.IntN(len(b))
			for i := start; i < min(len(b), start+14+r.IntN(15)); i++ {
				b[i] = byte(0x20 + r.IntN(0x5f))
			}
		}
		if got, want := looksRandom(b), looksRandomBytewise(b); got != want {
			t.Fatalf("looksRandom(%x) = %v, byte-wise %v", b, got, want)
		}
	}
}
