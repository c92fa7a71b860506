package inspect

import (
	"testing"

	"github.com/edgeward/edgeward/sensor/appid"
)

// TestIdentifyLate holds the cached identification without payloads to
// appid's own answer over names, ALPN ids, certificates and ports that the
// built-in lists do and do not name, in every combination.
func TestIdentifyLate(t *testing.T) {
	apps, err := appid.New()
	if err != nil {
		t.Fatal(err)
	}
	in := New(Config{Apps: apps})
	names := []string{"", "relay-1.net.anydesk.com", "www.teamviewer.com:443", "example.com", "ANYDESK.COM."}
	alpns := [][]string{nil, {"h2"}, {"anydesk/7.0"}}
	certs := []string{"", "CN=AnyDesk Client", "CN=example"}
	ports := [][2]uint16{{50000, 443}, {50000, 22}, {3389, 50000}, {0, 0}, {5901, 60000}}
	n := 0
	for _, proto := range []uint8{appid.TCP, appid.UDP} {
		for _, quic := range []bool{false, true} {
			for _, sni := range names {
				for _, dns := range names {
					for _, alpn := range alpns {
						for _, cert := range certs {
							for _, p := range ports {
								q := appid.Input{Proto: proto, QUIC: quic, SNI: sni, DNSName: dns, HTTPHost: sni, ALPN: alpn,
									CertSubject: cert, CertIssuer: cert, ClientPort: p[0], ServerPort: p[1]}
								want := apps.Identify(&q)
								// Twice: a miss, then a hit.
								for range 2 {
									if got := in.identifyLate(&q); got != want {
										t.Fatalf("%+v: %+v, want %+v", q, got, want)
									}
								}
								n++
							}
						}
					}
				}
			}
		}
	}
	if len(in.nameApps.m) == 0 || len(in.nameApps.m) >= n {
		t.Errorf("%d cached results for %d inputs", len(in.nameApps.m), n)
	}
}
