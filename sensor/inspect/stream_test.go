package inspect

import (
	"crypto/tls"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/appid"
	"github.com/edgeward/edgeward/sensor/decode"
	"github.com/edgeward/edgeward/sensor/flowtable"
)

// clientHello returns the first bytes crypto/tls sends for sni.
func clientHello(t *testing.T, sni string) []byte {
	t.Helper()
	c, s := net.Pipe()
	defer s.Close()
	go func() {
		tc := tls.Client(c, &tls.Config{ServerName: sni, NextProtos: []string{"h2", "http/1.1"}})
		_ = tc.Handshake()
		c.Close()
	}()
	buf := make([]byte, 1<<14)
	_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := s.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// tcpConn builds the packets of one TCP connection between a client and a
// server; sequence numbers start at the ISNs below.
type tcpConn struct {
	client, server flow.Addr
	cport, sport   uint16
	ts             int64
}

const (
	clientISN = 1000
	serverISN = 5000
)

func newTCPConn(sport uint16) *tcpConn {
	a := func(s string) flow.Addr { return flow.AddrFrom(netip.MustParseAddr(s)) }
	return &tcpConn{client: a("10.0.0.5"), server: a("93.184.216.34"), cport: 40000, sport: sport}
}

// pkt is a packet from the client (fromClient) or the server, carrying
// payload at relative sequence offset rel (0 is the first payload byte).
func (c *tcpConn) pkt(fromClient bool, flags flow.TCPFlags, rel uint32, payload []byte) decode.Packet {
	c.ts += int64(time.Millisecond)
	k := flow.Key{Src: c.client, Dst: c.server, SrcPort: c.cport, DstPort: c.sport, Proto: flow.ProtoTCP}
	seq := uint32(clientISN) + 1 + rel
	if !fromClient {
		k.Src, k.Dst, k.SrcPort, k.DstPort = k.Dst, k.Src, k.DstPort, k.SrcPort
		seq = serverISN + 1 + rel
	}
	if flags&flow.FlagSYN != 0 {
		seq--
	}
	pl := append([]byte(nil), payload...)
	return decode.Packet{TS: c.ts, Key: k, IPBytes: 40 + uint32(len(pl)), PayloadLen: uint32(len(pl)),
		Payload: pl, TCPFlags: flags, Seq: seq}
}

func (c *tcpConn) handshake() []decode.Packet {
	return []decode.Packet{
		c.pkt(true, flow.FlagSYN, 0, nil),
		c.pkt(false, flow.FlagSYN|flow.FlagACK, 0, nil),
		c.pkt(true, flow.FlagACK, 0, nil),
	}
}

// records runs pkts through a flow table with an inspector and returns
// the TCP/UDP records.
func records(t *testing.T, pkts []decode.Packet) []flow.Record {
	t.Helper()
	apps, err := appid.New()
	if err != nil {
		t.Fatal(err)
	}
	var out []flow.Record
	tab := flowtable.New(flowtable.Config{}, func(r *flow.Record) {
		c := *r
		if r.TLS != nil {
			v := *r.TLS
			c.TLS = &v
		}
		if r.HTTP != nil {
			v := *r.HTTP
			c.HTTP = &v
		}
		if r.SSH != nil {
			v := *r.SSH
			c.SSH = &v
		}
		if r.QUIC != nil {
			v := *r.QUIC
			c.QUIC = &v
		}
		out = append(out, c)
	})
	tab.SetInspector(New(Config{Apps: apps}))
	for i := range pkts {
		tab.Update(&pkts[i])
	}
	tab.Flush(flow.EndEOF)
	return out
}

// TestClientHelloFirstSegmentReordered: schema.md promises TLS over TCP
// "reassembled across segments (retransmissions dropped, up to 4
// out-of-order segments held)". A ClientHello split in two whose second
// segment is captured before the first (after a normal handshake) must
// still give tls.sni.
func TestClientHelloFirstSegmentReordered(t *testing.T) {
	hello := clientHello(t, "www.example.org")
	c := newTCPConn(443)
	cut := 100
	pkts := append(c.handshake(),
		c.pkt(true, flow.FlagACK|flow.FlagPSH, uint32(cut), hello[cut:]),
		c.pkt(true, flow.FlagACK, 0, hello[:cut]),
	)
	recs := records(t, pkts)
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	if r := recs[0]; r.TLS == nil || r.TLS.SNI != "www.example.org" {
		t.Errorf("tls = %+v, want sni www.example.org", r.TLS)
	}
}

// TestSSHServerPreamble: RFC 4253 4.2 lets a server send text lines before
// its identification, and sshmeta skips them; ssh.server must be filled.
func TestSSHServerPreamble(t *testing.T) {
	const pre, banner, client = "Welcome to the bastion\r\n", "SSH-2.0-OpenSSH_9.6p1 Ubuntu-3\r\n", "SSH-2.0-OpenSSH_9.6\r\n"
	for _, tc := range []struct {
		name string
		pkts func(c *tcpConn) []decode.Packet
	}{
		{"server first", func(c *tcpConn) []decode.Packet {
			return []decode.Packet{c.pkt(false, flow.FlagACK, 0, []byte(pre+banner)), c.pkt(true, flow.FlagACK, 0, []byte(client))}
		}},
		{"client first", func(c *tcpConn) []decode.Packet {
			return []decode.Packet{c.pkt(true, flow.FlagACK, 0, []byte(client)), c.pkt(false, flow.FlagACK, 0, []byte(pre+banner))}
		}},
		{"preamble in its own segment", func(c *tcpConn) []decode.Packet {
			return []decode.Packet{c.pkt(false, flow.FlagACK, 0, []byte(pre)), c.pkt(true, flow.FlagACK, 0, []byte(client)),
				c.pkt(false, flow.FlagACK, uint32(len(pre)), []byte(banner))}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTCPConn(22)
			recs := records(t, append(c.handshake(), tc.pkts(c)...))
			if len(recs) != 1 {
				t.Fatalf("%d records", len(recs))
			}
			r := recs[0]
			if r.SSH == nil || r.SSH.Server != "SSH-2.0-OpenSSH_9.6p1 Ubuntu-3" || r.SSH.Client != "SSH-2.0-OpenSSH_9.6" {
				t.Errorf("ssh = %+v, want both identification strings", r.SSH)
			}
		})
	}
}

// TestStreamExpect: a stream anchored at its SYN holds a first segment
// that arrives after a later one, and still borrows an in-order first one.
func TestStreamExpect(t *testing.T) {
	var s stream
	s.reset(100)
	s.expect(1000)
	s.add(1003, []byte("def"))
	s.add(1000, []byte("abc"))
	if string(s.buf) != "abcdef" {
		t.Errorf("buf %q, want abcdef", s.buf)
	}
	s.reset(100)
	s.expect(1000)
	if s.add(1000, []byte("abc")); !s.borrowed || string(s.buf) != "abc" {
		t.Errorf("in-order first segment: buf %q borrowed %v", s.buf, s.borrowed)
	}
}

// TestHTTPConnectIPv6Target: a CONNECT to an IPv6 literal must keep the
// brackets in http.host ("host:port"), or the port cannot be told from
// the address.
func TestHTTPConnectIPv6Target(t *testing.T) {
	c := newTCPConn(3128)
	req := "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n"
	pkts := append(c.handshake(), c.pkt(true, flow.FlagACK|flow.FlagPSH, 0, []byte(req)))
	recs := records(t, pkts)
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	if r := recs[0]; r.HTTP == nil || r.HTTP.Host != "[2001:db8::1]:443" {
		t.Errorf("http = %+v, want host [2001:db8::1]:443", r.HTTP)
	}
}

// TestHTTPLargeHeaderBlock: a request whose header block passes
// httpmeta.MaxHeaderBytes (big cookies) still has a method, host and path:
// httpmeta fills them in before returning ErrTooLong.
func TestHTTPLargeHeaderBlock(t *testing.T) {
	c := newTCPConn(80)
	req := "GET /index.html HTTP/1.1\r\nHost: www.example.org\r\nUser-Agent: test\r\nCookie: "
	for len(req) < 9000 {
		req += "a=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb; "
	}
	req += "\r\n\r\n"
	pkts := c.handshake()
	for off := 0; off < len(req); off += 1448 {
		end := min(off+1448, len(req))
		pkts = append(pkts, c.pkt(true, flow.FlagACK, uint32(off), []byte(req[off:end])))
	}
	recs := records(t, pkts)
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	if r := recs[0]; r.HTTP == nil || r.HTTP.Method != "GET" || r.HTTP.Host != "www.example.org" || r.HTTP.Path != "/index.html" {
		t.Errorf("http = %+v, want GET www.example.org /index.html", r.HTTP)
	}
}
