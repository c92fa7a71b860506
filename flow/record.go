package flow

import (
	"net/netip"
	"time"
)

// Schema is the value of every record's "schema" field. A change that
// removes or renames a field gets a new version; adding fields does not.
const Schema = "edgeward.flow/v1"

// EndReason says why the sensor closed a flow record.
type EndReason string

// End reasons, as they appear in "end_reason".
const (
	EndIdle     EndReason = "idle"     // no packet for the idle timeout
	EndActive   EndReason = "active"   // open longer than the active timeout; the flow continues in a new record
	EndFIN      EndReason = "fin"      // TCP FIN seen from both sides
	EndRST      EndReason = "rst"      // TCP RST
	EndEvicted  EndReason = "evicted"  // the flow table was full and this was the least recently seen flow
	EndEOF      EndReason = "eof"      // the capture file ended
	EndShutdown EndReason = "shutdown" // the sensor stopped
)

// Record is one bidirectional flow. Src is the initiator: the sender of the
// TCP SYN, otherwise of the first packet seen.
type Record struct {
	Schema      string    `json:"schema"`
	ID          string    `json:"id"`
	CommunityID string    `json:"community_id"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	DurationS   float64   `json:"duration_s"`
	EndReason   EndReason `json:"end_reason"`
	Proto       string    `json:"proto"`
	VLAN        []uint16  `json:"vlan,omitempty"`

	Src Endpoint `json:"src"`
	Dst Endpoint `json:"dst"`

	// Direction relative to the corporate network: "outbound" (internal
	// initiator, external responder), "inbound", "internal" or "external".
	Direction string  `json:"direction,omitempty"`
	Sensor    *Sensor `json:"sensor,omitempty"`
	Device    *Device `json:"device,omitempty"`
	// Egress is where the device really reaches the internet from, when
	// the sensor knows it from a VPN session (the device's address is a
	// tunnel address).
	Egress *Egress `json:"egress,omitempty"`
	// App is the application the flow belongs to, when identified, with the
	// evidence (AppSource: "payload", "cert", "alpn", "sni", "http", "dns"
	// or "port", strongest first) and its category ("remote_access",
	// "tunnel", "vpn", "proxy", "ipkvm", "anonymizer", ...).
	App         string `json:"app,omitempty"`
	AppSource   string `json:"app_source,omitempty"`
	AppCategory string `json:"app_category,omitempty"`

	TCP    *TCP    `json:"tcp,omitempty"`
	ICMP   *ICMP   `json:"icmp,omitempty"`
	Tunnel *Tunnel `json:"tunnel,omitempty"`

	TLS   *TLS   `json:"tls,omitempty"`
	QUIC  *QUIC  `json:"quic,omitempty"`
	DNS   *DNS   `json:"dns,omitempty"`
	HTTP  *HTTP  `json:"http,omitempty"`
	SSH   *SSH   `json:"ssh,omitempty"`
	DHCP  *DHCP  `json:"dhcp,omitempty"`
	SOCKS *SOCKS `json:"socks,omitempty"`
}

// Endpoint is one side of a flow and what it sent.
type Endpoint struct {
	IP   netip.Addr `json:"ip"`
	Port uint16     `json:"port"` // 0 for protocols without ports (ICMP: see Record.ICMP)
	MAC  MAC        `json:"mac,omitzero"`
	// Packets, Bytes and PayloadBytes count what this endpoint sent. Bytes
	// are IP-layer bytes (IP header + payload, NetFlow octets, Zeek
	// *_ip_bytes); PayloadBytes are transport payload bytes (Zeek
	// orig_bytes/resp_bytes without gap inference).
	Packets      uint64 `json:"packets"`
	Bytes        uint64 `json:"bytes"`
	PayloadBytes uint64 `json:"payload_bytes"`
	// Name is the endpoint's DNS name as the flow itself or the traffic
	// before it revealed it; NameSource says how: "sni" (TLS/QUIC server
	// name, preferred), "http" (Host header) or "dns" (an earlier answer to
	// this client).
	Name       string `json:"name,omitempty"`
	NameSource string `json:"name_source,omitempty"`
	// Hostname is the name the endpoint gave itself in DHCP (option 12,
	// or the DHCPv6 FQDN) for this address.
	Hostname string `json:"hostname,omitempty"`
}

// TCP holds per-direction TCP state of a flow.
type TCP struct {
	SrcFlags TCPFlags `json:"src_flags"` // OR of the flags src sent
	DstFlags TCPFlags `json:"dst_flags"` // OR of the flags dst sent
	History  string   `json:"history"`   // Zeek conn.log history letters
}

// ICMP holds the type and code of the first ICMP message src sent (for a
// flow opened by a reply, of the first message seen).
type ICMP struct {
	Type uint8 `json:"type"`
	Code uint8 `json:"code"`
}

// Tunnel describes the outermost encapsulation the flow was carried in; the
// record's addresses are those of the inner packet.
type Tunnel struct {
	Type string     `json:"type"` // "vxlan" or "gre"
	Src  netip.Addr `json:"src"`  // outer source of the first packet
	Dst  netip.Addr `json:"dst"`
	VNI  uint32     `json:"vni,omitempty"` // VXLAN network identifier, GRE key
}

// MAC is an Ethernet address; the zero value means absent.
type MAC [6]byte

// IsZero reports whether m is absent.
func (m MAC) IsZero() bool { return m == MAC{} }

const hexDigits = "0123456789abcdef"

// AppendText appends the colon-separated lowercase form.
func (m MAC) AppendText(b []byte) ([]byte, error) {
	for i, x := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hexDigits[x>>4], hexDigits[x&0xf])
	}
	return b, nil
}

// MarshalText implements encoding.TextMarshaler.
func (m MAC) MarshalText() ([]byte, error) { return m.AppendText(make([]byte, 0, 17)) }

func (m MAC) String() string {
	b, _ := m.MarshalText()
	return string(b)
}

// UnmarshalText parses aa:bb:cc:dd:ee:ff (or with '-').
func (m *MAC) UnmarshalText(b []byte) error {
	if len(b) != 17 {
		return errBadMAC
	}
	for i := range 6 {
		hi, ok1 := unhex(b[i*3])
		lo, ok2 := unhex(b[i*3+1])
		if !ok1 || !ok2 || (i < 5 && b[i*3+2] != ':' && b[i*3+2] != '-') {
			return errBadMAC
		}
		m[i] = hi<<4 | lo
	}
	return nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// TCPFlags is an OR of TCP header flags, encoded as letters in the order
// FSRPAUEC (FIN SYN RST PSH ACK URG ECE CWR), e.g. "FSPA".
type TCPFlags uint8

// TCP flag bits as in the header's 13th byte.
const (
	FlagFIN TCPFlags = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
	FlagECE
	FlagCWR
)

const flagLetters = "FSRPAUEC"

// AppendText appends the flag letters.
func (f TCPFlags) AppendText(b []byte) ([]byte, error) {
	for i := range 8 {
		if f&(1<<i) != 0 {
			b = append(b, flagLetters[i])
		}
	}
	return b, nil
}

// MarshalText implements encoding.TextMarshaler.
func (f TCPFlags) MarshalText() ([]byte, error) { return f.AppendText(nil) }

func (f TCPFlags) String() string {
	b, _ := f.AppendText(nil)
	return string(b)
}

// UnmarshalText parses flag letters in any order.
func (f *TCPFlags) UnmarshalText(b []byte) error {
	*f = 0
	for _, c := range b {
		i := indexByte(flagLetters, c)
		if i < 0 {
			return errBadFlags
		}
		*f |= 1 << i
	}
	return nil
}

func indexByte(s string, c byte) int {
	for i := range len(s) {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// Clone returns a deep copy of r. The sensor reuses the record it passes
// to its emit callback; consumers that keep records clone them.
func (r *Record) Clone() *Record {
	c := *r
	c.VLAN = cloneSlice(r.VLAN)
	c.TCP = clonePtr(r.TCP)
	c.ICMP = clonePtr(r.ICMP)
	c.Tunnel = clonePtr(r.Tunnel)
	if c.TLS = clonePtr(r.TLS); c.TLS != nil {
		c.TLS.ALPN = cloneSlice(r.TLS.ALPN)
	}
	c.QUIC = clonePtr(r.QUIC)
	if c.DNS = clonePtr(r.DNS); c.DNS != nil {
		c.DNS.Answers = cloneSlice(r.DNS.Answers)
		c.DNS.Queries = cloneSlice(r.DNS.Queries)
	}
	c.SOCKS = clonePtr(r.SOCKS)
	c.Sensor = clonePtr(r.Sensor)
	c.Device = clonePtr(r.Device)
	c.Egress = clonePtr(r.Egress)
	c.HTTP = clonePtr(r.HTTP)
	c.SSH = clonePtr(r.SSH)
	if c.DHCP = clonePtr(r.DHCP); c.DHCP != nil {
		c.DHCP.MsgTypes = cloneSlice(r.DHCP.MsgTypes)
	}
	return &c
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append([]T(nil), s...)
}
