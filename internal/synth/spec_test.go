package synth

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestDHCP reads a DHCP exchange back with gopacket's DHCPv4 decoder.
func TestDHCP(t *testing.T) {
	pi := MAC{0xdc, 0xa6, 0x32, 0x11, 0x22, 0x33}
	f := Flow{Start: epoch, Kind: DHCP, ClientMAC: pi, ServerMAC: gwMAC, Server: ap("10.10.0.1:67"), RTT: time.Millisecond,
		DHCP: &DHCPSpec{Addr: netip.MustParseAddr("10.10.7.20"), Hostname: "pikvm", VendorClass: "dhcpcd-10.0.6:Linux-6.6.45:aarch64:BCM2835",
			DNS: netip.MustParseAddr("10.10.0.53")}}
	pcap, tb, _ := render(t, []Flow{f}, Options{Seed: 1})
	pkts := readCapture(t, pcap)
	want := []struct {
		typ      layers.DHCPMsgType
		src, dst string
	}{
		{layers.DHCPMsgTypeDiscover, "0.0.0.0:68", "255.255.255.255:67"},
		{layers.DHCPMsgTypeOffer, "10.10.0.1:67", "255.255.255.255:68"},
		{layers.DHCPMsgTypeRequest, "0.0.0.0:68", "255.255.255.255:67"},
		{layers.DHCPMsgTypeAck, "10.10.0.1:67", "255.255.255.255:68"},
	}
	if len(pkts) != len(want) {
		t.Fatalf("%d packets, want %d", len(pkts), len(want))
	}
	var xid uint32
	for i, w := range want {
		p := pkts[i]
		if src, dst := netip.AddrPortFrom(p.src, p.sport).String(), netip.AddrPortFrom(p.dst, p.dport).String(); src != w.src || dst != w.dst {
			t.Errorf("packet %d: %s -> %s, want %s -> %s", i+1, src, dst, w.src, w.dst)
		}
		l, ok := p.packet.Layer(layers.LayerTypeDHCPv4).(*layers.DHCPv4)
		if !ok {
			t.Fatalf("packet %d: no DHCPv4 layer", i+1)
		}
		if i == 0 {
			xid = l.Xid
		}
		if l.Xid != xid || !bytes.Equal(l.ClientHWAddr, pi[:]) || len(p.payload) < 300 {
			t.Errorf("packet %d: xid %x (want %x), chaddr %s, %d bytes", i+1, l.Xid, xid, l.ClientHWAddr, len(p.payload))
		}
		opts := map[layers.DHCPOpt][]byte{}
		for _, o := range l.Options {
			opts[o.Type] = o.Data
		}
		if got := layers.DHCPMsgType(opts[layers.DHCPOptMessageType][0]); got != w.typ {
			t.Errorf("packet %d: message type %s, want %s", i+1, got, w.typ)
		}
		if l.Operation == layers.DHCPOpRequest {
			if string(opts[layers.DHCPOptHostname]) != "pikvm" || string(opts[layers.DHCPOptClassID]) != f.DHCP.VendorClass {
				t.Errorf("packet %d: hostname %q, vendor class %q", i+1, opts[layers.DHCPOptHostname], opts[layers.DHCPOptClassID])
			}
			continue
		}
		if l.YourClientIP.String() != "10.10.7.20" || !bytes.Equal(opts[layers.DHCPOptDNS], []byte{10, 10, 0, 53}) ||
			binary.BigEndian.Uint32(opts[layers.DHCPOptLeaseTime]) != 86400 {
			t.Errorf("packet %d: yiaddr %s, dns %v, lease %v", i+1, l.YourClientIP, opts[layers.DHCPOptDNS], opts[layers.DHCPOptLeaseTime])
		}
	}
	tr := readTruth(t, tb)[0]
	if tr.Kind != "dhcp" || tr.Src.String() != "0.0.0.0" || tr.Dst.String() != "255.255.255.255" || tr.PktsC2S != 2 || tr.PktsS2C != 2 {
		t.Errorf("truth %+v", tr)
	}
}

// serverCert digs the first certificate out of a TLS 1.2 server flight.
func serverCert(t *testing.T, stream []byte) *x509.Certificate {
	t.Helper()
	var hs []byte
	for len(stream) >= 5 {
		n := int(binary.BigEndian.Uint16(stream[3:5]))
		if stream[0] == recordHandshake && len(stream) >= 5+n {
			hs = append(hs, stream[5:5+n]...)
		}
		stream = stream[min(5+n, len(stream)):]
	}
	for len(hs) >= 4 {
		n := int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3])
		if hs[0] == 11 && len(hs) >= 4+n && n >= 6 {
			body := hs[4+3:]
			certLen := int(body[0])<<16 | int(body[1])<<8 | int(body[2])
			c, err := x509.ParseCertificate(body[3 : 3+certLen])
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		hs = hs[min(4+n, len(hs)):]
	}
	t.Fatal("no Certificate message")
	return nil
}

func TestCertificate(t *testing.T) {
	tls12 := &TLSSpec{SNI: "relay-1.net.anydesk.com", CipherSuites: []uint16{0xc02f}, Extensions: []uint16{0, 10, 11, 13, 23, 65281}}
	tests := []struct {
		name                 string
		cert                 *CertSpec
		subject, issuer, dns string
	}{
		{"default", nil, "CN=synth.invalid,O=edgeward synth", "CN=synth.invalid,O=edgeward synth", "synth.invalid"},
		{"self-signed", &CertSpec{CommonName: "AnyDesk Client"}, "CN=AnyDesk Client", "CN=AnyDesk Client", ""},
		{"issued", &CertSpec{CommonName: "*.astrill.com", DNSNames: []string{"*.astrill.com"}, IssuerCommonName: "Sectigo RSA Domain Validation Secure Server CA", IssuerOrganization: "Sectigo Limited"},
			"CN=*.astrill.com", "CN=Sectigo RSA Domain Validation Secure Server CA,O=Sectigo Limited", "*.astrill.com"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := Flow{Start: epoch, Kind: TLS, Client: ap("10.1.2.3:50000"), Server: ap("198.51.100.9:6568"), TLS: tls12, Cert: tc.cert, ResponseBytes: 100}
			var stream []byte
			pcap, _, _ := render(t, []Flow{f}, Options{Seed: 1})
			for _, p := range readCapture(t, pcap) {
				if p.sport == 6568 {
					stream = append(stream, p.payload...)
				}
			}
			c := serverCert(t, stream)
			if c.Subject.String() != tc.subject || c.Issuer.String() != tc.issuer || (tc.dns != "" && !slices.Equal(c.DNSNames, []string{tc.dns})) {
				t.Errorf("subject %q issuer %q names %q; want %q, %q, %q", c.Subject, c.Issuer, c.DNSNames, tc.subject, tc.issuer, tc.dns)
			}
			again, _, _ := render(t, []Flow{f}, Options{Seed: 1})
			if !bytes.Equal(pcap, again) {
				t.Error("certificate not deterministic")
			}
		})
	}
}

func TestPayloadLiterals(t *testing.T) {
	hello := []byte("\x05\x00RustDesk-register-peer-123456789")
	disco := append([]byte("TS\xf0\x9f\x92\xac"), make([]byte, 80)...)
	tests := []struct {
		name        string
		f           Flow
		first       []byte // the client's first payload must start with this
		exact       bool   // and be exactly this
		c2sPayload  int    // total client payload bytes
		serverFirst []byte
	}{
		{"tcp", Flow{Kind: TCPGeneric, Server: ap("198.51.100.9:21116"), ClientPayload: hello, ServerPayload: []byte{0x0a, 0x02},
			RequestBytes: 100, ResponseBytes: 10, Exchanges: 3}, hello, false, 300, []byte{0x0a, 0x02}},
		{"tcp literal longer than request", Flow{Kind: TCPGeneric, Server: ap("198.51.100.9:21116"), ClientPayload: hello}, hello, true, len(hello), nil},
		{"udp exact", Flow{Kind: UDPGeneric, Server: ap("198.51.100.9:41641"), ClientPayload: disco}, disco, true, len(disco), nil},
		{"udp split", Flow{Kind: UDPGeneric, Server: ap("198.51.100.9:21116"), ClientPayload: hello, RequestBytes: 3000, ResponseBytes: 20, ServerPayload: []byte("ok")},
			hello, false, 3000, []byte("ok")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			f.Start, f.Client = epoch, ap("10.1.2.3:50000")
			pcap, _, _ := render(t, []Flow{f}, Options{Seed: 1})
			var first, sfirst []byte
			total := 0
			for _, p := range readCapture(t, pcap) {
				switch {
				case len(p.payload) == 0:
				case p.sport == 50000:
					if first == nil {
						first = p.payload
					}
					total += len(p.payload)
				case sfirst == nil:
					sfirst = p.payload
				}
			}
			if !bytes.HasPrefix(first, tc.first) || tc.exact && len(first) != len(tc.first) {
				t.Errorf("first client payload %q, want %q (exact %v)", first[:min(len(first), 64)], tc.first, tc.exact)
			}
			if total != tc.c2sPayload {
				t.Errorf("client payload %d bytes, want %d", total, tc.c2sPayload)
			}
			if !bytes.HasPrefix(sfirst, tc.serverFirst) {
				t.Errorf("first server payload %q, want prefix %q", sfirst, tc.serverFirst)
			}
		})
	}
}

func TestInterval(t *testing.T) {
	tests := []struct {
		name string
		f    Flow
	}{
		{"tcp", Flow{Kind: TCPGeneric, Server: ap("198.51.100.9:21117"), RequestBytes: 5000, ResponseBytes: 200}},
		{"tls", Flow{Kind: TLS, Server: ap("198.51.100.9:443"), TLS: &TLSSpec{SNI: "x.example"}, RequestBytes: 5000, ResponseBytes: 200}},
		{"udp", Flow{Kind: UDPGeneric, Server: ap("198.51.100.9:21116"), RequestBytes: 50, ResponseBytes: 50}},
		{"quic", Flow{Kind: QUIC, Server: ap("198.51.100.9:443"), TLS: &TLSSpec{SNI: "x.example"}, RequestBytes: 50, ResponseBytes: 500}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			f.Start, f.Client, f.Exchanges, f.Interval = epoch, ap("10.1.2.3:50000"), 31, time.Minute
			_, tb, _ := render(t, []Flow{f}, Options{Seed: 1})
			tr := readTruth(t, tb)[0]
			if d := tr.End.Sub(tr.TS); d < 30*time.Minute || d > 31*time.Minute {
				t.Errorf("flow lasts %s, want 30-31 minutes", d)
			}
		})
	}
}

// TestCutoff checks that frames past the cutoff lose their payload but
// keep their original length, and that the first bytes are intact.
func TestCutoff(t *testing.T) {
	flows := []Flow{
		{Start: epoch, Kind: TLS, Client: ap("10.1.2.3:50000"), Server: ap("198.51.100.9:443"), TLS: &TLSSpec{SNI: "big.example"},
			RequestBytes: 2 << 20, ResponseBytes: 20000, Exchanges: 2},
		{Start: epoch, Kind: UDPGeneric, Client: ap("10.1.2.3:50001"), Server: ap("198.51.100.9:4000"), RequestBytes: 20000},
	}
	const cutoff = 4096
	full, tb, fst := render(t, flows, Options{Seed: 1})
	cut, tb2, cst := render(t, flows, Options{Seed: 1, Cutoff: cutoff})
	if !bytes.Equal(tb, tb2) || fst.Packets != cst.Packets {
		t.Fatal("cutoff changed the flows")
	}
	if len(cut) > len(full)/10 || cst.FrameBytes >= fst.FrameBytes {
		t.Errorf("cut capture %d bytes (%d frame bytes), full %d (%d)", len(cut), cst.FrameBytes, len(full), fst.FrameBytes)
	}
	read := func(b []byte) (data [][]byte, lens []int) {
		r, err := pcapgo.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		for {
			d, ci, err := r.ReadPacketData()
			if errors.Is(err, io.EOF) {
				return data, lens
			}
			if err != nil {
				t.Fatal(err)
			}
			data, lens = append(data, d), append(lens, ci.Length)
		}
	}
	fd, fl := read(full)
	cd, cl := read(cut)
	if !slices.Equal(fl, cl) {
		t.Fatal("original lengths differ")
	}
	truncated := 0
	for i := range fd {
		if !bytes.HasPrefix(fd[i], cd[i]) {
			t.Fatalf("packet %d: stored bytes differ from the full frame's", i+1)
		}
		if len(cd[i]) < len(fd[i]) {
			truncated++
			if len(cd[i]) < 14+20+8 {
				t.Fatalf("packet %d: headers cut (%d bytes)", i+1, len(cd[i]))
			}
		}
	}
	if truncated == 0 || truncated == len(fd) {
		t.Errorf("%d of %d frames truncated", truncated, len(fd))
	}
}

func TestSpecErrors(t *testing.T) {
	dhcp := Flow{Start: epoch, Kind: DHCP, Server: ap("10.0.0.1:67"), DHCP: &DHCPSpec{Addr: netip.MustParseAddr("10.0.0.9")}}
	tests := []struct {
		name string
		f    func(f Flow) Flow
	}{
		{"dhcp without spec", func(f Flow) Flow { f.DHCP = nil; return f }},
		{"dhcp v6 address", func(f Flow) Flow { f.DHCP = &DHCPSpec{Addr: netip.MustParseAddr("fd00::9")}; return f }},
		{"dhcp server port", func(f Flow) Flow { f.Server = ap("10.0.0.1:68"); return f }},
		{"dhcp long hostname", func(f Flow) Flow {
			f.DHCP = &DHCPSpec{Addr: f.DHCP.Addr, Hostname: string(make([]byte, 256))}
			return f
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(slices.Values([]Flow{tc.f(dhcp)}), io.Discard, nil, Options{})
			if !errors.Is(err, ErrBadFlow) {
				t.Errorf("err = %v, want ErrBadFlow", err)
			}
		})
	}
}
