// Package appid owns application identification: which remote-access,
// tunnel, VPN, proxy, IP-KVM or anonymizer tool a flow belongs to, and on
// what evidence.
//
// Evidence is weighed strongest first: a payload signature of the first
// packets (RFB and SSH banners, RDP X.224, WireGuard and OpenVPN handshakes,
// SOCKS, HTTP CONNECT, TeamViewer, Tailscale and ZeroTier magic, IKE, NX,
// ICA), then the server certificate, the TLS ALPN, the TLS SNI, the HTTP
// Host, the DNS name the destination was resolved from, a fully-encrypted
// first packet (Shadowsocks-style), and last the port. Names, ALPN ids,
// certificate names and ports come from data files (rules/builtin/lists
// and any directory added to them), so rule authors extend them without
// code. A generic tunnel protocol found in the payload (WireGuard, OpenVPN,
// IPsec) is refined by a name naming a VPN or tunnel product, so WireGuard
// to engage.cloudflareclient.com is cloudflare_warp.
//
// Identify runs once per flow, with whatever the sensor knows when the
// flow's first packets are in; Refine adds what it learns later (the DNS
// name, at export). Neither allocates.
package appid

import (
	"io/fs"

	builtin "github.com/edgeward/edgeward/rules/builtin/lists"
)

// Source says what evidence identified the application.
type Source string

const (
	SourceNone    Source = ""
	SourcePayload Source = "payload"
	SourceCert    Source = "cert"
	SourceALPN    Source = "alpn"
	SourceSNI     Source = "sni"
	SourceHTTP    Source = "http"
	SourceDNS     Source = "dns"
	SourcePort    Source = "port"
)

// Categories used by the built-in signatures and lists; lists may add
// others.
const (
	CategoryRemoteAccess = "remote_access"
	CategoryTunnel       = "tunnel"
	CategoryVPN          = "vpn"
	CategoryProxy        = "proxy"
	CategoryIPKVM        = "ipkvm"
	CategoryAnonymizer   = "anonymizer"
)

// IP protocol numbers for Input.Proto.
const (
	TCP = 6
	UDP = 17
)

// MaxPayload is how many bytes of a packet's payload the signatures read;
// callers need keep no more.
const MaxPayload = 256

// Input is what the flow table knows about a flow when it is exported.
// Client is the initiator. Payloads are the first (and optionally second)
// non-empty payload of each direction, for UDP one datagram each; any
// field may be empty.
type Input struct {
	Proto                     uint8
	ClientPort, ServerPort    uint16
	ClientFirst, ClientSecond []byte
	ServerFirst, ServerSecond []byte

	SNI         string
	ALPN        []string // offered by the client
	CertSubject string   // server certificate subject DN or CN
	CertIssuer  string
	HTTPHost    string
	DNSName     string // name the server address was resolved from
	QUIC        bool
}

// HasNames reports whether in carries any name evidence (certificate,
// ALPN, SNI, HTTP Host, DNS name).
func (in *Input) HasNames() bool {
	return in.SNI != "" || len(in.ALPN) > 0 || in.CertSubject != "" || in.CertIssuer != "" || in.HTTPHost != "" || in.DNSName != ""
}

// Result is the identified application; the zero Result means none.
type Result struct {
	App      string // stable lower-case id, e.g. "anydesk"
	Source   Source
	Category string
}

// Identifier holds the parsed lists. It is immutable and safe for
// concurrent use.
type Identifier struct {
	domains map[string]entry
	certs   map[string]entry // lower-case CN
	alpn    []alpnEntry
	ports   map[portKey]entry
	// listed marks the keys of ports, per transport (TCP, UDP): most
	// flows' ports are in no list, and a bit test rules them out without a
	// map probe.
	listed [2]portSet
}

type portSet [1 << 16 / 64]uint64

func (s *portSet) add(p uint16)      { s[p/64] |= 1 << (p % 64) }
func (s *portSet) has(p uint16) bool { return s[p/64]&(1<<(p%64)) != 0 }

// portSetOf returns the listed ports of a transport, nil for one that
// lists cannot name.
func (id *Identifier) portSetOf(proto uint8) *portSet {
	switch proto {
	case TCP:
		return &id.listed[0]
	case UDP:
		return &id.listed[1]
	}
	return nil
}

type entry struct{ app, category string }

type alpnEntry struct {
	id     string
	prefix bool
	entry
}

// portKey packs a transport and a port into a map key the runtime hashes
// as one word.
type portKey uint32

func portKeyOf(proto uint8, port uint16) portKey { return portKey(proto)<<16 | portKey(port) }

// New parses the built-in lists and then the same-named files of each
// extra file system (e.g. os.DirFS of a site's list directory), whose
// entries add to and override the built-in ones. Files missing from an
// extra file system are skipped.
func New(extra ...fs.FS) (*Identifier, error) {
	id := &Identifier{
		domains: map[string]entry{},
		certs:   map[string]entry{},
		ports:   map[portKey]entry{},
	}
	if err := id.load(builtin.FS, true); err != nil {
		return nil, err
	}
	for _, f := range extra {
		if err := id.load(f, false); err != nil {
			return nil, err
		}
	}
	return id, nil
}

// Identify names the application of a flow, or returns the zero Result.
func (id *Identifier) Identify(in *Input) Result {
	if hasPayload(in) {
		if r, ok := matchPayload(in); ok {
			return id.refineGeneric(r, in)
		}
	}
	if r := id.named(in); r.App != "" {
		return r
	}
	if r, ok := fullyEncrypted(in); ok {
		return r
	}
	return id.byPort(in)
}

// Refine re-weighs r, what Identify returned for a flow before all of its
// names were known, with the names in in: the result Identify gives when
// the names are there from the start. A sensor identifies a flow by its
// first packets, whose payloads it then drops, and learns the name an
// earlier DNS answer gave the server only when the flow is exported; a
// generic tunnel protocol (WireGuard, OpenVPN, IPsec) then yields to a
// name naming a VPN or tunnel product, and a fully-encrypted first packet
// to any name. Every other result stands. in's payloads are not read.
func (id *Identifier) Refine(r Result, in *Input) Result {
	if r.Source != SourcePayload {
		return r
	}
	if r.App == appFullyEncrypted {
		if n := id.named(in); n.App != "" {
			return n
		}
		return r
	}
	return id.refineGeneric(r, in)
}

// refineGeneric returns the VPN or tunnel product a name gives a generic
// tunnel protocol's payload match, else r.
func (id *Identifier) refineGeneric(r Result, in *Input) Result {
	if generic(r) {
		if n := id.byName(in); n.App != "" && (n.Category == CategoryVPN || n.Category == CategoryTunnel) {
			return n
		}
	}
	return r
}

// named is the evidence that names a flow, strongest first: the server
// certificate, the ALPN, then the SNI, HTTP Host and DNS name.
func (id *Identifier) named(in *Input) Result {
	if !in.HasNames() {
		return Result{}
	}
	if r := id.byCert(in); r.App != "" {
		return r
	}
	if r := id.byALPN(in); r.App != "" {
		return r
	}
	return id.byName(in)
}

func (id *Identifier) byName(in *Input) Result {
	if e, ok := id.domain(in.SNI); ok {
		return Result{e.app, SourceSNI, e.category}
	}
	if e, ok := id.domain(in.HTTPHost); ok {
		return Result{e.app, SourceHTTP, e.category}
	}
	if e, ok := id.domain(in.DNSName); ok {
		return Result{e.app, SourceDNS, e.category}
	}
	return Result{}
}

// maxName is the longest DNS name.
const maxName = 253

// domain finds the longest listed suffix of name, case-insensitively and
// ignoring a trailing dot and an HTTP Host port.
func (id *Identifier) domain(name string) (entry, bool) {
	if name == "" || len(id.domains) == 0 {
		return entry{}, false
	}
	if i := lastColon(name); i >= 0 {
		name = name[:i]
	}
	if name != "" && name[len(name)-1] == '.' {
		name = name[:len(name)-1]
	}
	if len(name) == 0 || len(name) > maxName {
		return entry{}, false
	}
	var buf [maxName]byte
	b := buf[:len(name)]
	lower(b, name)
	for i := 0; ; {
		if e, ok := id.domains[string(b[i:])]; ok {
			return e, true
		}
		j := indexByte(b[i:], '.')
		if j < 0 {
			return entry{}, false
		}
		i += j + 1
	}
}

// lastColon finds a host:port separator, leaving IPv6 literals alone.
func lastColon(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		switch c := s[i]; {
		case c == ':':
			if s[0] == '[' || countByte(s, ':') == 1 {
				return i
			}
			return -1
		case c < '0' || c > '9':
			return -1
		}
	}
	return -1
}

func countByte(s string, c byte) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			n++
		}
	}
	return n
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func lower(dst []byte, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst[i] = c
	}
}

func (id *Identifier) byCert(in *Input) Result {
	for _, dn := range [2]string{in.CertSubject, in.CertIssuer} {
		cn := commonName(dn)
		if cn == "" || len(cn) > maxName {
			continue
		}
		var buf [maxName]byte
		b := buf[:len(cn)]
		lower(b, cn)
		if e, ok := id.certs[string(b)]; ok {
			return Result{e.app, SourceCert, e.category}
		}
	}
	return Result{}
}

// commonName returns the CN attribute of an RFC 4514 or OpenSSL-style DN,
// or s itself when it has no attributes.
func commonName(s string) string {
	for i := 0; i+3 <= len(s); i++ {
		if (s[i] == 'C' || s[i] == 'c') && (s[i+1] == 'N' || s[i+1] == 'n') && s[i+2] == '=' &&
			(i == 0 || s[i-1] == ',' || s[i-1] == '/' || s[i-1] == ' ') {
			v := s[i+3:]
			for j := 0; j < len(v); j++ {
				if v[j] == ',' || v[j] == '/' || v[j] == '+' {
					if j > 0 && v[j-1] == '\\' {
						continue
					}
					return v[:j]
				}
			}
			return v
		}
	}
	if countByte(s, '=') == 0 {
		return s
	}
	return ""
}

func (id *Identifier) byALPN(in *Input) Result {
	for _, a := range in.ALPN {
		for _, e := range id.alpn {
			if a == e.id || e.prefix && len(a) > len(e.id) && a[:len(e.id)] == e.id {
				return Result{e.app, SourceALPN, e.category}
			}
		}
	}
	return Result{}
}

func (id *Identifier) byPort(in *Input) Result {
	proto := in.Proto
	if in.QUIC {
		proto = UDP
	}
	set := id.portSetOf(proto)
	if set == nil {
		return Result{}
	}
	// The client's port names an application only when the server's is
	// not a well-known one: a capture that missed a session's start may
	// take the server for the client, but a browsing flow's ephemeral
	// port (a DNS query from 51820, QUIC from 41641) names nothing.
	ports := [2]uint16{in.ServerPort, in.ClientPort}
	if in.ServerPort != 0 && in.ServerPort < 1024 {
		ports[1] = 0
	}
	for _, p := range ports {
		if p != 0 && set.has(p) {
			e := id.ports[portKeyOf(proto, p)]
			return Result{e.app, SourcePort, e.category}
		}
	}
	return Result{}
}
