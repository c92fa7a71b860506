package inspect

import (
	"strings"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/appid"
)

// payloads keeps the first two payloads of each direction (clipped to
// appid.MaxPayload) until the flow's application is identified; pooled.
type payloads struct {
	p [2][2][]byte // [direction][first, second]
	n [2]uint8
}

func (in *Inspector) keepPayload(sl *slot, d int, b []byte) {
	if sl.pay == nil {
		if n := len(in.payPool); n > 0 {
			sl.pay = in.payPool[n-1]
			in.payPool = in.payPool[:n-1]
		} else {
			sl.pay = &payloads{}
		}
		pay := sl.pay
		for i := range pay.p {
			pay.p[i][0], pay.p[i][1] = pay.p[i][0][:0], pay.p[i][1][:0]
		}
		pay.n = [2]uint8{}
	}
	pay := sl.pay
	if pay.n[d] >= 2 {
		return
	}
	pay.p[d][pay.n[d]] = append(pay.p[d][pay.n[d]][:0], b[:min(len(b), appid.MaxPayload)]...)
	pay.n[d]++
}

// identify names the flow's application from its payloads and what the
// parsers found, then returns the payloads to the pool.
func (in *Inspector) identify(sl *slot) {
	if sl.pay == nil || in.apps == nil {
		return
	}
	pay := sl.pay
	q := &in.appIn
	*q = appid.Input{Proto: sl.proto, ClientPort: sl.cport, ServerPort: sl.sport,
		ClientFirst: pay.p[0][0], ClientSecond: pay.p[0][1], ServerFirst: pay.p[1][0], ServerSecond: pay.p[1][1]}
	in.names(q, &sl.res)
	sl.app = in.apps.Identify(q)
	sl.identified = true
	in.dropPayloads(sl)
}

func (in *Inspector) dropPayloads(sl *slot) {
	if sl.pay != nil {
		in.payPool = append(in.payPool, sl.pay)
		sl.pay = nil
	}
}

// protocolNamed reports a flow whose protocol the parsers recognised as
// one identified by its names (SNI, ALPN, certificate, Host) rather than
// by payload signatures.
func (in *Inspector) protocolNamed(sl *slot) bool {
	if sl.res.socks != nil || sl.res.http != nil && sl.res.http.Method == "CONNECT" {
		return false // a proxy: the payload signatures name it
	}
	switch sl.udp {
	case udpDNS, udpDHCP4, udpDHCP6, udpSSDP, udpQUIC:
		return true
	}
	if st := sl.st; st != nil {
		return st.parser[0] == pTLS || st.parser[0] == pHTTP && sl.res.http != nil && sl.res.http.Method != "CONNECT" || st.parser[0] == pDNS
	}
	return sl.res.tls != nil || sl.res.dns != nil || sl.res.http != nil && sl.res.http.Method != "CONNECT"
}

// names fills the name evidence the parsers found.
func (in *Inspector) names(q *appid.Input, res *result) {
	if t := res.tls; t != nil {
		q.SNI, q.ALPN, q.CertSubject, q.CertIssuer = t.SNI, t.ALPN, t.CertSubject, t.CertIssuer
	}
	if h := res.http; h != nil && h.Method != "CONNECT" {
		q.HTTPHost = h.Host
	}
	q.QUIC = res.quic != nil
}

// strong reports evidence that a name from DNS or a port cannot beat.
func strong(s appid.Source) bool {
	return s == appid.SourcePayload || s == appid.SourceCert || s == appid.SourceALPN || s == appid.SourceSNI || s == appid.SourceHTTP
}

// setApp identifies a flow at export: the early result when its evidence is
// strong, else the names and ports the record carries (a DNS-derived
// destination name, the port as the weakest hint).
func (in *Inspector) setApp(sl *slot, r *flow.Record) {
	if in.apps == nil {
		return
	}
	var res appid.Result
	early := false
	if sl != nil {
		if sl.pay != nil {
			in.identify(sl)
		}
		res, early = sl.app, sl.identified
	}
	// Payload signatures read a connection's first bytes; a TCP record
	// that did not see the handshake (a flow continuing after a timeout, or
	// one the capture joined midway) starts anywhere in the stream.
	if res.Source == appid.SourcePayload && r.TCP != nil && !strings.ContainsAny(r.TCP.History, "SHsh") {
		res, early = appid.Result{}, false
	}
	dnsName := ""
	if r.Dst.NameSource == "dns" {
		dnsName = r.Dst.Name
	}
	// A DNS-derived name is known only now: it may still refine a generic
	// tunnel protocol or outweigh a fully-encrypted first packet. Without
	// one, a weak result of identification with the payloads stands:
	// Identify would weigh the same names and ports again.
	refine := res.Source == appid.SourcePayload && dnsName != ""
	if !strong(res.Source) && !(early && dnsName == "") || refine {
		q := &in.appIn
		*q = appid.Input{ClientPort: r.Src.Port, ServerPort: r.Dst.Port, DNSName: dnsName}
		q.Proto, _ = flow.ProtoNumber(r.Proto)
		if sl != nil {
			in.names(q, &sl.res)
		}
		if refine {
			res = in.apps.Refine(res, q)
		} else if late := in.identifyLate(q); late.App != "" && (res.App == "" || late.Source != appid.SourcePort) {
			res = late
		}
	}
	r.App, r.AppSource, r.AppCategory = res.App, string(res.Source), res.Category
}
