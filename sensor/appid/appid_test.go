package appid

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/fstest"
)

// rnd returns n deterministic pseudo-random bytes.
func rnd(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// wg builds a WireGuard message of the given type and total size.
func wg(typ byte, size int) []byte {
	return cat([]byte{typ, 0, 0, 0}, rnd(uint64(typ), size-4))
}

// ovpn builds OpenVPN client hard resets in each of the layouts.
func ovpnPlain() []byte {
	return cat([]byte{7 << 3}, rnd(10, 8), []byte{0}, be32(0))
}

func ovpnTLSAuth(hmac int) []byte {
	return cat([]byte{7 << 3}, rnd(11, 8), rnd(12, hmac), be32(1), be32(0x66a0b1c2), []byte{0}, be32(0))
}

func ovpnTLSCrypt(op byte, extra int) []byte {
	return cat([]byte{op << 3}, rnd(13, 8), be32(1), be32(0x66a0b1c2), rnd(14, 32), rnd(15, 5+extra))
}

func tcpLen(b []byte) []byte { return cat(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b) }

// ike builds an IKE header plus padding with a correct length field.
func ike(version, exchange byte, size int) []byte {
	b := cat(rnd(20, 8), make([]byte, 8), []byte{33, version, exchange, 0x08}, be32(0), be32(uint32(size)))
	return cat(b, rnd(21, size-len(b)))
}

func zeroTierHello() []byte {
	b := cat(rnd(30, 8), []byte{0x89, 0x12, 0x34, 0x56, 0x78}, []byte{0x12, 0x34, 0x56, 0x78, 0x9a}, []byte{0x00}, rnd(31, 8))
	return cat(b, []byte{0x01, 12, 1, 14, 0}, rnd(32, 60))
}

func TestIdentify(t *testing.T) {
	id, err := New()
	if err != nil {
		t.Fatal(err)
	}
	random := rnd(99, 200)
	tests := []struct {
		name string
		in   Input
		want Result
	}{
		// AnyDesk: TLS ALPN and self-signed certificate.
		{"anydesk alpn", Input{Proto: TCP, ServerPort: 443, ALPN: []string{"anydesk/7.1.0"}},
			Result{"anydesk", SourceALPN, "remote_access"}},
		{"anydesk cert subject", Input{Proto: TCP, ServerPort: 7070, CertSubject: "CN=AnyDesk Client", CertIssuer: "CN=AnyDesk Client"},
			Result{"anydesk", SourceCert, "remote_access"}},
		{"anydesk cert bare cn, any case", Input{Proto: TCP, ServerPort: 50001, CertSubject: "anydesk client"},
			Result{"anydesk", SourceCert, "remote_access"}},
		{"anydesk cert beats sni", Input{Proto: TCP, ServerPort: 443, SNI: "example.com", CertSubject: "O=philandro, CN=AnyDesk Client"},
			Result{"anydesk", SourceCert, "remote_access"}},
		{"anydesk relay sni", Input{Proto: TCP, ServerPort: 443, SNI: "relay-1a2b3c4d.net.anydesk.com"},
			Result{"anydesk", SourceSNI, "remote_access"}},
		{"h2 alpn is not an app", Input{Proto: TCP, ServerPort: 443, ALPN: []string{"h2", "http/1.1"}}, Result{}},

		// TeamViewer magic bytes.
		{"teamviewer tcp 5938", Input{Proto: TCP, ServerPort: 5938, ClientFirst: cat([]byte{0x17, 0x24, 0x0a}, rnd(1, 20))},
			Result{"teamviewer", SourcePayload, "remote_access"}},
		{"teamviewer tcp 443 with reply", Input{Proto: TCP, ServerPort: 443, ClientFirst: cat([]byte{0x17, 0x24, 0x0a}, rnd(1, 20)), ServerFirst: cat([]byte{0x11, 0x30, 0x00}, rnd(2, 20))},
			Result{"teamviewer", SourcePayload, "remote_access"}},
		{"teamviewer magic alone on 443 is too weak", Input{Proto: TCP, ServerPort: 443, ClientFirst: []byte{0x17, 0x24, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}, Result{}},
		{"teamviewer udp", Input{Proto: UDP, ClientPort: 40000, ServerPort: 5938, ClientFirst: cat([]byte{0}, rnd(3, 10), []byte{0x17, 0x24}, rnd(4, 30))},
			Result{"teamviewer", SourcePayload, "remote_access"}},

		// Tailscale: disco magic, DERP, WireGuard on 41641, names.
		{"tailscale disco", Input{Proto: UDP, ClientPort: 41641, ServerPort: 3478, ClientFirst: cat([]byte("TS💬"), rnd(5, 32+24+40))},
			Result{"tailscale", SourcePayload, "vpn"}},
		{"tailscale disco any port", Input{Proto: UDP, ClientPort: 50123, ServerPort: 61234, ClientFirst: cat([]byte("TS\xf0\x9f\x92\xac"), rnd(5, 80))},
			Result{"tailscale", SourcePayload, "vpn"}},
		{"tailscale wireguard 41641", Input{Proto: UDP, ClientPort: 41641, ServerPort: 41641, ClientFirst: wg(1, 148), ServerFirst: wg(2, 92)},
			Result{"tailscale", SourcePayload, "vpn"}},
		{"tailscale derp http", Input{Proto: TCP, ServerPort: 80, ClientFirst: []byte("GET /derp HTTP/1.1\r\nHost: derp1.tailscale.com\r\nConnection: Upgrade\r\nUpgrade: DERP\r\n\r\n")},
			Result{"tailscale", SourcePayload, "vpn"}},
		{"tailscale derp server key frame", Input{Proto: TCP, ServerPort: 8443, ServerFirst: cat([]byte{1, 0, 0, 0, 40}, []byte("DERP🔑"), rnd(6, 32))},
			Result{"tailscale", SourcePayload, "vpn"}},
		{"tailscale control sni", Input{Proto: TCP, ServerPort: 443, SNI: "controlplane.tailscale.com"},
			Result{"tailscale", SourceSNI, "vpn"}},
		{"tailscale derp dns", Input{Proto: TCP, ServerPort: 443, DNSName: "DERP7.TAILSCALE.COM."},
			Result{"tailscale", SourceDNS, "vpn"}},

		// ZeroTier.
		{"zerotier hello", Input{Proto: UDP, ClientPort: 9993, ServerPort: 9993, ClientFirst: zeroTierHello()},
			Result{"zerotier", SourcePayload, "vpn"}},
		{"zerotier port only", Input{Proto: UDP, ClientPort: 51000, ServerPort: 9993, ClientFirst: rnd(33, 120)},
			Result{"zerotier", SourcePort, "vpn"}},
		{"zerotier root dns", Input{Proto: UDP, ClientPort: 51000, ServerPort: 443, DNSName: "api.zerotier.com"},
			Result{"zerotier", SourceDNS, "vpn"}},

		// RustDesk: ports only (its protobuf framing has no fixed magic).
		{"rustdesk 21115", Input{Proto: TCP, ServerPort: 21115}, Result{"rustdesk", SourcePort, "remote_access"}},
		{"rustdesk 21116 tcp", Input{Proto: TCP, ServerPort: 21116}, Result{"rustdesk", SourcePort, "remote_access"}},
		{"rustdesk 21116 udp", Input{Proto: UDP, ServerPort: 21116}, Result{"rustdesk", SourcePort, "remote_access"}},
		{"rustdesk 21117", Input{Proto: TCP, ServerPort: 21117}, Result{"rustdesk", SourcePort, "remote_access"}},
		{"rustdesk 21118", Input{Proto: TCP, ServerPort: 21118}, Result{"rustdesk", SourcePort, "remote_access"}},
		{"rustdesk 21119", Input{Proto: TCP, ServerPort: 21119}, Result{"rustdesk", SourcePort, "remote_access"}},
		{"rustdesk 21120 is not", Input{Proto: TCP, ServerPort: 21120}, Result{}},
		{"rustdesk public server sni", Input{Proto: TCP, ServerPort: 21118, SNI: "rs-ny.rustdesk.com"},
			Result{"rustdesk", SourceSNI, "remote_access"}},

		// OpenVPN.
		{"openvpn udp plain", Input{Proto: UDP, ServerPort: 1194, ClientFirst: ovpnPlain()},
			Result{"openvpn", SourcePayload, "vpn"}},
		{"openvpn udp tls-auth sha1", Input{Proto: UDP, ServerPort: 51000, ClientFirst: ovpnTLSAuth(20)},
			Result{"openvpn", SourcePayload, "vpn"}},
		{"openvpn udp tls-auth sha256", Input{Proto: UDP, ServerPort: 443, ClientFirst: ovpnTLSAuth(32)},
			Result{"openvpn", SourcePayload, "vpn"}},
		{"openvpn udp tls-crypt", Input{Proto: UDP, ServerPort: 443, ClientFirst: ovpnTLSCrypt(7, 0)},
			Result{"openvpn", SourcePayload, "vpn"}},
		{"openvpn udp tls-crypt-v2", Input{Proto: UDP, ServerPort: 443, ClientFirst: ovpnTLSCrypt(10, 300)},
			Result{"openvpn", SourcePayload, "vpn"}},
		{"openvpn tcp tls-crypt", Input{Proto: TCP, ServerPort: 443, ClientFirst: tcpLen(ovpnTLSCrypt(7, 0))},
			Result{"openvpn", SourcePayload, "vpn"}},
		{"openvpn tcp plain", Input{Proto: TCP, ServerPort: 1194, ClientFirst: tcpLen(ovpnPlain())},
			Result{"openvpn", SourcePayload, "vpn"}},
		{"openvpn server reset answers", Input{Proto: UDP, ServerPort: 1194, ClientFirst: cat([]byte{0x38}, rnd(16, 40)), ServerFirst: cat([]byte{0x40}, rnd(17, 40))},
			Result{"openvpn", SourcePayload, "vpn"}},
		{"openvpn opcode alone is too weak", Input{Proto: UDP, ServerPort: 443, ClientFirst: cat([]byte{0x38}, rnd(16, 60))}, Result{}},
		{"openvpn to a named VPN service", Input{Proto: UDP, ServerPort: 1194, ClientFirst: ovpnTLSAuth(20), DNSName: "de123.nordvpn.com"},
			Result{"nordvpn", SourceDNS, "vpn"}},

		// WireGuard.
		{"wireguard handshake", Input{Proto: UDP, ServerPort: 51820, ClientFirst: wg(1, 148), ServerFirst: wg(2, 92)},
			Result{"wireguard", SourcePayload, "vpn"}},
		{"wireguard initiation only", Input{Proto: UDP, ServerPort: 12345, ClientFirst: wg(1, 148)},
			Result{"wireguard", SourcePayload, "vpn"}},
		{"wireguard transport mid-flow", Input{Proto: UDP, ServerPort: 12345, ClientFirst: wg(4, 32+16*5), ServerFirst: wg(4, 32)},
			Result{"wireguard", SourcePayload, "vpn"}},
		{"wireguard initiation of wrong size", Input{Proto: UDP, ServerPort: 12345, ClientFirst: wg(1, 150)}, Result{}},
		{"cloudflare warp refines wireguard", Input{Proto: UDP, ServerPort: 2408, ClientFirst: wg(1, 148), DNSName: "engage.cloudflareclient.com"},
			Result{"cloudflare_warp", SourceDNS, "vpn"}},
		{"warp port only", Input{Proto: UDP, ServerPort: 2408, ClientFirst: rnd(40, 50)},
			Result{"cloudflare_warp", SourcePort, "vpn"}},

		// RDP, VNC, SSH, NoMachine, Citrix.
		{"rdp cookie", Input{Proto: TCP, ServerPort: 3389, ClientFirst: rdpRequest("Cookie: mstshash=alice\r\n")},
			Result{"rdp", SourcePayload, "remote_access"}},
		{"rdp negotiation request only", Input{Proto: TCP, ServerPort: 13389, ClientFirst: rdpRequest("")},
			Result{"rdp", SourcePayload, "remote_access"}},
		{"rdp udp syn", Input{Proto: UDP, ServerPort: 3389, ClientFirst: cat([]byte{0xff, 0xff, 0xff, 0xff, 0x00, 0x40, 0x00, 0x01}, rnd(41, 16), make([]byte, 1232-24))},
			Result{"rdp", SourcePayload, "remote_access"}},
		{"vnc banner", Input{Proto: TCP, ServerPort: 5901, ServerFirst: []byte("RFB 003.008\n")},
			Result{"vnc", SourcePayload, "remote_access"}},
		{"vnc port only", Input{Proto: TCP, ServerPort: 5900}, Result{"vnc", SourcePort, "remote_access"}},
		{"ssh banner on 443", Input{Proto: TCP, ServerPort: 443, ClientFirst: []byte("SSH-2.0-OpenSSH_9.6\r\n")},
			Result{"ssh", SourcePayload, "remote_access"}},
		{"nomachine nx", Input{Proto: TCP, ServerPort: 4000, ServerFirst: []byte("NXSH-8.11.3\n")},
			Result{"nomachine", SourcePayload, "remote_access"}},
		{"nomachine nxd", Input{Proto: TCP, ServerPort: 4000, ServerFirst: []byte("NXD-8.11.3\n")},
			Result{"nomachine", SourcePayload, "remote_access"}},
		{"citrix ica", Input{Proto: TCP, ServerPort: 1494, ServerFirst: []byte("\x7f\x7fICA\x00")},
			Result{"citrix", SourcePayload, "remote_access"}},
		{"citrix cgp", Input{Proto: TCP, ServerPort: 2598, ClientFirst: []byte("\x1aCGP/01\x00\x00\x00")},
			Result{"citrix", SourcePayload, "remote_access"}},
		{"radmin port only", Input{Proto: TCP, ServerPort: 4899}, Result{"radmin", SourcePort, "remote_access"}},

		// IPsec.
		{"ikev2 sa_init", Input{Proto: UDP, ClientPort: 500, ServerPort: 500, ClientFirst: ike(0x20, 34, 300)},
			Result{"ipsec", SourcePayload, "vpn"}},
		{"ikev2 natt", Input{Proto: UDP, ClientPort: 4500, ServerPort: 4500, ClientFirst: cat(make([]byte, 4), ike(0x20, 35, 80))},
			Result{"ipsec", SourcePayload, "vpn"}},
		{"ikev1 main mode", Input{Proto: UDP, ClientPort: 500, ServerPort: 500, ClientFirst: ike(0x10, 2, 120)},
			Result{"ipsec", SourcePayload, "vpn"}},

		// Proxies.
		{"socks5", Input{Proto: TCP, ServerPort: 1080, ClientFirst: []byte{5, 2, 0, 2}, ServerFirst: []byte{5, 0}},
			Result{"socks", SourcePayload, "proxy"}},
		{"socks4a", Input{Proto: TCP, ServerPort: 9050, ClientFirst: []byte("\x04\x01\x01\xbb\x00\x00\x00\x01user\x00example.com\x00"), ServerFirst: []byte{0, 90, 0, 0, 0, 0, 0, 0}},
			Result{"socks", SourcePayload, "proxy"}},
		{"http connect", Input{Proto: TCP, ServerPort: 3128, ClientFirst: []byte("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")},
			Result{"http_connect", SourcePayload, "proxy"}},
		{"softether", Input{Proto: TCP, ServerPort: 5555, ClientFirst: []byte("POST /vpnsvc/connect.cgi HTTP/1.1\r\n")},
			Result{"softether", SourcePayload, "vpn"}},

		// Names.
		{"chrome remote desktop", Input{Proto: TCP, ServerPort: 443, SNI: "remotedesktop-pa.googleapis.com"},
			Result{"chrome_remote_desktop", SourceSNI, "remote_access"}},
		{"splashtop", Input{Proto: TCP, ServerPort: 443, SNI: "st-relay-eu.api.splashtop.com"}, Result{"splashtop", SourceSNI, "remote_access"}},
		{"screenconnect", Input{Proto: TCP, ServerPort: 8041, DNSName: "instance-abc.screenconnect.com"}, Result{"screenconnect", SourceDNS, "remote_access"}},
		{"goto", Input{Proto: TCP, ServerPort: 443, SNI: "secure.logmein.com"}, Result{"goto", SourceSNI, "remote_access"}},
		{"parsec", Input{Proto: TCP, ServerPort: 443, SNI: "kessel-api.parsec.app"}, Result{"parsec", SourceSNI, "remote_access"}},
		{"netbird", Input{Proto: TCP, ServerPort: 443, SNI: "api.netbird.io"}, Result{"netbird", SourceSNI, "vpn"}},
		{"ngrok", Input{Proto: TCP, ServerPort: 443, SNI: "connect.us.ngrok-agent.com.ngrok.io"}, Result{"ngrok", SourceSNI, "tunnel"}},
		{"ngrok free app", Input{Proto: TCP, ServerPort: 443, HTTPHost: "1a2b-3c4d.ngrok-free.app"}, Result{"ngrok", SourceHTTP, "tunnel"}},
		{"cloudflare quick tunnel", Input{Proto: TCP, ServerPort: 443, SNI: "dull-cats-jump.trycloudflare.com"}, Result{"cloudflare_tunnel", SourceSNI, "tunnel"}},
		{"cloudflare tunnel edge quic", Input{Proto: UDP, ServerPort: 7844, QUIC: true, SNI: "region1.v2.argotunnel.com"}, Result{"cloudflare_tunnel", SourceSNI, "tunnel"}},
		{"vs code dev tunnel", Input{Proto: TCP, ServerPort: 443, SNI: "abcd1234-8000.euw.devtunnels.ms"}, Result{"vscode_dev_tunnels", SourceSNI, "tunnel"}},
		{"astrill", Input{Proto: TCP, ServerPort: 443, DNSName: "www.astrill.com"}, Result{"astrill", SourceDNS, "vpn"}},
		{"psiphon", Input{Proto: TCP, ServerPort: 443, SNI: "psiphon3.com"}, Result{"psiphon", SourceSNI, "anonymizer"}},
		{"tor port", Input{Proto: TCP, ServerPort: 9001, ClientFirst: []byte{0x16, 0x03, 0x01, 0, 0x80}}, Result{"tor", SourcePort, "anonymizer"}},
		{"pikvm host with port", Input{Proto: TCP, ServerPort: 443, HTTPHost: "PiKVM.local:443"}, Result{"pikvm", SourceHTTP, "ipkvm"}},
		{"tinypilot bare host", Input{Proto: TCP, ServerPort: 80, HTTPHost: "tinypilot"}, Result{"tinypilot", SourceHTTP, "ipkvm"}},
		{"jetkvm cloud", Input{Proto: TCP, ServerPort: 443, SNI: "api.jetkvm.com"}, Result{"jetkvm", SourceSNI, "ipkvm"}},
		{"suffix needs a label boundary", Input{Proto: TCP, ServerPort: 443, SNI: "notanydesk.com"}, Result{}},
		{"sni beats dns", Input{Proto: TCP, ServerPort: 443, SNI: "relay.teamviewer.com", DNSName: "x.anydesk.com"}, Result{"teamviewer", SourceSNI, "remote_access"}},

		// Fully encrypted (Shadowsocks-style) first packets.
		{"fully encrypted both ways", Input{Proto: TCP, ServerPort: 8388, ClientFirst: random, ServerFirst: rnd(100, 64)},
			Result{"fully_encrypted", SourcePayload, "proxy"}},
		{"fully encrypted, no reply yet", Input{Proto: TCP, ServerPort: 8388, ClientFirst: random},
			Result{"fully_encrypted", SourcePayload, "proxy"}},
		{"random then structured reply", Input{Proto: TCP, ServerPort: 8388, ClientFirst: random, ServerFirst: make([]byte, 32)}, Result{}},
		{"tls is exempt", Input{Proto: TCP, ServerPort: 8443, ClientFirst: cat([]byte{0x16, 0x03, 0x01}, random)}, Result{}},
		{"printable prefix is exempt", Input{Proto: TCP, ServerPort: 8443, ClientFirst: cat([]byte("GET / "), random)}, Result{}},
		{"random udp is not judged", Input{Proto: UDP, ServerPort: 8443, ClientFirst: random}, Result{}},

		// Nothing.
		{"empty", Input{}, Result{}},
		{"web", Input{Proto: TCP, ServerPort: 443, SNI: "www.wikipedia.org", ALPN: []string{"h2"}, ClientFirst: cat([]byte{0x16, 0x03, 0x01, 0x02, 0x00}, random)}, Result{}},
		{"quic is not wireguard", Input{Proto: UDP, ServerPort: 443, QUIC: true, ClientFirst: wg(1, 148)}, Result{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := id.Identify(&tt.in); got != tt.want {
				t.Errorf("Identify = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestRefine: a result found before the flow's DNS-derived name was known,
// refined with that name, is what Identify gives with the name from the
// start.
func TestRefine(t *testing.T) {
	id, err := New()
	if err != nil {
		t.Fatal(err)
	}
	random := rnd(98, 200)
	tests := []struct {
		name string
		in   Input // DNSName is what Refine learns
		want Result
	}{
		{"wireguard to warp", Input{Proto: UDP, ServerPort: 2408, ClientFirst: wg(1, 148), DNSName: "engage.cloudflareclient.com"},
			Result{"cloudflare_warp", SourceDNS, "vpn"}},
		{"openvpn to nordvpn", Input{Proto: UDP, ServerPort: 1194, ClientFirst: ovpnTLSAuth(20), DNSName: "de1.nordvpn.com"},
			Result{"nordvpn", SourceDNS, "vpn"}},
		{"ipsec to a tunnel product", Input{Proto: UDP, ClientPort: 500, ServerPort: 500, ClientFirst: ike(0x20, 34, 300), DNSName: "x.argotunnel.com"},
			Result{"cloudflare_tunnel", SourceDNS, "tunnel"}},
		{"wireguard keeps its name for a remote-access name", Input{Proto: UDP, ServerPort: 51820, ClientFirst: wg(1, 148), DNSName: "router.teamviewer.com"},
			Result{"wireguard", SourcePayload, "vpn"}},
		{"fully encrypted yields to a name", Input{Proto: TCP, ServerPort: 8388, ClientFirst: random, DNSName: "x.teamviewer.com"},
			Result{"teamviewer", SourceDNS, "remote_access"}},
		{"fully encrypted without a name", Input{Proto: TCP, ServerPort: 8388, ClientFirst: random, DNSName: "www.example.com"},
			Result{"fully_encrypted", SourcePayload, "proxy"}},
		{"ssh stands", Input{Proto: TCP, ServerPort: 22, ClientFirst: []byte("SSH-2.0-x\r\n"), DNSName: "de1.nordvpn.com"},
			Result{"ssh", SourcePayload, "remote_access"}},
		{"sni stands", Input{Proto: TCP, ServerPort: 443, SNI: "relay.teamviewer.com", DNSName: "de1.nordvpn.com"},
			Result{"teamviewer", SourceSNI, "remote_access"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := id.Identify(&tt.in); got != tt.want {
				t.Fatalf("Identify with the name = %+v, want %+v", got, tt.want)
			}
			early := tt.in
			early.DNSName = ""
			names := Input{Proto: tt.in.Proto, ClientPort: tt.in.ClientPort, ServerPort: tt.in.ServerPort, SNI: tt.in.SNI, DNSName: tt.in.DNSName}
			if got := id.Refine(id.Identify(&early), &names); got != tt.want {
				t.Errorf("Refine = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// rdpRequest builds a TPKT + X.224 Connection Request with an optional
// routing token and an RDP_NEG_REQ.
func rdpRequest(cookie string) []byte {
	x224 := cat([]byte{0xe0, 0, 0, 0, 0, 0}, []byte(cookie), []byte{0x01, 0x00, 0x08, 0x00, 0x0b, 0, 0, 0})
	li := byte(len(x224))
	n := 4 + 1 + len(x224)
	return cat([]byte{3, 0, byte(n >> 8), byte(n)}, []byte{li}, x224)
}

func TestLists(t *testing.T) {
	extra := fstest.MapFS{
		DomainsFile: {Data: []byte("# site additions\nremote.example.net  inhouse_rdp_gw remote_access\nanydesk.com other remote_access # override\n")},
		PortsFile:   {Data: []byte("tcp 4444-4445 meterpreter remote_access\n")},
	}
	id, err := New(extra)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in   Input
		want string
	}{
		{Input{Proto: TCP, SNI: "gw.remote.example.net"}, "inhouse_rdp_gw"},
		{Input{Proto: TCP, SNI: "anydesk.com"}, "other"},
		{Input{Proto: TCP, SNI: "net.anydesk.com"}, "anydesk"}, // longer built-in suffix still wins
		{Input{Proto: TCP, ServerPort: 4445}, "meterpreter"},
	} {
		if got := id.Identify(&c.in); got.App != c.want {
			t.Errorf("Identify(%+v) = %+v, want %s", c.in, got, c.want)
		}
	}

	bad := fstest.MapFS{
		DomainsFile: {Data: []byte("ok.example ok remote_access\n*.bad.example x remote_access\nshort.example onlyapp\n")},
		PortsFile:   {Data: []byte("sctp 1 x y\ntcp 0 x y\ntcp 10-5 x y\n")},
		ALPNFile:    {Data: []byte("x/ Bad-App remote_access\n")},
		CertsFile:   {Data: []byte("\"unterminated x y\n")},
	}
	_, err = New(bad)
	if !errors.Is(err, ErrList) {
		t.Fatalf("err = %v, want ErrList", err)
	}
	for _, want := range []string{
		"app-domains.txt:2:", "app-domains.txt:3:", "app-ports.txt:1:", "app-ports.txt:2:", "app-ports.txt:3:",
		"app-alpn.txt:1:", "app-certs.txt:1:",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not report %s:\n%v", want, err)
		}
	}
}

func TestIdentifyAllocs(t *testing.T) {
	id, err := New()
	if err != nil {
		t.Fatal(err)
	}
	inputs := benchInputs()
	allocs := testing.AllocsPerRun(200, func() {
		for i := range inputs {
			id.Refine(id.Identify(&inputs[i]), &inputs[i])
		}
	})
	if allocs != 0 {
		t.Errorf("Identify and Refine allocate %.1f times per run, want 0", allocs)
	}
}

// benchInputs is a mix: a browsing flow (the common case, which runs every
// check and matches nothing), a name match, a payload match and a port
// match.
func benchInputs() []Input {
	return []Input{
		{Proto: TCP, ClientPort: 50000, ServerPort: 443, SNI: "Www.Wikipedia.Org", ALPN: []string{"h2", "http/1.1"},
			ClientFirst: cat([]byte{0x16, 0x03, 0x01, 0x02, 0x00}, rnd(1, 251)), ServerFirst: cat([]byte{0x16, 0x03, 0x03}, rnd(2, 253)),
			DNSName: "www.wikipedia.org", CertSubject: "CN=*.wikipedia.org", CertIssuer: "C=US, O=Let's Encrypt, CN=R3"},
		{Proto: TCP, ClientPort: 50001, ServerPort: 443, SNI: "relay-12345678.net.anydesk.com", ALPN: []string{"anydesk/7.1.0"}},
		{Proto: UDP, ClientPort: 50002, ServerPort: 51820, ClientFirst: wg(1, 148), ServerFirst: wg(2, 92)},
		{Proto: UDP, ClientPort: 50003, ServerPort: 443, QUIC: true, SNI: "www.google.com", DNSName: "www.google.com"},
		{Proto: TCP, ClientPort: 50004, ServerPort: 21116},
	}
}

func BenchmarkIdentify(b *testing.B) {
	id, err := New()
	if err != nil {
		b.Fatal(err)
	}
	inputs := benchInputs()
	for i, name := range []string{"browsing-miss", "alpn", "wireguard", "quic-miss", "port"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				id.Identify(&inputs[i])
			}
		})
	}
	// One flow of each kind in turn: the average cost per flow.
	b.Run("mix", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			id.Identify(&inputs[i])
			if i++; i == len(inputs) {
				i = 0
			}
		}
	})
	// The sensor's second look at a generic tunnel flow, at export, once
	// its DNS-derived name is known.
	b.Run("refine-wireguard-dns", func(b *testing.B) {
		b.ReportAllocs()
		early := id.Identify(&inputs[2])
		names := Input{Proto: UDP, ServerPort: 51820, DNSName: "engage.cloudflareclient.com"}
		for b.Loop() {
			id.Refine(early, &names)
		}
	})
}

// BenchmarkBaselineMapProbe is one string-keyed map probe, the unit cost
// the name lookups are made of, to read BenchmarkIdentify as a ratio.
func BenchmarkBaselineMapProbe(b *testing.B) {
	m := map[string]int{"wikipedia.org": 1}
	k := []byte("www.wikipedia.org")
	for b.Loop() {
		_ = m[string(k[4:])]
	}
}

func FuzzIdentify(f *testing.F) {
	id, err := New()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(TCP), uint16(3389), rdpRequest("Cookie: mstshash=a\r\n"), []byte{}, []byte{}, "")
	f.Add(uint8(UDP), uint16(1194), ovpnTLSCrypt(7, 0), []byte{}, []byte{0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, "")
	f.Add(uint8(UDP), uint16(51820), wg(1, 148), []byte{}, wg(2, 92), "")
	f.Add(uint8(TCP), uint16(443), tcpLen(ovpnTLSAuth(20)), tcpLen(ovpnTLSAuth(20)), []byte{}, "x.anydesk.com")
	f.Add(uint8(UDP), uint16(4500), cat(make([]byte, 4), ike(0x20, 34, 80)), []byte{}, []byte{}, "")
	f.Add(uint8(UDP), uint16(9993), zeroTierHello(), []byte{}, []byte{}, "")
	f.Add(uint8(TCP), uint16(8388), rnd(5, 100), []byte{}, rnd(6, 50), "CN=AnyDesk Client")
	f.Fuzz(func(t *testing.T, proto uint8, port uint16, c1, c2, s1 []byte, name string) {
		in := Input{Proto: proto, ServerPort: port, ClientPort: port ^ 0xffff, ClientFirst: c1, ClientSecond: c2,
			ServerFirst: s1, ServerSecond: c2, SNI: name, HTTPHost: name, DNSName: name, CertSubject: name, ALPN: []string{name}}
		r := id.Identify(&in)
		if (r.App == "") != (r.Source == SourceNone) || (r.App == "") != (r.Category == "") {
			t.Fatalf("inconsistent result %+v", r)
		}
	})
}
