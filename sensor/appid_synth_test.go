package sensor_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/synth"
	builtin "github.com/edgeward/edgeward/rules/builtin/lists"
	"github.com/edgeward/edgeward/sensor"
	"github.com/edgeward/edgeward/sensor/appid"
)

// appWant is what the sensor must record about a flow's application.
type appWant struct {
	app      string
	source   appid.Source
	category string
}

// appCase is one flow of the application capture. resolve, when set, is
// the name a DNS answer to the client gave the flow's server address just
// before the flow, so the flow's only name is DNS-derived. The builder
// gives every case its own server address and client port; a zero server
// port means 443.
type appCase struct {
	name    string
	flow    synth.Flow
	resolve string
	want    appWant
}

// noApp is the expected result of a flow that is no listed application.
var noApp = appWant{}

// Flow shapes. Only the evidence a case names is in its flow: generic flows
// carry just their literal payloads (no random filler, which the
// fully-encrypted heuristic would judge), TLS flows no SNI unless given.

func tcpFlow(port uint16, client, server []byte) synth.Flow {
	return synth.Flow{Kind: synth.TCPGeneric, Server: netip.AddrPortFrom(netip.Addr{}, port), ClientPayload: client, ServerPayload: server}
}

func udpFlow(port uint16, client, server []byte) synth.Flow {
	return synth.Flow{Kind: synth.UDPGeneric, Server: netip.AddrPortFrom(netip.Addr{}, port), ClientPayload: client, ServerPayload: server}
}

// tlsFlow is a TLS connection; with cert set the server answers TLS 1.2 so
// its certificate is in clear.
func tlsFlow(port uint16, sni string, alpn []string, cert *synth.CertSpec) synth.Flow {
	spec := &synth.TLSSpec{SNI: sni, ALPN: alpn}
	if cert != nil {
		spec.SupportedVersions = []uint16{0x0303}
	}
	return synth.Flow{Kind: synth.TLS, Server: netip.AddrPortFrom(netip.Addr{}, port), TLS: spec, Cert: cert, RequestBytes: 300, ResponseBytes: 2000}
}

func httpFlow(port uint16, host string) synth.Flow {
	return synth.Flow{Kind: synth.HTTP, Server: netip.AddrPortFrom(netip.Addr{}, port), HTTP: &synth.HTTPSpec{Host: host, Path: "/"}, ResponseBytes: 500}
}

func quicFlow(port uint16, sni string) synth.Flow {
	return synth.Flow{Kind: synth.QUIC, Server: netip.AddrPortFrom(netip.Addr{}, port), TLS: &synth.TLSSpec{SNI: sni, ALPN: []string{"h3"}},
		RequestBytes: 300, ResponseBytes: 2000}
}

// bareTCP is a connection that carries no payload: only its port and
// addresses say anything.
func bareTCP(port uint16) synth.Flow { return tcpFlow(port, nil, nil) }

// Payloads, each built from the protocol's public description (the
// sources are cited in sensor/appid/payload.go next to each signature).

// noise returns n deterministic pseudo-random bytes.
func noise(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func join(parts ...[]byte) []byte { return slices.Concat(parts...) }

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// rdpConnectionRequest is TPKT (RFC 1006) + X.224 Connection Request with
// an optional mstshash routing token and an RDP_NEG_REQ (MS-RDPBCGR
// 2.2.1.1).
func rdpConnectionRequest(cookie string) []byte {
	x224 := join([]byte{0xe0, 0, 0, 0, 0, 0}, []byte(cookie), []byte{0x01, 0x00, 0x08, 0x00, 0x0b, 0, 0, 0})
	n := 4 + 1 + len(x224)
	return join([]byte{3, 0}, u16(uint16(n)), []byte{byte(len(x224))}, x224)
}

// rdpConnectionConfirm is the server's X.224 Connection Confirm with an
// RDP_NEG_RSP choosing TLS.
func rdpConnectionConfirm() []byte {
	x224 := []byte{0xd0, 0, 0, 0x12, 0x34, 0, 0x02, 0x00, 0x08, 0x00, 0x01, 0, 0, 0}
	return join([]byte{3, 0}, u16(uint16(5+len(x224))), []byte{byte(len(x224))}, x224)
}

// rdpUDPSyn is an MS-RDPEUDP SYN datagram: snSourceAck -1, receive window,
// RDPUDP_FLAG_SYN, SYNDATA, zero-padded to 1232 bytes.
func rdpUDPSyn() []byte {
	b := join(u32(0xffffffff), u16(64), u16(0x0001), u32(0x1234abcd), u16(1232), u16(1232))
	return append(b, make([]byte, 1232-len(b))...)
}

// wireGuard is a WireGuard message: type, three reserved zero bytes, and a
// fixed size per type (whitepaper section 5.4).
func wireGuard(typ byte, size int) []byte {
	return join([]byte{typ, 0, 0, 0}, noise(uint64(typ), size-4))
}

// openVPNReset is an OpenVPN P_CONTROL_HARD_RESET_CLIENT_V2 (opcode 7) with
// tls-auth: session id, HMAC-SHA1, packet id 1, timestamp, empty ack
// array, message packet id 0 (openvpn ssl_pkt.h).
func openVPNReset() []byte {
	return join([]byte{7 << 3}, noise(10, 8), noise(11, 20), u32(1), u32(0x66a0b1c2), []byte{0}, u32(0))
}

// openVPNServerReset is P_CONTROL_HARD_RESET_SERVER_V2 (opcode 8).
func openVPNServerReset() []byte {
	return join([]byte{8 << 3}, noise(12, 8), noise(13, 20), u32(1), u32(0x66a0b1c3), []byte{1}, u32(0), noise(10, 8), u32(0))
}

// tcpFramed adds OpenVPN's TCP 16-bit length prefix.
func tcpFramed(b []byte) []byte { return join(u16(uint16(len(b))), b) }

// ikeSAInit is an IKEv2 IKE_SA_INIT request header (RFC 7296 section 3.1):
// initiator SPI, zero responder SPI, next payload SA (33), version 2.0,
// exchange 34, flags Initiator, message id 0, length, then payload bytes.
func ikeSAInit(size int) []byte {
	h := join(noise(20, 8), make([]byte, 8), []byte{33, 0x20, 34, 0x08}, u32(0), u32(uint32(size)))
	return join(h, noise(21, size-len(h)))
}

// zeroTierHello is a ZeroTier VL1 HELLO (node/Packet.hpp): packet id,
// destination and source addresses, flags (cipher suite 0), MAC, verb
// HELLO, protocol version, software version, timestamp.
func zeroTierHello() []byte {
	h := join(noise(30, 8), []byte{0x89, 0x12, 0x34, 0x56, 0x78}, []byte{0x12, 0x34, 0x56, 0x78, 0x9a}, []byte{0x00}, noise(31, 8))
	return join(h, []byte{0x01, 12, 1, 14, 0}, noise(32, 60))
}

// tailscaleDisco is a Tailscale disco message: magic "TS💬", sender disco
// key, nonce, sealed box (tailscale disco/disco.go).
func tailscaleDisco() []byte { return join([]byte("TS\xf0\x9f\x92\xac"), noise(40, 32+24+44)) }

// derpServerKey is DERP's first server frame: frameServerKey (1), length,
// magic "DERP🔑", server public key (tailscale derp/derp.go).
func derpServerKey() []byte {
	return join([]byte{1}, u32(40), []byte("DERP\xf0\x9f\x94\x91"), noise(41, 32))
}

// teamViewerTCP and teamViewerReply are TeamViewer's command framing (as
// nDPI's teamviewer.c matches it): 0x17 0x24 from the client, 0x11 0x30
// back.
func teamViewerTCP() []byte   { return join([]byte{0x17, 0x24, 0x0a, 0x00}, noise(50, 28)) }
func teamViewerReply() []byte { return join([]byte{0x11, 0x30, 0x00, 0x00}, noise(51, 28)) }

// teamViewerUDP carries 0x17 0x24 at offset 11 after a zero first byte.
func teamViewerUDP(seed uint64) []byte {
	return join([]byte{0}, noise(seed, 10), []byte{0x17, 0x24}, noise(seed+1, 30))
}

// plainRequest and plainReply are an ordinary line-based exchange that
// names nothing.
var (
	plainRequest = []byte("HELLO edgeward-test 1.0\r\nUSER alice\r\n")
	plainReply   = []byte("+OK ready\r\n")
)

// appCases are the hand-written cases: every payload signature, the
// certificate and ALPN evidence, one case per evidence kind where that kind
// alone names the flow, the precedence order where two kinds disagree,
// and flows that must stay unnamed. The list-driven cases (every domain
// with SNI, HTTP Host and DNS name; every port) are added by listCases.
func appCases() []appCase {
	ra := func(app string, src appid.Source) appWant { return appWant{app, src, appid.CategoryRemoteAccess} }
	vpn := func(app string, src appid.Source) appWant { return appWant{app, src, appid.CategoryVPN} }
	proxy := func(app string) appWant { return appWant{app, appid.SourcePayload, appid.CategoryProxy} }
	pay, cert, alpn, sni, http, dns, port := appid.SourcePayload, appid.SourceCert, appid.SourceALPN, appid.SourceSNI, appid.SourceHTTP, appid.SourceDNS, appid.SourcePort
	random := noise(60, 200)

	ike := udpFlow(15000, ikeSAInit(320), nil)
	ike.Client = netip.AddrPortFrom(netip.Addr{}, 15000)
	ikeNATT := udpFlow(4500, join(make([]byte, 4), ikeSAInit(240)), nil)
	ikeNATT.Client = netip.AddrPortFrom(netip.Addr{}, 4500)

	return []appCase{
		// Remote access, by payload on ports that name nothing.
		{"ssh banner", tcpFlow(2222, []byte("SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n"), []byte("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")), "", ra("ssh", pay)},
		{"ssh server banner only", tcpFlow(2200, nil, []byte("SSH-2.0-dropbear_2022.83\r\n")), "", ra("ssh", pay)},
		{"vnc rfb banner", tcpFlow(15900, []byte("RFB 003.008\n"), []byte("RFB 003.008\n")), "", ra("vnc", pay)},
		{"rdp cookie", tcpFlow(13389, rdpConnectionRequest("Cookie: mstshash=alice\r\n"), rdpConnectionConfirm()), "", ra("rdp", pay)},
		{"rdp negotiation request", tcpFlow(13390, rdpConnectionRequest(""), rdpConnectionConfirm()), "", ra("rdp", pay)},
		{"rdp udp syn", udpFlow(13391, rdpUDPSyn(), nil), "", ra("rdp", pay)},
		{"nomachine nx banner", tcpFlow(24000, nil, []byte("NXSH-8.11.3\n")), "", ra("nomachine", pay)},
		{"citrix ica detect", tcpFlow(11494, nil, []byte("\x7f\x7fICA\x00")), "", ra("citrix", pay)},
		{"citrix cgp", tcpFlow(12598, []byte("\x1aCGP/01\x00\x00\x00\x00"), nil), "", ra("citrix", pay)},
		{"teamviewer tcp 443 fallback", tcpFlow(443, teamViewerTCP(), teamViewerReply()), "", ra("teamviewer", pay)},
		{"teamviewer udp", udpFlow(45938, teamViewerUDP(52), teamViewerUDP(54)), "", ra("teamviewer", pay)},

		// AnyDesk: certificate (subject, issuer) and ALPN, each alone.
		{"anydesk cert subject", tlsFlow(443, "", nil, &synth.CertSpec{CommonName: "AnyDesk Client"}), "", ra("anydesk", cert)},
		{"anydesk cert issuer", tlsFlow(443, "", nil, &synth.CertSpec{CommonName: "relay-7.example", IssuerCommonName: "AnyDesk Client"}), "", ra("anydesk", cert)},
		{"anydesk alpn", tlsFlow(443, "", []string{"anydesk/8.1.0"}, nil), "", ra("anydesk", alpn)},

		// Mesh VPNs and tunnels.
		{"tailscale disco", udpFlow(61234, tailscaleDisco(), nil), "", vpn("tailscale", pay)},
		{"tailscale wireguard 41641", udpFlow(41641, wireGuard(1, 148), wireGuard(2, 92)), "", vpn("tailscale", pay)},
		{"tailscale derp upgrade", tcpFlow(80, []byte("GET /derp HTTP/1.1\r\nHost: derp.corp.example.net\r\nConnection: Upgrade\r\nUpgrade: DERP\r\n\r\n"), nil), "", vpn("tailscale", pay)},
		{"tailscale derp server key", tcpFlow(18443, nil, derpServerKey()), "", vpn("tailscale", pay)},
		{"zerotier hello", udpFlow(9993, zeroTierHello(), nil), "", vpn("zerotier", pay)},
		{"cloudflare tunnel quic sni", quicFlow(7844, "region1.v2.argotunnel.com"), "", appWant{"cloudflare_tunnel", sni, appid.CategoryTunnel}},

		// VPN protocols.
		{"wireguard handshake", udpFlow(51821, wireGuard(1, 148), wireGuard(2, 92)), "", vpn("wireguard", pay)},
		{"wireguard transport", udpFlow(51822, wireGuard(4, 32+16*6), wireGuard(4, 32+16*2)), "", vpn("wireguard", pay)},
		{"openvpn udp tls-auth", udpFlow(1195, openVPNReset(), openVPNServerReset()), "", vpn("openvpn", pay)},
		{"openvpn tcp 443", tcpFlow(443, tcpFramed(openVPNReset()), tcpFramed(openVPNServerReset())), "", vpn("openvpn", pay)},
		{"ipsec ikev2", ike, "", vpn("ipsec", pay)},
		{"ipsec ikev2 nat-t", ikeNATT, "", vpn("ipsec", pay)},
		{"softether http", tcpFlow(8888, []byte("POST /vpnsvc/connect.cgi HTTP/1.1\r\nHost: vpn.corp.example.net\r\nContent-Type: image/jpeg\r\nContent-Length: 0\r\n\r\n"), nil), "", vpn("softether", pay)},

		// Proxies.
		{"socks5", tcpFlow(31080, []byte{5, 1, 0}, []byte{5, 0}), "", proxy("socks")},
		{"socks4a", tcpFlow(31081, []byte("\x04\x01\x01\xbb\x00\x00\x00\x01alice\x00example.com\x00"), []byte{0, 90, 0, 0, 0, 0, 0, 0}), "", proxy("socks")},
		{"http connect", tcpFlow(3128, []byte("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), []byte("HTTP/1.1 200 Connection established\r\n\r\n")), "", proxy("http_connect")},
		{"fully encrypted", tcpFlow(8388, random, noise(61, 64)), "", proxy("fully_encrypted")},

		// Each name evidence alone (every listed name gets these in
		// listCases; these read as examples).
		{"sni alone", tlsFlow(443, "relay-12ab.net.anydesk.com", nil, nil), "", ra("anydesk", sni)},
		{"http host alone", httpFlow(80, "PiKVM.local"), "", appWant{"pikvm", http, appid.CategoryIPKVM}},
		{"dns name alone", bareTCP(443), "derp7.tailscale.com", vpn("tailscale", dns)},
		{"port alone", bareTCP(5938), "", ra("teamviewer", port)},

		// Precedence: payload > cert > alpn > sni > http > dns > port, with
		// the fully-encrypted heuristic between dns and port.
		{"payload beats port", tcpFlow(3389, []byte("SSH-2.0-OpenSSH_9.6\r\n"), nil), "", ra("ssh", pay)},
		{"payload beats dns", tcpFlow(2222, []byte("SSH-2.0-OpenSSH_9.6\r\n"), nil), "router.teamviewer.com", ra("ssh", pay)},
		{"cert beats alpn and sni", tlsFlow(443, "router1.teamviewer.com", []string{"anydesk/8.1.0"}, &synth.CertSpec{CommonName: "AnyDesk Client"}), "", ra("anydesk", cert)},
		{"alpn beats sni", tlsFlow(443, "router1.teamviewer.com", []string{"anydesk/8.1.0"}, nil), "", ra("anydesk", alpn)},
		{"sni beats dns", tlsFlow(443, "router1.teamviewer.com", nil, nil), "relay-1.net.anydesk.com", ra("teamviewer", sni)},
		{"http beats dns", httpFlow(80, "download.teamviewer.com"), "relay-2.net.anydesk.com", ra("teamviewer", http)},
		{"dns beats port", bareTCP(5938), "relay-3.net.anydesk.com", ra("anydesk", dns)},
		{"dns beats fully encrypted", tcpFlow(8389, noise(62, 200), noise(63, 64)), "de1234.nordvpn.com", vpn("nordvpn", dns)},
		{"fully encrypted beats port", tcpFlow(9050, noise(64, 200), noise(65, 64)), "", proxy("fully_encrypted")},
		{"sni beats port", tlsFlow(7070, "router1.teamviewer.com", nil, nil), "", ra("teamviewer", sni)},
		// A generic tunnel protocol is refined by a name naming a VPN or
		// tunnel product, not by any other name.
		{"wireguard to warp", udpFlow(2408, wireGuard(1, 148), wireGuard(2, 92)), "engage.cloudflareclient.com", vpn("cloudflare_warp", dns)},
		{"openvpn to nordvpn", udpFlow(1194, openVPNReset(), openVPNServerReset()), "de1234.nordvpn.com", vpn("nordvpn", dns)},
		{"wireguard to a remote-access name", udpFlow(51823, wireGuard(1, 148), wireGuard(2, 92)), "router.teamviewer.com", vpn("wireguard", pay)},

		// Nothing to name.
		{"https to saas", tlsFlow(443, "acme.my.salesforce.com", []string{"h2", "http/1.1"}, nil), "", noApp},
		{"https to saas, tls 1.2 cert", tlsFlow(443, "", []string{"h2"}, &synth.CertSpec{CommonName: "*.my.salesforce.com", IssuerCommonName: "DigiCert Global G2 TLS RSA SHA256 2020 CA1"}), "", noApp},
		{"quic to saas", quicFlow(443, "www.google.com"), "", noApp},
		{"http to saas", httpFlow(80, "www.example.com"), "", noApp},
		{"plain protocol on a random high port", tcpFlow(47123, plainRequest, plainReply), "", noApp},
		{"binary protocol on a random high port", tcpFlow(47124, join([]byte{0, 0, 0, 24, 0, 1}, make([]byte, 18)), join([]byte{0, 0, 0, 8, 0, 2}, make([]byte, 2))), "", noApp},
		{"no payload on a random high port", bareTCP(47125), "", noApp},
		{"random udp on a random high port", udpFlow(47126, noise(66, 120), noise(67, 120)), "", noApp},
		{"dns for an unrelated name", tlsFlow(443, "", []string{"h2"}, nil), "www.wikipedia.org", noApp},
		{"suffix needs a label boundary", tlsFlow(443, "notanydesk.com", nil, nil), "", noApp},
		{"wireguard-sized datagram of the wrong size", udpFlow(47127, wireGuard(1, 150), nil), "", noApp},
	}
}

// listCases makes, for every line of the built-in domain list, a flow
// named by that suffix through each name evidence (TLS SNI, HTTP Host, a
// DNS answer), and for every line of the port list a flow to the first and
// last port of its range that carries nothing else.
func listCases(t *testing.T) []appCase {
	t.Helper()
	var cases []appCase
	forLines(t, appid.DomainsFile, func(where string, f []string) {
		if len(f) != 3 {
			t.Fatalf("%s: want suffix app category", where)
		}
		name, want := "host-1.edgeward-test."+f[0], appWant{f[1], "", f[2]}
		sniWant, httpWant, dnsWant := want, want, want
		sniWant.source, httpWant.source, dnsWant.source = appid.SourceSNI, appid.SourceHTTP, appid.SourceDNS
		cases = append(cases,
			appCase{where + " sni " + f[0], tlsFlow(443, name, []string{"h2"}, nil), "", sniWant},
			appCase{where + " http " + f[0], httpFlow(80, name), "", httpWant},
			appCase{where + " dns " + f[0], tlsFlow(443, "", []string{"h2"}, nil), name, dnsWant})
	})
	forLines(t, appid.PortsFile, func(where string, f []string) {
		if len(f) != 4 {
			t.Fatalf("%s: want proto port[-port] app category", where)
		}
		lo, hi, _ := strings.Cut(f[1], "-")
		ports := []string{lo}
		if hi != "" {
			ports = append(ports, hi)
		}
		for _, p := range ports {
			n, err := strconv.ParseUint(p, 10, 16)
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			c := appCase{name: where + " " + f[0] + " " + p, want: appWant{f[2], appid.SourcePort, f[3]}}
			if f[0] == "udp" {
				c.flow = udpFlow(uint16(n), plainRequest, plainReply)
			} else {
				c.flow = bareTCP(uint16(n))
			}
			cases = append(cases, c)
		}
	})
	return cases
}

// forLines calls fn with the fields of every entry of a built-in list.
func forLines(t *testing.T, file string, fn func(where string, fields []string)) {
	t.Helper()
	b, err := fs.ReadFile(builtin.FS, file)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for line := 1; sc.Scan(); line++ {
		s, _, _ := strings.Cut(sc.Text(), "#")
		if f := strings.Fields(s); len(f) > 0 {
			fn(fmt.Sprintf("%s:%d", file, line), f)
		}
	}
}

// appCapture renders cases into one capture: each case gets its own server
// address (198.18.0.0/15, benchmarking space) and client port, one second
// after the previous case, and a DNS answer half a second before it when it
// has a name to resolve. It returns the capture's path and the cases by
// flow key.
func appCapture(t *testing.T, cases []appCase) (string, map[string]*appCase) {
	t.Helper()
	var (
		epoch    = time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC)
		laptop   = netip.MustParseAddr("10.1.2.3")
		resolver = netip.AddrPortFrom(netip.MustParseAddr("10.0.0.53"), 53)
		mac      = synth.MAC{0xdc, 0xa6, 0x32, 0x01, 0x02, 0x03}
		gw       = synth.MAC{0x00, 0x1b, 0x21, 0xaa, 0xbb, 0xcc}
		flows    []synth.Flow
		byKey    = map[string]*appCase{}
	)
	if len(cases) > 2<<16 {
		t.Fatal("too many cases for 198.18.0.0/15")
	}
	for i := range cases {
		c := &cases[i]
		f := c.flow
		server := netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)})
		sport := f.Server.Port()
		if sport == 0 {
			sport = 443
		}
		cport := f.Client.Port()
		if cport == 0 {
			cport = uint16(40000 + i) // below 41641, which is listed
		}
		f.Start = epoch.Add(time.Duration(i) * time.Second)
		f.Client, f.Server = netip.AddrPortFrom(laptop, cport), netip.AddrPortFrom(server, sport)
		f.ClientMAC, f.ServerMAC = mac, gw
		flows = append(flows, f)
		byKey[caseKey(transport(f.Kind), f.Client, f.Server)] = c
		if c.resolve != "" {
			flows = append(flows, synth.Flow{Kind: synth.DNS, Start: f.Start.Add(-500 * time.Millisecond), RTT: time.Millisecond,
				Client: netip.AddrPortFrom(laptop, uint16(20000+i)), Server: resolver, ClientMAC: mac, ServerMAC: gw,
				DNS: &synth.DNSSpec{Name: c.resolve, Answers: []synth.DNSAnswer{{Addr: server, TTL: 300}}}})
		}
	}
	synth.SortByStart(flows)
	path := filepath.Join(t.TempDir(), "apps.pcap")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.Render(slices.Values(flows), out, nil, synth.Options{Seed: 4}); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path, byKey
}

// caseKey identifies a flow by transport and endpoints, initiator first.
func caseKey(proto string, client, server netip.AddrPort) string {
	return proto + " " + client.String() + " " + server.String()
}

// transport is the record's proto of a synth flow kind.
func transport(k synth.Kind) string {
	switch k {
	case synth.TCPGeneric, synth.HTTP, synth.TLS:
		return flow.ProtoName(flow.ProtoTCP)
	}
	return flow.ProtoName(flow.ProtoUDP)
}

// TestAppIdentificationSynth runs every application recogniser on a
// capture this test generates, read through the real sensor: each case's
// flow must get exactly its app, app_source and app_category, and every
// other flow (the DNS lookups) none.
func TestAppIdentificationSynth(t *testing.T) {
	cases := append(appCases(), listCases(t)...)
	path, byKey := appCapture(t, cases)

	seen := map[string]bool{}
	_, err := sensor.ReadFile(context.Background(), path, sensor.Config{}, func(r *flow.Record) {
		got := appWant{r.App, appid.Source(r.AppSource), r.AppCategory}
		k := caseKey(r.Proto, netip.AddrPortFrom(r.Src.IP, r.Src.Port), netip.AddrPortFrom(r.Dst.IP, r.Dst.Port))
		c, ok := byKey[k]
		if !ok {
			if r.Dst.Port != 53 {
				t.Errorf("unexpected flow %s", k)
			} else if got != noApp {
				t.Errorf("DNS lookup %s: app %+v, want none", k, got)
			}
			return
		}
		if seen[k] {
			t.Errorf("%s: flow %s split into more than one record", c.name, k)
		}
		seen[k] = true
		if got != c.want {
			t.Errorf("%s: app %+v, want %+v (name %q from %s)", c.name, got, c.want, r.Dst.Name, r.Dst.NameSource)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, c := range byKey {
		if !seen[k] {
			t.Errorf("%s: no record for %s", c.name, k)
		}
	}
}
