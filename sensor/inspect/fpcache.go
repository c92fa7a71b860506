package inspect

import (
	"encoding/binary"

	"github.com/edgeward/edgeward/sensor/tlsmeta"
)

// fingerprints caches JA3 and JA4 by the exact ClientHello fields they are
// computed from. A network has few distinct TLS client stacks, so nearly
// every hello is a hit, which costs a key build and a map probe instead of
// two sorts, two SHA-256 and an MD5, and shares the strings instead of
// allocating them per flow. The key is the fields themselves, not a hash
// of them, so a hit is always exact.
type fingerprints struct {
	m         map[string]fingerprint
	key       []byte
	max       int
	hit, miss uint64
}

type fingerprint struct {
	ja3String, ja3, ja4 string
}

const fingerprintCacheSize = 4096

func (c *fingerprints) get(h *tlsmeta.ClientHello, t tlsmeta.Transport) fingerprint {
	if c.m == nil {
		c.m = make(map[string]fingerprint, 256)
		c.max = fingerprintCacheSize
	}
	k := c.key[:0]
	k = append(k, byte(t))
	k = binary.BigEndian.AppendUint16(k, h.LegacyVersion)
	k = appendList(k, h.SupportedVersions) // JA4's version is the highest non-GREASE one
	if h.ServerName != "" {                // JA4's d/i
		k = append(k, 'd')
	} else {
		k = append(k, 'i')
	}
	k = appendList(k, h.CipherSuites)
	k = appendList(k, h.Extensions)
	k = appendList(k, h.SupportedGroups)
	k = appendList(k, h.SignatureAlgorithms)
	k = append(k, byte(len(h.ECPointFormats)))
	k = append(k, h.ECPointFormats...)
	if len(h.ALPN) > 0 { // JA4 uses the first ALPN value's first and last characters
		k = append(k, byte(len(h.ALPN[0])))
		k = append(k, h.ALPN[0]...)
	}
	c.key = k
	if fp, ok := c.m[string(k)]; ok {
		c.hit++
		return fp
	}
	c.miss++
	fp := fingerprint{ja3String: h.JA3(), ja3: h.JA3Hash(), ja4: h.JA4(t)}
	if len(c.m) >= c.max {
		for old := range c.m { // drop an arbitrary entry
			delete(c.m, old)
			break
		}
	}
	c.m[string(k)] = fp
	return fp
}

// appendList appends a list without its GREASE values, which JA3 and JA4
// ignore and which browsers randomise per connection.
func appendList(k []byte, l []uint16) []byte {
	n := len(k)
	k = append(k, 0, 0)
	c := 0
	for _, v := range l {
		if !tlsmeta.IsGREASE(v) {
			k = binary.BigEndian.AppendUint16(k, v)
			c++
		}
	}
	binary.BigEndian.PutUint16(k[n:], uint16(c))
	return k
}
