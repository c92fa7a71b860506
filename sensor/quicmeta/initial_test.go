package quicmeta

import (
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/edgeward/edgeward/sensor/tlsmeta"
)

// rfc9001ClientInitial is the protected client Initial of RFC 9001 Appendix
// A.2 (1200 bytes). The AEAD tag authenticates every byte of it.
const rfc9001ClientInitial = "" +
	"c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11" +
	"d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399" +
	"1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c" +
	"8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212" +
	"30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5" +
	"457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208" +
	"4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec" +
	"4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3" +
	"485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db" +
	"059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c" +
	"7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8" +
	"9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556" +
	"be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74" +
	"68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a" +
	"c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00" +
	"f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632" +
	"291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964" +
	"25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd" +
	"14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff" +
	"ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198" +
	"e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd" +
	"c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73" +
	"203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f" +
	"cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e" +
	"fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade" +
	"a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047" +
	"90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2" +
	"162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4" +
	"40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0" +
	"6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e" +
	"8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0" +
	"be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400" +
	"54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab" +
	"760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9" +
	"f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4" +
	"056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064" +
	"7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241" +
	"e221af44860018ab0856972e194cd934"

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestClientInitialSecretsRFC9001(t *testing.T) {
	dcid := mustHex(t, "8394c8f03e515708")
	key, iv, hp, err := ClientInitialSecrets(Version1, dcid)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		got, want string
	}{
		{"key", hex.EncodeToString(key), "1f369613dd76d5467730efcbe3b1a22d"},
		{"iv", hex.EncodeToString(iv), "fa044b2f42a3fd3b46fb255c"},
		{"hp", hex.EncodeToString(hp), "9f50449e04a0e810283a1e9933adedd2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("client %s = %s, want %s (RFC 9001 A.1)", tc.name, tc.got, tc.want)
			}
		})
	}
	if _, _, _, err := ClientInitialSecrets(0x6b3343cf, dcid); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("QUIC v2: err = %v, want ErrUnsupportedVersion", err)
	}
}

func TestParseRFC9001ClientInitial(t *testing.T) {
	pkt := mustHex(t, rfc9001ClientInitial)
	if len(pkt) != 1200 {
		t.Fatalf("vector is %d bytes, want 1200", len(pkt))
	}
	orig := slices.Clone(pkt)
	var p Parser
	var in Initial
	if err := p.Parse(pkt, &in); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if !slices.Equal(pkt, orig) {
		t.Error("Parse modified the datagram")
	}
	if in.Version != Version1 || in.PacketNumber != 2 || hex.EncodeToString(in.DCID) != "8394c8f03e515708" || len(in.SCID) != 0 {
		t.Errorf("header: version %#x pn %d dcid %x scid %x", in.Version, in.PacketNumber, in.DCID, in.SCID)
	}
	if len(in.Crypto) != 1 || in.Crypto[0].Offset != 0 || len(in.Crypto[0].Data) != 241 {
		t.Fatalf("CRYPTO frames: %+v", in.Crypto)
	}
	if !strings.HasPrefix(hex.EncodeToString(in.Crypto[0].Data), "010000ed0303ebf8fa56f129") {
		t.Errorf("CRYPTO data starts %x", in.Crypto[0].Data[:12])
	}
	var a Assembler
	if err := a.AddDatagram(pkt); err != nil {
		t.Fatalf("AddDatagram: %v", err)
	}
	if a.Hello.ServerName != "example.com" || a.Hello.Version != 0x0304 || a.Version != Version1 {
		t.Errorf("hello: sni %q version %#x quic %#x", a.Hello.ServerName, a.Hello.Version, a.Version)
	}
	t.Logf("RFC 9001 A.2 ClientHello JA4 %s", a.Hello.JA4(tlsmeta.QUIC))

	// One flipped bit anywhere must fail authentication, never panic.
	for _, i := range []int{0, 5, 20, 30, 600, 1199} {
		bad := slices.Clone(pkt)
		bad[i] ^= 0x10
		if err := p.Parse(bad, &in); err == nil {
			t.Errorf("bit flip at %d: Parse succeeded", i)
		}
	}
}

func TestAssemblerOutOfOrder(t *testing.T) {
	pkt := mustHex(t, rfc9001ClientInitial)
	var p Parser
	var in Initial
	if err := p.Parse(pkt, &in); err != nil {
		t.Fatal(err)
	}
	data := slices.Clone(in.Crypto[0].Data)
	tests := []struct {
		name   string
		pieces [][2]int // [start, end) of data, in arrival order
	}{
		{"whole", [][2]int{{0, len(data)}}},
		{"in order", [][2]int{{0, 100}, {100, 200}, {200, len(data)}}},
		{"reversed", [][2]int{{200, len(data)}, {100, 200}, {0, 100}}},
		{"overlapping retransmits", [][2]int{{50, 150}, {0, 60}, {140, len(data)}, {0, len(data)}}},
		{"gap filled last", [][2]int{{0, 10}, {20, len(data)}, {5, 25}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a Assembler
			for i, pc := range tc.pieces {
				err := a.AddCrypto(uint64(pc[0]), data[pc[0]:pc[1]])
				last := i == len(tc.pieces)-1
				if last && err != nil {
					t.Fatalf("last piece: %v", err)
				}
				if !last && !errors.Is(err, ErrNeedMore) && !(err == nil && a.Done()) {
					t.Fatalf("piece %d: %v, want ErrNeedMore", i, err)
				}
			}
			if a.Hello.ServerName != "example.com" {
				t.Errorf("SNI %q", a.Hello.ServerName)
			}
		})
	}
	var a Assembler
	if err := a.AddCrypto(MaxCryptoLen, []byte{1}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("beyond bound: %v, want ErrTooLarge", err)
	}
	if err := a.AddCrypto(1<<62, []byte{1}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("huge offset: %v, want ErrTooLarge", err)
	}
}

func TestParseErrors(t *testing.T) {
	pkt := mustHex(t, rfc9001ClientInitial)
	// A Handshake packet: the same bytes without the Token Length field.
	handshake := append([]byte{0xe0}, pkt[1:15]...)
	handshake = append(handshake, pkt[16:]...)
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrNotQUIC},
		{"short header", []byte{0x40, 1, 2, 3}, ErrNotQUIC},
		{"version negotiation", mustHex(t, "ea00000000089aac5a49ba87a84908f92f4336fa951ba14547471600000001"), ErrNotQUIC},
		{"truncated", pkt[:30], ErrMalformed},
		{"unknown version", append([]byte{0xc0, 0x6b, 0x33, 0x43, 0xcf}, pkt[5:]...), ErrUnsupportedVersion},
		{"only a handshake packet", handshake, ErrNoInitial},
		{"coalesced handshake then initial", append(slices.Clone(handshake), pkt...), nil},
		{"initial then padding", append(slices.Clone(pkt), make([]byte, 50)...), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p Parser
			var in Initial
			err := p.Parse(tc.in, &in)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseFrames(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		check   func(*Initial) bool
		wantErr bool
	}{
		{"padding only", "000000", func(in *Initial) bool { return len(in.Crypto) == 0 }, false},
		{"ping", "01", func(in *Initial) bool { return in.Ping }, false},
		{"ack", "02050001010102", func(in *Initial) bool { return in.Ack }, false},
		{"ack ecn", "0305000000010203", func(in *Initial) bool { return in.Ack }, false},
		{"crypto", "0600036162630601026400", func(in *Initial) bool {
			return len(in.Crypto) == 2 && string(in.Crypto[0].Data) == "abc" && in.Crypto[1].Offset == 1
		}, false},
		{"connection close", "1c4001000361626301", func(in *Initial) bool { return in.ConnectionClose && in.CloseErrorCode == 1 && in.Ping }, false},
		{"unknown stops", "01081122", func(in *Initial) bool { return in.Ping && in.HasUnknown && in.UnknownFrame == 8 }, false},
		{"crypto overruns", "060005616263", nil, true},
		{"ack truncated", "0205", nil, true},
		{"ack huge count", "0201004fff", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in Initial
			err := parseFrames(mustHex(t, tc.payload), &in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.check != nil && !tc.check(&in) {
				t.Errorf("unexpected result %+v", in)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	pkt, _ := hex.DecodeString(rfc9001ClientInitial)
	f.Add(pkt)
	f.Add(pkt[:100])
	f.Add([]byte{0xc0, 0, 0, 0, 1, 0, 0, 0, 0x41})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Parser
		var in Initial
		err := p.Parse(b, &in)
		if err == nil {
			for _, c := range in.Crypto {
				if len(c.Data) > len(b) {
					t.Fatal("CRYPTO frame longer than the datagram")
				}
			}
		}
		var a Assembler
		_ = a.AddDatagram(b)
		// Treat the bytes as a CRYPTO stream too.
		var a2 Assembler
		_ = a2.AddCrypto(uint64(len(b)%7), b)
	})
}

func TestParseAllocs(t *testing.T) {
	pkt := mustHex(t, rfc9001ClientInitial)
	var p Parser
	var in Initial
	if err := p.Parse(pkt, &in); err != nil {
		t.Fatal(err)
	}
	// Keys are cached per DCID: later Initials of the flow do not allocate.
	if n := testing.AllocsPerRun(50, func() { _ = p.Parse(pkt, &in) }); n != 0 {
		t.Errorf("Parse allocates %v times per run with cached keys", n)
	}
}

func BenchmarkParseInitial(b *testing.B) {
	pkt, _ := hex.DecodeString(rfc9001ClientInitial)
	b.Run("cached-keys", func(b *testing.B) {
		var p Parser
		var in Initial
		b.ReportAllocs()
		b.SetBytes(int64(len(pkt)))
		for b.Loop() {
			if err := p.Parse(pkt, &in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new-flow+hello+ja4", func(b *testing.B) {
		var a Assembler
		buf := make([]byte, 0, 64)
		b.ReportAllocs()
		b.SetBytes(int64(len(pkt)))
		for b.Loop() {
			a.Reset()
			a.parser.valid = false // a new connection derives keys
			if err := a.AddDatagram(pkt); err != nil {
				b.Fatal(err)
			}
			buf = a.Hello.AppendJA4(buf[:0], tlsmeta.QUIC)
		}
	})
}
