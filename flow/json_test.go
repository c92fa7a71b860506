package flow

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"
)

// full returns a record with every field set, so the round-trip test notices
// a field that AppendJSON forgets.
func full() *Record {
	return &Record{
		Schema:      Schema,
		ID:          "f0123456789abcde",
		CommunityID: "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
		Start:       time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC),
		End:         time.Date(2024, 5, 1, 12, 0, 3, 5, time.UTC),
		DurationS:   2.876543216,
		EndReason:   EndFIN,
		Proto:       "tcp",
		VLAN:        []uint16{10, 20},
		Src: Endpoint{IP: netip.MustParseAddr("10.1.2.3"), Port: 51515, MAC: MAC{0xdc, 0xa6, 0x32, 1, 2, 3},
			Packets: 10, Bytes: 1000, PayloadBytes: 480, Name: "laptop-17.corp", NameSource: "dns", Hostname: "LAPTOP-17"},
		Dst: Endpoint{IP: netip.MustParseAddr("2001:db8::1"), Port: 443, MAC: MAC{0, 0x1b, 0x21, 4, 5, 6},
			Packets: 8, Bytes: 6000, PayloadBytes: 5600, Name: "relay-1.net.anydesk.com", NameSource: "sni", Hostname: "relay"},
		TCP:    &TCP{SrcFlags: FlagSYN | FlagACK | FlagFIN, DstFlags: FlagRST, History: "ShADadFr"},
		ICMP:   &ICMP{Type: 3, Code: 1},
		Tunnel: &Tunnel{Type: "vxlan", Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2"), VNI: 42},
		TLS: &TLS{SNI: "relay-1.net.anydesk.com", ALPN: []string{"h2", "http/1.1"}, Version: "1.3", JA3: "773906b0efdefa24a7f2b8eb6985bf37",
			JA3String: "771,4865-4866,0-23-65281,29-23,0", JA4: "t13d1516h2_8daaf6152771_e5627efa2ab1", ServerVer: "1.2",
			Cipher: "TLS_AES_128_GCM_SHA256", CertSubject: "CN=AnyDesk Client", CertIssuer: "CN=AnyDesk Client"},
		QUIC: &QUIC{Version: "1"},
		DNS: &DNS{Query: "example.com", Queries: []string{"example.com", "www.example.com"}, QType: "A", RCode: "NOERROR",
			Answers: []string{"93.184.216.34"}},
		SOCKS:     &SOCKS{Version: 5, Target: "relay.example:443"},
		Direction: "outbound",
		Sensor:    &Sensor{ID: "gw-nyc-1", Site: "nyc"},
		Device: &Device{IP: netip.MustParseAddr("10.1.2.3"), MAC: MAC{0xdc, 0xa6, 0x32, 1, 2, 3}, Vendor: "Raspberry Pi Trading Ltd", RandomizedMAC: true,
			Hostname: "pikvm", ID: "LT-0042", Owner: "j.doe", AssignedSite: "nyc", AssignedCountry: "US", HomeTimezone: "America/New_York", MatchedBy: "mac"},
		Egress: &Egress{IP: netip.MustParseAddr("203.0.113.77"), Port: 51820, Source: "wireguard", Peer: "k3y="},
		App:    "anydesk", AppSource: "alpn", AppCategory: "remote_access",
		HTTP: &HTTP{Method: "CONNECT", Host: "example.com:443", Path: "/x", UserAgent: "curl/8 \"q\"", Status: 200},
		SSH:  &SSH{Client: "SSH-2.0-OpenSSH_9.6", Server: "SSH-2.0-dropbear"},
		DHCP: &DHCP{MsgTypes: []string{"REQUEST", "ACK"}, ClientMAC: MAC{0xdc, 0xa6, 0x32, 1, 2, 3}, RequestedIP: "10.0.0.5",
			AssignedIP: "10.0.0.5", Hostname: "pikvm", VendorClass: "dhcpcd-9", ClientID: "01dca632010203"},
	}
}

func TestJSONRoundTrip(t *testing.T) {
	want := full()
	assertAllSet(t, reflect.ValueOf(*want), "Record")
	b := want.AppendJSON(nil)
	if !json.Valid(b) {
		t.Fatalf("invalid JSON: %s", b)
	}
	var got Record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("round trip differs\n got %+v\nwant %+v\njson %s", got, *want, b)
	}
}

// assertAllSet fails for every zero-valued field, recursively.
func assertAllSet(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			t.Errorf("%s is nil in the fixture", path)
			return
		}
		assertAllSet(t, v.Elem(), path)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() || v.Type() == reflect.TypeFor[netip.Addr]() {
			if v.IsZero() {
				t.Errorf("%s is zero in the fixture", path)
			}
			return
		}
		for i := range v.NumField() {
			assertAllSet(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	default:
		if v.IsZero() {
			t.Errorf("%s is zero in the fixture", path)
		}
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s", "ctl\x00\x1f\n\t", "<&>", "bad\xff\xfeutf8", "é中\u2028\u2029", "x\xc3"} {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestOmitted(t *testing.T) {
	r := full()
	r.VLAN, r.TCP, r.ICMP, r.Tunnel, r.Src.MAC = nil, nil, nil, nil, MAC{}
	var m map[string]any
	if err := json.Unmarshal(r.AppendJSON(nil), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"vlan", "tcp", "icmp", "tunnel"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s present though empty", k)
		}
	}
	if _, ok := m["src"].(map[string]any)["mac"]; ok {
		t.Error("src.mac present though zero")
	}
}

func FuzzAppendTime(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(int64(-62167219200), int64(1))
	f.Fuzz(func(t *testing.T, sec, ns int64) {
		tm := time.Unix(sec%400000000000, ns%1e9)
		want := `"` + tm.UTC().Format(TimeLayout) + `"`
		if got := string(appendTime(nil, tm)); got != want {
			t.Errorf("appendTime(%v) = %s, want %s", tm, got, want)
		}
	})
}

func FuzzAppendString(f *testing.F) {
	f.Add("héllo\x00\xff")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	r := full()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendJSON(buf[:0])
	}
}

func TestAppendTime(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 0, time.FixedZone("x", 3600)),
		time.Date(10000, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Unix(0, 0),
		time.Date(2000, 2, 29, 23, 59, 59, 999999999, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 5, time.UTC),
		time.Date(0, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		want := `"` + tm.UTC().Format(TimeLayout) + `"`
		if got := string(appendTime(nil, tm)); got != want {
			t.Errorf("appendTime(%v) = %s, want %s", tm, got, want)
		}
	}
}

// TestClone checks that a clone shares no memory with the original: after
// the original's every field is overwritten, the clone still encodes as
// before.
func TestClone(t *testing.T) {
	r := full()
	want := string(r.AppendJSON(nil))
	c := r.Clone()
	r.VLAN[0], r.TLS.ALPN[0], r.DNS.Answers[0], r.DNS.Queries[0], r.DHCP.MsgTypes[0] = 1, "x", "x", "x", "x"
	*r.TCP, *r.ICMP, *r.Tunnel, *r.TLS, *r.QUIC, *r.DNS, *r.HTTP, *r.SSH, *r.DHCP, *r.SOCKS = TCP{}, ICMP{}, Tunnel{}, TLS{}, QUIC{}, DNS{}, HTTP{}, SSH{}, DHCP{}, SOCKS{}
	*r.Sensor, *r.Device = Sensor{}, Device{}
	if got := string(c.AppendJSON(nil)); got != want {
		t.Errorf("clone changed with its original:\n got %s\nwant %s", got, want)
	}
}

func TestAppendDuration(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	check := func(s float64) {
		t.Helper()
		want := strconv.FormatFloat(s, 'f', -1, 64)
		if math.IsInf(s, 0) || math.IsNaN(s) {
			want = "null"
		}
		if got := string(appendDuration(nil, s)); got != want {
			t.Fatalf("appendDuration(%v) = %s, want %s", s, got, want)
		}
	}
	for _, s := range []float64{0, math.Copysign(0, -1), -1.5, 1e-9, 0.1, 1, 1.5, 299.999999999, 1<<20 - 1e-9, 1 << 20, 1e300, math.Inf(1), math.Inf(-1), math.NaN(), 1.0000000001} {
		check(s)
	}
	for range 200000 {
		ns := r.Int64N(int64(1) << (1 + r.IntN(62)))
		check(float64(ns) / 1e9)
		check(r.Float64() * math.Pow(10, float64(r.IntN(12)-6)))
	}
}

func TestSpecial(t *testing.T) {
	for c := range 256 {
		for pos := range 8 {
			for _, fill := range []byte{'a', ' ', '~'} {
				var w [8]byte
				for i := range w {
					w[i] = fill
				}
				w[pos] = byte(c)
				want := c >= utf8.RuneSelf || !plain[c]
				if got := special(binary.LittleEndian.Uint64(w[:])); got != want {
					t.Fatalf("special(%q) = %v, want %v", w, got, want)
				}
			}
		}
	}
}

func TestAppendUint(t *testing.T) {
	for _, v := range []uint64{0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 65535, 1e15, 1e19 - 1, 1e19, math.MaxUint64} {
		if got, want := string(appendUint(nil, v)), strconv.FormatUint(v, 10); got != want {
			t.Errorf("appendUint(%d) = %s", v, got)
		}
		if v <= math.MaxInt64 {
			if got, want := string(appendInt(nil, -int64(v))), strconv.FormatInt(-int64(v), 10); got != want {
				t.Errorf("appendInt(%d) = %s", -int64(v), got)
			}
		}
	}
	if got := string(appendInt(nil, math.MinInt64)); got != strconv.FormatInt(math.MinInt64, 10) {
		t.Errorf("appendInt(MinInt64) = %s", got)
	}
}

func TestAppendAddrAndMAC(t *testing.T) {
	for _, s := range []string{"0.0.0.0", "10.0.1.249", "255.255.255.255", "1.22.133.4", "2001:db8::1", "::ffff:10.0.0.1", "fe80::1%eth0",
		"::", "::1", "1::", "1:0:0:2:0:0:0:3", "1:0:0:2:0:0:3:4", "0:0:1:0:0:2:0:0", "1:2:3:4:5:6:7:8", "1:0:2:0:3:0:4:0", "abcd:ef01::"} {
		a := netip.MustParseAddr(s)
		if got := string(appendAddr(nil, a)); got != a.String() {
			t.Errorf("appendAddr(%s) = %s", s, got)
		}
	}
	m := MAC{0, 0x1b, 0x21, 0xab, 0xcd, 0xef}
	if got, want := string(appendMAC(nil, m)), m.String(); got != want {
		t.Errorf("appendMAC = %s, want %s", got, want)
	}
}

// TestAppendJSONMatchesEncodingJSON compares AppendJSON with what
// encoding/json writes for random records. encoding/json encodes a
// mirror of the record, built by reflection with the same fields and
// tags, that differs only in writing times in TimeLayout (it would write
// time.Time in RFC 3339 with the fraction's trailing zeros trimmed), and
// has none of the record's JSON methods.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	m := jsonMirrors{}
	for i := range 5000 {
		rec := randomRecord(r)
		want, err := json.Marshal(m.value(reflect.ValueOf(rec)).Interface())
		if err != nil {
			t.Fatal(err)
		}
		if got := rec.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("record %d: AppendJSON differs from encoding/json\n got %s\nwant %s", i, got, want)
		}
	}
}

// layoutTime is a time that encoding/json writes in TimeLayout.
type layoutTime time.Time

func (t layoutTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(TimeLayout) + `"`), nil
}

// jsonMirrors maps the types of a record to their mirrors: every struct
// of this package to a struct of the same fields and tags, times to
// layoutTimes.
type jsonMirrors map[reflect.Type]reflect.Type

func (m jsonMirrors) value(v reflect.Value) reflect.Value {
	mt := m.of(v.Type())
	switch {
	case mt == v.Type():
		return v
	case v.Type() == reflect.TypeFor[time.Time]():
		return reflect.ValueOf(layoutTime(v.Interface().(time.Time)))
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			return reflect.Zero(mt)
		}
		p := reflect.New(mt.Elem())
		p.Elem().Set(m.value(v.Elem()))
		return p
	}
	c := reflect.New(mt).Elem()
	for i := range v.NumField() {
		c.Field(i).Set(m.value(v.Field(i)))
	}
	return c
}

func (m jsonMirrors) of(t reflect.Type) reflect.Type {
	if mt, ok := m[t]; ok {
		return mt
	}
	mt := t
	switch {
	case t == reflect.TypeFor[time.Time]():
		mt = reflect.TypeFor[layoutTime]()
	case t.Kind() == reflect.Pointer:
		if e := m.of(t.Elem()); e != t.Elem() {
			mt = reflect.PointerTo(e)
		}
	case t.Kind() == reflect.Struct && t.PkgPath() == reflect.TypeFor[Record]().PkgPath():
		var fields []reflect.StructField
		for i := range t.NumField() {
			f := t.Field(i)
			fields = append(fields, reflect.StructField{Name: f.Name, Type: m.of(f.Type), Tag: f.Tag})
		}
		mt = reflect.StructOf(fields)
	}
	m[t] = mt
	return mt
}

// randomRecord fills a record's fields at random, by reflection: each
// field set or left zero, strings holding any bytes (a decoded record's
// may), addresses of every form, durations in the range where
// encoding/json writes floats as AppendJSON does.
func randomRecord(r *rand.Rand) *Record {
	var rec Record
	fillRandom(r, reflect.ValueOf(&rec).Elem())
	return &rec
}

func fillRandom(r *rand.Rand, v reflect.Value) {
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Unix(r.Int64N(1e10)-1e9, r.Int64N(1e9)*int64(r.IntN(2))).UTC()))
		return
	case reflect.TypeFor[netip.Addr]():
		addrs := []string{"", "10.1.2.3", "255.0.0.1", "::", "::1", "2001:db8::1", "2001:db8:0:0:1:0:0:1", "1:0:0:2::3", "fe80::1%eth0", "fe80::2%a\"\\<\xff",
			"::ffff:10.0.0.1", "1:2:3:4:5:6:7:8", "0:0:1::", "a:0:b:0:c:0:d:0", "2001:db8:0:1:1:1:1:1", "ffff:0:0:ffff::ffff"}
		var a netip.Addr
		switch i := r.IntN(len(addrs) + 2); {
		case i < len(addrs):
			if addrs[i] != "" {
				a = netip.MustParseAddr(addrs[i])
			}
		case i == len(addrs):
			a = netip.AddrFrom4([4]byte{byte(r.UintN(256)), byte(r.UintN(256)), byte(r.UintN(256)), byte(r.UintN(256))})
		default:
			var a16 [16]byte
			for j := range a16 {
				if r.IntN(3) == 0 {
					a16[j] = byte(r.UintN(256))
				}
			}
			a = netip.AddrFrom16(a16)
		}
		v.Set(reflect.ValueOf(a))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if r.IntN(4) != 0 {
				fillRandom(r, v.Field(i))
			}
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillRandom(r, v.Elem())
	case reflect.Slice:
		n := 1 + r.IntN(3)
		v.Set(reflect.MakeSlice(v.Type(), n, n))
		for i := range n {
			fillRandom(r, v.Index(i))
		}
	case reflect.Array:
		for i := range v.Len() {
			fillRandom(r, v.Index(i))
		}
	case reflect.String:
		v.SetString(randomString(r))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(r.Uint64() >> r.UintN(64) >> (64 - v.Type().Bits()))
	case reflect.Int:
		v.SetInt(r.Int64() >> r.UintN(64))
	case reflect.Float64:
		if r.IntN(2) == 0 {
			v.SetFloat(float64(r.Int64N(1e15)) / 1e9) // a sensor's, from nanoseconds
		} else {
			v.SetFloat(math.Copysign(math.Pow(10, 12*r.Float64()-6), r.Float64()-0.5))
		}
	default:
		panic("fillRandom: teach it " + v.Type().String())
	}
}

func randomString(r *rand.Rand) string {
	const (
		names = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/,+="
		other = "\"\\<>&\x00\x1f\n\r\t\b\f\x7f é中\u2028\u2029\xff\xc3"
	)
	b := make([]byte, 0, 40)
	for range r.IntN(40) {
		if r.IntN(8) != 0 {
			b = append(b, names[r.IntN(len(names))])
		} else {
			b = append(b, other[r.IntN(len(other))])
		}
	}
	return string(b)
}
