package flow

import "net/netip"

// Application metadata, extracted by the sensor from the first payload
// packets of a flow. Each object is omitted when the flow carried none.

// TLS describes the TLS handshake of a flow (over TCP, or inside QUIC).
type TLS struct {
	SNI         string   `json:"sni,omitempty"`
	ALPN        []string `json:"alpn,omitempty"`
	Version     string   `json:"version,omitempty"`    // highest version the client offered: "1.0" ... "1.3", or the hex code
	JA3         string   `json:"ja3,omitempty"`        // MD5 of JA3String
	JA3String   string   `json:"ja3_string,omitempty"` // SSLVersion,Ciphers,Extensions,Groups,PointFormats without GREASE
	JA4         string   `json:"ja4,omitempty"`        // FoxIO JA4 (client); starts with "q" inside QUIC
	ServerVer   string   `json:"server_version,omitempty"`
	Cipher      string   `json:"cipher,omitempty"`       // the server's choice, IANA name
	CertSubject string   `json:"cert_subject,omitempty"` // server certificate (TLS <= 1.2): "CN=..., O=..."
	CertIssuer  string   `json:"cert_issuer,omitempty"`
}

// QUIC describes a QUIC flow whose client Initial was decrypted.
type QUIC struct {
	Version string `json:"version"` // "1", "draft-29", or the hex version
}

// DNS describes the first query of a DNS flow and its answer.
type DNS struct {
	Query   string   `json:"query"`
	Queries []string `json:"queries,omitempty"` // every distinct name asked, when the flow asked more than one
	QType   string   `json:"qtype"`             // "A", "AAAA", "HTTPS", ... or "TYPEn"
	RCode   string   `json:"rcode,omitempty"`   // "NOERROR", "NXDOMAIN", ...; omitted without a response
	Answers []string `json:"answers,omitempty"`
}

// HTTP describes the first HTTP/1.x request of a flow.
type HTTP struct {
	Method    string `json:"method"`
	Host      string `json:"host,omitempty"` // for CONNECT, the proxy target (host:port)
	Path      string `json:"path,omitempty"` // without the query string, truncated
	UserAgent string `json:"user_agent,omitempty"`
	Status    int    `json:"status,omitempty"` // the response's status code
}

// SSH holds the identification strings each side sent.
type SSH struct {
	Client string `json:"client,omitempty"`
	Server string `json:"server,omitempty"`
}

// DHCP describes the DHCP exchange of a flow (v4 or v6).
type DHCP struct {
	MsgTypes    []string `json:"msg_types,omitempty"` // in order seen, e.g. DISCOVER OFFER REQUEST ACK
	ClientMAC   MAC      `json:"client_mac,omitzero"`
	RequestedIP string   `json:"requested_addr,omitempty"`
	AssignedIP  string   `json:"assigned_addr,omitempty"`
	Hostname    string   `json:"hostname,omitempty"`
	VendorClass string   `json:"vendor_class,omitempty"`
	ClientID    string   `json:"client_id,omitempty"` // hex
}

// SOCKS describes a SOCKS proxy request at the start of a TCP flow.
type SOCKS struct {
	Version int    `json:"version"` // 4 or 5
	Target  string `json:"target"`  // host:port the client asked the proxy to reach
}

// Sensor names the sensor that saw the flow.
type Sensor struct {
	ID   string `json:"id,omitempty"`
	Site string `json:"site,omitempty"`
}

// Egress is the public address a remote device's VPN session comes from:
// the outer address of the tunnel whose inner address the flow's device
// uses, from the session valid at the flow's start.
type Egress struct {
	IP     netip.Addr `json:"ip"`
	Port   uint16     `json:"port,omitempty"`
	Source string     `json:"source"`         // "wireguard", "openvpn" or "feed"
	Peer   string     `json:"peer,omitempty"` // WireGuard public key, OpenVPN common name, feed id
}

// Device is the corporate device on the internal side of a flow: what the
// sensor saw of it, and what the inventory says about it.
type Device struct {
	IP            netip.Addr `json:"ip"`
	MAC           MAC        `json:"mac,omitzero"`
	Vendor        string     `json:"vendor,omitempty"`         // IEEE registry owner of the MAC's prefix
	RandomizedMAC bool       `json:"randomized_mac,omitempty"` // locally administered (private/random) MAC
	Hostname      string     `json:"hostname,omitempty"`       // from DHCP
	// From the inventory, when the device matched an entry.
	ID              string `json:"id,omitempty"`
	Owner           string `json:"owner,omitempty"`
	AssignedSite    string `json:"assigned_site,omitempty"`
	AssignedCountry string `json:"assigned_country,omitempty"`
	HomeTimezone    string `json:"home_timezone,omitempty"`
	MatchedBy       string `json:"matched_by,omitempty"` // "mac", "hostname", "ip" or "vpn"
}
