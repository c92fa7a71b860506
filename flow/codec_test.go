package flow

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// Vectors of the Community ID reference implementations (seed 0) beyond the
// ones TestCommunityID has: one-way ICMP and ICMPv6 types, SCTP, IPv6 TCP.
// For ICMP the ports are the message's type and code.
func TestCommunityIDMoreVectors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		proto uint8
		src   string
		sport uint16
		dst   string
		dport uint16
		want  string
	}{
		{"icmp one-way", ProtoICMP, "192.168.0.89", 20, "192.168.0.1", 0, "1:3o2RFccXzUgjl7zDpqmY7yJi8rI="},
		{"icmp one-way code", ProtoICMP, "192.168.0.89", 20, "192.168.0.1", 1, "1:tz/fHIDUHs19NkixVVoOZywde+I="},
		{"icmp echo reply code 20", ProtoICMP, "192.168.0.1", 0, "192.168.0.89", 20, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="},
		{"icmp6 NA", ProtoICMPv6, "fe80::260:97ff:fe07:69ea", 136, "fe80::200:86ff:fe05:80da", 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="},
		{"icmp6 RA to all-nodes", ProtoICMPv6, "fe80::260:97ff:fe07:69ea", 134, "ff02::1", 0, "1:pkvHqCL88/tg1k4cPigmZXUtL00="},
		{"icmp6 one-way", ProtoICMPv6, "3ffe:507:0:1:260:97ff:fe07:69ea", 3, "3ffe:507:0:1:200:86ff:fe05:80da", 0, "1:NdobDX8PQNJbAyfkWxhtL2Pqp5w="},
		{"icmp6 one-way reversed", ProtoICMPv6, "3ffe:507:0:1:200:86ff:fe05:80da", 3, "3ffe:507:0:1:260:97ff:fe07:69ea", 0, "1:/OGBt9BN1ofenrmSPWYicpij2Vc="},
		{"sctp", 132, "192.168.170.8", 7, "192.168.170.56", 80, "1:jQgCxbku+pNGw8WPbEc/TS/uTpQ="},
		{"sctp reversed", 132, "192.168.170.56", 80, "192.168.170.8", 7, "1:jQgCxbku+pNGw8WPbEc/TS/uTpQ="},
		{"sctp same ports", 132, "192.168.170.8", 7, "192.168.170.56", 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="},
		{"tcp ipv6", ProtoTCP, "2001:470:e5bf:dead:4957:2174:e82c:4887", 63943, "2607:f8b0:400c:c03::1a", 25, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="},
		{"tcp ipv6 reversed", ProtoTCP, "2607:f8b0:400c:c03::1a", 25, "2001:470:e5bf:dead:4957:2174:e82c:4887", 63943, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp, dp, one := tc.sport, tc.dport, false
			if tc.proto == ProtoICMP || tc.proto == ProtoICMPv6 {
				sp, dp, one = ICMPPorts(tc.proto, uint8(tc.sport), uint8(tc.dport))
			}
			if got := CommunityID(key(tc.proto, tc.src, sp, tc.dst, dp), one); got != tc.want {
				t.Errorf("CommunityID = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestAppendJSONAnyBytes sets each string field alone, found by
// reflection, to bytes a record decoded from the flows topic may hold
// (the binary format carries any bytes, and a JSON record any escaped
// character), and checks that AppendJSON writes valid JSON that reads
// back as encoding/json writes it.
func TestAppendJSONAnyBytes(t *testing.T) {
	const nasty = "a\"}\\\x00\n<&\xff\u2028"
	m := jsonMirrors{}
	check := func(t *testing.T, rec *Record) {
		t.Helper()
		got := rec.AppendJSON(nil)
		if !json.Valid(got) {
			t.Fatalf("invalid JSON: %s", got)
		}
		want, err := json.Marshal(m.value(reflect.ValueOf(rec)).Interface())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("AppendJSON differs from encoding/json\n got %s\nwant %s", got, want)
		}
	}
	for _, p := range leafPaths() {
		rec, v, name := fieldAt(p)
		if v.Kind() != reflect.String && !(v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if v.Kind() == reflect.String {
				v.SetString(nasty)
			} else {
				v.Set(reflect.ValueOf([]string{nasty}))
			}
			check(t, rec)
		})
	}
	// As the pipeline gets it: a binary record from the flows topic,
	// decoded, written in an alert's data as JSON.
	t.Run("decoded", func(t *testing.T) {
		var rec Record
		in := &Record{Proto: nasty, Src: Endpoint{IP: netip.MustParseAddr("fe80::1").WithZone(nasty)}, DurationS: math.NaN()}
		if err := DecodeBinary(in.AppendBinary(nil), &rec); err != nil {
			t.Fatal(err)
		}
		if b := rec.AppendJSON(nil); !json.Valid(b) {
			t.Fatalf("invalid JSON: %s", b)
		}
	})
	// An IPv6 zone is any bytes too (netip.ParseAddr takes anything after
	// the %, the binary format anything after the 16 address bytes).
	t.Run("zone", func(t *testing.T) {
		check(t, &Record{Src: Endpoint{IP: netip.MustParseAddr("fe80::1").WithZone(nasty)}})
	})
}

// TestAppendJSONNonFiniteDuration: a decoded record's duration_s may be
// NaN or infinite (the binary format carries any float64); JSON has no
// number for them.
func TestAppendJSONNonFiniteDuration(t *testing.T) {
	for _, d := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		rec := &Record{DurationS: d}
		var back Record
		if b := rec.AppendJSON(nil); !json.Valid(b) {
			t.Errorf("duration %v: invalid JSON: %s", d, b)
		} else if err := json.Unmarshal(b, &back); err != nil {
			t.Errorf("duration %v: %v", d, err)
		}
	}
}

// leafPaths returns the field index paths of every leaf field of Record,
// as TestBinaryEveryField walks them.
func leafPaths() [][]int {
	var paths [][]int
	var walk func(typ reflect.Type, path []int)
	walk = func(typ reflect.Type, path []int) {
		for i := range typ.NumField() {
			p := append(append([]int(nil), path...), i)
			ft := typ.Field(i).Type
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
	return paths
}

// fieldAt returns a new record with the objects on path p allocated, the
// field at p, and its name.
func fieldAt(p []int) (*Record, reflect.Value, string) {
	rec := new(Record)
	v := reflect.ValueOf(rec).Elem()
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
	return rec, v, name
}

// FuzzBinaryRecord is the differential fuzz of the codec from the record
// side: decode(encode(r)) == r for random records with any times (before
// 1970, after 2262, nanoseconds), durations (NaN, -0, infinities), IPv6
// zones and strings, through DecodeBinary and through a Decoder that
// decoded other records into the same record before.
func FuzzBinaryRecord(f *testing.F) {
	f.Add(uint64(1), int64(-1), int64(999_999_999), math.Float64bits(math.Copysign(0, -1)), "eth0")
	f.Add(uint64(2), int64(9_300_000_000), int64(1), math.Float64bits(math.NaN()), "")
	f.Add(uint64(3), int64(-62_135_596_801), int64(5), math.Float64bits(math.Inf(-1)), "\x00\xff\"")
	var dec Decoder
	var reused Record
	f.Fuzz(func(t *testing.T, seed uint64, sec, nsec int64, dur uint64, zone string) {
		want := randomRecord(rand.New(rand.NewPCG(seed, 0)))
		want.Start = time.Unix(sec, nsec%1e9).UTC()
		want.End = time.Unix(-sec, -nsec%1e9).UTC()
		want.DurationS = math.Float64frombits(dur)
		if want.Dst.IP.Is6() {
			want.Dst.IP = want.Dst.IP.WithZone(zone)
		}
		b := want.AppendBinary(nil)
		var got Record
		if err := DecodeBinary(b, &got); err != nil {
			t.Fatalf("decode: %v", err)
		}
		assertSameRecord(t, &got, want)
		if err := dec.Decode(b, &reused); err != nil {
			t.Fatalf("Decoder: %v", err)
		}
		assertSameRecord(t, &reused, want)
	})
}

// assertSameRecord compares records as the codec promises to keep them:
// durations bit for bit (NaN, -0), an empty list as an absent one.
func assertSameRecord(t *testing.T, got, want *Record) {
	t.Helper()
	if g, w := math.Float64bits(got.DurationS), math.Float64bits(want.DurationS); g != w {
		t.Fatalf("duration_s %x, want %x", g, w)
	}
	g, w := *got, *want
	g.DurationS, w.DurationS = 0, 0
	if !reflect.DeepEqual(normalized(reflect.ValueOf(&g)).Interface(), normalized(reflect.ValueOf(&w)).Interface()) {
		t.Fatalf("decode(encode(r)) != r\n got %+v\nwant %+v", g, w)
	}
}

// normalized returns a deep copy of v with empty slices made nil.
func normalized(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		c := reflect.New(v.Type().Elem())
		c.Elem().Set(normalized(v.Elem()))
		return c
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() || v.Type() == reflect.TypeFor[netip.Addr]() {
			return v
		}
		c := reflect.New(v.Type()).Elem()
		for i := range v.NumField() {
			c.Field(i).Set(normalized(v.Field(i)))
		}
		return c
	case reflect.Slice:
		if v.Len() == 0 {
			return reflect.Zero(v.Type())
		}
	}
	return v
}

// TestDecoderNoLeak decodes a full record, then the same record with one
// leaf field cleared (each in turn, found by reflection), into one record
// with one Decoder: the cleared field must not keep the first record's
// value.
func TestDecoderNoLeak(t *testing.T) {
	var dec Decoder
	var r Record
	for _, p := range leafPaths() {
		b := full()
		v := reflect.ValueOf(b).Elem()
		name := "Record"
		for _, i := range p {
			if v.Kind() == reflect.Pointer {
				v = v.Elem()
			}
			name += "." + v.Type().Field(i).Name
			v = v.Field(i)
		}
		v.Set(reflect.Zero(v.Type()))
		t.Run(name, func(t *testing.T) {
			if err := dec.Decode(full().AppendBinary(nil), &r); err != nil {
				t.Fatal(err)
			}
			if err := dec.Decode(b.AppendBinary(nil), &r); err != nil {
				t.Fatal(err)
			}
			assertSameRecord(t, &r, b)
		})
	}
}
