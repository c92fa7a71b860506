package kafkalz4

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/pierrec/lz4/v4"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/protocol"
)

type record struct {
	key, value []byte
	headers    []protocol.Header
}

// batch returns n records shaped like the exporter's: a device key, a
// binary flow record and two headers.
func batch(n int) []record {
	recs := make([]record, n)
	for i := range recs {
		r := flow.Record{
			Schema: flow.Schema, ID: fmt.Sprintf("%016x", i*7919), Proto: "tcp", EndReason: flow.EndFIN,
			Start: time.Unix(1700000000+int64(i), 0).UTC(), End: time.Unix(1700000001+int64(i), 0).UTC(), DurationS: 1,
			Src: flow.Endpoint{IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(i % 20)}), Port: uint16(40000 + i%1000), Packets: 10, Bytes: 1200},
			Dst: flow.Endpoint{IP: netip.MustParseAddr("203.0.113.9"), Port: 443, Packets: 8, Bytes: 5000, Name: "relay.example.net", NameSource: "sni"},
			TLS: &flow.TLS{SNI: "relay.example.net", ALPN: []string{"h2"}, Version: "1.3", JA4: "t13d1516h2_8daaf6152771_e5627efa2ab1"},
		}
		recs[i] = record{
			key:   fmt.Appendf(nil, "LT-%04d", i%20),
			value: r.AppendBinary(nil),
			headers: []protocol.Header{
				{Key: "content-type", Value: []byte(flow.ContentType)},
				{Key: "edgeward-exported", Value: fmt.Appendf(nil, "1700000000.%09d", i)},
			},
		}
	}
	return recs
}

// reader feeds records to the batch encoder without allocating, as the
// exporter's does.
type reader struct {
	recs       []record
	next       int
	rec        protocol.Record
	key, value bytesReader
}

type bytesReader struct{ bytes.Reader }

func (*bytesReader) Close() error { return nil }

func (r *reader) ReadRecord() (*protocol.Record, error) {
	if r.next == len(r.recs) {
		return nil, io.EOF
	}
	m := &r.recs[r.next]
	r.next++
	r.key.Reset(m.key)
	r.value.Reset(m.value)
	r.rec = protocol.Record{Key: &r.key, Value: &r.value, Headers: m.headers}
	return &r.rec, nil
}

// encode writes recs as one lz4 record batch.
func encode(tb testing.TB, rd *reader, w io.Writer) {
	tb.Helper()
	rd.next = 0
	rs := protocol.RecordSet{Version: 2, Attributes: protocol.Attributes(compress.Lz4), Records: rd}
	if _, err := rs.WriteTo(w); err != nil {
		tb.Fatal(err)
	}
}

func readAll(tb testing.TB, b protocol.Bytes) []byte {
	tb.Helper()
	p, err := protocol.ReadAll(b)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// TestRoundTrip checks that batches compressed by this codec read back
// through kafka-go's reader record for record, from one record to several
// lz4 blocks, and that the frames are plain lz4 frames.
func TestRoundTrip(t *testing.T) {
	if c := compress.Lz4.Codec(); reflect.TypeOf(c) != reflect.TypeFor[*Codec]() {
		t.Fatalf("kafka-go's lz4 codec is %T, not this package's", c)
	}
	for _, n := range []int{1, 7, 300, 3000} {
		recs := batch(n)
		var buf bytes.Buffer
		encode(t, &reader{recs: recs}, &buf)
		var rs protocol.RecordSet
		if _, err := rs.ReadFrom(&buf); err != nil {
			t.Fatalf("%d records: %v", n, err)
		}
		if c := rs.Attributes.Compression(); c != compress.Lz4 {
			t.Fatalf("%d records: compression %v", n, c)
		}
		i := 0
		for ; ; i++ {
			r, err := rs.Records.ReadRecord()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%d records: record %d: %v", n, i, err)
			}
			if i >= n {
				t.Fatalf("%d records: more came back", n)
			}
			want := recs[i]
			if !bytes.Equal(readAll(t, r.Key), want.key) || !bytes.Equal(readAll(t, r.Value), want.value) ||
				len(r.Headers) != 2 || !bytes.Equal(r.Headers[1].Value, want.headers[1].Value) {
				t.Fatalf("%d records: record %d differs", n, i)
			}
		}
		if i != n {
			t.Fatalf("read %d of %d records", i, n)
		}
	}
}

// TestFrame checks the frame itself with the lz4 library's reader, for an
// empty input, one byte and more than one block, and that a closed writer
// closes again without writing.
func TestFrame(t *testing.T) {
	for _, n := range []int{0, 1, 64 << 10, 200 << 10} {
		in := make([]byte, n)
		for i := range in {
			in[i] = byte(i * i >> 7)
		}
		var out bytes.Buffer
		w := (&Codec{}).NewWriter(&out)
		for p := in; len(p) > 0; p = p[min(len(p), 13):] {
			w.Write(p[:min(len(p), 13)])
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		size := out.Len()
		if err := w.Close(); err != nil || out.Len() != size {
			t.Fatalf("second Close: %v, %d bytes written", err, out.Len()-size)
		}
		got, err := io.ReadAll(lz4.NewReader(&out))
		if err != nil || !bytes.Equal(got, in) {
			t.Fatalf("%d bytes: read back %d bytes, %v", n, len(got), err)
		}
	}
}

// BenchmarkCodec compares kafka-go's lz4 codec with this one on record
// batch encoding alone, 1000 exporter-shaped records per batch.
func BenchmarkCodec(b *testing.B) {
	recs := batch(1000)
	rd := &reader{recs: recs}
	ours := compress.Codecs[compress.Lz4]
	defer func() { compress.Codecs[compress.Lz4] = ours }()
	for _, c := range []struct {
		name  string
		codec compress.Codec
	}{{"kafka-go", &compress.Lz4Codec}, {"edgeward", ours}} {
		b.Run(c.name, func(b *testing.B) {
			compress.Codecs[compress.Lz4] = c.codec
			var buf bytes.Buffer
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				encode(b, rd, &buf)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
			b.ReportMetric(float64(buf.Len())/float64(len(recs)), "B/record")
		})
	}
}
