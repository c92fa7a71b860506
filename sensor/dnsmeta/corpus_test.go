package dnsmeta

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeward/edgeward/internal/corpus"
)

// TestCorpusQueryNames checks that every DNS query name tshark lists for a
// capture is found by parsing its UDP datagrams (after IP reassembly) and
// its TCP streams, and that no capture makes the parser panic.
func TestCorpusQueryNames(t *testing.T) {
	dir := corpus.Dir(t)
	for _, e := range corpus.Manifest(t, dir) {
		t.Run(e.ID, func(t *testing.T) {
			pkts := corpus.ReadCapture(t, filepath.Join(dir, e.File))
			found := map[string]bool{}
			var p Parser
			var m Message
			c := NewCache(Config{Capacity: 1024})
			for _, d := range corpus.UDPDatagrams(pkts) {
				// Every UDP payload, not just port 53: mDNS and LLMNR
				// carry DNS too, and non-DNS payloads must fail cleanly.
				err := p.Parse(d.Payload, &m)
				if err == nil || errors.Is(err, ErrMalformed) {
					found[m.QName] = true
				}
				if err == nil && m.Response {
					c.Add(d.Dst.Addr(), d.Src.Addr(), &m, pkts[0].Metadata().Timestamp)
				}
			}
			for _, s := range corpus.TCPStreams(pkts) {
				if s.Server.Port() != 53 {
					continue
				}
				for _, stream := range [][]byte{s.C2S, s.S2C} {
					for len(stream) > 0 {
						n, err := p.ParseTCP(stream, &m)
						if errors.Is(err, ErrNeedMore) {
							t.Errorf("%v: %d stream bytes left that do not hold a whole message", s.Client, len(stream))
							break
						}
						if err == nil || errors.Is(err, ErrMalformed) {
							found[m.QName] = true
						}
						stream = stream[n:]
					}
				}
			}
			for _, want := range e.Expected.Tshark.DNSQueryNames {
				if !found[strings.ToLower(want)] {
					t.Errorf("query name %q (from tshark) not found", want)
				}
			}
		})
	}
}

// TestCorpusTCPAnswers checks the answers of the DNS-over-TCP capture
// against tcpdump's reference output (A 192.139.46.66, A 198.199.88.104)
// and that the cache maps them back to the query name.
func TestCorpusTCPAnswers(t *testing.T) {
	dir := corpus.Dir(t)
	pkts := corpus.ReadCapture(t, filepath.Join(dir, "pcaps", "tcpdump-dns_tcp.pcap"))
	streams := corpus.TCPStreams(pkts)
	if len(streams) != 1 {
		t.Fatalf("got %d TCP streams, want 1", len(streams))
	}
	s := streams[0]
	var p Parser
	var m Message
	if _, err := p.ParseTCP(s.S2C, &m); err != nil {
		t.Fatalf("ParseTCP response: %v", err)
	}
	if !m.Response || m.QName != "www.tcpdump.org" || m.QType != TypeA || m.RCode.String() != "NOERROR" {
		t.Errorf("response = %+v", m)
	}
	c := NewCache(Config{})
	now := pkts[len(pkts)-1].Metadata().Timestamp
	if n := c.Add(s.Client.Addr(), s.Server.Addr(), &m, now); n != 2 {
		t.Errorf("cached %d addresses, want 2", n)
	}
	for _, a := range []string{"192.139.46.66", "198.199.88.104"} {
		var got string
		for _, ans := range m.Answers {
			if ans.Addr.String() == a {
				got = ans.Name
			}
		}
		if got != "www.tcpdump.org" {
			t.Errorf("answer %s owner = %q", a, got)
		}
	}
}

// TestCorpusFragmentedResponses checks the IPv6-fragmented TXT responses
// Zeek logs (zeek-ipv6-fragmented-dns.pcap.zeek-dns.log) decode once
// reassembled: two NOERROR responses.
func TestCorpusFragmentedResponses(t *testing.T) {
	dir := corpus.Dir(t)
	pkts := corpus.ReadCapture(t, filepath.Join(dir, "pcaps", "zeek-ipv6-fragmented-dns.pcap"))
	var p Parser
	var m Message
	responses := map[string]bool{}
	for _, d := range corpus.UDPDatagrams(pkts) {
		if err := p.Parse(d.Payload, &m); err != nil {
			t.Errorf("%v -> %v: %v", d.Src, d.Dst, err)
			continue
		}
		if m.Response && m.RCode == 0 && m.QType.String() == "TXT" {
			responses[m.QName] = true
		}
	}
	for _, want := range []string{"txtpadding_323.n1.netalyzr.icsi.berkeley.edu", "txtpadding_3230.n1.netalyzr.icsi.berkeley.edu"} {
		if !responses[want] {
			t.Errorf("no reassembled TXT response for %s", want)
		}
	}
}
