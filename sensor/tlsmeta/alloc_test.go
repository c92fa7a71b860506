package tlsmeta

import "testing"

// TestFingerprintAllocsTight pins the allocation count of the per-flow path:
// parse + JA3 hash + JA4 of a post-quantum-sized hello, in one record and
// across three records. Only the SNI string is allocated: the ALPN list's
// string is reused while clients keep sending the same list.
func TestFingerprintAllocsTight(t *testing.T) {
	spec := chromeLike()
	spec.exts = append(spec.exts, ext{0x0033, make([]byte, 1250)})
	hs := spec.handshake()
	for _, tc := range []struct {
		name   string
		stream []byte
	}{{"one record", records(hs, 1<<14)}, {"three records", records(hs, 700)}} {
		var h ClientHello
		buf := make([]byte, 0, 64)
		if err := h.ParseStream(tc.stream); err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if err := h.ParseStream(tc.stream); err != nil {
				t.Fatal(err)
			}
			buf = h.AppendJA3Hash(buf[:0])
			buf = h.AppendJA4(buf[:0], TCP)
		})
		if allocs > 1 {
			t.Errorf("%s: ParseStream+JA3+JA4 allocates %v times per run, want <= 1", tc.name, allocs)
		}
		// Incomplete prefixes of a multi-record hello are recognized
		// without copying or allocating.
		if n := testing.AllocsPerRun(100, func() { _ = h.ParseStream(tc.stream[:len(tc.stream)-1]) }); n != 0 {
			t.Errorf("%s: ParseStream of a prefix allocates %v times per run", tc.name, n)
		}
	}
}
