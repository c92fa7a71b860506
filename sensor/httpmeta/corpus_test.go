package httpmeta

import (
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/edgeward/edgeward/internal/corpus"
)

// hostHeader renders a parsed request's host the way tshark prints the
// Host header, so the two can be compared.
func hostHeader(r *Request) string {
	if r.Port == 0 {
		return r.Host
	}
	return net.JoinHostPort(r.Host, strconv.Itoa(int(r.Port)))
}

// TestCorpusHosts checks that every HTTP Host tshark lists for a capture is
// found. Requests are looked for at the start of each client segment of
// each TCP stream (pipelined requests, and HTTP after a SOCKS handshake),
// and in UDP datagrams (SSDP).
func TestCorpusHosts(t *testing.T) {
	dir := corpus.Dir(t)
	for _, e := range corpus.Manifest(t, dir) {
		t.Run(e.ID, func(t *testing.T) {
			pkts := corpus.ReadCapture(t, filepath.Join(dir, e.File))
			found := map[string]bool{}
			var r Request
			for _, s := range corpus.TCPStreams(pkts) {
				for _, off := range s.C2SStarts {
					if err := ParseRequest(s.C2S[off:], &r); err == nil || errors.Is(err, ErrTooLong) {
						found[hostHeader(&r)] = true
					}
				}
			}
			for _, d := range corpus.UDPDatagrams(pkts) {
				if err := ParseRequest(d.Payload, &r); err == nil {
					found[hostHeader(&r)] = true
				}
			}
			for _, want := range e.Expected.Tshark.HTTPHosts {
				if !found[want] {
					t.Errorf("HTTP host %q (from tshark) not found", want)
				}
			}
		})
	}
}

// TestCorpusZeekHTTPGet compares with Zeek's http.log for zeek-http-get.pcap:
// GET bro.org /download/CHANGES.bro-aux.txt, Wget/1.14 (darwin12.2.0), 200.
func TestCorpusZeekHTTPGet(t *testing.T) {
	dir := corpus.Dir(t)
	streams := corpus.TCPStreams(corpus.ReadCapture(t, filepath.Join(dir, "pcaps", "zeek-http-get.pcap")))
	if len(streams) != 1 {
		t.Fatalf("got %d TCP streams, want 1", len(streams))
	}
	var req Request
	if err := ParseRequest(streams[0].C2S, &req); err != nil {
		t.Fatal(err)
	}
	want := Request{Method: "GET", Version: "HTTP/1.1", Host: "bro.org", Path: "/download/CHANGES.bro-aux.txt", UserAgent: "Wget/1.14 (darwin12.2.0)", HeaderLen: len(streams[0].C2S)}
	if req != want {
		t.Errorf("request = %+v, want %+v", req, want)
	}
	var resp Response
	if err := ParseResponse(streams[0].S2C, &resp); err != nil || resp.StatusCode != 200 {
		t.Errorf("response = %+v, %v; want 200", resp, err)
	}
}

// TestCorpusConnect checks the CONNECT tunnel in ndpi-http_connect.pcap: the
// first client bytes are CONNECT apache.org:443 and the proxy answers 200.
func TestCorpusConnect(t *testing.T) {
	dir := corpus.Dir(t)
	var n int
	for _, s := range corpus.TCPStreams(corpus.ReadCapture(t, filepath.Join(dir, "pcaps", "ndpi-http_connect.pcap"))) {
		var req Request
		if err := ParseRequest(s.C2S, &req); err != nil {
			continue
		}
		n++
		if req.Method != "CONNECT" || req.Host != "apache.org" || req.Port != 443 {
			t.Errorf("%v: request = %+v, want CONNECT apache.org 443", s.Client, req)
		}
		var resp Response
		if err := ParseResponse(s.S2C, &resp); err != nil || resp.StatusCode != 200 {
			t.Errorf("%v: response = %+v, %v; want 200", s.Client, resp, err)
		}
	}
	if n != 1 {
		t.Errorf("found %d HTTP streams, want 1", n)
	}
}

// TestCorpusNonHTTP checks that TLS and SSH flows are rejected as not HTTP
// on their first bytes, without waiting for more.
func TestCorpusNonHTTP(t *testing.T) {
	dir := corpus.Dir(t)
	for _, id := range []string{"ndpi-ssh.pcap", "ja4-tls12.pcap", "ndpi-443-curl.pcap"} {
		t.Run(id, func(t *testing.T) {
			for _, s := range corpus.TCPStreams(corpus.ReadCapture(t, filepath.Join(dir, "pcaps", id))) {
				if len(s.C2S) == 0 {
					continue
				}
				var r Request
				if err := ParseRequest(s.C2S, &r); !errors.Is(err, ErrNotHTTP) {
					t.Errorf("%v -> %v: %v, want ErrNotHTTP", s.Client, s.Server, err)
				}
			}
		})
	}
}
