package dhcpmeta

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/edgeward/edgeward/internal/corpus"
)

// TestCorpusZeekDHCP replays zeek-dhcp.pcap through the parser and Table
// and compares with Zeek's dhcp.log: client 90:b1:1c:99:49:29, host name
// btest.is.cool, domain cmu.edu, assigned 128.2.6.189 with a 900 s lease
// after a NAK "requested address not available".
func TestCorpusZeekDHCP(t *testing.T) {
	dir := corpus.Dir(t)
	pkts := corpus.ReadCapture(t, filepath.Join(dir, "pcaps", "zeek-dhcp.pcap"))
	var p Parser
	var m V4
	tab := NewTable(TableConfig{})
	var types []string
	var nakMessage, domain string
	var lease uint32
	for i, d := range corpus.UDPDatagrams(pkts) {
		if err := p.ParseV4(d.Payload, &m); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		types = append(types, m.Type.String())
		if m.Type == Nak {
			nakMessage = m.Message
		}
		if m.Type == Ack {
			domain, lease = m.Domain, m.LeaseTime
		}
		tab.AddV4(&m, pkts[0].Metadata().Timestamp)
	}
	wantTypes := []string{"Discover", "Offer", "Request", "Nak", "Request", "Ack", "Decline", "Release", "Inform"}
	if len(types) != len(wantTypes) {
		t.Fatalf("message types %v, want %v", types, wantTypes)
	}
	for i := range types {
		if types[i] != wantTypes[i] {
			t.Errorf("message %d type %s, want %s", i, types[i], wantTypes[i])
		}
	}
	if nakMessage != "requested address not available" || domain != "cmu.edu" || lease != 900 {
		t.Errorf("NAK message %q, domain %q, lease %d", nakMessage, domain, lease)
	}
	l, ok := tab.Lookup(netip.MustParseAddr("128.2.6.189"), pkts[len(pkts)-1].Metadata().Timestamp)
	if !ok || l.Hostname != "btest.is.cool" || l.MAC.String() != "90:b1:1c:99:49:29" {
		t.Errorf("Lookup(128.2.6.189) = %+v, %v; want btest.is.cool 90:b1:1c:99:49:29", l, ok)
	}
	// The OFFER of 128.2.6.97 was never acknowledged.
	if _, ok := tab.Lookup(netip.MustParseAddr("128.2.6.97"), pkts[len(pkts)-1].Metadata().Timestamp); ok {
		t.Error("unacknowledged OFFER bound an address")
	}
}

// TestCorpusDHCPv6 compares with tcpdump's decoding of
// tcpdump-dhcpv6-ia-na.pcap: client-ID hwaddr type 1 000102030405, IA_NA
// address 2a00:1:1:200:38e6:b22e:c440:acdf (valid 7200 s in the reply).
func TestCorpusDHCPv6(t *testing.T) {
	dir := corpus.Dir(t)
	pkts := corpus.ReadCapture(t, filepath.Join(dir, "pcaps", "tcpdump-dhcpv6-ia-na.pcap"))
	var p Parser
	var m V6
	tab := NewTable(TableConfig{})
	wantTypes := []V6MsgType{Solicit, Advertise, Request6, Reply}
	dgrams := corpus.UDPDatagrams(pkts)
	if len(dgrams) != len(wantTypes) {
		t.Fatalf("got %d datagrams, want %d", len(dgrams), len(wantTypes))
	}
	addr := netip.MustParseAddr("2a00:1:1:200:38e6:b22e:c440:acdf")
	for i, d := range dgrams {
		if err := p.ParseV6(d.Payload, &m); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if m.Type != wantTypes[i] || m.ClientMAC.String() != "00:01:02:03:04:05" {
			t.Errorf("datagram %d: type %v MAC %v, want %v 00:01:02:03:04:05", i, m.Type, m.ClientMAC, wantTypes[i])
		}
		if m.Type != Solicit && (len(m.Addrs) != 1 || m.Addrs[0].Addr != addr) {
			t.Errorf("datagram %d: IA_NA addresses %v, want %v", i, m.Addrs, addr)
		}
		tab.AddV6(&m, pkts[0].Metadata().Timestamp)
	}
	if m.Addrs[0].ValidSeconds != 7200 || m.Addrs[0].Preferred != 4500 {
		t.Errorf("reply lifetimes %+v, want pltime 4500 vltime 7200", m.Addrs[0])
	}
	l, ok := tab.Lookup(addr, pkts[len(pkts)-1].Metadata().Timestamp)
	if !ok || l.MAC.String() != "00:01:02:03:04:05" || string(l.ClientID) != string(duidLL) {
		t.Errorf("Lookup = %+v, %v", l, ok)
	}
}

// TestCorpusNoPanic feeds every UDP datagram of every capture to both
// parsers: most are not DHCP and must fail with a sentinel, not panic.
func TestCorpusNoPanic(t *testing.T) {
	dir := corpus.Dir(t)
	var p Parser
	var m4 V4
	var m6 V6
	for _, e := range corpus.Manifest(t, dir) {
		for _, d := range corpus.UDPDatagrams(corpus.ReadCapture(t, filepath.Join(dir, e.File))) {
			_ = p.ParseV4(d.Payload, &m4)
			_ = p.ParseV6(d.Payload, &m6)
		}
	}
}
