package synth

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/crypto/cryptobyte"
)

var epoch = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

func render(t testing.TB, flows []Flow, opt Options) (pcap, truth []byte, st Stats) {
	t.Helper()
	var p, tr bytes.Buffer
	st, err := Render(slices.Values(flows), &p, &tr, opt)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return p.Bytes(), tr.Bytes(), st
}

func readTruth(t testing.TB, b []byte) []Truth {
	t.Helper()
	tr, err := ReadTruth(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

var (
	laptopMAC = MAC{0x3c, 0x22, 0xfb, 0x01, 0x02, 0x03}
	gwMAC     = MAC{0x00, 0x1b, 0x21, 0xaa, 0xbb, 0xcc}
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// scenario covers every kind, ending, address family and tagging.
func scenario() []Flow {
	base := Flow{ClientMAC: laptopMAC, ServerMAC: gwMAC, RTT: 15 * time.Millisecond}
	mk := func(at time.Duration, f Flow) Flow {
		f.Start = epoch.Add(at)
		if f.ClientMAC == (MAC{}) {
			f.ClientMAC, f.ServerMAC, f.RTT = base.ClientMAC, base.ServerMAC, base.RTT
		}
		return f
	}
	return []Flow{
		mk(0, Flow{Kind: DNS, Client: ap("10.1.2.3:53001"), Server: ap("10.0.0.53:53"),
			DNS: &DNSSpec{Name: "relay-1.net.anydesk.com", Type: TypeA, Answers: []DNSAnswer{
				{Target: "edge.anydesk.example", TTL: 60}, {Addr: netip.MustParseAddr("195.181.174.1"), TTL: 300}}}}),
		mk(time.Millisecond, Flow{Kind: TLS, Client: ap("10.1.2.3:50111"), Server: ap("195.181.174.1:443"),
			TLS: &TLSSpec{SNI: "relay-1.net.anydesk.com", ALPN: []string{"anydesk"}, Version: 0x0303,
				CipherSuites: []uint16{0xc02f, 0xc030}, Extensions: []uint16{0, 10, 11, 13, 16, 23, 65281},
				SupportedGroups: []uint16{29, 23}}, Exchanges: 3, RequestBytes: 900, ResponseBytes: 40000}),
		mk(2*time.Millisecond, Flow{Kind: TLS, Client: ap("[fd00::10]:40000"), Server: ap("[2606:4700::1]:443"),
			VLAN: []uint16{100, 30}, End: EndRST,
			TLS:          &TLSSpec{SNI: "split.example.com", ALPN: []string{"h2"}, GREASE: true, SplitClientHello: true},
			RequestBytes: 100, ResponseBytes: 5000}),
		mk(3*time.Millisecond, Flow{Kind: QUIC, Client: ap("10.1.2.3:51000"), Server: ap("142.250.1.1:443"),
			TLS: &TLSSpec{SNI: "www.youtube.com", ALPN: []string{"h3"}, GREASE: true}, QUIC: &QUICSpec{LargeHello: true},
			RequestBytes: 500, ResponseBytes: 30000}),
		mk(4*time.Millisecond, Flow{Kind: QUIC, Client: ap("[fd00::10]:51001"), Server: ap("[2a00:1450::1]:443"),
			TLS: &TLSSpec{SNI: "old.example"}, QUIC: &QUICSpec{Version: QUICDraft29}, End: EndIdle}),
		mk(5*time.Millisecond, Flow{Kind: HTTP, Client: ap("10.1.2.3:50112"), Server: ap("93.184.216.34:80"), VLAN: []uint16{20},
			HTTP: &HTTPSpec{Host: "example.com", Path: "/index.html", UserAgent: "curl/8.5.0"}, ResponseBytes: 1256, End: EndIdle}),
		mk(6*time.Millisecond, Flow{Kind: TCPGeneric, Client: ap("10.1.2.3:50113"), Server: ap("10.0.1.20:22"),
			RequestBytes: 70000, ResponseBytes: 3000, MSS: 536, Exchanges: 2}),
		mk(7*time.Millisecond, Flow{Kind: UDPGeneric, Client: ap("10.1.2.3:123"), Server: ap("162.159.200.1:123"),
			RequestBytes: 48, ResponseBytes: 48}),
		mk(8*time.Millisecond, Flow{Kind: UDPGeneric, Client: ap("10.1.2.3:40001"), Server: ap("10.0.1.5:514"),
			RequestBytes: 3000, Exchanges: 2}),
		mk(9*time.Millisecond, Flow{Kind: ICMPEcho, Client: ap("10.1.2.3:0"), Server: ap("8.8.8.8:0"), Exchanges: 3}),
		mk(10*time.Millisecond, Flow{Kind: ICMPEcho, Client: ap("[fd00::10]:0"), Server: ap("[2001:4860:4860::8888]:0"), RequestBytes: 100}),
		mk(11*time.Millisecond, Flow{Kind: DNS, Client: ap("[fd00::10]:53002"), Server: ap("[fd00::53]:53"),
			DNS: &DNSSpec{Name: "nope.invalid", Type: TypeAAAA, RCode: 3}}),
		mk(12*time.Millisecond, Flow{Kind: TCPGeneric, Client: ap("10.1.2.3:50114"), Server: ap("10.0.1.21:445")}),
	}
}

func TestDeterminism(t *testing.T) {
	sum := func(cfg Config) (string, string) {
		var p, tr bytes.Buffer
		if _, err := Generate(cfg, &p, &tr); err != nil {
			t.Fatal(err)
		}
		a, b := sha256.Sum256(p.Bytes()), sha256.Sum256(tr.Bytes())
		return hex.EncodeToString(a[:]), hex.EncodeToString(b[:])
	}
	tests := []struct {
		name   string
		a, b   Config
		wantEq bool
	}{
		{"same seed", Config{Seed: 7, Flows: 400}, Config{Seed: 7, Flows: 400}, true},
		{"other seed", Config{Seed: 7, Flows: 400}, Config{Seed: 8, Flows: 400}, false},
		{"other epoch", Config{Seed: 7, Flows: 400}, Config{Seed: 7, Flows: 400, Epoch: epoch}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pa, ta := sum(tc.a)
			pb, tb := sum(tc.b)
			if (pa == pb) != tc.wantEq || (ta == tb) != tc.wantEq {
				t.Errorf("pcap %s vs %s, truth %s vs %s; want equal=%v", pa[:12], pb[:12], ta[:12], tb[:12], tc.wantEq)
			}
		})
	}
}

func TestFormatsDeterministic(t *testing.T) {
	for _, f := range []Format{PCAPNano, PCAPMicro, PCAPNG} {
		t.Run(strconv.Itoa(int(f)), func(t *testing.T) {
			a, _, _ := render(t, scenario(), Options{Seed: 3, Format: f})
			b, _, _ := render(t, scenario(), Options{Seed: 3, Format: f})
			if !bytes.Equal(a, b) {
				t.Fatal("same input rendered differently")
			}
			if f != PCAPNG {
				return
			}
			r, err := pcapgo.NewNgReader(bytes.NewReader(a), pcapgo.DefaultNgReaderOptions)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for {
				if _, _, err := r.ReadPacketData(); err != nil {
					if !errors.Is(err, io.EOF) {
						t.Fatal(err)
					}
					break
				}
				n++
			}
			if _, _, st := render(t, scenario(), Options{Seed: 3}); n != st.Packets {
				t.Errorf("pcapng holds %d packets, want %d", n, st.Packets)
			}
		})
	}
}

// TestCaptureMatchesTruth recomputes every flow's counters from the capture
// with gopacket and compares them with the truth file.
func TestCaptureMatchesTruth(t *testing.T) {
	tests := []struct {
		name  string
		flows []Flow
	}{
		{"scenario", scenario()},
		{"random", Random(Config{Seed: 42, Flows: 3000, Duration: 2 * time.Minute})},
		{"random dense", Random(Config{Seed: 5, Flows: 2000, Duration: 5 * time.Second, Hosts: 30})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pcap, truthBytes, st := render(t, tc.flows, Options{Seed: 1})
			truth := readTruth(t, truthBytes)
			if len(truth) != len(tc.flows) || st.Flows != len(tc.flows) {
				t.Fatalf("%d truth records, %d flows rendered, want %d", len(truth), st.Flows, len(tc.flows))
			}
			pkts := readCapture(t, pcap)
			if len(pkts) != st.Packets {
				t.Fatalf("read %d packets, Stats says %d", len(pkts), st.Packets)
			}
			for i := 1; i < len(pkts); i++ {
				if pkts[i].ts.Before(pkts[i-1].ts) {
					t.Fatalf("packet %d at %s before packet %d at %s", i+1, pkts[i].ts, i, pkts[i-1].ts)
				}
			}
			got := attribute(t, pkts, truth)
			for i, tr := range truth {
				g := got[i]
				want := tally{
					pkts: [2]uint64{tr.PktsC2S, tr.PktsS2C}, bytes: [2]uint64{tr.BytesC2S, tr.BytesS2C},
					flags: [2]uint8{tr.FlagsC2S, tr.FlagsS2C}, first: tr.TS, last: tr.End,
				}
				if !g.first.Equal(want.first) || !g.last.Equal(want.last) || g.pkts != want.pkts || g.bytes != want.bytes || g.flags != want.flags {
					t.Errorf("flow %d (%s %s:%d -> %s:%d):\n got %+v\nwant %+v", i+1, tr.Kind, tr.Src, tr.Sport, tr.Dst, tr.Dport, g, want)
				}
			}
		})
	}
}

func TestScenarioTruthFields(t *testing.T) {
	_, tb, _ := render(t, scenario(), Options{})
	truth := readTruth(t, tb)
	byKind := func(k string, n int) Truth {
		for _, tr := range truth {
			if tr.Kind == k {
				if n == 0 {
					return tr
				}
				n--
			}
		}
		t.Fatalf("no %s flow", k)
		return Truth{}
	}
	anydesk := byKind("tls", 0)
	if want := "771,49199-49200,0-10-11-13-16-23-65281,29-23,0"; anydesk.JA3String != want {
		t.Errorf("ja3_string = %q, want %q", anydesk.JA3String, want)
	}
	if sum := md5.Sum([]byte(anydesk.JA3String)); anydesk.JA3 != hex.EncodeToString(sum[:]) {
		t.Errorf("ja3 %s is not the MD5 of ja3_string", anydesk.JA3)
	}
	if tr := byKind("tls", 1); !slices.Equal(tr.VLAN, []uint16{100, 30}) || tr.FlagsC2S&flagRST == 0 {
		t.Errorf("split flow: vlan %v flags %#x", tr.VLAN, tr.FlagsC2S)
	}
	if tr := byKind("quic", 1); tr.QUICVersion != QUICDraft29 || tr.SNI != "old.example" {
		t.Errorf("draft-29 flow: %+v", tr)
	}
	if tr := byKind("dns", 1); tr.DNSRCode != 3 || tr.DNSQType != TypeAAAA || tr.DNSQName != "nope.invalid" {
		t.Errorf("NXDOMAIN flow: %+v", tr)
	}
	if tr := byKind("http", 0); tr.HTTPHost != "example.com" {
		t.Errorf("http_host = %q", tr.HTTPHost)
	}
	if tr := byKind("icmp", 0); tr.PktsC2S != 3 || tr.PktsS2C != 3 || tr.BytesC2S != 3*(20+8+56) {
		t.Errorf("icmp flow: %+v", tr)
	}
}

// clientStream concatenates the client payloads of the flow in truth[i].
func clientStream(pkts []decoded, tr Truth) (stream []byte, segments int) {
	for _, p := range pkts {
		if p.src == tr.Src && p.sport == tr.Sport && p.dst == tr.Dst && len(p.payload) > 0 {
			stream = append(stream, p.payload...)
			segments++
		}
	}
	return stream, segments
}

type parsedHello struct {
	sni, ja3 string
	alpn     []string
}

func isGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

// parseClientHello is a test-only ClientHello parser (handshake message,
// no record header) that computes JA3 from the bytes.
func parseClientHello(msg []byte) (parsedHello, error) {
	var h parsedHello
	s := cryptobyte.String(msg)
	var typ uint8
	var body, random, sid, suites, comp, exts cryptobyte.String
	var version uint16
	if !s.ReadUint8(&typ) || typ != 1 || !s.ReadUint24LengthPrefixed(&body) || !s.Empty() ||
		!body.ReadUint16(&version) || !body.ReadBytes((*[]byte)(&random), 32) ||
		!body.ReadUint8LengthPrefixed(&sid) || !body.ReadUint16LengthPrefixed(&suites) ||
		!body.ReadUint8LengthPrefixed(&comp) || !body.ReadUint16LengthPrefixed(&exts) || !body.Empty() {
		return h, fmt.Errorf("malformed ClientHello")
	}
	var ja3 [5][]string
	ja3[0] = []string{strconv.Itoa(int(version))}
	for !suites.Empty() {
		var v uint16
		suites.ReadUint16(&v)
		if !isGREASE(v) {
			ja3[1] = append(ja3[1], strconv.Itoa(int(v)))
		}
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return h, fmt.Errorf("malformed extension")
		}
		if isGREASE(typ) {
			continue
		}
		ja3[2] = append(ja3[2], strconv.Itoa(int(typ)))
		switch typ {
		case 0:
			var list, name cryptobyte.String
			var nt uint8
			if !data.ReadUint16LengthPrefixed(&list) || !list.ReadUint8(&nt) || !list.ReadUint16LengthPrefixed(&name) {
				return h, fmt.Errorf("malformed server_name")
			}
			h.sni = string(name)
		case 10:
			var list cryptobyte.String
			data.ReadUint16LengthPrefixed(&list)
			for !list.Empty() {
				var g uint16
				list.ReadUint16(&g)
				if !isGREASE(g) {
					ja3[3] = append(ja3[3], strconv.Itoa(int(g)))
				}
			}
		case 11:
			var list cryptobyte.String
			data.ReadUint8LengthPrefixed(&list)
			for _, f := range list {
				ja3[4] = append(ja3[4], strconv.Itoa(int(f)))
			}
		case 16:
			var list cryptobyte.String
			data.ReadUint16LengthPrefixed(&list)
			for !list.Empty() {
				var p cryptobyte.String
				list.ReadUint8LengthPrefixed(&p)
				h.alpn = append(h.alpn, string(p))
			}
		}
	}
	parts := make([]string, 5)
	for i := range ja3 {
		parts[i] = strings.Join(ja3[i], "-")
	}
	h.ja3 = strings.Join(parts, ",")
	return h, nil
}

func TestClientHelloParsesBack(t *testing.T) {
	firefox, java := browsers[1], tools[2]
	tests := []struct {
		name     string
		spec     TLSSpec
		minSegs  int
		wantJA3s string // empty: only compare with truth
	}{
		{"chrome defaults", TLSSpec{SNI: "www.google.com", ALPN: []string{"h2", "http/1.1"}, GREASE: true}, 1, ""},
		{"post-quantum spans segments", TLSSpec{SNI: "pq.example", GREASE: true,
			SupportedGroups: []uint16{groupX25519MLKEM768, groupX25519}}, 2, ""},
		{"split", TLSSpec{SNI: "evasive.example.org", SplitClientHello: true}, 2, ""},
		{"no sni", TLSSpec{ALPN: []string{"h2"}}, 1, ""},
		{"firefox", withSNI(firefox, "mozilla.org"), 1, ""},
		{"java tls1.2", withSNI(java, "legacy.example"), 1, ""},
		{"explicit", TLSSpec{SNI: "x.test", CipherSuites: []uint16{0x1301}, Extensions: []uint16{43, 0, 10, 11, 51},
			SupportedGroups: []uint16{29}, SupportedVersions: []uint16{0x0304}},
			1, "771,4865,43-0-10-11-51,29,0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			f := Flow{Start: epoch, Kind: TLS, Client: ap("10.0.0.2:40000"), Server: ap("1.2.3.4:443"), TLS: &spec, ResponseBytes: 100}
			pcap, tb, _ := render(t, []Flow{f}, Options{})
			tr := readTruth(t, tb)[0]
			stream, _ := clientStream(readCapture(t, pcap), tr)
			if len(stream) < 5 || stream[0] != 22 {
				t.Fatalf("client stream does not start with a handshake record: % x", stream[:min(8, len(stream))])
			}
			n := int(stream[3])<<8 | int(stream[4])
			h, err := parseClientHello(stream[5 : 5+n])
			if err != nil {
				t.Fatal(err)
			}
			if h.sni != spec.SNI || !slices.Equal(h.alpn, spec.ALPN) || h.sni != tr.SNI {
				t.Errorf("parsed sni %q alpn %v, want %q %v", h.sni, h.alpn, spec.SNI, spec.ALPN)
			}
			if h.ja3 != tr.JA3String {
				t.Errorf("JA3 from bytes %q\n      from spec %q", h.ja3, tr.JA3String)
			}
			if tc.wantJA3s != "" && tr.JA3String != tc.wantJA3s {
				t.Errorf("ja3_string %q, want %q", tr.JA3String, tc.wantJA3s)
			}
			segs := 0
			for _, p := range readCapture(t, pcap) {
				if p.src == tr.Src && len(p.payload) > 0 {
					segs++
					if segs == 1 && len(p.payload) >= 5+n {
						break
					}
				}
			}
			if segs < tc.minSegs {
				t.Errorf("ClientHello in %d segments, want >= %d", segs, tc.minSegs)
			}
		})
	}
}

func withSNI(s TLSSpec, sni string) TLSSpec {
	s.SNI = sni
	return s
}

func TestQUICInitialKeysRFC9001(t *testing.T) {
	dcid, _ := hex.DecodeString("8394c8f03e515708")
	key, iv, hp, err := initialKeys(QUICv1, dcid)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{
		{"key", key, "1f369613dd76d5467730efcbe3b1a22d"},
		{"iv", iv, "fa044b2f42a3fd3b46fb255c"},
		{"hp", hp, "9f50449e04a0e810283a1e9933adedd2"},
	} {
		if hex.EncodeToString(c.got) != c.want {
			t.Errorf("client initial %s = %x, want %s", c.name, c.got, c.want)
		}
	}
}

// openInitial removes header protection and decrypts a client Initial,
// returning the CRYPTO frames' data by offset.
func openInitial(pkt []byte) (version uint32, crypto map[uint64][]byte, err error) {
	s := cryptobyte.String(pkt)
	var first uint8
	var dcid, scid cryptobyte.String
	if !s.ReadUint8(&first) || first&0xf0 != 0xc0 || !s.ReadUint32(&version) ||
		!s.ReadUint8LengthPrefixed(&dcid) || !s.ReadUint8LengthPrefixed(&scid) {
		return 0, nil, fmt.Errorf("not a long-header Initial")
	}
	tokenLen, ok := readVarint(&s)
	if !ok || !s.Skip(int(tokenLen)) {
		return 0, nil, fmt.Errorf("bad token")
	}
	length, ok := readVarint(&s)
	if !ok || int(length) != len(s) {
		return 0, nil, fmt.Errorf("length %d, %d bytes left", length, len(s))
	}
	pnOff := len(pkt) - len(s)
	key, iv, hpKey, err := initialKeys(version, dcid)
	if err != nil {
		return 0, nil, err
	}
	hdr := slices.Clone(pkt)
	hpBlock, _ := aes.NewCipher(hpKey)
	var mask [16]byte
	hpBlock.Encrypt(mask[:], hdr[pnOff+4:pnOff+20])
	hdr[0] ^= mask[0] & 0x0f
	pnLen := int(hdr[0]&3) + 1
	var pn uint64
	for i := 0; i < pnLen; i++ {
		hdr[pnOff+i] ^= mask[1+i]
		pn = pn<<8 | uint64(hdr[pnOff+i])
	}
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	nonce := slices.Clone(iv)
	for i := 0; i < 8; i++ {
		nonce[11-i] ^= byte(pn >> (8 * i))
	}
	plain, err := aead.Open(nil, nonce, hdr[pnOff+pnLen:], hdr[:pnOff+pnLen])
	if err != nil {
		return 0, nil, fmt.Errorf("decrypting: %w", err)
	}
	crypto = map[uint64][]byte{}
	p := cryptobyte.String(plain)
	for !p.Empty() {
		var ft uint8
		p.ReadUint8(&ft)
		switch ft {
		case 0:
		case 6:
			off, _ := readVarint(&p)
			n, _ := readVarint(&p)
			var data []byte
			if !p.ReadBytes(&data, int(n)) {
				return 0, nil, fmt.Errorf("short CRYPTO frame")
			}
			crypto[off] = data
		default:
			return 0, nil, fmt.Errorf("unexpected frame type %#x", ft)
		}
	}
	return version, crypto, nil
}

func readVarint(s *cryptobyte.String) (uint64, bool) {
	var b uint8
	if !s.ReadUint8(&b) {
		return 0, false
	}
	v, n := uint64(b&0x3f), 1<<(b>>6)
	for i := 1; i < n; i++ {
		if !s.ReadUint8(&b) {
			return 0, false
		}
		v = v<<8 | uint64(b)
	}
	return v, true
}

func TestQUICInitialDecrypts(t *testing.T) {
	tests := []struct {
		name    string
		quic    QUICSpec
		packets int
	}{
		{"v1", QUICSpec{}, 1},
		{"draft-29", QUICSpec{Version: QUICDraft29}, 1},
		{"large hello", QUICSpec{LargeHello: true}, 2},
		{"large draft-29", QUICSpec{Version: QUICDraft29, LargeHello: true}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.quic
			f := Flow{Start: epoch, Kind: QUIC, Client: ap("[fd00::2]:50000"), Server: ap("[2a00:1450::5]:443"),
				TLS: &TLSSpec{SNI: "quic.example.net", ALPN: []string{"h3"}, GREASE: true}, QUIC: &q, ResponseBytes: 5000}
			pcap, tb, _ := render(t, []Flow{f}, Options{Seed: 9})
			tr := readTruth(t, tb)[0]
			want := q.Version
			if want == 0 {
				want = QUICv1
			}
			crypto := map[uint64][]byte{}
			n := 0
			for _, p := range readCapture(t, pcap) {
				if p.src != tr.Src || n == tc.packets {
					continue
				}
				n++
				if len(p.payload) != 1200 {
					t.Errorf("Initial datagram %d is %d bytes, want 1200", n, len(p.payload))
				}
				v, c, err := openInitial(p.payload)
				if err != nil {
					t.Fatalf("Initial %d: %v", n, err)
				}
				if v != want {
					t.Errorf("version %#x, want %#x", v, want)
				}
				for off, d := range c {
					crypto[off] = d
				}
			}
			if len(crypto) != tc.packets {
				t.Fatalf("CRYPTO data in %d frames, want %d", len(crypto), tc.packets)
			}
			var hello []byte
			for len(crypto) > 0 {
				d, ok := crypto[uint64(len(hello))]
				if !ok {
					t.Fatalf("gap in CRYPTO data at %d", len(hello))
				}
				delete(crypto, uint64(len(hello)))
				hello = append(hello, d...)
			}
			h, err := parseClientHello(hello)
			if err != nil {
				t.Fatal(err)
			}
			if h.sni != "quic.example.net" || h.ja3 != tr.JA3String || tr.QUICVersion != want {
				t.Errorf("parsed sni %q ja3 %q; truth %+v", h.sni, h.ja3, tr)
			}
		})
	}
}

func TestDNSWireFormat(t *testing.T) {
	pcap, tb, _ := render(t, scenario()[:1], Options{})
	tr := readTruth(t, tb)[0]
	pkts := readCapture(t, pcap)
	if len(pkts) != 2 {
		t.Fatalf("%d packets, want 2", len(pkts))
	}
	q := pkts[0].packet.Layer(layers.LayerTypeDNS).(*layers.DNS)
	r := pkts[1].packet.Layer(layers.LayerTypeDNS).(*layers.DNS)
	if q.QR || !r.QR || q.ID != r.ID || string(q.Questions[0].Name) != tr.DNSQName || uint16(q.Questions[0].Type) != tr.DNSQType {
		t.Fatalf("query %+v response %+v", q, r)
	}
	if len(r.Answers) != 2 || string(r.Answers[0].CNAME) != "edge.anydesk.example" ||
		string(r.Answers[1].Name) != "edge.anydesk.example" || r.Answers[1].IP.String() != "195.181.174.1" || r.Answers[1].TTL != 300 {
		t.Errorf("answers %+v", r.Answers)
	}
}

func TestHTTPRequest(t *testing.T) {
	flows := scenario()
	pcap, tb, _ := render(t, flows[5:6], Options{})
	tr := readTruth(t, tb)[0]
	stream, _ := clientStream(readCapture(t, pcap), tr)
	want := "GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\n"
	if !strings.HasPrefix(string(stream), want) || !strings.HasSuffix(string(stream), "\r\n\r\n") {
		t.Errorf("request %q", stream)
	}
}

func TestRenderErrors(t *testing.T) {
	ok := Flow{Start: epoch, Kind: TCPGeneric, Client: ap("10.0.0.1:1000"), Server: ap("10.0.0.2:80")}
	tests := []struct {
		name  string
		flows func() []Flow
		want  error
	}{
		{"unordered", func() []Flow { a, b := ok, ok; b.Start = epoch.Add(-time.Second); return []Flow{a, b} }, ErrUnordered},
		{"no address", func() []Flow { f := ok; f.Server = netip.AddrPort{}; return []Flow{f} }, ErrBadFlow},
		{"mixed families", func() []Flow { f := ok; f.Server = ap("[::1]:80"); return []Flow{f} }, ErrBadFlow},
		{"proto mismatch", func() []Flow { f := ok; f.Proto = UDP; return []Flow{f} }, ErrBadFlow},
		{"tls without spec", func() []Flow { f := ok; f.Kind = TLS; return []Flow{f} }, ErrBadFlow},
		{"dns without name", func() []Flow { f := ok; f.Kind = DNS; f.DNS = &DNSSpec{}; return []Flow{f} }, ErrBadFlow},
		{"bad quic version", func() []Flow {
			f := ok
			f.Kind, f.TLS, f.QUIC = QUIC, &TLSSpec{}, &QUICSpec{Version: 2}
			return []Flow{f}
		}, ErrBadFlow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(slices.Values(tc.flows()), io.Discard, io.Discard, Options{})
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestFrameDoesNotAllocate(t *testing.T) {
	f := scenario()[1]
	r := newRenderer(Options{})
	fs, err := r.activate(&f, 1)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		r.frame(fs, &fs.pkts[i%len(fs.pkts)])
		i++
	})
	if allocs != 0 {
		t.Errorf("frame allocates %v times per packet", allocs)
	}
}

func FuzzRender(f *testing.F) {
	f.Add(uint64(1), uint8(TLS), uint16(500), uint32(20000), uint8(3), true, uint16(1460), uint8(0))
	f.Add(uint64(2), uint8(QUIC), uint16(0), uint32(0), uint8(1), false, uint16(0), uint8(2))
	f.Fuzz(func(t *testing.T, seed uint64, kind uint8, req uint16, resp uint32, ex uint8, v6 bool, mss uint16, end uint8) {
		fl := Flow{Start: epoch, Kind: Kind(kind % 7), Client: ap("10.0.0.1:1000"), Server: ap("10.0.0.2:443"),
			RequestBytes: int(req), ResponseBytes: int(resp % (4 << 20)), Exchanges: int(ex % 8), MSS: int(mss), End: End(end % 3),
			TLS: &TLSSpec{SNI: "fuzz.example", GREASE: seed%2 == 0, SplitClientHello: seed%3 == 0}, QUIC: &QUICSpec{LargeHello: seed%5 == 0},
			DNS: &DNSSpec{Name: "fuzz.example"}, HTTP: &HTTPSpec{Host: "fuzz.example"}}
		if v6 {
			fl.Client, fl.Server = ap("[fd00::1]:1000"), ap("[2001:db8::2]:443")
		}
		pcap, tb, st := render(t, []Flow{fl}, Options{Seed: seed})
		pkts := readCapture(t, pcap)
		got := attribute(t, pkts, readTruth(t, tb))
		if len(pkts) != st.Packets || got[0].pkts[0]+got[0].pkts[1] != uint64(st.Packets) {
			t.Fatalf("packets: read %d, stats %d", len(pkts), st.Packets)
		}
	})
}

// BenchmarkGenerate reports generated packets per second, and the same
// packets merely written by pcapgo as the baseline to compare against.
func BenchmarkGenerate(b *testing.B) {
	cfg := Config{Seed: 1, Flows: 20000}
	var frames [][]byte
	b.Run("synth", func(b *testing.B) {
		var pkts int
		for b.Loop() {
			st, err := Generate(cfg, io.Discard, io.Discard)
			if err != nil {
				b.Fatal(err)
			}
			pkts += st.Packets
		}
		b.ReportMetric(float64(pkts)/b.Elapsed().Seconds(), "pkts/s")
	})
	var buf bytes.Buffer
	if _, err := Generate(cfg, &buf, nil); err != nil {
		b.Fatal(err)
	}
	r, _ := pcapgo.NewReader(&buf)
	for {
		d, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		frames = append(frames, d)
	}
	b.Run("baseline-write-only", func(b *testing.B) {
		var pkts int
		for b.Loop() {
			w := pcapgo.NewWriterNanos(io.Discard)
			for _, fr := range frames {
				w.WritePacket(gopacketCI(len(fr)), fr)
			}
			pkts += len(frames)
		}
		b.ReportMetric(float64(pkts)/b.Elapsed().Seconds(), "pkts/s")
	})
}

func gopacketCI(n int) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{Timestamp: epoch, CaptureLength: n, Length: n}
}
