package flow

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edgeward/edgeward/internal/cputime"
)

func TestBinaryRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  *Record
	}{
		{"full", full()},
		{"empty", &Record{}},
		{"minimal", &Record{Schema: Schema, ID: "1", Src: Endpoint{IP: netip.MustParseAddr("10.0.0.1")}}},
		{"zone and mapped", &Record{Src: Endpoint{IP: netip.MustParseAddr("fe80::1%eth0")}, Dst: Endpoint{IP: netip.MustParseAddr("::ffff:10.0.0.1")}}},
		{"empty objects", &Record{TCP: &TCP{}, TLS: &TLS{}, DNS: &DNS{}, Device: &Device{}, Egress: &Egress{}, Sensor: &Sensor{}}},
		{"long", func() *Record {
			r := full()
			r.TLS.JA3String = strings.Repeat("4865-", 4000) // body over 16 KiB: the length needs three bytes
			r.HTTP.Status, r.SOCKS.Version = -1, math.MinInt
			r.DurationS = math.Inf(1)
			r.Start = time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)
			r.End = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
			return r
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.rec.AppendBinary(nil)
			var got Record
			if err := DecodeBinary(b, &got); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(&got, tc.rec) {
				t.Errorf("round trip differs\n got %+v\nwant %+v", got, *tc.rec)
			}
		})
	}
}

// TestBinaryEveryField sets each leaf field of Record alone, found by
// reflection, and checks it survives the codec: a field added to Record
// but not to the codec fails here by name.
func TestBinaryEveryField(t *testing.T) {
	var paths [][]int
	var walk func(typ reflect.Type, path []int)
	walk = func(typ reflect.Type, path []int) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			p := append(append([]int(nil), path...), i)
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]() && ft != reflect.TypeFor[netip.Addr]() {
				walk(ft, p)
				continue
			}
			paths = append(paths, p)
		}
	}
	walk(reflect.TypeFor[Record](), nil)
	if len(paths) < 70 {
		t.Fatalf("found only %d fields", len(paths))
	}
	for _, p := range paths {
		var want Record
		v := reflect.ValueOf(&want).Elem()
		name := "Record"
		for _, i := range p {
			if v.Kind() == reflect.Pointer {
				if v.IsNil() {
					v.Set(reflect.New(v.Type().Elem()))
				}
				v = v.Elem()
			}
			name += "." + v.Type().Field(i).Name
			v = v.Field(i)
		}
		t.Run(name, func(t *testing.T) {
			if !setNonZero(v) {
				t.Fatalf("the test cannot set a %s: teach setNonZero", v.Type())
			}
			var got Record
			if err := DecodeBinary(want.AppendBinary(nil), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("lost in the codec:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func setNonZero(v reflect.Value) bool {
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)))
		return true
	case reflect.TypeFor[netip.Addr]():
		v.Set(reflect.ValueOf(netip.MustParseAddr("2001:db8::7")))
		return true
	case reflect.TypeFor[MAC]():
		v.Set(reflect.ValueOf(MAC{2, 0, 0, 0, 0, 9}))
		return true
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("x\x00é\xff")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(math.MaxUint64) >> (64 - v.Type().Bits()))
	case reflect.Int, reflect.Int64:
		v.SetInt(-7)
	case reflect.Float64:
		v.SetFloat(-1.5)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		if !setNonZero(s.Index(0)) || !setNonZero(s.Index(1)) {
			return false
		}
		v.Set(s)
	default:
		return false
	}
	return true
}

// TestBinaryReuse decodes a smaller record into one that held a full one:
// nothing of the first may show through.
func TestBinaryReuse(t *testing.T) {
	var r Record
	if err := DecodeBinary(full().AppendBinary(nil), &r); err != nil {
		t.Fatal(err)
	}
	tls, dns := r.TLS, r.DNS
	small := &Record{ID: "2", TLS: &TLS{SNI: "a"}, DNS: &DNS{Query: "q", Answers: []string{"1.2.3.4"}}}
	if err := DecodeBinary(small.AppendBinary(nil), &r); err != nil {
		t.Fatal(err)
	}
	if got, want := string(r.AppendJSON(nil)), string(small.AppendJSON(nil)); got != want {
		t.Errorf("reused record differs:\n got %s\nwant %s", got, want)
	}
	if r.TLS != tls || r.DNS != dns {
		t.Error("nested objects were not reused")
	}
	b := full().AppendBinary(nil)
	allocs := testing.AllocsPerRun(100, func() { DecodeBinary(b, &r) })
	if allocs > 1 {
		t.Errorf("decoding into a reused record: %.0f allocations, want 1 (the strings)", allocs)
	}
	str := string(b)
	if allocs := testing.AllocsPerRun(100, func() { DecodeString(str, &r) }); allocs != 0 {
		t.Errorf("DecodeString into a reused record: %.0f allocations, want 0", allocs)
	}
	if got := string(r.AppendBinary(nil)); got != str {
		t.Error("DecodeString differs from DecodeBinary")
	}
	enc := full()
	buf := make([]byte, 0, 4096)
	if a := testing.AllocsPerRun(100, func() { buf = enc.AppendBinary(buf[:0]) }); a != 0 {
		t.Errorf("AppendBinary: %.0f allocations, want 0", a)
	}
}

// TestDecoder decodes a stream of records of changing shapes into one
// record, as a consumer does, reusing the input buffer.
func TestDecoder(t *testing.T) {
	dnsFlow := &Record{ID: "dns", Proto: "udp", DNS: &DNS{Query: "example.com", Answers: []string{"93.184.216.34"}}}
	quicFlow := &Record{ID: "quic", Proto: "udp", QUIC: &QUIC{Version: "1"}, VLAN: []uint16{7}}
	long := full()
	long.TLS.JA3String = strings.Repeat("4865-", 1000) // over a quarter block: a string of its own
	stream := []*Record{full(), typical(), dnsFlow, quicFlow, long, typical(), dnsFlow}
	var (
		dec  Decoder
		r    Record
		buf  []byte
		kept []*Record
	)
	for i, want := range stream {
		buf = want.AppendBinary(buf[:0])
		if err := dec.Decode(buf, &r); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if got := r.AppendBinary(nil); !bytes.Equal(got, buf) {
			t.Fatalf("record %d differs\n got %x\nwant %x", i, got, buf)
		}
		kept = append(kept, r.Clone())
	}
	// The strings of earlier records do not change when the input buffer
	// and the record are reused.
	for i, want := range stream {
		if got, want := kept[i].AppendJSON(nil), want.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("record %d changed after later decodes\n got %s\nwant %s", i, got, want)
		}
	}
	// With spare objects of every shape, a Decoder allocates only a new
	// block now and then (AllocsPerRun rounds that down to 0), whatever the
	// order of the shapes.
	var encoded [][]byte
	for _, rec := range stream[:4] {
		encoded = append(encoded, rec.AppendBinary(nil))
	}
	n := 0
	allocs := testing.AllocsPerRun(1000, func() {
		if err := dec.Decode(encoded[n%len(encoded)], &r); err != nil {
			t.Fatal(err)
		}
		n++
	})
	if allocs != 0 {
		t.Errorf("Decoder: %.0f allocations per record, want 0", allocs)
	}
	if err := dec.Decode([]byte{2, 0}, &r); !errors.Is(err, ErrVersion) {
		t.Errorf("version 2: %v, want ErrVersion", err)
	}
}

// TestBinaryFieldTypes checks, for every field of every message, that its
// wire type decodes and another is an error that names the field: the
// messages' switches and the tables that name fields in errors agree.
func TestBinaryFieldTypes(t *testing.T) {
	for _, mc := range []struct {
		m      *message
		parent int // the record field holding the message; 0: the record
	}{
		{&msgRecord, 0}, {&msgStart, fStart}, {&msgEnd, fEnd}, {&msgSrc, fSrc}, {&msgDst, fDst},
		{&msgSensor, fSensor}, {&msgDevice, fDevice}, {&msgEgress, fEgress}, {&msgTCP, fTCP},
		{&msgICMP, fICMP}, {&msgTunnel, fTunnel}, {&msgTLS, fTLS}, {&msgQUIC, fQUIC}, {&msgDNS, fDNS},
		{&msgHTTP, fHTTP}, {&msgSSH, fSSH}, {&msgDHCP, fDHCP}, {&msgSOCKS, fSOCKS},
	} {
		for num, fi := range mc.m.fields {
			if fi.name == "" {
				continue
			}
			name := fi.name
			if mc.m.name != "" {
				name = mc.m.name + "." + name
			}
			field := func(wt int) []byte {
				b := binary.AppendUvarint(nil, uint64(num)<<3|uint64(wt))
				switch {
				case wt == wtVarint:
					b = append(b, 1)
				case wt == wtFixed64:
					b = append(b, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f)
				case strings.HasSuffix(name, "mac"):
					b = append(b, 6, 2, 0, 0, 0, 0, 1)
				default:
					b = append(b, 0) // empty: a valid string, address, VLAN list or message
				}
				if mc.parent != 0 {
					b = append(binary.AppendUvarint(appendTag(nil, mc.parent, wtBytes), uint64(len(b))), b...)
				}
				return append(binary.AppendUvarint([]byte{WireVersion}, uint64(len(b))), b...)
			}
			t.Run(name, func(t *testing.T) {
				var r Record
				if err := DecodeBinary(field(fi.wt), &r); err != nil {
					t.Errorf("wire type %d: %v", fi.wt, err)
				}
				if name == "vlan" {
					return // packed or not
				}
				other := wtBytes
				if fi.wt == wtBytes {
					other = wtVarint
				}
				err := DecodeBinary(field(other), &r)
				if want := fmt.Sprintf("(%s): wire type %d, want %d", name, other, fi.wt); err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("wire type %d: error %v, want it to contain %q", other, err, want)
				}
			})
		}
	}
}

func TestBinaryErrors(t *testing.T) {
	good := full().AppendBinary(nil)
	for _, tc := range []struct {
		name    string
		in      []byte
		version bool
		want    string
	}{
		{"empty", nil, false, "byte 0: empty record"},
		{"version 2", []byte{2, 0}, true, "unknown flow wire format version 2"},
		{"json", []byte(`{"schema":"edgeward.flow/v1"}`), true, "JSON record"},
		{"no length", []byte{1}, false, "byte 1: truncated"},
		{"truncated", good[:len(good)-1], false, "byte 1: truncated: the header says"},
		{"trailing", append(bytes.Clone(good), 0), false, "trailing bytes"},
		{"bad wire type", []byte{1, 2, fID<<3 | wtVarint, 5}, false, "byte 3 (id): wire type 0, want 2"},
		{"field zero", []byte{1, 1, 0}, false, "byte 2: bad field number 0"},
		{"string past end", []byte{1, 3, fID<<3 | wtBytes, 9, 'x'}, false, "byte 3 (id): length 9 runs past the end (1 bytes left)"},
		{"nested past parent", []byte{1, 5, fSrc<<3 | wtBytes, 1, 2 << 3, 0x80, 1}, false, "byte 5 (src.port): truncated"},
		{"port range", []byte{1, 6, fSrc<<3 | wtBytes, 4, 2 << 3, 0x80, 0x80, 4}, false, "(src.port): 65536 out of range"},
		{"addr size", []byte{1, 5, fSrc<<3 | wtBytes, 3, 1<<3 | wtBytes, 1, 7}, false, "byte 6 (src.ip): address of 1 bytes"},
		{"mac size", []byte{1, 5, fSrc<<3 | wtBytes, 3, 3<<3 | wtBytes, 1, 7}, false, "(src.mac): MAC of 1 bytes"},
		{"nanos", []byte{1, 6, fStart<<3 | wtBytes, 4, 2 << 3, 0xff, 0xff, 0xff}, false, "(start): truncated"},
		{"group", []byte{1, 2, 0xeb, 0x01}, false, "unsupported wire type 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Record
			err := DecodeBinary(tc.in, &r)
			if err == nil {
				t.Fatalf("no error, decoded %+v", r)
			}
			if errors.Is(err, ErrVersion) != tc.version {
				t.Errorf("errors.Is(%v, ErrVersion) = %v", err, !tc.version)
			}
			var de *DecodeError
			if !tc.version && !errors.As(err, &de) {
				t.Errorf("%v is not a *DecodeError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
	// Every cut of a good record fails and points inside it.
	for n := range len(good) {
		var r Record
		err := DecodeBinary(good[:n], &r)
		var de *DecodeError
		if !errors.As(err, &de) || de.Offset > n {
			t.Fatalf("record cut at %d: %v", n, err)
		}
	}
}

func TestBinaryUnknownFields(t *testing.T) {
	// A later writer's fields (of every wire type, top level and nested)
	// are skipped.
	r := &Record{ID: "a", Src: Endpoint{Port: 1}}
	body := r.AppendBinary(nil)[3:]
	tag := func(num, wt int) { body = binary.AppendUvarint(body, uint64(num)<<3|uint64(wt)) }
	tag(200, wtVarint)
	body = append(body, 7)
	tag(99, wtFixed64)
	body = append(body, 1, 2, 3, 4, 5, 6, 7, 8)
	tag(98, wtFixed32)
	body = append(body, 1, 2, 3, 4)
	tag(97, wtBytes)
	body = append(body, 2, 'h', 'i')
	tag(fDst, wtBytes)
	body = append(body, 2, 15<<3|wtVarint, 1)
	b := binary.AppendUvarint([]byte{WireVersion}, uint64(len(body)))
	b = append(b, body...)
	var got Record
	if err := DecodeBinary(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != "a" || got.Src.Port != 1 {
		t.Errorf("got %+v", got)
	}
}

func FuzzDecodeBinary(f *testing.F) {
	f.Add(full().AppendBinary(nil))
	f.Add((&Record{ID: "x", VLAN: []uint16{1}}).AppendBinary(nil))
	f.Add([]byte{1, 0})
	var dec Decoder // shared by the inputs, as by a consumer's records
	f.Fuzz(func(t *testing.T, b []byte) {
		var r1 Record
		if err := DecodeBinary(b, &r1); err != nil {
			var r Record
			if dec.Decode(b, &r) == nil {
				t.Fatalf("DecodeBinary fails (%v), the Decoder does not", err)
			}
			return
		}
		b2 := r1.AppendBinary(nil)
		var r2 Record
		if err := DecodeBinary(b2, &r2); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if b3 := r2.AppendBinary(nil); !bytes.Equal(b2, b3) {
			t.Fatalf("encoding not stable:\n%x\n%x", b2, b3)
		}
		if !math.IsNaN(r1.DurationS) && !reflect.DeepEqual(r1, r2) {
			t.Fatalf("decode(encode(x)) != x\n got %+v\nwant %+v", r2, r1)
		}
		// Decoding into a used record gives the same record, with or
		// without a Decoder that has spare objects.
		r3 := *full()
		if err := DecodeBinary(b, &r3); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r3.AppendBinary(nil), b2) {
			t.Fatal("decoding into a used record differs")
		}
		if err := dec.Decode(b, &r3); err != nil {
			t.Fatalf("Decoder: %v", err)
		}
		if !bytes.Equal(r3.AppendBinary(nil), b2) {
			t.Fatal("Decoder differs")
		}
	})
}

// typical is a common record: a TLS flow of an inventoried device.
func typical() *Record {
	f := full()
	return &Record{Schema: f.Schema, ID: f.ID, CommunityID: f.CommunityID, Start: f.Start, End: f.End, DurationS: f.DurationS,
		EndReason: f.EndReason, Proto: f.Proto, Src: f.Src, Dst: f.Dst, Direction: f.Direction, Sensor: f.Sensor,
		Device: &Device{IP: f.Device.IP, MAC: f.Device.MAC, ID: "LT-0042", Owner: "j.doe", MatchedBy: "mac"},
		TCP:    f.TCP, TLS: &TLS{SNI: f.TLS.SNI, ALPN: f.TLS.ALPN, Version: "1.3", JA4: f.TLS.JA4, Cipher: f.TLS.Cipher},
		App: "anydesk", AppSource: "sni", AppCategory: "remote_access"}
}

// The flows topic's codec, JSON against binary, per record, for a full
// record (every field) and a typical one. The pipeline target (500k
// flows/s/core with rules) leaves decode well under 1 us. cpu-ns/op is
// the process's CPU time, steadier than ns/op on a busy machine.
func BenchmarkCodec(b *testing.B) {
	for _, rc := range []struct {
		name string
		r    *Record
	}{{"full", full()}, {"typical", typical()}} {
		b.Run(rc.name, func(b *testing.B) { benchCodec(b, rc.r) })
	}
}

func benchCodec(b *testing.B, r *Record) {
	jb, bb := r.AppendJSON(nil), r.AppendBinary(nil)
	b.Run("encode/json", func(b *testing.B) {
		defer cpuPerOp(b)()
		buf := make([]byte, 0, 2048)
		b.ReportAllocs()
		b.SetBytes(int64(len(jb)))
		for b.Loop() {
			buf = r.AppendJSON(buf[:0])
		}
	})
	b.Run("encode/binary", func(b *testing.B) {
		defer cpuPerOp(b)()
		buf := make([]byte, 0, 2048)
		b.ReportAllocs()
		b.SetBytes(int64(len(bb)))
		for b.Loop() {
			buf = r.AppendBinary(buf[:0])
		}
	})
	b.Run("decode/json", func(b *testing.B) {
		defer cpuPerOp(b)()
		b.ReportAllocs()
		b.SetBytes(int64(len(jb)))
		for b.Loop() {
			var got Record
			if err := json.Unmarshal(jb, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/binary", func(b *testing.B) {
		defer cpuPerOp(b)()
		var got Record
		b.ReportAllocs()
		b.SetBytes(int64(len(bb)))
		for b.Loop() {
			if err := DecodeBinary(bb, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/decoder", func(b *testing.B) { // a consumer's: a Decoder, a reused buffer and record
		defer cpuPerOp(b)()
		var (
			dec Decoder
			got Record
		)
		b.ReportAllocs()
		b.SetBytes(int64(len(bb)))
		for b.Loop() {
			if err := dec.Decode(bb, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/binary-string", func(b *testing.B) { // a record already in a string
		defer cpuPerOp(b)()
		var got Record
		bs := string(bb)
		b.ReportAllocs()
		b.SetBytes(int64(len(bb)))
		for b.Loop() {
			if err := DecodeString(bs, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// cpuPerOp reports the process's CPU time per operation when the returned
// function runs.
func cpuPerOp(b *testing.B) func() {
	start := cputime.Now()
	return func() { b.ReportMetric(float64(cputime.Now()-start)/float64(b.N), "cpu-ns/op") }
}

// TestBinaryRandom round-trips random records (see randomRecord): long
// strings, varints of every length, every form of address.
func TestBinaryRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var (
		dec  Decoder
		used Record // decoded into again and again, as by a consumer
	)
	for i := range 5000 {
		want := randomRecord(r)
		b := want.AppendBinary(nil)
		var got Record
		if err := DecodeBinary(b, &got); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !reflect.DeepEqual(&got, want) {
			t.Fatalf("record %d differs\n got %+v\nwant %+v", i, got, *want)
		}
		if err := dec.Decode(b, &used); err != nil {
			t.Fatalf("record %d, Decoder: %v", i, err)
		}
		if !bytes.Equal(used.AppendBinary(nil), b) {
			t.Fatalf("record %d, Decoder: differs", i)
		}
	}
}
