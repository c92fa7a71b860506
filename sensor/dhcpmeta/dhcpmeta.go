// Package dhcpmeta owns DHCP metadata: it extracts client identity (MAC,
// hostname, vendor class, client identifier or DUID) and address
// assignments from DHCPv4 and DHCPv6 messages, and keeps the bounded Table
// that maps an address to the client holding it, so later flows from that
// address can carry src.hostname.
//
// Wire decoding is gopacket's layers.DHCPv4 and layers.DHCPv6. gopacket
// stops at the top-level DHCPv6 options, so the IA_NA/IA_TA address
// sub-options, the vendor-class option and the FQDN options' DNS-encoded
// names are read here.
package dhcpmeta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Sentinel errors, one per kind, so callers can count them instead of
// logging per packet. Errors returned by this package wrap exactly one.
var (
	// ErrTruncated: the message or one of its options ends early. Fields
	// from the options before the cut are still filled in.
	ErrTruncated = errors.New("dhcpmeta: truncated DHCP message")
	// ErrMalformed: a field holds an impossible value.
	ErrMalformed = errors.New("dhcpmeta: malformed DHCP message")
	// ErrNotDHCP: no DHCP magic cookie, or an impossible op/message type.
	ErrNotDHCP = errors.New("dhcpmeta: not a DHCP message")
)

// Bounds on what is kept per message.
const (
	MaxAddrs      = 16 // IA addresses per DHCPv6 message
	maxRelayDepth = 8  // RFC 8415 allows 32 hops; real relay chains are short
)

// MsgType is a DHCPv4 message type (option 53); 0 means BOOTP.
type MsgType uint8

// DHCPv4 message types the Table acts on.
const (
	Discover MsgType = 1
	Offer    MsgType = 2
	Request  MsgType = 3
	Decline  MsgType = 4
	Ack      MsgType = 5
	Nak      MsgType = 6
	Release  MsgType = 7
	Inform   MsgType = 8
)

func (t MsgType) String() string { return layers.DHCPMsgType(t).String() }

// V4 is the metadata of one DHCPv4 message. ParseV4 resets it.
type V4 struct {
	Op            uint8 // 1 from client, 2 from server
	Type          MsgType
	Xid           uint32
	ClientMAC     net.HardwareAddr // chaddr
	ClientAddr    netip.Addr       // ciaddr, when set
	AssignedAddr  netip.Addr       // yiaddr on OFFER and ACK
	RequestedAddr netip.Addr       // option 50
	ServerID      netip.Addr       // option 54
	LeaseTime     uint32           // option 51, seconds
	Hostname      string           // option 12
	FQDN          string           // option 81
	Domain        string           // option 15
	VendorClass   string           // option 60
	ClientID      []byte           // option 61
	ParamRequest  []byte           // option 55, option codes
	Message       string           // option 56, the server's reason on NAK
}

// Parser decodes DHCP messages. Its zero value is ready; reusing one Parser
// reuses gopacket's option slices. A Parser is not safe for concurrent use.
type Parser struct {
	v4 layers.DHCPv4
	v6 layers.DHCPv6
}

// ParseV4 decodes the DHCPv4 message in a UDP payload (ports 67/68) into m.
func (p *Parser) ParseV4(payload []byte, m *V4) error {
	*m = V4{}
	if len(payload) < 240 {
		return ErrTruncated
	}
	d := &p.v4
	err := d.DecodeFromBytes(payload, gopacket.NilDecodeFeedback)
	// Option errors come after the fixed header decoded, and gopacket keeps
	// the options before the bad one; any other error leaves nothing usable.
	optErr := errors.Is(err, layers.DecOptionNotEnoughData) || errors.Is(err, layers.DecOptionMalformed)
	switch {
	case errors.Is(err, layers.InvalidMagicCookie):
		return ErrNotDHCP
	case err != nil && !optErr:
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if d.Operation != layers.DHCPOpRequest && d.Operation != layers.DHCPOpReply {
		return ErrNotDHCP
	}
	m.Op = uint8(d.Operation)
	m.Xid = d.Xid
	m.ClientMAC = append(net.HardwareAddr(nil), d.ClientHWAddr...)
	m.ClientAddr = addr4(d.ClientIP)
	for _, o := range d.Options {
		switch o.Type {
		case layers.DHCPOptMessageType:
			if len(o.Data) == 1 && m.Type == 0 {
				m.Type = MsgType(o.Data[0])
			}
		case layers.DHCPOptRequestIP:
			setOnce(&m.RequestedAddr, addr4(o.Data))
		case layers.DHCPOptServerID:
			setOnce(&m.ServerID, addr4(o.Data))
		case layers.DHCPOptLeaseTime:
			if len(o.Data) == 4 && m.LeaseTime == 0 {
				m.LeaseTime = binary.BigEndian.Uint32(o.Data)
			}
		case layers.DHCPOptHostname:
			setString(&m.Hostname, o.Data)
		case layers.DHCPOptDomainName:
			setString(&m.Domain, o.Data)
		case layers.DHCPOptClassID:
			setString(&m.VendorClass, o.Data)
		case layers.DHCPOptMessage:
			setString(&m.Message, o.Data)
		case layers.DHCPOptClientID:
			if m.ClientID == nil {
				m.ClientID = append([]byte{}, o.Data...)
			}
		case layers.DHCPOptParamsRequest:
			if m.ParamRequest == nil {
				m.ParamRequest = append([]byte{}, o.Data...)
			}
		case 81: // Client FQDN, RFC 4702: flags, rcode1, rcode2, name
			if len(o.Data) > 3 && m.FQDN == "" {
				if o.Data[0]&0x04 != 0 { // E: canonical wire format
					m.FQDN = wireName(o.Data[3:])
				} else {
					m.FQDN = string(o.Data[3:])
				}
			}
		}
	}
	if m.Type == Offer || m.Type == Ack {
		m.AssignedAddr = addr4(d.YourClientIP)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrTruncated, err)
	}
	return nil
}

// V6MsgType is a DHCPv6 message type.
type V6MsgType uint8

// DHCPv6 message types the Table acts on.
const (
	Solicit            V6MsgType = 1
	Advertise          V6MsgType = 2
	Request6           V6MsgType = 3
	Confirm            V6MsgType = 4
	Renew              V6MsgType = 5
	Rebind             V6MsgType = 6
	Reply              V6MsgType = 7
	Release6           V6MsgType = 8
	Decline6           V6MsgType = 9
	InformationRequest V6MsgType = 11
	RelayForward       V6MsgType = 12
	RelayReply         V6MsgType = 13
)

func (t V6MsgType) String() string { return layers.DHCPv6MsgType(t).String() }

// IAAddr is an address from an IA_NA or IA_TA option.
type IAAddr struct {
	Addr                    netip.Addr
	Preferred, ValidSeconds uint32
}

// V6 is the metadata of one DHCPv6 message, unwrapped from any relay
// encapsulation. ParseV6 resets it.
type V6 struct {
	Type               V6MsgType
	RelayHops          int // relay messages unwrapped to reach this one
	TransactionID      uint32
	ClientDUID         []byte
	ClientMAC          net.HardwareAddr // link-layer address inside a DUID-LL/LLT
	Addrs              []IAAddr         // from IA_NA and IA_TA, up to MaxAddrs
	FQDN               string           // option 39
	VendorClass        string           // option 16, first vendor-class-data
	VendorEnterpriseID uint32           // option 16
}

// ParseV6 decodes the DHCPv6 message in a UDP payload (ports 546/547) into
// m. Relay-forward and relay-reply messages are unwrapped to the client
// message they carry.
func (p *Parser) ParseV6(payload []byte, m *V6) error {
	addrs := m.Addrs[:0]
	*m = V6{Addrs: addrs}
	for {
		if len(payload) < 4 {
			return ErrTruncated
		}
		if t := V6MsgType(payload[0]); t == 0 || t > 40 {
			return ErrNotDHCP
		}
		d := &p.v6
		err := d.DecodeFromBytes(payload, gopacket.NilDecodeFeedback)
		m.Type = V6MsgType(d.MsgType)
		if m.Type != RelayForward && m.Type != RelayReply {
			m.fill(d)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrTruncated, err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrTruncated, err)
		}
		if m.RelayHops == maxRelayDepth {
			return fmt.Errorf("%w: more than %d nested relay messages", ErrMalformed, maxRelayDepth)
		}
		m.RelayHops++
		payload = nil
		for _, o := range d.Options {
			if o.Code == layers.DHCPv6OptRelayMessage {
				payload = o.Data
				break
			}
		}
		if payload == nil {
			return fmt.Errorf("%w: relay message without a relayed message", ErrMalformed)
		}
	}
}

func (m *V6) fill(d *layers.DHCPv6) {
	if len(d.TransactionID) == 3 {
		m.TransactionID = uint32(d.TransactionID[0])<<16 | uint32(d.TransactionID[1])<<8 | uint32(d.TransactionID[2])
	}
	for _, o := range d.Options {
		switch o.Code {
		case layers.DHCPv6OptClientID:
			if m.ClientDUID != nil {
				continue
			}
			m.ClientDUID = append([]byte{}, o.Data...)
			var duid layers.DHCPv6DUID
			if duid.DecodeFromBytes(o.Data) == nil && duid.Type != layers.DHCPv6DUIDTypeEN &&
				binary.BigEndian.Uint16(duid.HardwareType) == uint16(layers.LinkTypeEthernet) &&
				len(duid.LinkLayerAddress) == 6 {
				m.ClientMAC = append(net.HardwareAddr(nil), duid.LinkLayerAddress...)
			}
		case layers.DHCPv6OptIANA:
			m.addIA(o.Data, 12) // IAID, T1, T2
		case layers.DHCPv6OptIATA:
			m.addIA(o.Data, 4) // IAID
		case layers.DHCPv6OptClientFQDN: // RFC 4704: flags, then a DNS name
			if len(o.Data) > 1 && m.FQDN == "" {
				m.FQDN = wireName(o.Data[1:])
			}
		case layers.DHCPv6OptVendorClass: // RFC 8415 21.16
			if len(o.Data) >= 4 && m.VendorClass == "" {
				m.VendorEnterpriseID = binary.BigEndian.Uint32(o.Data)
				if rest := o.Data[4:]; len(rest) >= 2 {
					n := int(binary.BigEndian.Uint16(rest))
					if 2+n <= len(rest) {
						m.VendorClass = string(rest[2 : 2+n])
					}
				}
			}
		}
	}
}

// addIA collects the IAADDR sub-options of an IA_NA or IA_TA option whose
// fixed fields take skip bytes.
func (m *V6) addIA(b []byte, skip int) {
	if len(b) < skip {
		return
	}
	for b = b[skip:]; len(b) >= 4; {
		code := binary.BigEndian.Uint16(b)
		n := int(binary.BigEndian.Uint16(b[2:]))
		if 4+n > len(b) {
			return
		}
		body := b[4 : 4+n]
		b = b[4+n:]
		if layers.DHCPv6Opt(code) != layers.DHCPv6OptIAAddr || n < 24 {
			continue
		}
		if len(m.Addrs) == MaxAddrs {
			return
		}
		m.Addrs = append(m.Addrs, IAAddr{
			Addr:         netip.AddrFrom16([16]byte(body[:16])),
			Preferred:    binary.BigEndian.Uint32(body[16:]),
			ValidSeconds: binary.BigEndian.Uint32(body[20:]),
		})
	}
}

// wireName decodes a DNS-encoded name (RFC 1035 3.1, no compression), as
// far as it is well formed; FQDN options may carry a partial name without
// the root label.
func wireName(b []byte) string {
	var buf [255]byte
	n := 0
	for len(b) > 0 && b[0] != 0 {
		l := int(b[0])
		if l > 63 || 1+l > len(b) || n+l+1 > len(buf) {
			break
		}
		if n > 0 {
			buf[n] = '.'
			n++
		}
		n += copy(buf[n:], b[1:1+l])
		b = b[1+l:]
	}
	return string(buf[:n])
}

func addr4(b []byte) netip.Addr {
	if len(b) != 4 {
		return netip.Addr{}
	}
	a := netip.AddrFrom4([4]byte(b))
	if a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

func setOnce(dst *netip.Addr, a netip.Addr) {
	if !dst.IsValid() {
		*dst = a
	}
}

// setString keeps the first occurrence of a text option, without the NUL
// padding some clients append.
func setString(dst *string, b []byte) {
	if *dst != "" {
		return
	}
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	*dst = string(b)
}
