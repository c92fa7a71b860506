package tlsmeta

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgeward/edgeward/internal/corpus"
)

func serverHelloMsg(version, cipher uint16, exts []ext) []byte {
	body := u16s(version)
	body = append(body, make([]byte, 32)...)
	body = append(body, prefixed8(make([]byte, 32))...)
	body = append(body, u16s(cipher)...)
	body = append(body, 0)
	var e []byte
	for _, x := range exts {
		e = append(e, u16s(x.typ)...)
		e = append(e, prefixed16(x.body)...)
	}
	body = append(body, prefixed16(e)...)
	return append([]byte{typeServerHello, 0, byte(len(body) >> 8), byte(len(body))}, body...)
}

func u24(n int) []byte { return []byte{byte(n >> 16), byte(n >> 8), byte(n)} }

func certificateMsg(ders ...[]byte) []byte {
	var list []byte
	for _, d := range ders {
		list = append(list, u24(len(d))...)
		list = append(list, d...)
	}
	body := append(u24(len(list)), list...)
	return append([]byte{typeCertificate}, append(u24(len(body)), body...)...)
}

func testCert(t testing.TB) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "www.example.com", Organization: []string{"Example Org"}},
		Issuer:       pkix.Name{CommonName: "Example CA", Organization: []string{"CA Org"}, Country: []string{"US"}},
		NotBefore:    time.Unix(1e9, 0),
		NotAfter:     time.Unix(2e9, 0),
	}
	parent := &x509.Certificate{Subject: tmpl.Issuer, SerialNumber: big.NewInt(1)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestServerHello(t *testing.T) {
	der := testCert(t)
	tls12 := append(serverHelloMsg(0x0303, 0xc02f, []ext{{0xff01, []byte{0}}}), certificateMsg(der, []byte{0x30, 0})...)
	tls13 := serverHelloMsg(0x0303, 0x1301, []ext{{extSupportedVersions, u16s(0x0304)}, {0x0033, make([]byte, 36)}})
	wantCert := CertInfo{SubjectCN: "www.example.com", SubjectO: "Example Org", Issuer: "CN=Example CA,O=CA Org,C=US"}
	tests := []struct {
		name     string
		stream   []byte
		version  uint16
		cipher   uint16
		wantCert bool
	}{
		{"tls1.2 with certificate", records(tls12, 1<<14), 0x0303, 0xc02f, true},
		{"tls1.2 certificate across records", records(tls12, 100), 0x0303, 0xc02f, true},
		{"tls1.3", append(records(tls13, 1<<14), 20, 3, 3, 0, 1, 1, 23, 3, 3, 0, 1, 0), 0x0304, 0x1301, false},
		{"tls1.2 resumption", append(records(serverHelloMsg(0x0303, 0x009c, nil), 1<<14), 20, 3, 3, 0, 1, 1), 0x0303, 0x009c, false},
		{"tls1.2 no certificate (psk)", records(append(serverHelloMsg(0x0303, 0x00a8, nil), 14, 0, 0, 0), 1<<14), 0x0303, 0x00a8, false},
		{"tls1.2 malformed certificate skipped", records(append(serverHelloMsg(0x0303, 0xc02f, nil), certificateMsg([]byte{1, 2, 3})...), 1<<14), 0x0303, 0xc02f, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s ServerHello
			if err := s.ParseStream(tc.stream); err != nil {
				t.Fatalf("ParseStream: %v", err)
			}
			if !s.Parsed || s.Version != tc.version || s.CipherSuite != tc.cipher || s.HasCertificate != tc.wantCert {
				t.Errorf("got parsed=%v version %#x cipher %#x cert %v", s.Parsed, s.Version, s.CipherSuite, s.HasCertificate)
			}
			if tc.wantCert && s.Certificate != wantCert {
				t.Errorf("cert %+v, want %+v", s.Certificate, wantCert)
			}
			// Prefixes: ErrNeedMore, with Parsed once the ServerHello is in.
			for n := range len(tc.stream) {
				err := s.ParseStream(tc.stream[:n])
				if err != nil && !errors.Is(err, ErrNeedMore) {
					t.Fatalf("prefix %d: %v", n, err)
				}
			}
		})
	}
}

func TestServerHelloPendingCertificate(t *testing.T) {
	der := testCert(t)
	cut := records(serverHelloMsg(0x0303, 0xc02f, nil), 1<<14)
	shLen := len(cut)
	cut = append(cut, records(certificateMsg(der), 1<<14)[:40]...)
	var s ServerHello
	if err := s.ParseStream(cut); !errors.Is(err, ErrNeedMore) || !s.Parsed {
		t.Errorf("cut after %d bytes: err %v parsed %v, want ErrNeedMore with Parsed", shLen, err, s.Parsed)
	}
	if err := s.ParseStream([]byte{22, 3, 3}); !errors.Is(err, ErrNeedMore) || s.Parsed {
		t.Errorf("3 bytes: err %v parsed %v", err, s.Parsed)
	}
	if err := s.ParseStream(records(certificateMsg(der), 1<<14)); !errors.Is(err, ErrUnexpectedMessage) {
		t.Errorf("certificate first: %v", err)
	}
}

func FuzzServerHello(f *testing.F) {
	der := testCert(f)
	f.Add(records(append(serverHelloMsg(0x0303, 0xc02f, nil), certificateMsg(der)...), 1<<14))
	f.Add(records(append(serverHelloMsg(0x0303, 0xc02f, nil), certificateMsg(der)...), 50))
	f.Add(records(serverHelloMsg(0x0303, 0x1301, []ext{{extSupportedVersions, u16s(0x0304)}}), 1<<14))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s ServerHello
		err := s.ParseStream(b)
		if err == nil && !s.Parsed {
			t.Fatal("nil error without a parsed ServerHello")
		}
	})
}

// ndpiCertRE pulls the server certificate names out of an nDPI flow line.
var ndpiCertRE = regexp.MustCompile(`^\s*\d+\s+TCP\s+(\S+)\s+<->\s+(\S+)\s.*\[Issuer: ([^\]]*)\]\[Subject: ([^\]]*)\]`)

func TestCorpusServerHellos(t *testing.T) {
	dir := corpus.Dir(t)
	for _, id := range []string{"ja4-ipv6.pcapng", "ndpi-http_ipv6.pcap", "ndpi-443-curl.pcap", "ndpi-1kxun.pcap", "ndpi-chrome.pcap"} {
		t.Run(id, func(t *testing.T) {
			byPair := map[[2]netip.AddrPort]*ServerHello{}
			n := 0
			for _, d := range readDirections(t, filepath.Join(dir, "pcaps", id)) {
				var s ServerHello
				err := s.ParseStream(d.data)
				if !s.Parsed {
					continue
				}
				n++
				t.Logf("%v: err=%v version %#x cipher %#x cert=%v %+v", d, err, s.Version, s.CipherSuite, s.HasCertificate, s.Certificate)
				byPair[[2]netip.AddrPort{d.src, d.dst}] = &s
			}
			if n == 0 {
				t.Fatal("no ServerHello parsed")
			}
			data, err := os.ReadFile(filepath.Join(dir, "expected", id+".ndpi.out"))
			if err != nil {
				return
			}
			for i, line := range strings.Split(string(data), "\n") {
				m := ndpiCertRE.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				a, b := netip.MustParseAddrPort(m[1]), netip.MustParseAddrPort(m[2])
				s := byPair[[2]netip.AddrPort{b, a}]
				if s == nil {
					s = byPair[[2]netip.AddrPort{a, b}]
				}
				if s == nil || !s.HasCertificate {
					t.Errorf("%s.ndpi.out:%d: no certificate parsed for %v<->%v", id, i+1, a, b)
					continue
				}
				// nDPI prints "C=.., O=.., CN=.."; compare the CN and O
				// values, which do not depend on the rendering.
				if cn := rdnValue(m[4], "CN"); cn != s.Certificate.SubjectCN {
					t.Errorf("%s.ndpi.out:%d: subject CN %q, want %q", id, i+1, s.Certificate.SubjectCN, cn)
				}
				// nDPI does not escape ", " inside values ("O=Facebook, Inc.,"),
				// so look for ours in its text rather than splitting it.
				if o := s.Certificate.SubjectO; o != "" && !strings.Contains(m[4], "O="+o+", ") {
					t.Errorf("%s.ndpi.out:%d: subject O %q not in %q", id, i+1, o, m[4])
				}
				if cn := rdnValue(m[3], "CN"); !strings.Contains(s.Certificate.Issuer, "CN="+cn) {
					t.Errorf("%s.ndpi.out:%d: issuer %q lacks CN=%s", id, i+1, s.Certificate.Issuer, cn)
				}
			}
		})
	}
}

func rdnValue(s, key string) string {
	for _, part := range strings.Split(s, ", ") {
		if v, ok := strings.CutPrefix(part, key+"="); ok {
			return v
		}
	}
	return ""
}

// TestCertCache: the second flow with the same certificate is a cache hit
// with the same names; a different certificate is not.
func TestCertCache(t *testing.T) {
	der := testCert(t)
	flight := records(append(serverHelloMsg(0x0303, 0xc02f, nil), certificateMsg(der)...), 1<<14)
	cache := NewCertCache(2)
	var first CertInfo
	for i := range 3 {
		s := ServerHello{Certs: cache}
		s.Reset()
		if err := s.ParseStream(flight); err != nil || !s.HasCertificate {
			t.Fatalf("flow %d: %v, cert %v", i, err, s.HasCertificate)
		}
		if i == 0 {
			first = s.Certificate
		} else if s.Certificate != first {
			t.Errorf("flow %d: %+v, want %+v", i, s.Certificate, first)
		}
	}
	if cache.Hits != 2 {
		t.Errorf("%d hits, want 2", cache.Hits)
	}
	other := records(append(serverHelloMsg(0x0303, 0xc02f, nil), certificateMsg([]byte{0x30, 0})...), 1<<14)
	s := ServerHello{Certs: cache}
	if err := s.ParseStream(other); err != nil || s.HasCertificate || cache.Hits != 2 {
		t.Errorf("malformed certificate: err %v cert %v hits %d", err, s.HasCertificate, cache.Hits)
	}
}

// TestServerHelloCutChain: servers that pack their flight into 16 KiB
// records, and chains longer than what a caller keeps of the stream, must
// still give the ServerHello and the first certificate once they are in:
// the rest of the record or of the chain may never be seen.
func TestServerHelloCutChain(t *testing.T) {
	der := testCert(t)
	filler := make([]byte, 12000)
	sh := serverHelloMsg(0x0303, 0xc02f, nil)
	flight := records(append(slices.Clone(sh), certificateMsg(der, filler, filler)...), 1<<14)
	wantCert := CertInfo{SubjectCN: "www.example.com", SubjectO: "Example Org", Issuer: "CN=Example CA,O=CA Org,C=US"}
	leafEnd := 5 + len(sh) + 4 + 3 + 3 + len(der)
	for _, tc := range []struct {
		name         string
		n            int
		err          error
		parsed, cert bool
	}{
		{"inside the ServerHello", 5 + len(sh) - 1, ErrNeedMore, false, false},
		{"after the ServerHello", 5 + len(sh), ErrNeedMore, true, false},
		{"inside the leaf", leafEnd - 1, ErrNeedMore, true, false},
		{"after the leaf", leafEnd, nil, true, true},
		{"in the second record", 1<<14 + 100, nil, true, true},
	} {
		var s ServerHello
		err := s.ParseStream(flight[:tc.n])
		if !errors.Is(err, tc.err) || s.Parsed != tc.parsed || s.HasCertificate != tc.cert || tc.cert && s.Certificate != wantCert {
			t.Errorf("%s: err %v parsed %v cert %v %+v, want %v %v %v", tc.name, err, s.Parsed, s.HasCertificate, s.Certificate, tc.err, tc.parsed, tc.cert)
		}
	}
}
