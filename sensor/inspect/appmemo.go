package inspect

import (
	"encoding/binary"

	"github.com/edgeward/edgeward/sensor/appid"
)

// nameApps caches what the names of a flow (certificate, ALPN, SNI, HTTP
// Host, DNS name) identify, for the identification at export, which most
// flows reach without payloads. Without payloads, Identify's answer is the
// names' answer if they give one, else the port's (appid's order of
// evidence); a network has few distinct names, so nearly every flow is a
// hit, a key build and a map probe instead of a suffix walk through the
// domain list per name. The key is the names themselves, so a hit is
// exact.
type nameApps struct {
	m   map[string]appid.Result
	key []byte
}

const nameAppsSize = 4096

// identifyLate is apps.Identify(q) for q without payloads. A flow without
// names (DNS, DHCP, most plain flows) skips byNames, which could only find
// nothing.
func (in *Inspector) identifyLate(q *appid.Input) appid.Result {
	if q.HasNames() {
		if r := in.byNames(q); r.App != "" {
			return r
		}
	}
	p := appid.Input{Proto: q.Proto, ClientPort: q.ClientPort, ServerPort: q.ServerPort, QUIC: q.QUIC}
	return in.apps.Identify(&p)
}

// byNames returns what q's names alone identify: Identify of q without its
// ports (port 0 names no application).
func (in *Inspector) byNames(q *appid.Input) appid.Result {
	c := &in.nameApps
	if c.m == nil {
		c.m = make(map[string]appid.Result, 256)
	}
	k := append(c.key[:0], q.Proto, 0)
	if q.QUIC {
		k[1] = 1
	}
	for _, s := range [...]string{q.SNI, q.CertSubject, q.CertIssuer, q.HTTPHost, q.DNSName} {
		k = binary.AppendUvarint(k, uint64(len(s)))
		k = append(k, s...)
	}
	k = binary.AppendUvarint(k, uint64(len(q.ALPN)))
	for _, s := range q.ALPN {
		k = binary.AppendUvarint(k, uint64(len(s)))
		k = append(k, s...)
	}
	c.key = k
	if r, ok := c.m[string(k)]; ok {
		return r
	}
	n := *q
	n.ClientPort, n.ServerPort = 0, 0
	n.ClientFirst, n.ClientSecond, n.ServerFirst, n.ServerSecond = nil, nil, nil, nil
	r := in.apps.Identify(&n)
	if len(c.m) >= nameAppsSize {
		for old := range c.m { // drop an arbitrary entry
			delete(c.m, old)
			break
		}
	}
	c.m[string(k)] = r
	return r
}
