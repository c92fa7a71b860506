package sensor_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgeward/edgeward/internal/corpus"
)

// metadataExceptions are tshark findings edgeward does not report, each
// with the reason.
var metadataExceptions = map[string]string{
	// tshark dissects the TLS handshake carried inside the OpenVPN control
	// channel; that is OpenVPN payload, not a TLS flow (nDPI agrees).
	"ndpi-openvpn.pcap/ja3": "TLS inside OpenVPN",
	"ndpi-openvpn.pcap/sni": "TLS inside OpenVPN",
}

// TestCorpusMetadata requires every SNI, JA3, HTTP Host and DNS query name
// tshark finds in a capture to be on one of edgeward's records for it, no
// SNI or JA3 tshark does not find, and every reference JA4 (FoxIO exactly;
// nDPI up to its two documented deviations).
func TestCorpusMetadata(t *testing.T) {
	dir := corpus.Dir(t)
	for _, e := range corpus.Manifest(t, dir) {
		t.Run(e.ID, func(t *testing.T) {
			recs, _, _ := readAll(t, filepath.Join(dir, e.File))
			var sni, ja3, ja4, hosts, queries []string
			for _, r := range recs {
				if r.TLS != nil {
					if r.TLS.SNI != "" {
						sni = append(sni, r.TLS.SNI)
					}
					if r.TLS.JA3 != "" {
						ja3 = append(ja3, r.TLS.JA3)
					}
					if r.TLS.JA4 != "" {
						ja4 = append(ja4, r.TLS.JA4)
					}
				}
				if r.HTTP != nil {
					hosts = append(hosts, r.HTTP.Host)
				}
				if r.DNS != nil {
					queries = append(queries, r.DNS.Query)
					queries = append(queries, r.DNS.Queries...)
				}
			}
			ts := e.Expected.Tshark
			check := func(what string, want, got []string, norm func(string) string) {
				if metadataExceptions[e.ID+"/"+what] != "" {
					return
				}
				for _, w := range want {
					if !slices.ContainsFunc(got, func(g string) bool { return norm(g) == norm(w) }) {
						t.Errorf("%s %q found by tshark is on no record (have %q)", what, w, got)
					}
				}
			}
			same := func(s string) string { return s }
			check("sni", ts.SNI, sni, same)
			check("ja3", ts.JA3, ja3, same)
			check("http host", ts.HTTPHosts, hosts, hostOnly)
			check("dns query", ts.DNSQueryNames, queries, strings.ToLower)
			// No extra SNI or JA3: tshark counts TCP and QUIC ClientHellos alike.
			if metadataExceptions[e.ID+"/sni"] == "" {
				for _, g := range sni {
					if !slices.Contains(ts.SNI, g) {
						t.Errorf("sni %q not found by tshark", g)
					}
				}
				for _, g := range ja3 {
					if !slices.Contains(ts.JA3, g) {
						t.Errorf("ja3 %q not found by tshark", g)
					}
				}
			}
			foxio, ndpi := e.ReferenceJA4()
			for _, w := range foxio {
				if !slices.Contains(ja4, w) {
					t.Errorf("FoxIO JA4 %s not on any record (have %q)", w, ja4)
				}
			}
			for _, w := range ndpi {
				if !slices.ContainsFunc(ja4, func(g string) bool { return ndpiEquivalent(g, w) }) {
					t.Errorf("nDPI JA4 %s not on any record (have %q)", w, ja4)
				}
			}
		})
	}
}

func hostOnly(h string) string {
	h = strings.ToLower(h)
	if i := strings.LastIndexByte(h, ':'); i > 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	return h
}

// ndpiEquivalent accepts nDPI's JA4 where it deviates from the FoxIO spec
// in two known ways: the ALPN pair is the first two characters of the ALPN
// (spec: first and last, "http/1.1" -> "h1", nDPI "ht"), and an SNI that is
// an IP address gives "i" (spec: "d" whenever the extension is present).
func ndpiEquivalent(ours, ndpi string) bool {
	if ours == ndpi {
		return true
	}
	if len(ours) != len(ndpi) || len(ours) < 10 {
		return false
	}
	o, n := []byte(ours), []byte(ndpi)
	if o[3] == 'd' && n[3] == 'i' {
		n[3] = 'd'
	}
	copy(n[8:10], o[8:10])
	return string(o) == string(n)
}
