package dhcpmeta

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var testMAC = net.HardwareAddr{0x90, 0xb1, 0x1c, 0x99, 0x49, 0x29}

func opt(t layers.DHCPOpt, data ...byte) layers.DHCPOption { return layers.NewDHCPOption(t, data) }

func optStr(t layers.DHCPOpt, s string) layers.DHCPOption { return layers.NewDHCPOption(t, []byte(s)) }

// buildV4 serialises a DHCPv4 message with gopacket.
func buildV4(t testing.TB, op layers.DHCPOp, yiaddr string, opts ...layers.DHCPOption) []byte {
	t.Helper()
	d := &layers.DHCPv4{
		Operation: op, HardwareType: layers.LinkTypeEthernet, HardwareLen: 6, Xid: 0x1984,
		ClientIP: net.IPv4zero, YourClientIP: net.ParseIP(yiaddr).To4(), NextServerIP: net.IPv4zero, RelayAgentIP: net.IPv4zero,
		ClientHWAddr: testMAC, Options: append(opts, opt(layers.DHCPOptEnd)),
	}
	if d.YourClientIP == nil {
		d.YourClientIP = net.IPv4zero
	}
	buf := gopacket.NewSerializeBuffer()
	if err := d.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		t.Fatalf("serialising DHCPv4: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func TestParseV4(t *testing.T) {
	ack := buildV4(t, layers.DHCPOpReply, "128.2.6.189",
		opt(layers.DHCPOptMessageType, byte(Ack)),
		opt(layers.DHCPOptServerID, 128, 2, 6, 152),
		opt(layers.DHCPOptLeaseTime, 0, 0, 0x03, 0x84),
		optStr(layers.DHCPOptDomainName, "cmu.edu"))
	request := buildV4(t, layers.DHCPOpRequest, "",
		opt(layers.DHCPOptMessageType, byte(Request)),
		opt(layers.DHCPOptRequestIP, 128, 2, 6, 189),
		optStr(layers.DHCPOptHostname, "btest.is.cool\x00"),
		optStr(layers.DHCPOptClassID, "MSFT 5.0"),
		opt(layers.DHCPOptClientID, 1, 0x90, 0xb1, 0x1c, 0x99, 0x49, 0x29),
		opt(layers.DHCPOptParamsRequest, 1, 3, 6, 15),
		opt(81, 0x04, 0, 0, 4, 'h', 'o', 's', 't', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0))
	badCookie := append([]byte(nil), ack...)
	badCookie[236] = 0
	cutOption := append([]byte(nil), request[:len(request)-1]...) // drop End
	cutOption = append(cutOption[:250], 12, 200, 'x')             // hostname claims 200 bytes

	tests := []struct {
		name    string
		in      []byte
		want    V4
		wantErr error
	}{
		{
			name: "ACK",
			in:   ack,
			want: V4{Op: 2, Type: Ack, Xid: 0x1984, ClientMAC: testMAC, AssignedAddr: netip.MustParseAddr("128.2.6.189"),
				ServerID: netip.MustParseAddr("128.2.6.152"), LeaseTime: 900, Domain: "cmu.edu"},
		},
		{
			name: "REQUEST with client identity",
			in:   request,
			want: V4{Op: 1, Type: Request, Xid: 0x1984, ClientMAC: testMAC, RequestedAddr: netip.MustParseAddr("128.2.6.189"),
				Hostname: "btest.is.cool", FQDN: "host.example", VendorClass: "MSFT 5.0",
				ClientID: []byte{1, 0x90, 0xb1, 0x1c, 0x99, 0x49, 0x29}, ParamRequest: []byte{1, 3, 6, 15}},
		},
		{name: "short", in: ack[:239], wantErr: ErrTruncated},
		{name: "bad magic cookie", in: badCookie, wantErr: ErrNotDHCP},
		{
			name:    "option overruns the message",
			in:      cutOption,
			want:    V4{Op: 1, Type: Request, Xid: 0x1984, ClientMAC: testMAC, RequestedAddr: netip.MustParseAddr("128.2.6.189")},
			wantErr: ErrTruncated,
		},
		{
			name: "hardware length over 16",
			in: func() []byte {
				b := append([]byte(nil), ack...)
				b[2] = 17
				return b
			}(),
			wantErr: ErrMalformed,
		},
		{
			name: "bad op",
			in: func() []byte {
				b := append([]byte(nil), ack...)
				b[0] = 9
				return b
			}(),
			wantErr: ErrNotDHCP,
		},
	}
	var p Parser
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m V4
			err := p.ParseV4(tt.in, &m)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("ParseV4 error = %v, want %v", err, tt.wantErr)
			}
			if len(m.ClientMAC) == 0 {
				m.ClientMAC = nil
			}
			if tt.wantErr != nil && tt.want.Op == 0 {
				tt.want = V4{}
			}
			if !reflect.DeepEqual(m, tt.want) {
				t.Errorf("ParseV4 =\n%+v\nwant\n%+v", m, tt.want)
			}
		})
	}
}

// v6opt encodes one DHCPv6 option.
func v6opt(code layers.DHCPv6Opt, data ...byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(code))
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

func v6msg(typ V6MsgType, opts ...[]byte) []byte {
	b := []byte{byte(typ), 0x2f, 0xfd, 0xd1}
	for _, o := range opts {
		b = append(b, o...)
	}
	return b
}

func iaNA(addrs ...[]byte) []byte {
	b := []byte{0x02, 0x03, 0x04, 0x05, 0, 0, 0x0e, 0x10, 0, 0, 0x15, 0x18}
	for _, a := range addrs {
		b = append(b, a...)
	}
	return b
}

func iaAddr(addr string, pref, valid uint32) []byte {
	a := netip.MustParseAddr(addr).As16()
	b := append(a[:], binary.BigEndian.AppendUint32(nil, pref)...)
	return v6opt(layers.DHCPv6OptIAAddr, binary.BigEndian.AppendUint32(b, valid)...)
}

var duidLL = []byte{0, 3, 0, 1, 0, 1, 2, 3, 4, 5}

func TestParseV6(t *testing.T) {
	reply := v6msg(Reply,
		v6opt(layers.DHCPv6OptIANA, iaNA(iaAddr("2a00:1:1:200:38e6:b22e:c440:acdf", 4500, 7200))...),
		v6opt(layers.DHCPv6OptClientID, duidLL...),
		v6opt(layers.DHCPv6OptServerID, 0, 1, 0, 1, 0x18, 0x46, 0x6e, 0x8c, 0, 0x11, 0x22, 0x33, 0x44, 0x55))
	request := v6msg(Request6,
		v6opt(layers.DHCPv6OptClientID, 0, 1, 0, 1, 0x18, 0x46, 0x6e, 0x8c, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff),
		v6opt(layers.DHCPv6OptClientFQDN, 0x01, 6, 'l', 'a', 'p', 't', 'o', 'p', 3, 'l', 'a', 'n', 0),
		v6opt(layers.DHCPv6OptVendorClass, 0, 0, 0x01, 0x37, 0, 8, 'M', 'S', 'F', 'T', ' ', '5', '.', '0'))
	relayed := append([]byte{byte(RelayForward), 0}, make([]byte, 32)...)
	relayed = append(relayed, v6opt(layers.DHCPv6OptRelayMessage, request...)...)

	tests := []struct {
		name    string
		in      []byte
		want    V6
		wantErr error
	}{
		{
			name: "Reply with IA_NA",
			in:   reply,
			want: V6{Type: Reply, TransactionID: 0x2ffdd1, ClientDUID: duidLL, ClientMAC: net.HardwareAddr{0, 1, 2, 3, 4, 5},
				Addrs: []IAAddr{{netip.MustParseAddr("2a00:1:1:200:38e6:b22e:c440:acdf"), 4500, 7200}}},
		},
		{
			name: "Request with DUID-LLT, FQDN, vendor class",
			in:   request,
			want: V6{Type: Request6, TransactionID: 0x2ffdd1, ClientDUID: []byte{0, 1, 0, 1, 0x18, 0x46, 0x6e, 0x8c, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff},
				ClientMAC: net.HardwareAddr{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}, FQDN: "laptop.lan", VendorClass: "MSFT 5.0", VendorEnterpriseID: 311},
		},
		{
			name: "relay-forward unwrapped",
			in:   relayed,
			want: V6{Type: Request6, RelayHops: 1, TransactionID: 0x2ffdd1, ClientDUID: []byte{0, 1, 0, 1, 0x18, 0x46, 0x6e, 0x8c, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff},
				ClientMAC: net.HardwareAddr{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}, FQDN: "laptop.lan", VendorClass: "MSFT 5.0", VendorEnterpriseID: 311},
		},
		{name: "short", in: []byte{1, 2, 3}, wantErr: ErrTruncated},
		{name: "type zero", in: []byte{0, 1, 2, 3}, wantErr: ErrNotDHCP},
		{
			name:    "option overruns",
			in:      append(v6msg(Solicit, v6opt(layers.DHCPv6OptClientID, duidLL...)), 0, 3, 0, 40, 1),
			want:    V6{Type: Solicit, TransactionID: 0x2ffdd1, ClientDUID: duidLL, ClientMAC: net.HardwareAddr{0, 1, 2, 3, 4, 5}},
			wantErr: ErrTruncated,
		},
		{
			name: "relay without relayed message",
			in:   append([]byte{byte(RelayReply), 0}, make([]byte, 32)...),
			want: V6{Type: RelayReply, RelayHops: 1}, wantErr: ErrMalformed,
		},
	}
	var p Parser
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m V6
			err := p.ParseV6(tt.in, &m)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("ParseV6 error = %v, want %v", err, tt.wantErr)
			}
			if len(m.Addrs) == 0 {
				m.Addrs = nil
			}
			if !reflect.DeepEqual(m, tt.want) {
				t.Errorf("ParseV6 =\n%+v\nwant\n%+v", m, tt.want)
			}
		})
	}
}

func TestParseV6RelayDepthBound(t *testing.T) {
	msg := v6msg(Solicit)
	for range maxRelayDepth + 1 {
		outer := append([]byte{byte(RelayForward), 0}, make([]byte, 32)...)
		msg = append(outer, v6opt(layers.DHCPv6OptRelayMessage, msg...)...)
	}
	var p Parser
	var m V6
	if err := p.ParseV6(msg, &m); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseV6 = %v, want ErrMalformed", err)
	}
}

func TestWireName(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"full", []byte{3, 'w', 'w', 'w', 2, 'e', 'x', 0}, "www.ex"},
		{"partial, no root", []byte{4, 'h', 'o', 's', 't'}, "host"},
		{"label overruns", []byte{4, 'h', 'o', 's', 't', 9, 'x'}, "host"},
		{"label over 63", []byte{64, 'a'}, ""},
		{"empty", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wireName(tt.in); got != tt.want {
				t.Errorf("wireName = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzParseV4(f *testing.F) {
	f.Add(buildV4(f, layers.DHCPOpReply, "10.0.0.5", opt(layers.DHCPOptMessageType, byte(Ack)), opt(layers.DHCPOptLeaseTime, 0, 0, 1, 0)))
	f.Add(buildV4(f, layers.DHCPOpRequest, "", opt(layers.DHCPOptMessageType, byte(Request)), optStr(layers.DHCPOptHostname, "h"),
		opt(81, 0x04, 0, 0, 1, 'a', 0), opt(layers.DHCPOptExtOptions, 3)))
	var p Parser
	var m V4
	tab := NewTable(TableConfig{Capacity: 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := p.ParseV4(b, &m); err != nil && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotDHCP) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		if len(m.ClientMAC) > 16 || len(m.Hostname) > 255 || len(m.FQDN) > 255 {
			t.Fatalf("bound exceeded: %+v", m)
		}
		tab.AddV4(&m, testEpoch)
		tab.Lookup(m.AssignedAddr, testEpoch)
	})
}

func FuzzParseV6(f *testing.F) {
	f.Add(v6msg(Reply, v6opt(layers.DHCPv6OptIANA, iaNA(iaAddr("2001:db8::1", 1, 2))...), v6opt(layers.DHCPv6OptClientID, duidLL...)))
	f.Add(v6msg(Request6, v6opt(layers.DHCPv6OptClientFQDN, 1, 1, 'a', 0), v6opt(layers.DHCPv6OptVendorClass, 0, 0, 0, 1, 0, 1, 'x')))
	f.Add(append(append([]byte{byte(RelayForward), 0}, make([]byte, 32)...), v6opt(layers.DHCPv6OptRelayMessage, v6msg(Solicit)...)...))
	var p Parser
	var m V6
	tab := NewTable(TableConfig{Capacity: 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := p.ParseV6(b, &m); err != nil && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotDHCP) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		if len(m.Addrs) > MaxAddrs || len(m.FQDN) > 255 || m.RelayHops > maxRelayDepth {
			t.Fatalf("bound exceeded: %+v", m)
		}
		tab.AddV6(&m, testEpoch)
		for _, a := range m.Addrs {
			tab.Lookup(a.Addr, testEpoch)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	ack := buildV4(b, layers.DHCPOpReply, "128.2.6.189",
		opt(layers.DHCPOptMessageType, byte(Ack)), opt(layers.DHCPOptServerID, 128, 2, 6, 152),
		opt(layers.DHCPOptLeaseTime, 0, 0, 0x03, 0x84), optStr(layers.DHCPOptDomainName, "cmu.edu"),
		optStr(layers.DHCPOptHostname, "btest.is.cool"))
	// Baseline: gopacket's decoder alone.
	b.Run("gopacket-baseline-v4", func(b *testing.B) {
		var d layers.DHCPv4
		b.ReportAllocs()
		for b.Loop() {
			if err := d.DecodeFromBytes(ack, gopacket.NilDecodeFeedback); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ParseV4", func(b *testing.B) {
		var p Parser
		var m V4
		b.ReportAllocs()
		for b.Loop() {
			if err := p.ParseV4(ack, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	reply := v6msg(Reply, v6opt(layers.DHCPv6OptIANA, iaNA(iaAddr("2a00:1:1:200:38e6:b22e:c440:acdf", 4500, 7200))...),
		v6opt(layers.DHCPv6OptClientID, duidLL...))
	b.Run("gopacket-baseline-v6", func(b *testing.B) {
		var d layers.DHCPv6
		b.ReportAllocs()
		for b.Loop() {
			if err := d.DecodeFromBytes(reply, gopacket.NilDecodeFeedback); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ParseV6", func(b *testing.B) {
		var p Parser
		var m V6
		b.ReportAllocs()
		for b.Loop() {
			if err := p.ParseV6(reply, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
