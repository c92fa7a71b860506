package inspect

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
)

// certDER returns a self-signed certificate for cn with sans extra names.
func certDER(t *testing.T, cn string, sans int) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Example Org"}},
		NotBefore:    time.Unix(1e9, 0),
		NotAfter:     time.Unix(2e9, 0),
	}
	for i := range sans {
		tmpl.DNSNames = append(tmpl.DNSNames, fmt.Sprintf("host-%04d.%s", i, cn))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func u24(n int) []byte { return []byte{byte(n >> 16), byte(n >> 8), byte(n)} }

// tls12ServerFlight is a TLS 1.2 ServerHello and Certificate message for
// the chain, in records of at most 16 KiB.
func tls12ServerFlight(chain ...[]byte) []byte {
	sh := []byte{2, 0, 0, 38, 3, 3}
	sh = append(sh, make([]byte, 32)...)
	sh = append(sh, 0, 0xc0, 0x2f, 0) // no session id, ECDHE-RSA-AES128-GCM-SHA256, null compression
	var list []byte
	for _, d := range chain {
		list = append(list, u24(len(d))...)
		list = append(list, d...)
	}
	body := append(u24(len(list)), list...)
	hs := append(sh, 11)
	hs = append(hs, u24(len(body))...)
	hs = append(hs, body...)
	var out []byte
	for len(hs) > 0 {
		n := min(len(hs), 1<<14)
		out = append(out, 22, 3, 3, byte(n>>8), byte(n))
		out = append(out, hs[:n]...)
		hs = hs[n:]
	}
	return out
}

// TestTLS12CertificateOfLongChain: tls.cert_subject names the server's
// first certificate. It comes first in the Certificate message, so a chain
// longer than what inspection keeps of the stream (MaxStream, the packet
// budget) must still name it.
func TestTLS12CertificateOfLongChain(t *testing.T) {
	leaf := certDER(t, "www.example.com", 0)
	for _, tc := range []struct {
		name  string
		extra int // SANs of each of the three certificates after the leaf
	}{
		{"short chain", 10},
		{"12 KB chain", 130},
		{"20 KB chain", 230},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chain := [][]byte{leaf}
			for range 3 {
				chain = append(chain, certDER(t, "intermediate.example.net", tc.extra))
			}
			flight := tls12ServerFlight(chain...)
			t.Logf("server flight %d bytes", len(flight))
			c := newTCPConn(443)
			pkts := append(c.handshake(), c.pkt(true, flow.FlagACK|flow.FlagPSH, 0, clientHello(t, "www.example.com")))
			for off := 0; off < len(flight); off += 1448 {
				pkts = append(pkts, c.pkt(false, flow.FlagACK, uint32(off), flight[off:min(off+1448, len(flight))]))
			}
			recs := records(t, pkts)
			if len(recs) != 1 {
				t.Fatalf("%d records", len(recs))
			}
			r := recs[0]
			if r.TLS == nil || r.TLS.Cipher != "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" || r.TLS.CertSubject != "CN=www.example.com, O=Example Org" {
				t.Errorf("tls = %+v, want the cipher and cert_subject CN=www.example.com, O=Example Org", r.TLS)
			}
		})
	}
}
