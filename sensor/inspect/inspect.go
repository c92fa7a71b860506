// Package inspect owns per-flow payload inspection: it feeds the first
// payload packets of each flow to the TLS, QUIC, DNS, HTTP, DHCP and SSH
// parsers, keeps the sensor-wide DNS name cache and DHCP lease table those
// packets fill, and writes what it learned into the flow's record.
//
// Only the first few payload packets of each direction are looked at
// (Config.MaxPackets), so a long flow costs nothing after its start, and
// heavy per-flow state (reassembly buffers, parser structs) is returned to a
// pool as soon as a flow's inspection is over; what remains until the flow
// ends is the extracted strings.
package inspect

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/appid"
	"github.com/edgeward/edgeward/sensor/decode"
	"github.com/edgeward/edgeward/sensor/dhcpmeta"
	"github.com/edgeward/edgeward/sensor/dnsmeta"
	"github.com/edgeward/edgeward/sensor/httpmeta"
	"github.com/edgeward/edgeward/sensor/intern"
	"github.com/edgeward/edgeward/sensor/quicmeta"
	"github.com/edgeward/edgeward/sensor/sshmeta"
	"github.com/edgeward/edgeward/sensor/tlsmeta"
)

// Config bounds inspection. Zero values take the defaults.
type Config struct {
	// MaxPackets is how many payload packets of each direction are
	// inspected (default 8).
	MaxPackets int
	// MaxStream bounds the reassembled bytes kept per TCP direction
	// (default 16 KiB: a large ClientHello, or a ServerHello with a
	// TLS 1.2 certificate chain's first certificate).
	MaxStream int
	// MaxInspecting bounds the TCP and QUIC flows holding parsing state
	// (reassembly buffers) at once; beyond it new flows are not inspected
	// and Stats.Skipped counts them (default 65536).
	MaxInspecting int
	DNS           dnsmeta.Config
	DHCP          dhcpmeta.TableConfig
	// Apps identifies applications (nil: no identification).
	Apps *appid.Identifier
}

func (c Config) withDefaults() Config {
	if c.MaxPackets <= 0 {
		c.MaxPackets = 8
	}
	if c.MaxStream <= 0 {
		c.MaxStream = 16 << 10
	}
	if c.MaxInspecting <= 0 {
		c.MaxInspecting = 1 << 16
	}
	return c
}

// Stats counts what the parsers found, and their errors by kind.
type Stats struct {
	ClientHellos, ServerHellos, QUICInitials uint64
	DNSMessages, HTTPRequests, SSHBanners    uint64
	DHCPMessages                             uint64
	Skipped                                  uint64 // flows not inspected: MaxInspecting reached
	FingerprintHits, FingerprintMisses       uint64 // JA3/JA4 cache
	CertCacheHits                            uint64
	Errors                                   map[string]uint64
}

// None is the slot of a flow without inspection state.
const None = -1

// Inspector inspects the flows of one capture worker; not safe for
// concurrent use.
type Inspector struct {
	cfg       Config
	slots     [][]slot // chunks of slotChunk: growing copies nothing
	nslots    int32
	free      []int32
	pool      []*state
	active    int
	stats     Stats
	dnsParser dnsmeta.Parser
	dnsMsg    dnsmeta.Message
	cache     *dnsmeta.Cache
	dhcp      dhcpmeta.Parser
	dhcpV4    dhcpmeta.V4
	dhcpV6    dhcpmeta.V6
	leases    *dhcpmeta.Table
	httpReq   httpmeta.Request
	httpResp  httpmeta.Response
	ident     sshmeta.Ident
	fp        fingerprints
	certs     *tlsmeta.CertCache
	ciphers   map[uint16]string // IANA names; tls.CipherSuiteName rebuilds its list per call
	apps      *appid.Identifier
	appIn     appid.Input
	nameApps  nameApps
	payPool   []*payloads
	spare     spares
	strs      *intern.Table // server names, DNS names and answers
	text      []byte        // scratch for answer addresses
}

// New returns an Inspector.
func New(cfg Config) *Inspector {
	cfg = cfg.withDefaults()
	names := intern.NewTable(intern.DefaultSize)
	return &Inspector{
		cfg:       cfg,
		dnsParser: dnsmeta.Parser{Names: names},
		strs:      names,
		cache:     dnsmeta.NewCache(cfg.DNS),
		leases:    dhcpmeta.NewTable(cfg.DHCP),
		certs:     tlsmeta.NewCertCache(1024),
		ciphers:   cipherNames(),
		apps:      cfg.Apps,
		stats:     Stats{Errors: map[string]uint64{}},
	}
}

// Stats returns the counters (the Errors map is shared; read it only
// between packets).
func (in *Inspector) Stats() Stats {
	s := in.stats
	s.FingerprintHits, s.FingerprintMisses = in.fp.hit, in.fp.miss
	s.CertCacheHits = in.certs.Hits
	return s
}

// slot is one flow's inspection: the results, kept until the flow ends,
// and the parsing state while inspection goes on.
type slot struct {
	st   *state    // TCP and QUIC parsing state, nil otherwise and once done
	pay  *payloads // first payloads, until the application is identified
	app  appid.Result
	used [2]uint8 // payload packets seen per direction (initiator, responder)
	udp  udpKind
	// parsed: the parsers are finished; done: inspection is; named: the
	// flow is TLS, QUIC, HTTP, DNS, DHCP or SSDP, identified by names.
	parsed, done, named bool
	// identified: identify ran with the flow's payloads (app holds its result).
	identified bool
	// synSeen marks the directions whose SYN was seen; isn holds the
	// sequence number of their first payload byte.
	synSeen [2]bool
	isn     [2]uint32
	// The flow's transport and ports, initiator first.
	proto        uint8
	cport, sport uint16
	res          result
}

// result is what inspection found; each protocol's struct exists only
// when the flow had that protocol, so most flows carry a few nil pointers.
type result struct {
	tls   *flow.TLS
	quic  *flow.QUIC
	dns   *flow.DNS
	dnsID uint16
	http  *flow.HTTP
	ssh   *flow.SSH
	dhcp  *flow.DHCP
	socks *flow.SOCKS
}

func (r *result) TLS(sp *spares) *flow.TLS {
	if r.tls == nil {
		r.tls = take(&sp.tls)
	}
	return r.tls
}

func (r *result) HTTP(sp *spares) *flow.HTTP {
	if r.http == nil {
		r.http = take(&sp.http)
	}
	return r.http
}

func (r *result) SSH() *flow.SSH {
	if r.ssh == nil {
		r.ssh = &flow.SSH{}
	}
	return r.ssh
}

func (r *result) DHCP() *flow.DHCP {
	if r.dhcp == nil {
		r.dhcp = &flow.DHCP{}
	}
	return r.dhcp
}

// spares holds the result structs of released flows for reuse by new ones:
// a record is only read until its emit returns (consumers that keep one
// clone it), so a steady capture allocates none for the common protocols.
// Reused structs keep their slices' capacity.
type spares struct {
	tls  []*flow.TLS
	quic []*flow.QUIC
	dns  []*flow.DNS
	http []*flow.HTTP
}

// take returns a zeroed struct from free, or a new one.
func take[T any](free *[]*T) *T {
	if n := len(*free); n > 0 {
		v := (*free)[n-1]
		*free = (*free)[:n-1]
		return v
	}
	return new(T)
}

// put clears a released flow's result structs and keeps them.
func (sp *spares) put(r *result) {
	if t := r.tls; t != nil {
		*t = flow.TLS{ALPN: t.ALPN[:0]}
		sp.tls = append(sp.tls, t)
	}
	if q := r.quic; q != nil {
		*q = flow.QUIC{}
		sp.quic = append(sp.quic, q)
	}
	if d := r.dns; d != nil {
		*d = flow.DNS{Queries: d.Queries[:0], Answers: d.Answers[:0]}
		sp.dns = append(sp.dns, d)
	}
	if h := r.http; h != nil {
		*h = flow.HTTP{}
		sp.http = append(sp.http, h)
	}
}

// proto is what a direction's parser is.
type proto uint8

const (
	pUnknown proto = iota // not decided yet
	pNone                 // nothing to learn here
	pTLS
	pHTTP
	pSSH
	pDNS
	pSOCKS
)

// state is the heavy per-flow parsing state, pooled.
type state struct {
	tcp    [2]stream
	parser [2]proto
	done   [2]bool
	skip   [2]int // where the parsed protocol starts in each stream (after a SOCKS or CONNECT handshake)
	socks  int    // SOCKS version of the client's handshake
	hello  tlsmeta.ClientHello
	server tlsmeta.ServerHello
	quic   quicmeta.Assembler
}

// serverUnexplained reports whether the server's first bytes are in no
// protocol the parsers know; a SOCKS request from the client may yet
// explain them as its reply.
func (st *state) serverUnexplained() bool { return st.parser[1] == pNone && st.skip[1] == 0 }

type udpKind uint8

const (
	udpUnknown udpKind = iota
	udpDNS
	udpDHCP4
	udpDHCP6
	udpQUIC
	udpSSDP
	udpNone
)

// Packet inspects one packet of the flow whose slot *s holds (None to let
// Packet open one). fromInitiator says which direction the packet went.
// It returns false once the flow needs no more packets.
func (in *Inspector) Packet(s *int32, fromInitiator bool, p *decode.Packet) bool {
	tcp := p.Key.Proto == flow.ProtoTCP
	if !tcp && p.Key.Proto != flow.ProtoUDP {
		return false
	}
	d := 1
	if fromInitiator {
		d = 0
	}
	syn := tcp && p.TCPFlags&flow.FlagSYN != 0
	if len(p.Payload) == 0 && !syn {
		return true
	}
	if *s == None {
		*s = in.open()
		sl := in.slot(*s)
		sl.proto, sl.cport, sl.sport = p.Key.Proto, p.Key.SrcPort, p.Key.DstPort
		if d == 1 {
			sl.cport, sl.sport = sl.sport, sl.cport
		}
	}
	sl := in.slot(*s)
	if sl.done {
		return false
	}
	if syn && sl.used[d] == 0 && (sl.st == nil || !sl.st.tcp[d].anchored) {
		// The SYN says where the direction's stream starts: its first
		// payload segment may be captured after a later one.
		sl.synSeen[d], sl.isn[d] = true, p.Seq+1
		if sl.st != nil {
			sl.st.tcp[d].expect(sl.isn[d])
		}
	}
	if len(p.Payload) == 0 {
		return true
	}
	wasNamed := sl.named
	if !sl.parsed {
		var more bool
		if tcp {
			more = in.tcpPacket(sl, d, p)
		} else {
			more = in.udpPacket(sl, d, p)
		}
		if !more {
			sl.parsed = true
			in.dropState(sl)
		}
		if !sl.named && in.protocolNamed(sl) { // its names identify it; payloads add nothing
			sl.named = true
		}
	}
	// Payloads are kept for identification after the parsers ran, so that
	// the packet that names a flow (a ClientHello, a DNS query) is not
	// copied only to be dropped.
	switch {
	case in.apps == nil || wasNamed:
	case !sl.named:
		in.keepPayload(sl, d, p.Payload)
	case sl.res.http != nil: // but tunnels that speak HTTP (DERP, SoftEther) show in the request
		in.keepPayload(sl, d, p.Payload)
		in.identify(sl)
	default:
		in.dropPayloads(sl)
	}
	sl.used[d]++
	// After the parsers, identification may still want the first two
	// payloads of each direction.
	wantPayload := sl.pay != nil && (sl.pay.n[0] < 2 || sl.pay.n[1] < 2)
	if int(sl.used[0])+int(sl.used[1]) >= 2*in.cfg.MaxPackets || sl.parsed && !wantPayload {
		sl.done = true
		in.dropState(sl)
		in.identify(sl)
		return false
	}
	return true
}

// state gives the slot parsing state, from the pool; nil when
// MaxInspecting flows hold state already.
func (in *Inspector) state(sl *slot) *state {
	if sl.st != nil {
		return sl.st
	}
	if in.active >= in.cfg.MaxInspecting {
		in.stats.Skipped++
		return nil
	}
	var st *state
	if n := len(in.pool); n > 0 {
		st = in.pool[n-1]
		in.pool = in.pool[:n-1]
	} else {
		st = &state{}
		// The parsers' Resets keep these shared caches.
		st.server.Certs = in.certs
		st.hello.Names = in.strs
		st.quic.Hello.Names = in.strs
	}
	for d := range st.tcp {
		st.tcp[d].reset(in.cfg.MaxStream)
		if sl.synSeen[d] {
			st.tcp[d].expect(sl.isn[d])
		}
	}
	st.parser, st.done, st.skip, st.socks = [2]proto{}, [2]bool{}, [2]int{}, 0
	st.hello.Reset()
	st.server.Reset()
	st.quic.Reset()
	in.active++
	sl.st = st
	return st
}

const slotChunk = 1024

func (in *Inspector) slot(i int32) *slot { return &in.slots[i/slotChunk][i%slotChunk] }

func (in *Inspector) open() int32 {
	var i int32
	if n := len(in.free); n > 0 {
		i = in.free[n-1]
		in.free = in.free[:n-1]
	} else {
		if in.nslots%slotChunk == 0 {
			in.slots = append(in.slots, make([]slot, slotChunk))
		}
		i = in.nslots
		in.nslots++
	}
	sl := in.slot(i)
	sl.used, sl.udp, sl.parsed, sl.done, sl.named, sl.identified, sl.st, sl.app = [2]uint8{}, udpUnknown, false, false, false, false, nil, appid.Result{}
	sl.synSeen = [2]bool{}
	sl.res = result{}
	return i
}

// dropState returns the parsing state to the pool; the results stay.
func (in *Inspector) dropState(sl *slot) {
	if sl.st != nil {
		in.pool = append(in.pool, sl.st)
		sl.st = nil
		in.active--
	}
}

// Release frees a flow's slot after its record has been emitted.
func (in *Inspector) Release(s int32) {
	if s == None {
		return
	}
	sl := in.slot(s)
	in.dropState(sl)
	in.dropPayloads(sl)
	in.spare.put(&sl.res)
	sl.res = result{}
	in.free = append(in.free, s)
}

func (in *Inspector) count(parser string, err error, sentinels ...error) {
	kind := "other"
	for _, e := range sentinels {
		if errors.Is(err, e) {
			kind = e.Error()
			break
		}
	}
	in.stats.Errors[parser+": "+kind]++
}

// ---- TCP ----

func (in *Inspector) tcpPacket(sl *slot, d int, p *decode.Packet) bool {
	st := in.state(sl)
	if st == nil {
		return false
	}
	s := &st.tcp[d]
	seq := p.Seq
	if p.TCPFlags&flow.FlagSYN != 0 {
		seq++ // TCP Fast Open data follows the SYN's own sequence number
	}
	if !st.done[d] && s.add(seq, p.Payload) {
		st.done[d] = in.parseTCP(sl, d, p)
	}
	if len(p.Payload) > 0 && int(sl.used[d])+1 >= in.cfg.MaxPackets {
		st.done[d] = true
	}
	// The stream may borrow p.Payload. A finished direction's bytes are
	// not parsed again, except a server's unexplained first bytes.
	if s.borrowed {
		if st.done[d] && !(d == 1 && st.serverUnexplained()) {
			s.forget()
		} else {
			s.settle()
		}
	}
	return !(st.done[0] && st.done[1])
}

// parseTCP runs the direction's parser over its reassembled bytes and
// reports whether the direction is finished.
func (in *Inspector) parseTCP(sl *slot, d int, p *decode.Packet) bool {
	st := sl.st
	b := st.tcp[d].buf[st.skip[d]:]
	if st.parser[d] == pUnknown {
		st.parser[d] = classifyTCP(b, d, p)
		if st.parser[d] == pNone && st.skip[d] == 0 && (d == 0 && isSOCKSStart(b) || d == 1 && st.socks != 0) {
			st.parser[d] = pSOCKS
		}
		if st.parser[d] == pNone && d == 1 && st.parser[0] == pSSH {
			st.parser[1] = pSSH // text lines before the server's identification (RFC 4253 4.2)
		}
	}
	switch st.parser[d] {
	case pSOCKS:
		if d == 0 {
			n, v, target, ok, needMore := socksRequest(b)
			if needMore {
				return false
			}
			if !ok {
				return true
			}
			st.socks, st.skip[0], st.parser[0] = v, n, pUnknown
			sl.res.socks = &flow.SOCKS{Version: v, Target: target}
			if st.serverUnexplained() { // the reply came first: measure it now
				st.parser[1] = pSOCKS
				st.done[1] = in.parseTCP(sl, 1, p)
			}
		} else {
			if st.socks == 0 {
				st.parser[1] = pNone
				return false // wait for the client's request to say which version
			}
			n, needMore := socksReply(b, st.socks)
			if needMore {
				return false
			}
			st.skip[1], st.parser[1] = n, pUnknown
		}
		return in.parseTCP(sl, d, p)
	case pTLS:
		if d == 0 {
			err := st.hello.ParseStream(b)
			if errors.Is(err, tlsmeta.ErrNeedMore) {
				return false
			}
			if err != nil {
				in.count("tls client", err, tlsmeta.ErrNotTLS, tlsmeta.ErrMalformed, tlsmeta.ErrTooLarge, tlsmeta.ErrUnexpectedMessage, tlsmeta.ErrAlert)
				return true
			}
			in.stats.ClientHellos++
			in.setClientHello(sl, &st.hello, tlsmeta.TCP)
			return true
		}
		err := st.server.ParseStream(b)
		if errors.Is(err, tlsmeta.ErrNeedMore) {
			if st.server.Parsed {
				in.setServerHello(sl, &st.server) // keep what is known if the certificate never completes
			}
			return false
		}
		if err != nil {
			in.count("tls server", err, tlsmeta.ErrNotTLS, tlsmeta.ErrMalformed, tlsmeta.ErrTooLarge, tlsmeta.ErrUnexpectedMessage, tlsmeta.ErrAlert)
			return true
		}
		in.stats.ServerHellos++
		in.setServerHello(sl, &st.server)
		return true
	case pHTTP:
		if d == 0 {
			err := httpmeta.ParseRequest(b, &in.httpReq)
			if errors.Is(err, httpmeta.ErrNeedMore) {
				return false
			}
			if err != nil {
				in.count("http request", err, httpmeta.ErrNotHTTP, httpmeta.ErrTooLong)
				// A header block past the bound (large cookies) still
				// gave the request line and the headers within it.
				if !errors.Is(err, httpmeta.ErrTooLong) || in.httpReq.Method == "" {
					return true
				}
			}
			in.stats.HTTPRequests++
			r := &in.httpReq
			if sl.res.http != nil {
				return true
			}
			h := sl.res.HTTP(&in.spare)
			h.Method, h.Path, h.UserAgent = r.Method, r.Path, r.UserAgent
			h.Host = r.Host
			if r.Port != 0 && (r.Method == "CONNECT" || r.Port != p.Key.DstPort && r.Port != p.Key.SrcPort) {
				h.Host = hostPort(r.Host, r.Port)
			}
			if r.Method == "CONNECT" && err == nil { // a proxy tunnel: what follows is the tunnelled protocol
				st.skip[0] += r.HeaderLen
				st.parser[0] = pUnknown
				return in.parseTCP(sl, 0, p)
			}
			return true
		}
		err := httpmeta.ParseResponse(b, &in.httpResp)
		if errors.Is(err, httpmeta.ErrNeedMore) {
			return false
		}
		if h := sl.res.HTTP(&in.spare); err == nil && h.Status == 0 {
			h.Status = in.httpResp.StatusCode
			if h.Method == "CONNECT" && in.httpResp.StatusCode/100 == 2 {
				if end := bytes.Index(b, []byte("\r\n\r\n")); end >= 0 {
					st.skip[1] += end + 4
					st.parser[1] = pUnknown
					return in.parseTCP(sl, 1, p)
				}
			}
		}
		return true
	case pSSH:
		_, err := sshmeta.Parse(b, &in.ident)
		if errors.Is(err, sshmeta.ErrNeedMore) {
			return false
		}
		if err != nil {
			in.count("ssh", err, sshmeta.ErrNotSSH, sshmeta.ErrMalformed)
			return true
		}
		in.stats.SSHBanners++
		id := in.ident.String()
		if d == 1 {
			sl.res.SSH().Server = id
			return true
		}
		sl.res.SSH().Client = id
		if st.serverUnexplained() { // the server's first bytes may be lines before its identification
			st.parser[1] = pSSH
			st.done[1] = in.parseTCP(sl, 1, p)
		}
		return true
	case pDNS:
		_, err := in.dnsParser.ParseTCP(b, &in.dnsMsg)
		if errors.Is(err, dnsmeta.ErrNeedMore) {
			return false
		}
		if err != nil {
			in.count("dns", err, dnsmeta.ErrTruncated, dnsmeta.ErrMalformed)
			return true
		}
		in.dnsMessage(sl, d, p)
		return d == 1 || sl.res.dns != nil && sl.res.dns.RCode != ""
	case pUnknown:
		return false // nothing after a tunnel handshake yet
	}
	return true
}

// hostPort joins an HTTP host and port, bracketing an IPv6 literal (which
// httpmeta returns without its brackets) so the port stays separable.
func hostPort(host string, port uint16) string {
	if strings.IndexByte(host, ':') >= 0 {
		return "[" + host + "]:" + strconv.Itoa(int(port))
	}
	return host + ":" + strconv.Itoa(int(port))
}

var httpMethods = [][]byte{[]byte("GET "), []byte("POST "), []byte("HEAD "), []byte("PUT "), []byte("DELETE "),
	[]byte("OPTIONS "), []byte("CONNECT "), []byte("PATCH "), []byte("TRACE ")}

// classifyTCP picks a parser from a direction's first bytes (ports only
// for DNS, which has no signature).
func classifyTCP(b []byte, d int, p *decode.Packet) proto {
	if len(b) == 0 {
		return pUnknown
	}
	switch {
	case b[0] == 0x16:
		return pTLS
	case bytes.HasPrefix(b, []byte("SSH-")) || len(b) < 4 && bytes.HasPrefix([]byte("SSH-"), b):
		return pSSH
	case p.Key.SrcPort == 53 || p.Key.DstPort == 53:
		return pDNS
	}
	if d == 0 {
		for _, m := range httpMethods {
			if bytes.HasPrefix(b, m) {
				return pHTTP
			}
		}
	} else if bytes.HasPrefix(b, []byte("HTTP/")) {
		return pHTTP
	}
	return pNone
}

// isSOCKSStart: a SOCKS4 CONNECT/BIND or a SOCKS5 greeting with 1-9
// methods.
func isSOCKSStart(b []byte) bool {
	return len(b) >= 2 && (b[0] == 4 && (b[1] == 1 || b[1] == 2) || b[0] == 5 && b[1] >= 1 && b[1] <= 9)
}

// ---- UDP ----

func (in *Inspector) udpPacket(sl *slot, d int, p *decode.Packet) bool {
	if sl.udp == udpUnknown {
		sl.udp = classifyUDP(p)
	}
	switch sl.udp {
	case udpDNS:
		if err := in.dnsParser.Parse(p.Payload, &in.dnsMsg); err != nil {
			in.count("dns", err, dnsmeta.ErrTruncated, dnsmeta.ErrMalformed)
			if in.dnsMsg.QName == "" {
				return true
			}
		}
		in.dnsMessage(sl, d, p)
		return true
	case udpDHCP4:
		if err := in.dhcp.ParseV4(p.Payload, &in.dhcpV4); err != nil {
			in.count("dhcp", err, dhcpmeta.ErrTruncated, dhcpmeta.ErrMalformed, dhcpmeta.ErrNotDHCP)
			return true
		}
		in.dhcpV4Message(sl, p)
		return true
	case udpDHCP6:
		if err := in.dhcp.ParseV6(p.Payload, &in.dhcpV6); err != nil {
			in.count("dhcp6", err, dhcpmeta.ErrTruncated, dhcpmeta.ErrMalformed, dhcpmeta.ErrNotDHCP)
			return true
		}
		in.dhcpV6Message(sl, p)
		return true
	case udpSSDP: // HTTP over UDP (SSDP M-SEARCH / NOTIFY)
		if err := httpmeta.ParseRequest(p.Payload, &in.httpReq); err == nil && sl.res.http == nil {
			r := &in.httpReq
			h := sl.res.HTTP(&in.spare)
			h.Method, h.Host, h.Path, h.UserAgent = r.Method, r.Host, r.Path, r.UserAgent
			if r.Port != 0 {
				h.Host = hostPort(r.Host, r.Port)
			}
		}
		return false
	case udpQUIC:
		st := in.state(sl)
		if st == nil {
			return false
		}
		if d != 0 || st.quic.Done() {
			return !st.quic.Done() && sl.used[0] < uint8(in.cfg.MaxPackets)
		}
		err := st.quic.AddDatagram(p.Payload)
		if errors.Is(err, quicmeta.ErrNeedMore) {
			return true
		}
		// Once an Initial has been read, a ClientHello spread over several
		// may still be completed by later datagrams: one that is not a
		// client Initial (the connection's 0-RTT or Handshake packets,
		// which are no error) or not a readable one is skipped.
		inHello := st.quic.Version != 0
		if inHello && (errors.Is(err, quicmeta.ErrNoInitial) || errors.Is(err, quicmeta.ErrNotQUIC)) {
			return true
		}
		if err != nil {
			in.count("quic", err, quicmeta.ErrNotQUIC, quicmeta.ErrNoInitial, quicmeta.ErrUnsupportedVersion,
				quicmeta.ErrMalformed, quicmeta.ErrDecrypt, quicmeta.ErrTooLarge, tlsmeta.ErrMalformed)
			return inHello && (errors.Is(err, quicmeta.ErrDecrypt) || errors.Is(err, quicmeta.ErrMalformed) ||
				errors.Is(err, quicmeta.ErrUnsupportedVersion))
		}
		in.stats.QUICInitials++
		in.setClientHello(sl, &st.quic.Hello, tlsmeta.QUIC)
		sl.res.quic = take(&in.spare.quic)
		sl.res.quic.Version = quicVersion(st.quic.Version)
		return false
	}
	return false
}

func classifyUDP(p *decode.Packet) udpKind {
	sp, dp := p.Key.SrcPort, p.Key.DstPort
	switch {
	case sp == 53 || dp == 53 || sp == 5353 || dp == 5353 || sp == 5355 || dp == 5355:
		return udpDNS
	case (sp == 67 || sp == 68) && (dp == 67 || dp == 68):
		return udpDHCP4
	case (sp == 546 || sp == 547) && (dp == 546 || dp == 547):
		return udpDHCP6
	case dp == 1900:
		return udpSSDP
	}
	// A QUIC long-header Initial: header form and fixed bits, then a
	// version the parser knows.
	b := p.Payload
	if len(b) >= 1200 && b[0]&0xc0 == 0xc0 {
		switch v := uint32(b[1])<<24 | uint32(b[2])<<16 | uint32(b[3])<<8 | uint32(b[4]); {
		case v == quicmeta.Version1, v >= 0xff00001d && v <= 0xff000020:
			return udpQUIC
		}
	}
	return udpNone
}

func quicVersion(v uint32) string {
	switch {
	case v == quicmeta.Version1:
		return "1"
	case v>>8 == 0xff0000:
		return "draft-" + strconv.Itoa(int(v&0xff))
	}
	return fmt.Sprintf("0x%08x", v)
}

// ---- DNS and DHCP ----

// maxQueries bounds the distinct names kept for one DNS flow.
const maxQueries = 8

func (in *Inspector) dnsMessage(sl *slot, d int, p *decode.Packet) {
	in.stats.DNSMessages++
	m := &in.dnsMsg
	r := &sl.res
	if r.dns == nil && m.QName != "" {
		r.dns = take(&in.spare.dns)
		r.dns.Query, r.dns.QType = m.QName, m.QType.String()
		r.dnsID = m.ID
	} else if r.dns != nil && m.QName != "" && m.QName != r.dns.Query && !slices.Contains(r.dns.Queries, m.QName) && len(r.dns.Queries) < maxQueries {
		if len(r.dns.Queries) == 0 {
			r.dns.Queries = append(r.dns.Queries, r.dns.Query)
		}
		r.dns.Queries = append(r.dns.Queries, m.QName)
	}
	if !m.Response {
		return
	}
	if r.dns != nil && m.ID == r.dnsID && r.dns.RCode == "" {
		r.dns.RCode = m.RCode.String()
		for _, a := range m.Answers {
			if a.Type == dnsmeta.TypeCNAME {
				r.dns.Answers = append(r.dns.Answers, a.Target)
			} else {
				in.text = a.Addr.AppendTo(in.text[:0])
				r.dns.Answers = append(r.dns.Answers, in.strs.Bytes(in.text))
			}
		}
	}
	// The response goes to the client that asked: its destination.
	in.cache.Add(p.Key.Dst.Netip(), p.Key.Src.Netip(), m, time.Unix(0, p.TS))
}

func (in *Inspector) dhcpV4Message(sl *slot, p *decode.Packet) {
	in.stats.DHCPMessages++
	m := &in.dhcpV4
	in.leases.AddV4(m, time.Unix(0, p.TS))
	r := sl.res.DHCP()
	if len(r.MsgTypes) < 16 {
		r.MsgTypes = append(r.MsgTypes, m.Type.String())
	}
	if len(m.ClientMAC) == 6 && r.ClientMAC.IsZero() {
		r.ClientMAC = flow.MAC(m.ClientMAC)
	}
	if m.RequestedAddr.IsValid() {
		r.RequestedIP = m.RequestedAddr.String()
	}
	if m.AssignedAddr.IsValid() && !m.AssignedAddr.IsUnspecified() {
		r.AssignedIP = m.AssignedAddr.String()
	}
	if m.Hostname != "" {
		r.Hostname = m.Hostname
	} else if m.FQDN != "" && r.Hostname == "" {
		r.Hostname = m.FQDN
	}
	if m.VendorClass != "" {
		r.VendorClass = m.VendorClass
	}
	if len(m.ClientID) > 0 && r.ClientID == "" {
		r.ClientID = hex.EncodeToString(m.ClientID)
	}
}

func (in *Inspector) dhcpV6Message(sl *slot, p *decode.Packet) {
	in.stats.DHCPMessages++
	m := &in.dhcpV6
	in.leases.AddV6(m, time.Unix(0, p.TS))
	r := sl.res.DHCP()
	if len(r.MsgTypes) < 16 {
		r.MsgTypes = append(r.MsgTypes, m.Type.String())
	}
	if len(m.ClientMAC) == 6 && r.ClientMAC.IsZero() {
		r.ClientMAC = flow.MAC(m.ClientMAC)
	}
	for _, a := range m.Addrs {
		r.AssignedIP = a.Addr.String()
	}
	if m.FQDN != "" {
		r.Hostname = m.FQDN
	}
	if m.VendorClass != "" {
		r.VendorClass = m.VendorClass
	}
	if len(m.ClientDUID) > 0 && r.ClientID == "" {
		r.ClientID = hex.EncodeToString(m.ClientDUID)
	}
}

// ---- TLS ----

func (in *Inspector) setClientHello(sl *slot, h *tlsmeta.ClientHello, t tlsmeta.Transport) {
	r := sl.res.TLS(&in.spare)
	r.SNI = h.ServerName
	r.ALPN = append(r.ALPN[:0], h.ALPN...)
	r.Version = tlsVersion(h.Version)
	fp := in.fp.get(h, t)
	r.JA3String, r.JA3, r.JA4 = fp.ja3String, fp.ja3, fp.ja4
}

func (in *Inspector) setServerHello(sl *slot, s *tlsmeta.ServerHello) {
	r := sl.res.TLS(&in.spare)
	r.ServerVer = tlsVersion(s.Version)
	r.Cipher = in.cipherName(s.CipherSuite)
	if c := s.Certificate; s.HasCertificate {
		r.CertSubject = dn(c.SubjectCN, c.SubjectO)
		r.CertIssuer = c.Issuer
	}
}

func cipherNames() map[uint16]string {
	m := map[uint16]string{}
	for _, list := range [][]*tls.CipherSuite{tls.CipherSuites(), tls.InsecureCipherSuites()} {
		for _, c := range list {
			m[c.ID] = c.Name
		}
	}
	return m
}

func (in *Inspector) cipherName(id uint16) string {
	if n, ok := in.ciphers[id]; ok {
		return n
	}
	return tls.CipherSuiteName(id) // "0x1234"
}

func dn(cn, o string) string {
	switch {
	case cn != "" && o != "":
		return "CN=" + cn + ", O=" + o
	case cn != "":
		return "CN=" + cn
	case o != "":
		return "O=" + o
	}
	return ""
}

func tlsVersion(v uint16) string {
	switch v {
	case 0:
		return ""
	case 0x0300:
		return "ssl3"
	case 0x0301:
		return "1.0"
	case 0x0302:
		return "1.1"
	case 0x0303:
		return "1.2"
	case 0x0304:
		return "1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

// ---- records ----

// Finish writes a flow's metadata into its record: the parsers' results,
// the destination's name (SNI, else HTTP Host, else an earlier DNS answer
// to this client) and the endpoints' DHCP hostnames. The record points into
// the slot until Release.
func (in *Inspector) Finish(s int32, r *flow.Record) {
	if s != None {
		res := &in.slot(s).res
		r.TLS, r.QUIC, r.DNS, r.HTTP, r.SSH, r.DHCP, r.SOCKS = res.tls, res.quic, res.dns, res.http, res.ssh, res.dhcp, res.socks
	}
	switch {
	case r.TLS != nil && r.TLS.SNI != "":
		r.Dst.Name, r.Dst.NameSource = r.TLS.SNI, "sni"
	case r.HTTP != nil && r.HTTP.Host != "" && r.HTTP.Method != "CONNECT":
		r.Dst.Name, r.Dst.NameSource = r.HTTP.Host, "http"
	default:
		if name, ok := in.cache.Lookup(r.Src.IP, r.Dst.IP, r.Start); ok {
			r.Dst.Name, r.Dst.NameSource = name, "dns"
		}
	}
	if l, ok := in.leases.Lookup(r.Src.IP, r.Start); ok {
		r.Src.Hostname = l.Hostname
	}
	if l, ok := in.leases.Lookup(r.Dst.IP, r.Start); ok {
		r.Dst.Hostname = l.Hostname
	}
	var sl *slot
	if s != None {
		sl = in.slot(s)
	}
	in.setApp(sl, r)
}

// Names returns the DNS cache, for lookups outside flow records.
func (in *Inspector) Names() *dnsmeta.Cache { return in.cache }

// Leases returns the DHCP lease table.
func (in *Inspector) Leases() *dhcpmeta.Table { return in.leases }
