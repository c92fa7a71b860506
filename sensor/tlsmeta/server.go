package tlsmeta

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// maxServerStream bounds how far into the server's stream the parser waits
// for a Certificate message before giving up on it.
const maxServerStream = MaxHandshakeLen + 8<<10

// helloRetryRandom is the ServerHello.random of a HelloRetryRequest
// (RFC 8446 section 4.1.3).
var helloRetryRandom = []byte{
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
}

// CertInfo names the first (leaf) certificate a TLS 1.2 or older server sent.
type CertInfo struct {
	SubjectCN string
	SubjectO  string // first organization, "" if none
	Issuer    string // RFC 2253 form, as crypto/x509 prints it
}

// ServerHello holds the metadata of the server's first flight. The zero
// value is ready to use; reuse one value per goroutine.
type ServerHello struct {
	// Parsed reports that the ServerHello fields below are valid. It can be
	// true while ParseStream still returns ErrNeedMore for the certificate.
	Parsed            bool
	LegacyVersion     uint16
	Version           uint16 // supported_versions if present, else LegacyVersion
	CipherSuite       uint16
	Extensions        []uint16
	HelloRetryRequest bool
	// HasCertificate reports that Certificate holds the leaf certificate's
	// names. Only TLS 1.2 and older send certificates in clear.
	HasCertificate bool
	Certificate    CertInfo
	// Certs, when set, caches certificate names across flows; Reset keeps it.
	Certs *CertCache

	rd      handshakeReader
	pending []byte // the available start of an incomplete Certificate message
}

// Reset clears the parsed fields, keeping allocated capacity.
func (s *ServerHello) Reset() {
	ext := s.Extensions[:0]
	rd := s.rd
	*s = ServerHello{Extensions: ext, rd: rd, Certs: s.Certs, pending: s.pending[:0]}
}

// ParseStream parses the server-to-client bytes of a TCP stream from its
// first byte: the ServerHello and, for TLS 1.2 and older, the first
// certificate of the Certificate message if one follows.
//
// It returns nil once nothing more is to be learned, ErrNeedMore while the
// ServerHello or the first certificate is incomplete (Parsed tells which),
// and another sentinel error for garbage. The first certificate is named
// as soon as it is complete, whatever the length of the chain after it. A
// Certificate message that is malformed, too large, or whose first
// certificate is not complete within the first ~72 KiB of the stream is
// skipped, not reported as an error. stream is not retained.
func (s *ServerHello) ParseStream(stream []byte) error {
	s.Reset()
	s.rd.reset(stream)
	defer func() { s.rd.stream, s.rd.rec = nil, nil }()
	msg, err := s.rd.next()
	if err != nil {
		if err == errEndOfHandshake {
			return ErrMalformed
		}
		return err
	}
	if msg[0] != typeServerHello {
		return ErrUnexpectedMessage
	}
	if err := s.parseHello(cryptobyte.String(msg[4:])); err != nil {
		s.Reset()
		return err
	}
	s.Parsed = true
	if s.Version > 0x0303 || s.HelloRetryRequest {
		// TLS 1.3 (and its drafts) encrypt everything after the ServerHello.
		return nil
	}
	pos, rec := s.rd.pos, s.rd.rec
	msg, err = s.rd.next()
	switch {
	case err == ErrNeedMore:
		// The leaf comes first in the Certificate message: a long chain
		// need not fit in what the caller keeps of the stream.
		s.rd.pos, s.rd.rec = pos, rec
		s.pending = s.rd.available(s.pending[:0])
		if len(s.pending) >= 4 && (s.pending[0] != typeCertificate || s.nameLeaf(s.pending[4:])) {
			return nil
		}
		if len(stream) > maxServerStream {
			return nil
		}
		return ErrNeedMore
	case err != nil:
		// Garbage or a ChangeCipherSpec (abbreviated handshake) after a
		// valid ServerHello: no certificate to be had.
		return nil
	case msg[0] != typeCertificate:
		return nil
	}
	s.nameLeaf(msg[4:])
	return nil
}

// nameLeaf names the first certificate of a Certificate message body,
// which may be cut short after it. It reports whether that certificate was
// complete.
func (s *ServerHello) nameLeaf(body cryptobyte.String) bool {
	var der cryptobyte.String
	if !body.Skip(3) || !body.ReadUint24LengthPrefixed(&der) { // certificate_list length, then the leaf
		return false
	}
	if c := s.Certs; c != nil {
		if ci, ok := c.m[string(der)]; ok {
			c.Hits++
			s.Certificate, s.HasCertificate = ci, true
			return true
		}
	}
	s.HasCertificate = parseCertNames(der, &s.Certificate)
	if c := s.Certs; c != nil && s.HasCertificate {
		c.add(string(der), s.Certificate)
	}
	return true
}

// CertCache remembers the names of server certificates by their exact DER
// bytes, so flows to the same servers skip the ASN.1 decoding. A
// ServerHello uses it when its Certs field is set. Not safe for concurrent
// use.
type CertCache struct {
	m    map[string]CertInfo
	max  int
	Hits uint64
}

// NewCertCache returns a cache holding up to n certificates.
func NewCertCache(n int) *CertCache {
	return &CertCache{m: make(map[string]CertInfo, min(n, 1024)), max: n}
}

func (c *CertCache) add(der string, ci CertInfo) {
	if len(c.m) >= c.max {
		for k := range c.m { // drop an arbitrary entry
			delete(c.m, k)
			break
		}
	}
	c.m[der] = ci
}

func (s *ServerHello) parseHello(b cryptobyte.String) error {
	var random, sessionID cryptobyte.String
	var compression uint8
	if !b.ReadUint16(&s.LegacyVersion) ||
		!b.ReadBytes((*[]byte)(&random), 32) ||
		!b.ReadUint8LengthPrefixed(&sessionID) ||
		!b.ReadUint16(&s.CipherSuite) ||
		!b.ReadUint8(&compression) {
		return ErrMalformed
	}
	s.Version = s.LegacyVersion
	s.HelloRetryRequest = bytes.Equal(random, helloRetryRandom)
	if b.Empty() {
		return nil
	}
	var exts cryptobyte.String
	if !b.ReadUint16LengthPrefixed(&exts) {
		return ErrMalformed
	}
	for !exts.Empty() {
		var typ uint16
		var body cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&body) {
			return ErrMalformed
		}
		s.Extensions = append(s.Extensions, typ)
		var v uint16
		if typ == extSupportedVersions && body.ReadUint16(&v) && body.Empty() {
			s.Version = v
		}
	}
	return nil
}

// parseCertNames extracts the names of a DER certificate (the first of a
// TLS 1.2 Certificate message). Only the subject and issuer are decoded:
// a full x509.ParseCertificate costs more and rejects certificates that are
// still worth naming.
func parseCertNames(der cryptobyte.String, ci *CertInfo) bool {
	var cert, tbs, issuer, subject cryptobyte.String
	if !der.ReadASN1(&cert, cbasn1.SEQUENCE) ||
		!cert.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.SkipASN1(cbasn1.INTEGER) || // serialNumber
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // signature
		!tbs.ReadASN1Element(&issuer, cbasn1.SEQUENCE) ||
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // validity
		!tbs.ReadASN1Element(&subject, cbasn1.SEQUENCE) {
		return false
	}
	var iss, sub pkix.Name
	if !parseName(issuer, &iss) || !parseName(subject, &sub) {
		return false
	}
	ci.SubjectCN = sub.CommonName
	if len(sub.Organization) > 0 {
		ci.SubjectO = sub.Organization[0]
	}
	ci.Issuer = iss.String()
	return true
}

func parseName(der []byte, n *pkix.Name) bool {
	var rdns pkix.RDNSequence
	rest, err := asn1.Unmarshal(der, &rdns)
	if err != nil || len(rest) != 0 {
		return false
	}
	n.FillFromRDNSequence(&rdns)
	return true
}
