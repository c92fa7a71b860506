package synth

import (
	"bufio"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Format selects the capture file format.
type Format uint8

// Capture formats.
const (
	PCAPNano  Format = iota // classic pcap, nanosecond timestamps
	PCAPMicro               // classic pcap, microsecond timestamps
	PCAPNG
)

// Options tune Render. The zero value writes nanosecond pcap.
type Options struct {
	// Seed varies everything the flow specs leave open: sequence numbers,
	// client randoms, connection IDs, timing jitter.
	Seed   uint64
	Format Format
	// Cutoff, when positive, stores at most the first Cutoff payload bytes
	// of each direction of a flow, as a recorder with a per-connection
	// cutoff (the Time Machine's) does: later frames keep their headers
	// but not their payload, and the pcap record keeps their original
	// length. Sensors read what they need from the first packets, and
	// bulk transfers cost little disk.
	Cutoff int
}

// Stats summarizes what Render wrote.
type Stats struct {
	Flows       int
	Packets     int
	FrameBytes  int64 // bytes of Ethernet frames as stored (after Cutoff), excluding file headers
	First, Last time.Time
}

// Errors Render returns.
var (
	ErrUnordered = errors.New("flows not in start order")
	ErrBadFlow   = errors.New("invalid flow")
)

// maxSegment bounds any single payload we emit; it sizes the noise block.
const maxSegment = 9000

// SortByStart orders flows by Start, keeping the order of equal starts.
func SortByStart(flows []Flow) {
	slices.SortStableFunc(flows, func(a, b Flow) int { return a.Start.Compare(b.Start) })
}

// Render writes the packets of flows, which must come in non-decreasing Start
// order, to pcap in global timestamp order, and one JSON truth record per
// flow to truth (which may be nil). Flows overlap in time; a min-heap keyed
// by each active flow's next packet merges them, so memory grows with the
// number of concurrently active flows, not with the total.
func Render(flows iter.Seq[Flow], pcap io.Writer, truth io.Writer, opt Options) (Stats, error) {
	r := newRenderer(opt)
	bw := bufio.NewWriterSize(pcap, 1<<20)
	var write func(gopacket.CaptureInfo, []byte) error
	var flush func() error
	switch opt.Format {
	case PCAPNG:
		ng, err := pcapgo.NewNgWriterInterface(bw, pcapgo.NgInterface{
			Name: "synth0", LinkType: layers.LinkTypeEthernet, TimestampResolution: 9,
		}, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "edgeward synth"}})
		if err != nil {
			return Stats{}, fmt.Errorf("writing pcapng header: %w", err)
		}
		write, flush = ng.WritePacket, func() error {
			if err := ng.Flush(); err != nil {
				return err
			}
			return bw.Flush()
		}
	default:
		w := pcapgo.NewWriterNanos(bw)
		if opt.Format == PCAPMicro {
			w = pcapgo.NewWriter(bw)
		}
		if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
			return Stats{}, fmt.Errorf("writing pcap header: %w", err)
		}
		write, flush = w.WritePacket, bw.Flush
	}
	var tw *truthWriter
	if truth != nil {
		tw = newTruthWriter(truth)
	}

	emit := func() error {
		fs := r.active.top()
		p := &fs.pkts[fs.next]
		frame := r.frame(fs, p)
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, p.at), CaptureLength: len(frame), Length: len(frame)}
		if opt.Cutoff > 0 && p.n > 0 {
			if keep := max(opt.Cutoff-int(p.off), 0); keep < int(p.n) {
				frame = frame[:len(frame)-int(p.n)+keep]
				ci.CaptureLength = len(frame)
			}
		}
		if err := write(ci, frame); err != nil {
			return fmt.Errorf("writing packet %d: %w", r.stats.Packets+1, err)
		}
		if r.stats.Packets == 0 {
			r.stats.First = ci.Timestamp
		}
		r.stats.Last = ci.Timestamp
		r.stats.Packets++
		r.stats.FrameBytes += int64(len(frame))
		fs.next++
		if fs.next < len(fs.pkts) {
			r.active.fix()
			return nil
		}
		r.active.pop()
		if err := fs.checkTally(); err != nil {
			return err
		}
		r.release(fs)
		return nil
	}

	var prev time.Time
	n := 0
	for f := range flows {
		n++
		if f.Start.Before(prev) {
			return r.stats, fmt.Errorf("flow %d starts at %s, before the previous flow at %s; sort with SortByStart: %w",
				n, f.Start.Format(time.RFC3339Nano), prev.Format(time.RFC3339Nano), ErrUnordered)
		}
		prev = f.Start
		start := f.Start.UnixNano()
		for r.active.len() > 0 && r.active.top().pkts[r.active.top().next].at < start {
			if err := emit(); err != nil {
				return r.stats, err
			}
		}
		fs, err := r.activate(&f, n)
		if err != nil {
			return r.stats, fmt.Errorf("flow %d (%s %s -> %s): %w", n, f.Kind, f.Client, f.Server, err)
		}
		if tw != nil {
			if err := tw.write(&fs.truth); err != nil {
				return r.stats, fmt.Errorf("writing truth for flow %d: %w", n, err)
			}
		}
		r.stats.Flows++
		if len(fs.pkts) == 0 {
			r.release(fs)
			continue
		}
		r.active.push(fs)
	}
	for r.active.len() > 0 {
		if err := emit(); err != nil {
			return r.stats, err
		}
	}
	if err := flush(); err != nil {
		return r.stats, fmt.Errorf("flushing pcap: %w", err)
	}
	if tw != nil {
		if err := tw.flush(); err != nil {
			return r.stats, fmt.Errorf("flushing truth: %w", err)
		}
	}
	return r.stats, nil
}

// renderer holds the buffers reused across flows and packets.
type renderer struct {
	seed   uint64
	pcg    rand.PCG
	rng    *rand.Rand
	noise  []byte            // pseudo-random payload source, 2x maxSegment wrap
	buf    []byte            // frame under construction
	cert   []byte            // DER certificate TLS 1.2 servers present by default
	certs  map[string][]byte // DER certificates of CertSpecs, by certKey
	free   []*flowState
	active flowHeap
	stats  Stats
}

func newRenderer(opt Options) *renderer {
	r := &renderer{seed: opt.Seed, buf: make([]byte, 0, maxSegment+128)}
	r.rng = rand.New(&r.pcg)
	r.pcg.Seed(opt.Seed, 0x6e6f697365) // "noise"
	const noiseLen = 1 << 16
	r.noise = appendRandom(make([]byte, 0, noiseLen+maxSegment), r.rng, noiseLen)
	r.noise = append(r.noise, r.noise[:maxSegment]...)
	r.cert = serverCertificate()
	r.certs = map[string][]byte{}
	return r
}

// serverCertificate builds one self-signed Ed25519 certificate. Ed25519
// signatures are deterministic, so the DER is the same on every run.
func serverCertificate() []byte {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "synth.invalid", Organization: []string{"edgeward synth"}},
		DNSNames:     []string{"synth.invalid"},
		NotBefore:    time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2034, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, key.Public(), key)
	if err != nil {
		// Only reachable if crypto/x509 rejects a fixed, valid template.
		panic(fmt.Sprintf("synth: building certificate: %v", err))
	}
	return der
}

// certFor returns the DER certificate a flow's server presents, building
// each distinct CertSpec once.
func (r *renderer) certFor(c *CertSpec) ([]byte, error) {
	if c == nil {
		return r.cert, nil
	}
	k := certKey(c)
	if der, ok := r.certs[k]; ok {
		return der, nil
	}
	der, err := buildCertificate(c)
	if err != nil {
		return nil, err
	}
	r.certs[k] = der
	return der, nil
}

func certKey(c *CertSpec) string {
	return strings.Join(append([]string{c.CommonName, c.Organization, c.IssuerCommonName, c.IssuerOrganization}, c.DNSNames...), "\x00")
}

// buildCertificate signs a certificate for c with Ed25519 keys derived
// from the subject's and the issuer's names.
func buildCertificate(c *CertSpec) ([]byte, error) {
	keyOf := func(name pkix.Name) ed25519.PrivateKey {
		seed := sha256.Sum256([]byte("edgeward synth key\x00" + name.String()))
		return ed25519.NewKeyFromSeed(seed[:])
	}
	subject := pkix.Name{CommonName: c.CommonName}
	if c.Organization != "" {
		subject.Organization = []string{c.Organization}
	}
	serial := sha256.Sum256([]byte(certKey(c)))
	leaf := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(serial[:16]),
		Subject:      subject,
		DNSNames:     c.DNSNames,
		NotBefore:    time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2034, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafKey := keyOf(subject)
	parent, signer := leaf, leafKey
	if c.IssuerCommonName != "" || c.IssuerOrganization != "" {
		issuer := pkix.Name{CommonName: c.IssuerCommonName}
		if c.IssuerOrganization != "" {
			issuer.Organization = []string{c.IssuerOrganization}
		}
		signer = keyOf(issuer)
		parent = &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: issuer, PublicKey: signer.Public(),
			NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter,
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		}
	}
	der, err := x509.CreateCertificate(nil, leaf, parent, leafKey.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("building certificate for %q: %v: %w", c.CommonName, err, ErrBadFlow)
	}
	return der, nil
}

func (r *renderer) release(fs *flowState) {
	fs.reset()
	r.free = append(r.free, fs)
}

// activate scripts a flow's packets and computes its truth record.
func (r *renderer) activate(f *Flow, ordinal int) (*flowState, error) {
	var fs *flowState
	if n := len(r.free); n > 0 {
		fs, r.free = r.free[n-1], r.free[:n-1]
	} else {
		fs = &flowState{}
	}
	if err := fs.init(f); err != nil {
		r.release(fs)
		return nil, err
	}
	// Per-flow randomness depends on the render seed and the flow's
	// position only, so output is a pure function of the inputs.
	fs.ordinal = ordinal
	r.pcg.Seed(r.seed^0x9e3779b97f4a7c15, uint64(ordinal))
	fs.rng = r.rng
	fs.salt = r.rng.IntN(1 << 16)
	var err error
	switch f.Kind {
	case TCPGeneric, HTTP, TLS:
		var cert []byte
		if cert, err = r.certFor(f.Cert); err == nil {
			err = fs.scriptTCP(cert)
		}
	case QUIC:
		err = fs.scriptQUIC()
	case DNS:
		err = fs.scriptDNS()
	case UDPGeneric:
		fs.scriptUDP()
	case ICMPEcho:
		fs.scriptICMP()
	case DHCP:
		err = fs.scriptDHCP()
	default:
		err = fmt.Errorf("unknown kind %d: %w", f.Kind, ErrBadFlow)
	}
	fs.rng = nil
	if err != nil {
		r.release(fs)
		return nil, err
	}
	slices.SortStableFunc(fs.pkts, func(a, b pkt) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return 0
	})
	fs.fillTruth()
	return fs, nil
}

// flowHeap is a min-heap of active flows by next packet time, then by
// ordinal, so ties break deterministically.
type flowHeap struct{ h []*flowState }

func (h *flowHeap) len() int        { return len(h.h) }
func (h *flowHeap) top() *flowState { return h.h[0] }
func (h *flowHeap) less(i, j int) bool {
	a, b := h.h[i], h.h[j]
	ta, tb := a.pkts[a.next].at, b.pkts[b.next].at
	if ta != tb {
		return ta < tb
	}
	return a.ordinal < b.ordinal
}

func (h *flowHeap) push(fs *flowState) {
	h.h = append(h.h, fs)
	i := len(h.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h.h[i], h.h[p] = h.h[p], h.h[i]
		i = p
	}
}

func (h *flowHeap) pop() {
	n := len(h.h) - 1
	h.h[0] = h.h[n]
	h.h[n] = nil
	h.h = h.h[:n]
	if n > 0 {
		h.fix()
	}
}

// fix restores the heap after the top's key grew.
func (h *flowHeap) fix() {
	i, n := 0, len(h.h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.h[i], h.h[m] = h.h[m], h.h[i]
		i = m
	}
}
