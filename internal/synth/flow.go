// Package synth owns deterministic traffic synthesis: it turns flow
// specifications into Ethernet frames in a pcap file, together with a
// ground-truth record per flow that tests and demos compare the sensor
// against.
//
// A Flow is a script, not a packet list: it says who talks to whom, which
// application protocol they speak and how much data moves. Render turns
// flows into packets with realistic framing (TCP handshakes and teardown,
// MSS segmentation, TLS and QUIC ClientHellos in real wire format, DNS wire
// format) and merges all flows into one capture in timestamp order.
package synth

import (
	"fmt"
	"net/netip"
	"time"
)

// Proto is the transport protocol of a flow.
type Proto uint8

// Transport protocols. The zero value means "derive from Kind".
const (
	ProtoAuto Proto = iota
	TCP
	UDP
	ICMP
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case ICMP:
		return "icmp"
	}
	return "auto"
}

// Kind is the application behaviour a flow scripts.
type Kind uint8

// Flow kinds.
const (
	TCPGeneric Kind = iota
	HTTP
	TLS
	QUIC
	DNS
	UDPGeneric
	ICMPEcho
	DHCP
)

var kindNames = [...]string{"tcp", "http", "tls", "quic", "dns", "udp", "icmp", "dhcp"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// proto is the transport a kind runs over.
func (k Kind) proto() Proto {
	switch k {
	case QUIC, DNS, UDPGeneric, DHCP:
		return UDP
	case ICMPEcho:
		return ICMP
	}
	return TCP
}

// End says how a TCP flow finishes.
type End uint8

// TCP endings.
const (
	EndFIN  End = iota // client FIN, server FIN, final ACK
	EndRST             // client RST after the last data
	EndIdle            // no teardown: the flow just stops
)

// MAC is an Ethernet address. It is a value so flows stay comparable and
// allocation free.
type MAC [6]byte

func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// Flow is one scripted conversation between a client (the initiator) and a
// server. Zero fields take the defaults documented on each field.
type Flow struct {
	Start          time.Time
	Kind           Kind
	Proto          Proto // ProtoAuto derives it from Kind; must agree with Kind otherwise
	Client, Server netip.AddrPort
	ClientMAC      MAC
	ServerMAC      MAC      // usually the gateway's MAC
	VLAN           []uint16 // 802.1Q VLAN IDs, outer first; nil for untagged

	// RTT is the round trip between the sensor and the server; the client is
	// assumed next to the sensor. Default 20ms.
	RTT time.Duration
	// Exchanges is the number of request/response rounds after the protocol
	// preamble (datagrams each way for UDP, echo pairs for ICMP). Default 1.
	Exchanges int
	// Interval, when positive, starts each exchange (TCP, UDP and QUIC
	// flows) Interval after the previous one started, give or take a tenth,
	// instead of after a random think time: a long session with steady
	// traffic, such as a remote desktop or a tunnel, lasts Exchanges times
	// Interval.
	Interval time.Duration
	// RequestBytes and ResponseBytes are application bytes per exchange
	// (ICMP: echo payload size). Zero means "none" except for ICMP (56).
	RequestBytes, ResponseBytes int
	// MSS caps TCP segment payloads. Default 1460 (IPv4) or 1440 (IPv6).
	MSS int
	End End

	// ClientPayload and ServerPayload are literal bytes that begin the
	// first request and response of a TCPGeneric or UDPGeneric flow, so
	// application signatures have something real to find; filler makes up
	// the rest of RequestBytes and ResponseBytes. An exchange is never
	// shorter than its literal.
	ClientPayload, ServerPayload []byte

	TLS  *TLSSpec  // ClientHello parameters for Kind TLS and QUIC
	QUIC *QUICSpec // QUIC packet parameters for Kind QUIC
	// Cert names the certificate a TLS 1.2 server presents (TLS 1.3
	// encrypts it); nil presents a self-signed "synth.invalid".
	Cert *CertSpec
	DNS  *DNSSpec
	HTTP *HTTPSpec
	DHCP *DHCPSpec
}

// CertSpec names a server certificate. The keys are Ed25519 keys derived
// from the names, so the same spec always gives the same DER bytes.
type CertSpec struct {
	CommonName   string
	Organization string
	DNSNames     []string
	// IssuerCommonName and IssuerOrganization name the issuing CA; both
	// empty means self-signed.
	IssuerCommonName, IssuerOrganization string
}

// DHCPSpec describes a DHCPv4 exchange: DISCOVER, OFFER, REQUEST, ACK.
// The client (Flow.ClientMAC) broadcasts from 0.0.0.0:68 to
// 255.255.255.255:67 and the server (Flow.Server, port 67) broadcasts its
// answers to port 68, as servers do for clients that have no address yet;
// Flow.Client is ignored. A sensor sees the two directions as two flows;
// the truth record describes the client's, with the server's answers in
// its s2c counters.
type DHCPSpec struct {
	Addr        netip.Addr    // address the server assigns (yiaddr); required, IPv4
	Hostname    string        // option 12, sent by the client
	VendorClass string        // option 60, e.g. "MSFT 5.0" or "dhcpcd-10.0.6:Linux-6.6.45:aarch64:BCM2835"
	Lease       time.Duration // option 51; default 24h
	Router, DNS netip.Addr    // options 3 and 6; default: the server
	Prefix      int           // subnet mask length, option 1; default 24
}

// TLSSpec describes a ClientHello. Nil slices take modern browser defaults.
type TLSSpec struct {
	SNI  string
	ALPN []string
	// Version is the ClientHello legacy_version; default 0x0303 (TLS 1.2).
	Version      uint16
	CipherSuites []uint16
	// Extensions lists extension types in wire order. server_name (0) is left
	// out when SNI is empty and ALPN (16) when ALPN is empty.
	Extensions          []uint16
	SupportedGroups     []uint16
	PointFormats        []uint8
	SignatureAlgorithms []uint16
	// SupportedVersions is the supported_versions list (e.g. 0x0304, 0x0303);
	// used only if extension 43 is listed. The server answers TLS 1.3 when it
	// contains 0x0304.
	SupportedVersions []uint16
	// GREASE adds RFC 8701 values to suites, extensions, groups, versions and
	// key shares, the way Chromium does.
	GREASE bool
	// SplitClientHello writes the ClientHello in two TCP segments, cut in the
	// middle of the server name.
	SplitClientHello bool
}

// QUICSpec describes the QUIC packets of a Kind QUIC flow. The ClientHello
// inside the Initial comes from Flow.TLS.
type QUICSpec struct {
	Version uint32 // QUICv1 or QUICDraft29; default QUICv1
	// LargeHello adds a post-quantum key share so the ClientHello no longer
	// fits one Initial and its CRYPTO data spans two packets.
	LargeHello bool
}

// QUIC versions with known initial salts.
const (
	QUICv1      uint32 = 0x00000001
	QUICDraft29 uint32 = 0xff00001d
)

// DNSSpec describes one DNS query and its response.
type DNSSpec struct {
	Name    string
	Type    uint16 // QTYPE; default 1 (A)
	RCode   uint8
	Answers []DNSAnswer
}

// DNSAnswer is one resource record in the answer section. Records follow a
// CNAME chain: after a CNAME, the next owner is its target.
type DNSAnswer struct {
	Type   uint16 // default: A or AAAA by Addr's family, CNAME if Target set
	TTL    uint32
	Addr   netip.Addr // A / AAAA
	Target string     // CNAME target
}

// HTTPSpec describes one HTTP/1.1 request per exchange.
type HTTPSpec struct {
	Method    string // default GET, or POST when RequestBytes > 0
	Host      string
	Path      string // default "/"
	UserAgent string
}

// DNS query types used by the generator.
const (
	TypeA     uint16 = 1
	TypeCNAME uint16 = 5
	TypeTXT   uint16 = 16
	TypeAAAA  uint16 = 28
	TypeHTTPS uint16 = 65
)
