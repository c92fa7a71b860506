package synth

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// Truth is the ground truth for one flow, one JSON object per line. Src is
// always the client (initiator); for DHCP, whose server answers to the
// broadcast address, Dst is where the client sent (255.255.255.255:67). Bytes are IP-layer bytes (IP header and
// payload, no Ethernet or VLAN). Flags are the OR of TCP flags per
// direction (FIN=1 SYN=2 RST=4 PSH=8 ACK=16). TLS fields hold what the
// client offered; JA3 is computed from the spec, not parsed from packets.
type Truth struct {
	TS          time.Time  `json:"ts"`
	End         time.Time  `json:"end"`
	Proto       string     `json:"proto"`
	Src         netip.Addr `json:"src"`
	Sport       uint16     `json:"sport"`
	Dst         netip.Addr `json:"dst"`
	Dport       uint16     `json:"dport"`
	PktsC2S     uint64     `json:"pkts_c2s"`
	BytesC2S    uint64     `json:"bytes_c2s"`
	PktsS2C     uint64     `json:"pkts_s2c"`
	BytesS2C    uint64     `json:"bytes_s2c"`
	FlagsC2S    uint8      `json:"flags_c2s"`
	FlagsS2C    uint8      `json:"flags_s2c"`
	Kind        string     `json:"kind"`
	SNI         string     `json:"sni,omitempty"`
	ALPN        []string   `json:"alpn,omitempty"`
	JA3String   string     `json:"ja3_string,omitempty"`
	JA3         string     `json:"ja3,omitempty"`
	DNSQName    string     `json:"dns_qname,omitempty"`
	DNSQType    uint16     `json:"dns_qtype,omitempty"`
	DNSRCode    uint8      `json:"dns_rcode,omitempty"` // written for every DNS flow, even when 0
	HTTPHost    string     `json:"http_host,omitempty"`
	QUICVersion uint32     `json:"quic_version,omitempty"`
	VLAN        []uint16   `json:"vlan,omitempty"`
}

// ErrTallyMismatch means the packets written disagree with the truth
// computed from the script: a bug in this package.
var ErrTallyMismatch = errors.New("emitted packets disagree with truth")

// fillTruth derives the truth record from the scripted packets, using the
// same length function the frame builder uses.
func (fs *flowState) fillTruth() {
	f := &fs.flow
	t := Truth{
		TS:    f.Start.UTC(),
		End:   f.Start.UTC(),
		Proto: fs.proto.String(),
		Src:   fs.ends[c2s].src.Addr(), Sport: fs.ends[c2s].src.Port(),
		Dst: fs.ends[c2s].dst.Addr(), Dport: fs.ends[c2s].dst.Port(),
		Kind: f.Kind.String(),
		VLAN: f.VLAN,
	}
	if fs.proto == ICMP {
		t.Sport, t.Dport = 0, 0
	}
	for i := range fs.pkts {
		p := &fs.pkts[i]
		n := uint64(fs.ipLen(p))
		if p.dir == c2s {
			t.PktsC2S++
			t.BytesC2S += n
			t.FlagsC2S |= p.flags
		} else {
			t.PktsS2C++
			t.BytesS2C += n
			t.FlagsS2C |= p.flags
		}
	}
	if len(fs.pkts) > 0 {
		t.TS = time.Unix(0, fs.pkts[0].at).UTC()
		t.End = time.Unix(0, fs.pkts[len(fs.pkts)-1].at).UTC()
	}
	switch f.Kind {
	case TLS, QUIC:
		t.SNI, t.ALPN = fs.hello.sni, fs.hello.alpn
		t.JA3String, t.JA3 = fs.hello.ja3()
		if f.Kind == QUIC {
			t.QUICVersion = fs.quicVersion()
		}
	case DNS:
		t.DNSQName, t.DNSQType, t.DNSRCode = f.DNS.Name, f.DNS.Type, f.DNS.RCode
	case HTTP:
		t.HTTPHost = f.HTTP.Host
	}
	fs.truth = t
}

// checkTally compares what frame() counted with the truth record.
func (fs *flowState) checkTally() error {
	t := &fs.truth
	a, b := fs.tally[c2s], fs.tally[s2c]
	if a.pkts != t.PktsC2S || a.bytes != t.BytesC2S || a.flags != t.FlagsC2S ||
		b.pkts != t.PktsS2C || b.bytes != t.BytesS2C || b.flags != t.FlagsS2C {
		return fmt.Errorf("flow %d: %w", fs.ordinal, ErrTallyMismatch)
	}
	return nil
}

// truthWriter appends JSON by hand: reflection-based encoding was the
// largest cost after packet building for large runs, and a fixed field order
// keeps the file diffable.
type truthWriter struct {
	w   *bufio.Writer
	buf []byte
}

func newTruthWriter(w io.Writer) *truthWriter {
	return &truthWriter{w: bufio.NewWriterSize(w, 1<<18), buf: make([]byte, 0, 1024)}
}

func (tw *truthWriter) write(t *Truth) error {
	b := tw.buf[:0]
	b = append(b, `{"ts":"`...)
	b = t.TS.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","end":"`...)
	b = t.End.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","proto":"`...)
	b = append(b, t.Proto...)
	b = append(b, `","src":"`...)
	b = t.Src.AppendTo(b)
	b = append(b, `","sport":`...)
	b = strconv.AppendUint(b, uint64(t.Sport), 10)
	b = append(b, `,"dst":"`...)
	b = t.Dst.AppendTo(b)
	b = append(b, `","dport":`...)
	b = strconv.AppendUint(b, uint64(t.Dport), 10)
	b = appendUintField(b, "pkts_c2s", t.PktsC2S)
	b = appendUintField(b, "bytes_c2s", t.BytesC2S)
	b = appendUintField(b, "pkts_s2c", t.PktsS2C)
	b = appendUintField(b, "bytes_s2c", t.BytesS2C)
	b = appendUintField(b, "flags_c2s", uint64(t.FlagsC2S))
	b = appendUintField(b, "flags_s2c", uint64(t.FlagsS2C))
	b = appendStringField(b, "kind", t.Kind)
	if t.SNI != "" {
		b = appendStringField(b, "sni", t.SNI)
	}
	if len(t.ALPN) > 0 {
		b = append(b, `,"alpn":[`...)
		for i, a := range t.ALPN {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, a)
		}
		b = append(b, ']')
	}
	if t.JA3 != "" {
		b = appendStringField(b, "ja3_string", t.JA3String)
		b = appendStringField(b, "ja3", t.JA3)
	}
	if t.Kind == DNS.String() {
		b = appendStringField(b, "dns_qname", t.DNSQName)
		b = appendUintField(b, "dns_qtype", uint64(t.DNSQType))
		b = appendUintField(b, "dns_rcode", uint64(t.DNSRCode))
	}
	if t.HTTPHost != "" {
		b = appendStringField(b, "http_host", t.HTTPHost)
	}
	if t.QUICVersion != 0 {
		b = appendUintField(b, "quic_version", uint64(t.QUICVersion))
	}
	if len(t.VLAN) > 0 {
		b = append(b, `,"vlan":[`...)
		for i, v := range t.VLAN {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, uint64(v), 10)
		}
		b = append(b, ']')
	}
	b = append(b, "}\n"...)
	tw.buf = b
	_, err := tw.w.Write(b)
	return err
}

func (tw *truthWriter) flush() error { return tw.w.Flush() }

func appendUintField(b []byte, name string, v uint64) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendUint(b, v, 10)
}

func appendStringField(b []byte, name, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendJSONString(b, v)
}

func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		case c < utf8.RuneSelf:
			b = append(b, c)
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		i++
	}
	return append(b, '"')
}

// ReadTruth parses a truth file written by Render.
func ReadTruth(r io.Reader) ([]Truth, error) {
	var out []Truth
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		var t Truth
		if err := json.Unmarshal(sc.Bytes(), &t); err != nil {
			return out, fmt.Errorf("truth line %d: %w", line, err)
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("reading truth: %w", err)
	}
	return out, nil
}
