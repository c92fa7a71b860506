package dnsmeta

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// rr builds a resource record for buildMsg.
func rr(name string, typ layers.DNSType, ttl uint32, data string) layers.DNSResourceRecord {
	r := layers.DNSResourceRecord{Name: []byte(name), Type: typ, Class: layers.DNSClassIN, TTL: ttl}
	switch typ {
	case layers.DNSTypeA, layers.DNSTypeAAAA:
		r.IP = net.IP(netip.MustParseAddr(data).AsSlice())
	case layers.DNSTypeCNAME:
		r.CNAME = []byte(data)
	case layers.DNSTypeTXT:
		r.TXTs = [][]byte{[]byte(data)}
	}
	return r
}

// buildMsg serialises a DNS message with gopacket, so the tests exercise
// real wire encoding including name compression pointers from the decoder's
// point of view.
func buildMsg(t testing.TB, d *layers.DNS) []byte {
	t.Helper()
	d.QDCount = uint16(len(d.Questions))
	d.ANCount = uint16(len(d.Answers))
	d.NSCount = uint16(len(d.Authorities))
	d.ARCount = uint16(len(d.Additionals))
	buf := gopacket.NewSerializeBuffer()
	if err := d.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		t.Fatalf("serialising test message: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func query(name string, typ layers.DNSType) *layers.DNS {
	return &layers.DNS{ID: 0x1234, RD: true,
		Questions: []layers.DNSQuestion{{Name: []byte(name), Type: typ, Class: layers.DNSClassIN}}}
}

func response(name string, typ layers.DNSType, rcode layers.DNSResponseCode, answers ...layers.DNSResourceRecord) *layers.DNS {
	d := query(name, typ)
	d.QR, d.RA, d.ResponseCode, d.Answers = true, true, rcode, answers
	return d
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		msg     []byte
		want    Message
		wantErr error
	}{
		{
			name: "A query lowercased",
			msg:  buildMsg(t, query("WWW.Example.COM", layers.DNSTypeA)),
			want: Message{ID: 0x1234, QName: "www.example.com", QType: TypeA},
		},
		{
			name: "HTTPS query",
			msg:  buildMsg(t, query("svc.example", layers.DNSTypeHTTPS)),
			want: Message{ID: 0x1234, QName: "svc.example", QType: TypeHTTPS},
		},
		{
			name: "NXDOMAIN",
			msg:  buildMsg(t, response("nope.example", layers.DNSTypeAAAA, layers.DNSResponseCodeNXDomain)),
			want: Message{ID: 0x1234, Response: true, RCode: 3, QName: "nope.example", QType: TypeAAAA},
		},
		{
			name: "CNAME chain to A and AAAA",
			msg: buildMsg(t, response("www.x.com", layers.DNSTypeA, 0,
				rr("www.x.com", layers.DNSTypeCNAME, 300, "X.cdn.net"),
				rr("x.cdn.net", layers.DNSTypeA, 60, "1.2.3.4"),
				rr("x.cdn.net", layers.DNSTypeAAAA, 60, "2001:db8::1"),
				rr("x.cdn.net", layers.DNSTypeTXT, 60, "ignored"))),
			want: Message{ID: 0x1234, Response: true, QName: "www.x.com", QType: TypeA, Answers: []Answer{
				{Name: "www.x.com", Type: TypeCNAME, TTL: 300, Target: "x.cdn.net"},
				{Name: "x.cdn.net", Type: TypeA, TTL: 60, Addr: netip.MustParseAddr("1.2.3.4")},
				{Name: "x.cdn.net", Type: TypeAAAA, TTL: 60, Addr: netip.MustParseAddr("2001:db8::1")},
			}},
		},
		{
			name:    "shorter than a header",
			msg:     []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
			wantErr: ErrTruncated,
		},
		{
			name: "answer section cut short keeps the question",
			msg: func() []byte {
				b := buildMsg(t, response("cut.example", layers.DNSTypeA, 0,
					rr("cut.example", layers.DNSTypeA, 5, "192.0.2.1")))
				return b[:len(b)-3]
			}(),
			want:    Message{ID: 0x1234, Response: true, QName: "cut.example", QType: TypeA},
			wantErr: ErrMalformed,
		},
		{
			name: "compression pointer loop",
			msg: []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
				0xc0, 12, 0, 1, 0, 1},
			want:    Message{ID: 1},
			wantErr: ErrMalformed,
		},
	}
	var p Parser
	var m Message
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Parse(tt.msg, &m)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Parse error = %v, want %v", err, tt.wantErr)
			}
			got := m
			if len(got.Answers) == 0 {
				got.Answers = nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseBoundsAnswers(t *testing.T) {
	var answers []layers.DNSResourceRecord
	for i := range MaxAnswers + 5 {
		answers = append(answers, rr("many.example", layers.DNSTypeA, 1, netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String()))
	}
	var p Parser
	var m Message
	if err := p.Parse(buildMsg(t, response("many.example", layers.DNSTypeA, 0, answers...)), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Answers) != MaxAnswers || m.AnswersDropped != 5 {
		t.Errorf("kept %d answers, dropped %d; want %d and 5", len(m.Answers), m.AnswersDropped, MaxAnswers)
	}
}

func TestParseTCP(t *testing.T) {
	q := buildMsg(t, query("tcp.example", layers.DNSTypeA))
	r := buildMsg(t, response("tcp.example", layers.DNSTypeA, 0, rr("tcp.example", layers.DNSTypeA, 9, "198.51.100.7")))
	frame := func(b []byte) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...) }
	two := append(frame(q), frame(r)...)

	tests := []struct {
		name     string
		stream   []byte
		wantN    int
		wantErr  error
		wantName string
	}{
		{"empty", nil, 0, ErrNeedMore, ""},
		{"length only", two[:2], 0, ErrNeedMore, ""},
		{"split message", two[:len(q)], 0, ErrNeedMore, ""},
		{"one whole message", two[:2+len(q)], 2 + len(q), nil, "tcp.example"},
		{"two messages, first consumed", two, 2 + len(q), nil, "tcp.example"},
		{"length below header size", []byte{0, 3, 1, 2, 3, 9}, 5, ErrTruncated, ""},
	}
	var p Parser
	var m Message
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := p.ParseTCP(tt.stream, &m)
			if n != tt.wantN || !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("ParseTCP = %d, %v; want %d, %v", n, err, tt.wantN, tt.wantErr)
			}
			if m.QName != tt.wantName {
				t.Errorf("QName = %q, want %q", m.QName, tt.wantName)
			}
		})
	}

	// Walking the stream message by message yields the response second.
	n, _ := p.ParseTCP(two, &m)
	if _, err := p.ParseTCP(two[n:], &m); err != nil || !m.Response || len(m.Answers) != 1 {
		t.Errorf("second message: err %v, %+v", err, m)
	}
}

func TestResolve(t *testing.T) {
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	tests := []struct {
		name string
		msg  Message
		want []Resolved
	}{
		{
			name: "direct",
			msg: Message{QName: "a.example", Answers: []Answer{
				{Name: "a.example", Type: TypeA, TTL: 30, Addr: a("192.0.2.1")}}},
			want: []Resolved{{a("192.0.2.1"), 30}},
		},
		{
			name: "chain out of order takes the minimum TTL",
			msg: Message{QName: "www.x.com", Answers: []Answer{
				{Name: "x.cdn.net", Type: TypeA, TTL: 600, Addr: a("1.2.3.4")},
				{Name: "edge.x.com", Type: TypeCNAME, TTL: 20, Target: "x.cdn.net"},
				{Name: "www.x.com", Type: TypeCNAME, TTL: 300, Target: "edge.x.com"}}},
			want: []Resolved{{a("1.2.3.4"), 20}},
		},
		{
			name: "record off the chain is ignored",
			msg: Message{QName: "www.x.com", Answers: []Answer{
				{Name: "www.x.com", Type: TypeA, TTL: 60, Addr: a("1.2.3.4")},
				{Name: "bank.example", Type: TypeA, TTL: 60, Addr: a("6.6.6.6")}}},
			want: []Resolved{{a("1.2.3.4"), 60}},
		},
		{
			name: "CNAME loop terminates",
			msg: Message{QName: "a", Answers: []Answer{
				{Name: "a", Type: TypeCNAME, TTL: 1, Target: "b"},
				{Name: "b", Type: TypeCNAME, TTL: 1, Target: "a"}}},
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.msg.Resolve(nil); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Resolve = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{TypeA.String(), "A"},
		{TypeAAAA.String(), "AAAA"},
		{TypeHTTPS.String(), "HTTPS"},
		{Type(257).String(), "CAA"},
		{Type(65280).String(), "TYPE65280"},
		{RCode(0).String(), "NOERROR"},
		{RCode(3).String(), "NXDOMAIN"},
		{RCode(2).String(), "SERVFAIL"},
		{RCode(12).String(), "RCODE12"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(buildMsg(f, query("www.example.com", layers.DNSTypeA)))
	f.Add(buildMsg(f, response("www.x.com", layers.DNSTypeA, 0,
		rr("www.x.com", layers.DNSTypeCNAME, 300, "x.cdn.net"),
		rr("x.cdn.net", layers.DNSTypeA, 60, "1.2.3.4"),
		rr("x.cdn.net", layers.DNSTypeAAAA, 60, "2001:db8::1"))))
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})
	var p Parser
	var m Message
	c := NewCache(Config{Capacity: 4})
	client := netip.MustParseAddr("192.0.2.10")
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = p.Parse(b, &m)
		if len(m.Answers) > MaxAnswers || len(m.QName) > 255 {
			t.Fatalf("bounds exceeded: %d answers, name %d bytes", len(m.Answers), len(m.QName))
		}
		m.Response, m.RCode = true, 0
		c.Add(client, client, &m, testEpoch)
		for stream := b; len(stream) > 0; {
			n, err := p.ParseTCP(stream, &m)
			if errors.Is(err, ErrNeedMore) {
				break
			}
			if n <= 0 || n > len(stream) {
				t.Fatalf("ParseTCP consumed %d of %d bytes", n, len(stream))
			}
			stream = stream[n:]
		}
	})
}

func BenchmarkParse(b *testing.B) {
	msg := buildMsg(b, response("www.x.com", layers.DNSTypeA, 0,
		rr("www.x.com", layers.DNSTypeCNAME, 300, "x.cdn.net"),
		rr("x.cdn.net", layers.DNSTypeA, 60, "1.2.3.4"),
		rr("x.cdn.net", layers.DNSTypeA, 60, "1.2.3.5")))
	// Baseline: gopacket's decoder alone, so the ratio shows our overhead.
	b.Run("gopacket-baseline", func(b *testing.B) {
		var d layers.DNS
		b.ReportAllocs()
		for b.Loop() {
			if err := d.DecodeFromBytes(msg, gopacket.NilDecodeFeedback); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Parse", func(b *testing.B) {
		var p Parser
		var m Message
		b.ReportAllocs()
		for b.Loop() {
			if err := p.Parse(msg, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
