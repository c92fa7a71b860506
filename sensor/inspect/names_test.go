package inspect

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/decode"
	"github.com/edgeward/edgeward/sensor/flowtable"
)

// dnsAnswer is a UDP DNS response from resolver to client naming addr.
func dnsAnswer(t *testing.T, ts int64, client, resolver flow.Addr, name, addr string) decode.Packet {
	t.Helper()
	d := &layers.DNS{ID: 7, QR: true, RD: true, RA: true,
		Questions: []layers.DNSQuestion{{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN}},
		Answers: []layers.DNSResourceRecord{{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN,
			TTL: 300, IP: net.IP(netip.MustParseAddr(addr).AsSlice())}}}
	d.QDCount, d.ANCount = 1, 1
	buf := gopacket.NewSerializeBuffer()
	if err := d.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		t.Fatal(err)
	}
	pl := append([]byte(nil), buf.Bytes()...)
	return decode.Packet{TS: ts, Key: flow.Key{Src: resolver, Dst: client, SrcPort: 53, DstPort: 40000, Proto: flow.ProtoUDP},
		IPBytes: 28 + uint32(len(pl)), PayloadLen: uint32(len(pl)), Payload: pl}
}

// TestDNSNameFromEarlierAnswerOnly: schema.md promises dst.name from "an
// earlier DNS answer to this client". An answer the client received only
// after the flow started (here while it was still open) must not name it,
// nor replace the name an earlier answer gave.
func TestDNSNameFromEarlierAnswerOnly(t *testing.T) {
	a := func(s string) flow.Addr { return flow.AddrFrom(netip.MustParseAddr(s)) }
	client, resolver, server := a("10.0.0.5"), a("10.0.0.1"), a("93.184.216.34")
	sec := int64(10 * time.Second) // steps well above dnsmeta's answerSkew
	tcp := func(ts int64, sport uint16, flags flow.TCPFlags) decode.Packet {
		return decode.Packet{TS: ts, Key: flow.Key{Src: client, Dst: server, SrcPort: sport, DstPort: 443, Proto: flow.ProtoTCP},
			IPBytes: 40, TCPFlags: flags}
	}
	var names = map[uint16]string{}
	tab := flowtable.New(flowtable.Config{}, func(r *flow.Record) {
		if r.Proto == "tcp" {
			names[r.Src.Port] = r.Dst.Name
		}
	})
	tab.SetInspector(New(Config{}))
	pkts := []decode.Packet{
		tcp(0, 1000, flow.FlagSYN), // flow 1 starts, nothing resolved yet (steps of 10 s)
		dnsAnswer(t, 1*sec, client, resolver, "late.example", "93.184.216.34"), // answered after flow 1 started
		tcp(2*sec, 1000, flow.FlagACK),
		tcp(3*sec, 2000, flow.FlagSYN), // flow 2 starts after late.example
		dnsAnswer(t, 4*sec, client, resolver, "later.example", "93.184.216.34"),
		tcp(5*sec, 2000, flow.FlagACK),
	}
	for i := range pkts {
		tab.Update(&pkts[i])
	}
	tab.Flush(flow.EndEOF)
	if names[1000] != "" {
		t.Errorf("flow started at 0 s named %q by an answer received at 10 s", names[1000])
	}
	if names[2000] != "late.example" {
		t.Errorf("flow started at 30 s named %q, want late.example (the answer before it)", names[2000])
	}
}
