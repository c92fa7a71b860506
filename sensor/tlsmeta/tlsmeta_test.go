package tlsmeta

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// helloSpec describes a synthetic ClientHello.
type helloSpec struct {
	version  uint16
	ciphers  []uint16
	exts     []ext
	noExts   bool
	trailing []byte // appended to the body
}

type ext struct {
	typ  uint16
	body []byte
}

func u16s(vs ...uint16) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	return b
}

func prefixed16(b []byte) []byte { return append(u16s(uint16(len(b))), b...) }
func prefixed8(b []byte) []byte  { return append([]byte{byte(len(b))}, b...) }

func sniExt(name string) ext {
	return ext{extServerName, prefixed16(append([]byte{0}, prefixed16([]byte(name))...))}
}

func alpnExt(protos ...string) ext {
	var l []byte
	for _, p := range protos {
		l = append(l, prefixed8([]byte(p))...)
	}
	return ext{extALPN, prefixed16(l)}
}

func listExt(typ uint16, vs ...uint16) ext { return ext{typ, prefixed16(u16s(vs...))} }

func versionsExt(vs ...uint16) ext { return ext{extSupportedVersions, prefixed8(u16s(vs...))} }

// handshake builds the ClientHello handshake message.
func (s helloSpec) handshake() []byte {
	body := u16s(s.version)
	body = append(body, make([]byte, 32)...)
	body = append(body, prefixed8(make([]byte, 32))...) // session id
	body = append(body, prefixed16(u16s(s.ciphers...))...)
	body = append(body, 1, 0) // null compression
	if !s.noExts {
		var exts []byte
		for _, e := range s.exts {
			exts = append(exts, u16s(e.typ)...)
			exts = append(exts, prefixed16(e.body)...)
		}
		body = append(body, prefixed16(exts)...)
	}
	body = append(body, s.trailing...)
	msg := []byte{typeClientHello, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}
	return append(msg, body...)
}

// records frames a handshake byte stream into TLS records of at most n bytes.
func records(hs []byte, n int) []byte {
	var out []byte
	for len(hs) > 0 {
		k := min(n, len(hs))
		out = append(out, recordTypeHandshake, 3, 1, byte(k>>8), byte(k))
		out = append(out, hs[:k]...)
		hs = hs[k:]
	}
	return out
}

// chromeLike is the JA4 specification's worked example: ciphers, extensions
// and signature algorithms in wire order, plus GREASE values.
func chromeLike() helloSpec {
	return helloSpec{
		version: 0x0303,
		ciphers: []uint16{0x1a1a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035},
		exts: []ext{
			{0x3a3a, nil},
			{0x001b, prefixed8(u16s(2))},
			sniExt("example.com"),
			{0x0033, nil},
			alpnExt("h2", "http/1.1"),
			{0x4469, nil},
			{0x0017, nil},
			{0x002d, nil},
			listExt(extSignatureAlgorithms, 0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601),
			{0x0005, nil},
			{0x0023, nil},
			{0x0012, nil},
			versionsExt(0x8a8a, 0x0304, 0x0303),
			{0xff01, []byte{0}},
			{extECPointFormats, prefixed8([]byte{0})},
			listExt(extSupportedGroups, 0x4a4a, 0x001d, 0x0017, 0x0018),
			{0x0015, make([]byte, 10)},
			{0x0a0a, []byte{0}},
		},
	}
}

func TestJA4SpecExample(t *testing.T) {
	var h ClientHello
	if err := h.ParseStream(records(chromeLike().handshake(), 1<<14)); err != nil {
		t.Fatal(err)
	}
	// From FoxIO's JA4.md worked example.
	if got, want := h.JA4(TCP), "t13d1516h2_8daaf6152771_e5627efa2ab1"; got != want {
		t.Errorf("JA4 = %s, want %s", got, want)
	}
	if got, want := h.JA4(QUIC)[0], byte('q'); got != want {
		t.Errorf("QUIC JA4 transport %c", got)
	}
	wantJA3 := "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53," +
		"27-0-51-16-17513-23-45-13-5-35-18-43-65281-11-10-21,29-23-24,0"
	if got := h.JA3(); got != wantJA3 {
		t.Errorf("JA3 = %s\nwant %s", got, wantJA3)
	}
	if h.ServerName != "example.com" || len(h.ALPN) != 2 || h.ALPN[1] != "http/1.1" || h.Version != 0x0304 {
		t.Errorf("fields: sni %q alpn %q version %#x", h.ServerName, h.ALPN, h.Version)
	}
}

func TestJA4Parts(t *testing.T) {
	base := func(mut func(*helloSpec)) helloSpec {
		s := helloSpec{version: 0x0303, ciphers: []uint16{0x002f}, exts: []ext{sniExt("a.b"), alpnExt("h2")}}
		mut(&s)
		return s
	}
	tests := []struct {
		name string
		spec helloSpec
		want string // prefix or full JA4
	}{
		{"no sni", base(func(s *helloSpec) { s.exts = s.exts[1:] }), "t12i0101h2_"},
		{"ip literal sni still d", base(func(s *helloSpec) { s.exts[0] = sniExt("10.0.0.1") }), "t12d0102h2_"},
		{"no alpn", base(func(s *helloSpec) { s.exts = s.exts[:1] }), "t12d010100_"},
		{"empty first alpn", base(func(s *helloSpec) { s.exts[1] = alpnExt("", "h2") }), "t12d010200_"},
		{"one char alpn", base(func(s *helloSpec) { s.exts[1] = alpnExt("x") }), "t12d0102xx_"},
		{"http/1.1", base(func(s *helloSpec) { s.exts[1] = alpnExt("http/1.1") }), "t12d0102h1_"},
		{"h3-29", base(func(s *helloSpec) { s.exts[1] = alpnExt("h3-29") }), "t12d0102h9_"},
		{"non-alnum alpn uses hex", base(func(s *helloSpec) { s.exts[1] = alpnExt("\xab\xcd") }), "t12d0102ad_"},
		{"non-alnum last", base(func(s *helloSpec) { s.exts[1] = alpnExt("0\xab") }), "t12d01023b_"},
		{"alnum ends, other middle", base(func(s *helloSpec) { s.exts[1] = alpnExt("0\xab\xcd1") }), "t12d010201_"},
		{"tls 1.0", base(func(s *helloSpec) { s.version = 0x0301 }), "t10d0102h2_"},
		{"ssl3", base(func(s *helloSpec) { s.version = 0x0300 }), "t s3"},
		{"unknown version", base(func(s *helloSpec) { s.version = 0x0305 }), "t00d0102h2_"},
		{"supported_versions highest non-grease", base(func(s *helloSpec) {
			s.exts = append(s.exts, versionsExt(0x0303, 0x0304, 0xfafa))
		}), "t13d0103h2_"},
		{"experimental version outranks 1.3", base(func(s *helloSpec) {
			s.exts = append(s.exts, versionsExt(0x0304, 0x7f1c))
		}), "t00d0103h2_"},
		{"no ciphers", base(func(s *helloSpec) { s.ciphers = nil }), "t12d0002h2_000000000000_"},
		{"only sni and alpn", base(func(s *helloSpec) {}), "t12d0102h2_"},
		{"no extensions block", base(func(s *helloSpec) { s.noExts = true }), "t12i010000_"},
		{"counts capped", base(func(s *helloSpec) {
			for i := range 120 {
				s.ciphers = append(s.ciphers, uint16(0x1000+i))
				s.exts = append(s.exts, ext{uint16(0x2000 + i), nil})
			}
		}), "t12d9999h2_"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h ClientHello
			if err := h.ParseHandshake(tc.spec.handshake()); err != nil {
				t.Fatal(err)
			}
			got := h.JA4(TCP)
			want := strings.ReplaceAll(tc.want, " ", "")
			if !strings.HasPrefix(got, want) {
				t.Errorf("JA4 = %s, want prefix %s", got, want)
			}
			if len(got) != 36 {
				t.Errorf("JA4 %q has length %d", got, len(got))
			}
		})
	}
	// Empty extension list after dropping SNI and ALPN hashes to zeros.
	var h ClientHello
	if err := h.ParseHandshake(base(func(*helloSpec) {}).handshake()); err != nil {
		t.Fatal(err)
	}
	if got := h.JA4(TCP); !strings.HasSuffix(got, "_000000000000") {
		t.Errorf("JA4 %s: want empty extension hash", got)
	}
}

func TestIsGREASE(t *testing.T) {
	for v := range 1 << 16 {
		want := v&0x0f0f == 0x0a0a && v>>8 == v&0xff
		if IsGREASE(uint16(v)) != want {
			t.Fatalf("IsGREASE(%#04x) = %v", v, !want)
		}
	}
	for _, v := range []uint16{0x0a0a, 0xfafa, 0x2a2a} {
		if !IsGREASE(v) {
			t.Errorf("%#04x not GREASE", v)
		}
	}
}

func TestParseStreamSplits(t *testing.T) {
	hs := chromeLike().handshake()
	// Make it the size of a post-quantum hello.
	spec := chromeLike()
	spec.exts = append(spec.exts, ext{0x0033, make([]byte, 1250)})
	big := spec.handshake()
	tests := []struct {
		name   string
		stream []byte
	}{
		{"one record", records(hs, 1<<14)},
		{"many small records", records(hs, 7)},
		{"one-byte records", records(hs, 1)},
		{"big hello one record", records(big, 1<<14)},
		{"big hello two records", records(big, 1000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var whole ClientHello
			if err := whole.ParseStream(tc.stream); err != nil {
				t.Fatalf("whole: %v", err)
			}
			want := whole.JA4(TCP)
			// Every strict prefix needs more; segment sizes do not matter.
			var h ClientHello
			for n := range len(tc.stream) {
				if err := h.ParseStream(tc.stream[:n]); !errors.Is(err, ErrNeedMore) {
					t.Fatalf("prefix %d/%d: %v, want ErrNeedMore", n, len(tc.stream), err)
				}
			}
			// Trailing bytes (the next flight) change nothing.
			if err := h.ParseStream(append(tc.stream, 0x14, 3, 3, 0, 1, 1)); err != nil {
				t.Fatal(err)
			}
			if got := h.JA4(TCP); got != want {
				t.Errorf("JA4 %s != %s", got, want)
			}
		})
	}
}

func TestParseStreamErrors(t *testing.T) {
	hs := chromeLike().handshake()
	huge := []byte{typeClientHello, 0x01, 0x00, 0x01}
	tests := []struct {
		name   string
		stream []byte
		want   error
	}{
		{"http", []byte("GET / HTTP/1.1\r\n"), ErrNotTLS},
		{"ssh", []byte("SSH-2.0-OpenSSH"), ErrNotTLS},
		{"bad record version", []byte{22, 9, 1, 0, 5}, ErrNotTLS},
		{"alert", []byte{21, 3, 3, 0, 2, 2, 40}, ErrAlert},
		{"server hello", records([]byte{typeServerHello, 0, 0, 0}, 100), ErrUnexpectedMessage},
		{"record too big", []byte{22, 3, 1, 0x50, 0}, ErrTooLarge},
		{"handshake too big", records(huge, 100), ErrTooLarge},
		{"truncated body", records([]byte{1, 0, 0, 3, 3, 3, 0}, 100), ErrMalformed},
		{"ccs inside hello", append(records(hs[:50], 100), 20, 3, 3, 0, 1, 1), ErrMalformed},
		{"odd cipher length", records(append([]byte{1, 0, 0, 42, 3, 3}, append(make([]byte, 33), 0, 3, 1, 2, 3, 1, 0)...), 1000), ErrMalformed},
		{"garbage record after records", append(records(hs[:50], 100), 99, 3, 3, 0, 1), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h ClientHello
			err := h.ParseStream(tc.stream)
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMalformedExtensionBodyIsCounted(t *testing.T) {
	spec := chromeLike()
	spec.exts = append(spec.exts, ext{extServerName, []byte{0, 9, 0}}, ext{extALPN, []byte{0, 1, 5}})
	var h ClientHello
	if err := h.ParseHandshake(spec.handshake()); err != nil {
		t.Fatal(err)
	}
	if h.MalformedExtensions != 2 {
		t.Errorf("MalformedExtensions = %d, want 2", h.MalformedExtensions)
	}
}

func TestFingerprintAllocs(t *testing.T) {
	stream := records(chromeLike().handshake(), 1<<14)
	var h ClientHello
	buf := make([]byte, 0, 256)
	h.ParseStream(stream)
	allocs := testing.AllocsPerRun(100, func() {
		if err := h.ParseStream(stream); err != nil {
			t.Fatal(err)
		}
		buf = h.AppendJA3Hash(buf[:0])
		buf = h.AppendJA4(buf[:0], TCP)
	})
	// SNI and the ALPN names are copied into one string each.
	if allocs > 2 {
		t.Errorf("ParseStream+JA3+JA4 allocates %v times per run, want <= 2", allocs)
	}
}

func FuzzClientHello(f *testing.F) {
	f.Add(records(chromeLike().handshake(), 1<<14))
	f.Add(records(chromeLike().handshake(), 13))
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h ClientHello
		err := h.ParseStream(b)
		if err == nil {
			if ja4 := h.JA4(TCP); len(ja4) != 36 {
				t.Fatalf("JA4 %q", ja4)
			}
			_ = h.JA3Hash()
		}
		if len(b) > 0 {
			var g ClientHello
			if g.ParseHandshake(b[1:]) == nil {
				_ = g.JA4(QUIC)
			}
		}
	})
}

func BenchmarkClientHello(b *testing.B) {
	spec := chromeLike()
	spec.exts = append(spec.exts, ext{0x0033, make([]byte, 1250)}) // PQ key share size
	stream := records(spec.handshake(), 1<<14)
	split := records(spec.handshake(), 700)
	buf := make([]byte, 0, 64)
	for _, bc := range []struct {
		name   string
		stream []byte
	}{{"one-record", stream}, {"three-records", split}} {
		b.Run(bc.name+"/parse", func(b *testing.B) {
			var h ClientHello
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.stream)))
			for b.Loop() {
				if err := h.ParseStream(bc.stream); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/parse+ja3+ja4", func(b *testing.B) {
			var h ClientHello
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.stream)))
			for b.Loop() {
				if err := h.ParseStream(bc.stream); err != nil {
					b.Fatal(err)
				}
				buf = h.AppendJA3Hash(buf[:0])
				buf = h.AppendJA4(buf[:0], TCP)
			}
		})
	}
}
