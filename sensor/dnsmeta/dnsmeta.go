// Package dnsmeta owns DNS metadata: it turns a DNS message seen in a UDP
// datagram or a TCP stream into the few fields the sensor exports (query
// name and type, response code, A/AAAA/CNAME answers), and it keeps the
// bounded name Cache that labels later flows with the name their client
// resolved.
//
// Wire decoding is gopacket's layers.DNS; this package only bounds and
// normalises what that decoder returns.
//
// # Cache keying
//
// The Cache is keyed by (client address, answered server address): an
// answer only ever labels flows of the client it was delivered to. A host
// that forges responses to itself therefore only mislabels its own flows,
// which it could do anyway by choosing what to query. A CDN address that
// serves many names maps, for each client, to the name that client asked
// for last, which is the name the next connection most likely belongs to.
//
// Cache.LookupServer is a weaker fallback keyed by the server address
// alone. It answers with the name from the most recent response any client
// received from a resolver listed in Config.SharedResolvers (every resolver
// when that list is empty). Such a name is what DNS told somebody, not what
// this client asked for, so one client's traffic can influence the label of
// another client's flow. Use it only to fill a label that would otherwise be
// empty, never to override Lookup, and configure SharedResolvers with the
// site's own resolvers to keep spoofed responses out of it.
package dnsmeta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/edgeward/edgeward/sensor/intern"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Sentinel errors, one per kind, so callers can count them instead of
// logging per packet. Errors returned by this package wrap exactly one.
var (
	// ErrTruncated: the message is shorter than a DNS header.
	ErrTruncated = errors.New("dnsmeta: truncated DNS message")
	// ErrMalformed: a section of the message does not decode. Fields
	// decoded before the fault are still filled in.
	ErrMalformed = errors.New("dnsmeta: malformed DNS message")
	// ErrNeedMore: the TCP stream does not yet hold a whole message.
	ErrNeedMore = errors.New("dnsmeta: need more TCP stream bytes")
)

// MaxAnswers bounds the answers kept per message; further ones are counted
// in Message.AnswersDropped.
const MaxAnswers = 64

// maxChain bounds CNAME chain resolution; resolvers give up well before.
const maxChain = 16

// Type is a DNS RR type.
type Type uint16

// Types the sensor acts on.
const (
	TypeA     Type = 1
	TypeCNAME Type = 5
	TypeAAAA  Type = 28
	TypeHTTPS Type = 65
)

// String returns the IANA mnemonic ("A", "AAAA", "HTTPS") or "TYPE<n>"
// (RFC 3597) for types without one.
func (t Type) String() string {
	if s := layers.DNSType(t).String(); s != "Unknown" {
		return s
	}
	// Common types gopacket has no name for.
	switch t {
	case 43:
		return "DS"
	case 44:
		return "SSHFP"
	case 47:
		return "NSEC"
	case 50:
		return "NSEC3"
	case 52:
		return "TLSA"
	case 99:
		return "SPF"
	case 251:
		return "IXFR"
	case 252:
		return "AXFR"
	case 255:
		return "ANY"
	case 257:
		return "CAA"
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// RCode is a DNS response code, including the EDNS extended bits.
type RCode uint16

var rcodeNames = [...]string{
	0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
	5: "REFUSED", 6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH",
	10: "NOTZONE", 11: "DSOTYPENI", 16: "BADVERS", 17: "BADKEY", 18: "BADTIME",
	19: "BADMODE", 20: "BADNAME", 21: "BADALG", 22: "BADTRUNC", 23: "BADCOOKIE",
}

// String returns the IANA mnemonic ("NOERROR", "NXDOMAIN") or "RCODE<n>".
func (r RCode) String() string {
	if int(r) < len(rcodeNames) && rcodeNames[r] != "" {
		return rcodeNames[r]
	}
	return "RCODE" + strconv.Itoa(int(r))
}

// Answer is one A, AAAA or CNAME record from the answer section.
type Answer struct {
	Name   string     // owner name, lowercase, no trailing dot
	Type   Type       // TypeA, TypeAAAA or TypeCNAME
	TTL    uint32     // seconds
	Addr   netip.Addr // A/AAAA only
	Target string     // CNAME only, lowercase, no trailing dot
}

// Message is the metadata of one DNS message. Parse resets it, so one
// Message can be reused across packets.
type Message struct {
	ID       uint16
	Response bool
	Opcode   uint8
	TC       bool // the server truncated the answer (retry over TCP follows)
	RCode    RCode
	// QName and QType are the first question; "" is the root.
	QName string
	QType Type
	// Answers holds up to MaxAnswers A/AAAA/CNAME answers.
	Answers        []Answer
	AnswersDropped int
}

func (m *Message) reset() {
	ans := m.Answers[:0]
	*m = Message{Answers: ans}
}

// Parser decodes DNS messages. Its zero value is ready; reusing one Parser
// reuses gopacket's decoding buffers. A Parser is not safe for concurrent use.
type Parser struct {
	// Names, when set, shares the name strings of the messages it parses
	// with earlier ones.
	Names   *intern.Table
	dns     layers.DNS
	scratch []byte
}

// Parse decodes the DNS message in a UDP payload into m.
//
// On ErrMalformed, m holds what decoded before the fault, typically the
// question, so a query name survives a garbled answer section.
func (p *Parser) Parse(payload []byte, m *Message) error {
	m.reset()
	if len(payload) < 12 {
		return ErrTruncated
	}
	err := p.dns.DecodeFromBytes(payload, gopacket.NilDecodeFeedback)
	p.fill(m)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// ParseTCP decodes the first DNS message of a TCP stream (RFC 1035 4.2.2:
// a 2-byte length then the message) into m and returns the bytes consumed,
// so the caller can continue with the next message. stream is the
// in-order payload of one direction from its start or from the previous
// message boundary; ErrNeedMore means it does not yet hold the whole
// message. A message never exceeds 65537 stream bytes, which bounds what a
// caller has to buffer.
func (p *Parser) ParseTCP(stream []byte, m *Message) (int, error) {
	m.reset()
	if len(stream) < 2 {
		return 0, ErrNeedMore
	}
	n := int(binary.BigEndian.Uint16(stream))
	if len(stream) < 2+n {
		return 0, ErrNeedMore
	}
	if n < 12 {
		return 2 + n, ErrTruncated
	}
	return 2 + n, p.Parse(stream[2:2+n], m)
}

func (p *Parser) fill(m *Message) {
	d := &p.dns
	m.ID = d.ID
	m.Response = d.QR
	m.Opcode = uint8(d.OpCode)
	m.TC = d.TC
	m.RCode = RCode(d.ResponseCode)
	if len(d.Questions) > 0 {
		m.QName = p.name(d.Questions[0].Name, "")
		m.QType = Type(d.Questions[0].Type)
	}
	for i := range d.Answers {
		rr := &d.Answers[i]
		var a Answer
		switch Type(rr.Type) {
		case TypeA:
			addr, ok := netip.AddrFromSlice(rr.IP)
			if !ok || !addr.Is4() {
				continue
			}
			a.Addr = addr
		case TypeAAAA:
			addr, ok := netip.AddrFromSlice(rr.IP)
			if !ok || !addr.Is6() {
				continue
			}
			a.Addr = addr
		case TypeCNAME:
			a.Target = p.name(rr.CNAME, m.QName)
		default:
			continue
		}
		if len(m.Answers) == MaxAnswers {
			m.AnswersDropped++
			continue
		}
		a.Type = Type(rr.Type)
		a.TTL = rr.TTL
		a.Name = p.name(rr.Name, m.QName)
		if len(m.Answers) > 0 {
			// Records of one RRset share the owner; share the string too.
			if prev := m.Answers[len(m.Answers)-1].Name; prev == a.Name {
				a.Name = prev
			}
		}
		m.Answers = append(m.Answers, a)
	}
}

// name returns b lowercased without a trailing dot. When it equals reuse,
// reuse is returned instead of a fresh string: most owner names repeat the
// query name.
func (p *Parser) name(b []byte, reuse string) string {
	if n := len(b); n > 0 && b[n-1] == '.' {
		b = b[:n-1]
	}
	p.scratch = append(p.scratch[:0], b...)
	for i, c := range p.scratch {
		if 'A' <= c && c <= 'Z' {
			p.scratch[i] = c + 'a' - 'A'
		}
	}
	if string(p.scratch) == reuse { // no allocation: compiler-optimised compare
		return reuse
	}
	return p.Names.Bytes(p.scratch)
}

// Resolved is an address the query name resolves to within one message.
type Resolved struct {
	Addr netip.Addr
	// TTL is the smallest TTL along the CNAME chain and the address record:
	// the mapping is only as fresh as its weakest link.
	TTL uint32
}

// Resolve appends to dst every A/AAAA address that the answer section
// links to QName, directly or through a CNAME chain, and returns dst.
// Addresses whose owner is not on the chain are ignored: a response may
// carry unrelated records, and they say nothing about what the client
// asked for.
func (m *Message) Resolve(dst []Resolved) []Resolved {
	type link struct {
		name string
		ttl  uint32
	}
	var chainBuf [maxChain]link
	chain := append(chainBuf[:0], link{m.QName, ^uint32(0)})
	// Walk CNAMEs in chain order even when the server lists them out of order.
	for grew := true; grew && len(chain) < maxChain; {
		grew = false
		for _, a := range m.Answers {
			if a.Type != TypeCNAME || len(chain) == maxChain {
				continue
			}
			var owner *link
			seen := false
			for i := range chain {
				if chain[i].name == a.Name {
					owner = &chain[i]
				}
				if chain[i].name == a.Target {
					seen = true
				}
			}
			if owner != nil && !seen {
				chain = append(chain, link{a.Target, min(owner.ttl, a.TTL)})
				grew = true
			}
		}
	}
	for _, a := range m.Answers {
		if a.Type != TypeA && a.Type != TypeAAAA {
			continue
		}
		for _, l := range chain {
			if l.name == a.Name {
				dst = append(dst, Resolved{Addr: a.Addr, TTL: min(l.ttl, a.TTL)})
				break
			}
		}
	}
	return dst
}
