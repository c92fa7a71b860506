package flow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// The binary wire format of a Record, used on the flows topic
// (docs/schema.md, "Wire format"): one version byte, then the record as a
// length-delimited Protocol Buffers message (the varint length, then the
// message, as protodelim and Java's parseDelimitedFrom read it), so
// consumers in other languages decode it with code generated from the
// .proto in the docs after skipping the first byte. Fields are tagged, so a
// field added within a version is skipped by older decoders; zero values
// are omitted, as proto3 does. The length catches a truncated record.

// WireVersion is the first byte of every binary record.
const WireVersion = 1

// ContentType is the MIME type of a binary record, as the Kafka message's
// content-type header carries it; ContentTypeJSON that of a JSON record.
const (
	ContentType     = "application/x-edgeward-flow; v=1"
	ContentTypeJSON = "application/json"
)

// ErrVersion is returned (wrapped) by DecodeBinary for a record whose
// version byte this build does not know.
var ErrVersion = errors.New("unknown flow wire format version")

// DecodeError says where a binary record is damaged.
type DecodeError struct {
	Offset int    // byte offset in the record, version byte included
	Field  string // the JSON name of the field being decoded, if known
	Msg    string
}

func (e *DecodeError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("flow record: byte %d (%s): %s", e.Offset, e.Field, e.Msg)
	}
	return fmt.Sprintf("flow record: byte %d: %s", e.Offset, e.Msg)
}

// Protocol Buffers wire types.
const (
	wtVarint  = 0
	wtFixed64 = 1
	wtBytes   = 2
	wtFixed32 = 5
)

// Field numbers of Record. They are part of the format: never reuse one.
const (
	fSchema      = 1
	fID          = 2
	fCommunityID = 3
	fStart       = 4
	fEnd         = 5
	fDuration    = 6
	fEndReason   = 7
	fProto       = 8
	fVLAN        = 9
	fSrc         = 10
	fDst         = 11
	fDirection   = 12
	fSensor      = 13
	fDevice      = 14
	fEgress      = 15
	fApp         = 16
	fAppSource   = 17
	fAppCategory = 18
	fTCP         = 19
	fICMP        = 20
	fTunnel      = 21
	fTLS         = 22
	fQUIC        = 23
	fDNS         = 24
	fHTTP        = 25
	fSSH         = 26
	fDHCP        = 27
	fSOCKS       = 28
)

// AppendBinary appends the record in the binary wire format, version byte
// first. Like AppendJSON it is on the exporter's hot path and does not
// allocate beyond growing b.
func (r *Record) AppendBinary(b []byte) []byte {
	// The body's length goes in two bytes reserved up front (a non-minimal
	// varint when short, which every varint reader accepts), so that only
	// records over 16 KiB move.
	b = append(b, WireVersion, 0, 0)
	start := len(b)
	b = r.appendBody(b)
	n := len(b) - start
	if n < 1<<14 {
		b[start-2], b[start-1] = byte(n)|0x80, byte(n>>7)
		return b
	}
	var lb [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(lb[:], uint64(n))
	for range k - 2 {
		b = append(b, 0)
	}
	copy(b[start+k-2:], b[start:start+n])
	copy(b[start-2:], lb[:k])
	return b
}

func (r *Record) appendBody(b []byte) []byte {
	b = putString(b, fSchema, r.Schema)
	b = putString(b, fID, r.ID)
	b = putString(b, fCommunityID, r.CommunityID)
	b = putTime(b, fStart, r.Start)
	b = putTime(b, fEnd, r.End)
	if r.DurationS != 0 || math.Signbit(r.DurationS) {
		b = appendTag(b, fDuration, wtFixed64)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.DurationS))
	}
	b = putString(b, fEndReason, string(r.EndReason))
	b = putString(b, fProto, r.Proto)
	var n int
	if len(r.VLAN) > 0 {
		b, n = beginMsg(b, fVLAN)
		for _, v := range r.VLAN {
			b = binary.AppendUvarint(b, uint64(v))
		}
		b = endMsg(b, n)
	}
	b, n = beginMsg(b, fSrc)
	b = endMsg(r.Src.appendBinary(b), n)
	b, n = beginMsg(b, fDst)
	b = endMsg(r.Dst.appendBinary(b), n)
	b = putString(b, fDirection, r.Direction)
	if s := r.Sensor; s != nil {
		b, n = beginMsg(b, fSensor)
		b = putString(b, 1, s.ID)
		b = putString(b, 2, s.Site)
		b = endMsg(b, n)
	}
	if d := r.Device; d != nil {
		b, n = beginMsg(b, fDevice)
		b = putAddr(b, 1, d.IP)
		b = putMAC(b, 2, d.MAC)
		b = putString(b, 3, d.Vendor)
		if d.RandomizedMAC {
			b = putUint(b, 4, 1)
		}
		b = putString(b, 5, d.Hostname)
		b = putString(b, 6, d.ID)
		b = putString(b, 7, d.Owner)
		b = putString(b, 8, d.AssignedSite)
		b = putString(b, 9, d.AssignedCountry)
		b = putString(b, 10, d.HomeTimezone)
		b = putString(b, 11, d.MatchedBy)
		b = endMsg(b, n)
	}
	if e := r.Egress; e != nil {
		b, n = beginMsg(b, fEgress)
		b = putAddr(b, 1, e.IP)
		b = putUint(b, 2, uint64(e.Port))
		b = putString(b, 3, e.Source)
		b = putString(b, 4, e.Peer)
		b = endMsg(b, n)
	}
	b = putString(b, fApp, r.App)
	b = putString(b, fAppSource, r.AppSource)
	b = putString(b, fAppCategory, r.AppCategory)
	if t := r.TCP; t != nil {
		b, n = beginMsg(b, fTCP)
		b = putUint(b, 1, uint64(t.SrcFlags))
		b = putUint(b, 2, uint64(t.DstFlags))
		b = putString(b, 3, t.History)
		b = endMsg(b, n)
	}
	if c := r.ICMP; c != nil {
		b, n = beginMsg(b, fICMP)
		b = putUint(b, 1, uint64(c.Type))
		b = putUint(b, 2, uint64(c.Code))
		b = endMsg(b, n)
	}
	if t := r.Tunnel; t != nil {
		b, n = beginMsg(b, fTunnel)
		b = putString(b, 1, t.Type)
		b = putAddr(b, 2, t.Src)
		b = putAddr(b, 3, t.Dst)
		b = putUint(b, 4, uint64(t.VNI))
		b = endMsg(b, n)
	}
	return r.appendBinaryMeta(b)
}

func (r *Record) appendBinaryMeta(b []byte) []byte {
	var n int
	if t := r.TLS; t != nil {
		b, n = beginMsg(b, fTLS)
		b = putString(b, 1, t.SNI)
		b = putStrings(b, 2, t.ALPN)
		b = putString(b, 3, t.Version)
		b = putString(b, 4, t.JA3)
		b = putString(b, 5, t.JA3String)
		b = putString(b, 6, t.JA4)
		b = putString(b, 7, t.ServerVer)
		b = putString(b, 8, t.Cipher)
		b = putString(b, 9, t.CertSubject)
		b = putString(b, 10, t.CertIssuer)
		b = endMsg(b, n)
	}
	if q := r.QUIC; q != nil {
		b, n = beginMsg(b, fQUIC)
		b = putString(b, 1, q.Version)
		b = endMsg(b, n)
	}
	if d := r.DNS; d != nil {
		b, n = beginMsg(b, fDNS)
		b = putString(b, 1, d.Query)
		b = putStrings(b, 2, d.Queries)
		b = putString(b, 3, d.QType)
		b = putString(b, 4, d.RCode)
		b = putStrings(b, 5, d.Answers)
		b = endMsg(b, n)
	}
	if h := r.HTTP; h != nil {
		b, n = beginMsg(b, fHTTP)
		b = putString(b, 1, h.Method)
		b = putString(b, 2, h.Host)
		b = putString(b, 3, h.Path)
		b = putString(b, 4, h.UserAgent)
		b = putUint(b, 5, uint64(int64(h.Status)))
		b = endMsg(b, n)
	}
	if s := r.SSH; s != nil {
		b, n = beginMsg(b, fSSH)
		b = putString(b, 1, s.Client)
		b = putString(b, 2, s.Server)
		b = endMsg(b, n)
	}
	if d := r.DHCP; d != nil {
		b, n = beginMsg(b, fDHCP)
		b = putStrings(b, 1, d.MsgTypes)
		b = putMAC(b, 2, d.ClientMAC)
		b = putString(b, 3, d.RequestedIP)
		b = putString(b, 4, d.AssignedIP)
		b = putString(b, 5, d.Hostname)
		b = putString(b, 6, d.VendorClass)
		b = putString(b, 7, d.ClientID)
		b = endMsg(b, n)
	}
	if k := r.SOCKS; k != nil {
		b, n = beginMsg(b, fSOCKS)
		b = putUint(b, 1, uint64(int64(k.Version)))
		b = putString(b, 2, k.Target)
		b = endMsg(b, n)
	}
	return b
}

func (e *Endpoint) appendBinary(b []byte) []byte {
	b = putAddr(b, 1, e.IP)
	b = putUint(b, 2, uint64(e.Port))
	b = putMAC(b, 3, e.MAC)
	b = putUint(b, 4, e.Packets)
	b = putUint(b, 5, e.Bytes)
	b = putUint(b, 6, e.PayloadBytes)
	b = putString(b, 7, e.Name)
	b = putString(b, 8, e.NameSource)
	return putString(b, 9, e.Hostname)
}

func appendTag(b []byte, num, wt int) []byte {
	t := uint64(num)<<3 | uint64(wt)
	if t < 0x80 {
		return append(b, byte(t))
	}
	return binary.AppendUvarint(b, t)
}

func putUint(b []byte, num int, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = appendTag(b, num, wtVarint)
	return binary.AppendUvarint(b, v)
}

func putString(b []byte, num int, s string) []byte {
	if s == "" {
		return b
	}
	b = appendTag(b, num, wtBytes)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func putStrings(b []byte, num int, l []string) []byte {
	for _, s := range l {
		b = appendTag(b, num, wtBytes)
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// putAddr writes 4 or 16 address bytes, then the IPv6 zone if any.
func putAddr(b []byte, num int, a netip.Addr) []byte {
	switch {
	case a.Is4():
		b = appendTag(b, num, wtBytes)
		a4 := a.As4()
		return append(append(b, 4), a4[:]...)
	case a.Is6():
		z := a.Zone()
		b = appendTag(b, num, wtBytes)
		b = binary.AppendUvarint(b, uint64(16+len(z)))
		a16 := a.As16()
		return append(append(b, a16[:]...), z...)
	}
	return b
}

func putMAC(b []byte, num int, m MAC) []byte {
	if m.IsZero() {
		return b
	}
	b = appendTag(b, num, wtBytes)
	return append(append(b, 6), m[:]...)
}

// putTime writes a google.protobuf.Timestamp: seconds (1) and nanos (2).
func putTime(b []byte, num int, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	b, n := beginMsg(b, num)
	b = putUint(b, 1, uint64(t.Unix()))
	b = putUint(b, 2, uint64(t.Nanosecond()))
	return endMsg(b, n)
}

// beginMsg starts a length-delimited field, reserving one byte for its
// length; endMsg fills it in, moving the contents when the length needs
// more. Most nested messages are shorter than 128 bytes.
func beginMsg(b []byte, num int) ([]byte, int) {
	b = appendTag(b, num, wtBytes)
	b = append(b, 0)
	return b, len(b)
}

func endMsg(b []byte, start int) []byte {
	n := len(b) - start
	if n < 0x80 {
		b[start-1] = byte(n)
		return b
	}
	var lb [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(lb[:], uint64(n))
	for range k - 1 {
		b = append(b, 0)
	}
	copy(b[start+k-1:], b[start:start+n])
	copy(b[start-1:], lb[:k])
	return b
}

// DecodeBinary decodes a binary record into r, which it overwrites. It
// reuses r's nested objects and slices where it can, and allocates one
// string per call for all of the record's strings (they share it: a
// consumer that keeps one small string for long may prefer strings.Clone).
// A record of an unknown version returns an error wrapping ErrVersion; a
// damaged one a *DecodeError with the byte offset.
func DecodeBinary(b []byte, r *Record) error {
	return DecodeString(string(b), r)
}

// DecodeString is DecodeBinary for a record held in a string; the record's
// strings are slices of s, so it does not allocate when r is reused. A
// consumer can convert a fetched batch of records to one string and decode
// each from its slice of it.
func DecodeString(s string, r *Record) error {
	if len(s) == 0 {
		return &DecodeError{Msg: "empty record"}
	}
	if s[0] != WireVersion {
		if s[0] == '{' {
			return fmt.Errorf("%w %d (this looks like a JSON record, content type %s)", ErrVersion, s[0], ContentTypeJSON)
		}
		return fmt.Errorf("%w %d (this build reads version %d)", ErrVersion, s[0], WireVersion)
	}
	sp := spares{r.TCP, r.ICMP, r.Tunnel, r.TLS, r.QUIC, r.DNS, r.HTTP, r.SSH, r.DHCP, r.SOCKS, r.Sensor, r.Device, r.Egress}
	vlan := r.VLAN
	*r = Record{}
	d := decoder{s: s, i: 1, end: len(s)}
	n := d.uvarint()
	if d.err != nil {
		return d.err
	}
	if n != uint64(len(s)-d.i) {
		what := "truncated"
		if n < uint64(len(s)-d.i) {
			what = "trailing bytes"
		}
		return &DecodeError{Offset: 1, Msg: fmt.Sprintf("%s: the header says %d bytes follow, %d do", what, n, len(s)-d.i)}
	}
	d.record(r, &sp, vlan)
	return d.err
}

// spares are a record's nested objects from before DecodeBinary, for reuse.
type spares struct {
	tcp    *TCP
	icmp   *ICMP
	tunnel *Tunnel
	tls    *TLS
	quic   *QUIC
	dns    *DNS
	http   *HTTP
	ssh    *SSH
	dhcp   *DHCP
	socks  *SOCKS
	sensor *Sensor
	device *Device
	egress *Egress
}

// take returns the spare *p, or a new value, and clears the spare. The
// caller zeroes a reused value, keeping its slices' memory.
func take[T any](p **T) *T {
	if v := *p; v != nil {
		*p = nil
		return v
	}
	return new(T)
}

// decoder reads one record. end is the end of the message being read:
// nested messages narrow it, so nothing reads past a length prefix.
//
// next reads a whole field, tag and value, keeping its position in a local
// variable (decoding is mostly that loop); the handlers for each kind of
// value (str, uint, enter, ...) only check the wire type and take the value,
// so they inline. A value that cannot be read comes back with wire type
// wtBad, and the handler, which knows the field's name, reports it.
type decoder struct {
	s   string // the record: its strings are slices of it
	i   int
	end int
	// the value next read: a varint, or the bounds of a length-delimited
	// or fixed-size value; at is where the value starts
	val    uint64
	vs, ve int
	at     int
	badMsg string // why next returned wtBad

	err   error
	obj   string // the endpoint being read ("src", "dst"), for errors
	field string // JSON name of the field being read, for errors
}

// wtBad marks a field whose value next could not read.
const wtBad = 8

func (d *decoder) fail(off int, msg string) {
	if d.err == nil {
		f := d.field
		if d.obj != "" && f != "" {
			f = d.obj + "." + f
		}
		d.err = &DecodeError{Offset: off, Field: f, Msg: msg}
	}
	d.i = d.end
}

// uvarint reads a varint at i (the header, packed VLAN ids).
func (d *decoder) uvarint() uint64 {
	var v uint64
	at := d.i
	for shift := 0; d.i < d.end; shift += 7 {
		c := d.s[d.i]
		d.i++
		if shift == 63 && c > 1 {
			d.fail(at, "varint overflows 64 bits")
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
	d.fail(at, "truncated")
	return 0
}

// next reads the next field; ok is false at the end of the message or
// after an error.
func (d *decoder) next() (num, wt int, ok bool) {
	s, i, end := d.s, d.i, d.end
	if i >= end || i >= len(s) {
		return 0, 0, false
	}
	tagAt := i
	t := uint64(s[i])
	i++
	if t >= 0x80 {
		t &= 0x7f
		for shift := 7; ; shift += 7 {
			if i >= end || shift > 28 {
				d.field = ""
				d.fail(tagAt, "bad field tag")
				return 0, 0, false
			}
			c := s[i]
			i++
			t |= uint64(c&0x7f) << shift
			if c < 0x80 {
				break
			}
		}
	}
	if t < 8 {
		d.field = ""
		d.fail(tagAt, "bad field number 0")
		return 0, 0, false
	}
	num, wt = int(t>>3), int(t&7)
	d.at = i
	switch wt {
	case wtVarint:
		var v uint64
		for shift := 0; ; shift += 7 {
			if i >= end {
				return d.bad(num, "truncated")
			}
			c := s[i]
			i++
			if shift == 63 && c > 1 {
				return d.bad(num, "varint overflows 64 bits")
			}
			v |= uint64(c&0x7f) << shift
			if c < 0x80 {
				break
			}
		}
		d.val = v
	case wtBytes:
		var n uint64
		for shift := 0; ; shift += 7 {
			if i >= end {
				return d.bad(num, "truncated")
			}
			c := s[i]
			i++
			if shift == 63 && c > 1 {
				return d.bad(num, "varint overflows 64 bits")
			}
			n |= uint64(c&0x7f) << shift
			if c < 0x80 {
				break
			}
		}
		if n > uint64(end-i) {
			return d.bad(num, fmt.Sprintf("length %d runs past the end (%d bytes left)", n, end-i))
		}
		d.vs, d.ve = i, i+int(n)
		i += int(n)
	case wtFixed64, wtFixed32:
		n := 8
		if wt == wtFixed32 {
			n = 4
		}
		if end-i < n {
			return d.bad(num, "truncated")
		}
		d.vs, d.ve = i, i+n
		i += n
	default:
		return d.bad(num, fmt.Sprintf("unsupported wire type %d", wt))
	}
	d.i = i
	return num, wt, true
}

// bad hands a field whose value cannot be read to its handler, to report.
func (d *decoder) bad(num int, msg string) (int, int, bool) {
	d.badMsg = msg
	d.i = d.end
	return num, wtBad, true
}

// want checks a field's wire type (reporting a mismatch) and names the
// field for errors.
func (d *decoder) want(wt, want int, name string) bool {
	if wt != want {
		d.badType(wt, want, name)
		return false
	}
	d.field = name
	return true
}

func (d *decoder) badType(wt, want int, name string) {
	d.field = name
	if wt == wtBad {
		d.fail(d.at, d.badMsg)
		return
	}
	d.fail(d.at, fmt.Sprintf("wire type %d, want %d", wt, want))
}

// enter starts reading a nested message; leave restores the outer end.
func (d *decoder) enter(wt int, name string) (outer int, ok bool) {
	if wt != wtBytes {
		d.badType(wt, wtBytes, name)
		return 0, false
	}
	outer, d.i, d.end = d.end, d.vs, d.ve
	return outer, true
}

func (d *decoder) leave(outer int) {
	if d.err == nil {
		d.end = outer
	}
}

// skip passes over a field this decoder does not know (a later addition):
// next has read it already.
func (d *decoder) skip(wt int) {
	if wt == wtBad {
		d.field = ""
		d.fail(d.at, d.badMsg)
	}
}

func (d *decoder) str(wt int, name string) string {
	if wt != wtBytes {
		d.badType(wt, wtBytes, name)
		return ""
	}
	return d.s[d.vs:d.ve]
}

func (d *decoder) uint(wt int, name string, max uint64) uint64 {
	if wt != wtVarint || d.val > max {
		return d.badUint(wt, name, max)
	}
	return d.val
}

func (d *decoder) badUint(wt int, name string, max uint64) uint64 {
	if wt != wtVarint {
		d.badType(wt, wtVarint, name)
		return 0
	}
	d.field = name
	d.fail(d.at, fmt.Sprintf("%d out of range (max %d)", d.val, max))
	return 0
}

func (d *decoder) int(wt int, name string) int {
	return int(int64(d.uint(wt, name, math.MaxUint64)))
}

func (d *decoder) addr(wt int, name string) netip.Addr {
	if !d.want(wt, wtBytes, name) {
		return netip.Addr{}
	}
	s, e := d.vs, d.ve
	var a [16]byte
	switch n := copy(a[:], d.s[s:e]); {
	case n == 0:
		return netip.Addr{}
	case e-s == 4:
		return netip.AddrFrom4([4]byte(a[:4]))
	case e-s == 16:
		return netip.AddrFrom16(a)
	case e-s > 16:
		return netip.AddrFrom16(a).WithZone(d.s[s+16 : e])
	}
	d.fail(d.at, fmt.Sprintf("address of %d bytes, want 4 or 16", e-s))
	return netip.Addr{}
}

func (d *decoder) mac(wt int, name string) MAC {
	if !d.want(wt, wtBytes, name) {
		return MAC{}
	}
	s, e := d.vs, d.ve
	if e-s != 6 {
		d.fail(d.at, fmt.Sprintf("MAC of %d bytes, want 6", e-s))
		return MAC{}
	}
	var m MAC
	copy(m[:], d.s[s:e])
	return m
}

func (d *decoder) time(wt int, name string) time.Time {
	outer, ok := d.enter(wt, name)
	if !ok {
		return time.Time{}
	}
	var sec, nsec uint64
	for {
		num, wt, ok := d.next()
		if !ok {
			break
		}
		switch num {
		case 1:
			sec = d.uint(wt, name, math.MaxUint64)
		case 2:
			nsec = d.uint(wt, name, 999_999_999)
		default:
			d.skip(wt)
		}
	}
	d.leave(outer)
	return time.Unix(int64(sec), int64(nsec)).UTC()
}

func (d *decoder) record(r *Record, sp *spares, vlan []uint16) {
	for {
		num, wt, ok := d.next()
		if !ok {
			return
		}
		switch num {
		case fSchema:
			r.Schema = d.str(wt, "schema")
		case fID:
			r.ID = d.str(wt, "id")
		case fCommunityID:
			r.CommunityID = d.str(wt, "community_id")
		case fStart:
			r.Start = d.time(wt, "start")
		case fEnd:
			r.End = d.time(wt, "end")
		case fDuration:
			if d.want(wt, wtFixed64, "duration_s") {
				var p [8]byte
				copy(p[:], d.s[d.vs:d.ve])
				r.DurationS = math.Float64frombits(binary.LittleEndian.Uint64(p[:]))
			}
		case fEndReason:
			r.EndReason = EndReason(d.str(wt, "end_reason"))
		case fProto:
			r.Proto = d.str(wt, "proto")
		case fVLAN:
			r.VLAN = d.vlan(r.VLAN, vlan, wt)
		case fSrc:
			d.endpoint(&r.Src, wt, "src")
		case fDst:
			d.endpoint(&r.Dst, wt, "dst")
		case fDirection:
			r.Direction = d.str(wt, "direction")
		case fApp:
			r.App = d.str(wt, "app")
		case fAppSource:
			r.AppSource = d.str(wt, "app_source")
		case fAppCategory:
			r.AppCategory = d.str(wt, "app_category")
		default:
			d.nested(r, sp, num, wt)
		}
	}
}

// vlan appends VLAN ids, packed or (as Protocol Buffers allows) one per
// field, to cur, or to spare's memory when cur is nil.
func (d *decoder) vlan(cur, spare []uint16, wt int) []uint16 {
	if wt == wtVarint {
		v := uint16(d.uint(wt, "vlan", math.MaxUint16))
		if cur == nil {
			cur = spare[:0]
		}
		return append(cur, v)
	}
	outer, ok := d.enter(wt, "vlan")
	if !ok {
		return cur
	}
	for d.i < d.end && d.err == nil {
		at := d.i
		v := d.uvarint()
		if v > math.MaxUint16 {
			d.field = "vlan"
			d.fail(at, fmt.Sprintf("VLAN id %d out of range", v))
		}
		if cur == nil {
			cur = spare[:0]
		}
		cur = append(cur, uint16(v))
	}
	d.leave(outer)
	return cur
}

func (d *decoder) endpoint(p *Endpoint, wt int, name string) {
	outer, ok := d.enter(wt, name)
	if !ok {
		return
	}
	d.obj = name
	for {
		num, wt, ok := d.next()
		if !ok {
			break
		}
		switch num {
		case 1:
			p.IP = d.addr(wt, "ip")
		case 2:
			p.Port = uint16(d.uint(wt, "port", math.MaxUint16))
		case 3:
			p.MAC = d.mac(wt, "mac")
		case 4:
			p.Packets = d.uint(wt, "packets", math.MaxUint64)
		case 5:
			p.Bytes = d.uint(wt, "bytes", math.MaxUint64)
		case 6:
			p.PayloadBytes = d.uint(wt, "payload_bytes", math.MaxUint64)
		case 7:
			p.Name = d.str(wt, "name")
		case 8:
			p.NameSource = d.str(wt, "name_source")
		case 9:
			p.Hostname = d.str(wt, "hostname")
		default:
			d.skip(wt)
		}
	}
	d.obj = ""
	d.leave(outer)
}

// nested decodes the record's optional objects. An object that occurs
// twice merges into one, as in Protocol Buffers.
func (d *decoder) nested(r *Record, sp *spares, num, wt int) {
	switch num {
	case fSensor:
		outer, ok := d.enter(wt, "sensor")
		if !ok {
			return
		}
		if r.Sensor == nil {
			r.Sensor = take(&sp.sensor)
			*r.Sensor = Sensor{}
		}
		d.sensor(r.Sensor)
		d.leave(outer)
	case fDevice:
		outer, ok := d.enter(wt, "device")
		if !ok {
			return
		}
		if r.Device == nil {
			r.Device = take(&sp.device)
			*r.Device = Device{}
		}
		d.device(r.Device)
		d.leave(outer)
	case fEgress:
		outer, ok := d.enter(wt, "egress")
		if !ok {
			return
		}
		if r.Egress == nil {
			r.Egress = take(&sp.egress)
			*r.Egress = Egress{}
		}
		d.egress(r.Egress)
		d.leave(outer)
	case fTCP:
		outer, ok := d.enter(wt, "tcp")
		if !ok {
			return
		}
		if r.TCP == nil {
			r.TCP = take(&sp.tcp)
			*r.TCP = TCP{}
		}
		d.tcp(r.TCP)
		d.leave(outer)
	case fICMP:
		outer, ok := d.enter(wt, "icmp")
		if !ok {
			return
		}
		if r.ICMP == nil {
			r.ICMP = take(&sp.icmp)
			*r.ICMP = ICMP{}
		}
		d.icmp(r.ICMP)
		d.leave(outer)
	case fTunnel:
		outer, ok := d.enter(wt, "tunnel")
		if !ok {
			return
		}
		if r.Tunnel == nil {
			r.Tunnel = take(&sp.tunnel)
			*r.Tunnel = Tunnel{}
		}
		d.tunnel(r.Tunnel)
		d.leave(outer)
	default:
		d.meta(r, sp, num, wt)
	}
}

func (d *decoder) meta(r *Record, sp *spares, num, wt int) {
	switch num {
	case fTLS:
		outer, ok := d.enter(wt, "tls")
		if !ok {
			return
		}
		if r.TLS == nil {
			r.TLS = take(&sp.tls)
			*r.TLS = TLS{ALPN: r.TLS.ALPN[:0]}
		}
		d.tls(r.TLS)
		d.leave(outer)
	case fQUIC:
		outer, ok := d.enter(wt, "quic")
		if !ok {
			return
		}
		if r.QUIC == nil {
			r.QUIC = take(&sp.quic)
			*r.QUIC = QUIC{}
		}
		d.quic(r.QUIC)
		d.leave(outer)
	case fDNS:
		outer, ok := d.enter(wt, "dns")
		if !ok {
			return
		}
		if r.DNS == nil {
			r.DNS = take(&sp.dns)
			*r.DNS = DNS{Queries: r.DNS.Queries[:0], Answers: r.DNS.Answers[:0]}
		}
		d.dns(r.DNS)
		d.leave(outer)
	case fHTTP:
		outer, ok := d.enter(wt, "http")
		if !ok {
			return
		}
		if r.HTTP == nil {
			r.HTTP = take(&sp.http)
			*r.HTTP = HTTP{}
		}
		d.http(r.HTTP)
		d.leave(outer)
	case fSSH:
		outer, ok := d.enter(wt, "ssh")
		if !ok {
			return
		}
		if r.SSH == nil {
			r.SSH = take(&sp.ssh)
			*r.SSH = SSH{}
		}
		d.ssh(r.SSH)
		d.leave(outer)
	case fDHCP:
		outer, ok := d.enter(wt, "dhcp")
		if !ok {
			return
		}
		if r.DHCP == nil {
			r.DHCP = take(&sp.dhcp)
			*r.DHCP = DHCP{MsgTypes: r.DHCP.MsgTypes[:0]}
		}
		d.dhcp(r.DHCP)
		d.leave(outer)
	case fSOCKS:
		outer, ok := d.enter(wt, "socks")
		if !ok {
			return
		}
		if r.SOCKS == nil {
			r.SOCKS = take(&sp.socks)
			*r.SOCKS = SOCKS{}
		}
		d.socks(r.SOCKS)
		d.leave(outer)
	default:
		d.skip(wt)
	}
}

func (d *decoder) sensor(s *Sensor) {
	for {
		num, wt, ok := d.next()
		if !ok {
			return
		}
		switch num {
		case 1:
			s.ID = d.str(wt, "sensor.id")
		case 2:
			s.Site = d.str(wt, "sensor.site")
		default:
			d.skip(wt)
		}
	}
}

func (d *decoder) device(v *Device) {
	for {
		num, wt, ok := d.next()
		if !ok {
			return
		}
		switch num {
		case 1:
			v.IP = d.addr(wt, "device.ip")
		case 2:
			v.MAC = d.mac(wt, "device.mac")
		case 3:
			v.Vendor = d.str(wt, "device.vendor")
		case 4:
			v.RandomizedMAC = d.uint(wt, "device.randomized_mac", 1) == 1
		case 5:
			v.Hostname = d.str(wt, "device.hostname")
		case 6:
			v.ID = d.str(wt, "device.id")
		case 7:
			v.Owner = d.str(wt, "device.owner")
		case 8:
			v.AssignedSite = d.str(wt, "device.assigned_site")
		case 9:
			v.AssignedCountry = d.str(wt, "device.assigned_country")
		case 10:
			v.HomeTimezone = d.str(wt, "device.home_timezone")
		case 11:
			v.MatchedBy = d.str(wt, "device.matched_by")
		default:
			d.skip(wt)
		}
	}
}

func (d *decoder) egress(g *Egress) {
	for {
		num, wt, ok := d.next()
		if !ok {
			return
		}
		switch num {
		case 1:
			g.IP = d.addr(wt, "egress.ip")
		case 2:
			g.Port = uint16(d.uint(wt, "egress.port", math.MaxUint16))
		case 3:
			g.Source = d.str(wt, "egress.source")
		case 4:
			g.Peer = d.str(wt, "egress.peer")
		default:
			d.skip(wt)
		}
	}
}

func (d *decoder) tcp(t *TCP) {
	for {
		num, wt, ok := d.next()
		if !ok {
			return
		}
		switch num {
		case 1:
			t.SrcFlags = TCPFlags(d.uint(wt, "tcp.src_flags", math.MaxUint8))
		case 2:
			t.DstFlags = TCPFlags(d.uint(wt, "tcp.dst_flags", math.MaxUint8))
		case 3:
			t.History = d.str(wt, "tcp.history")
		default:
			d.skip(wt)
		}
	}
}

func (d *decoder) icmp(c *ICMP) {
	for {
		num, wt, ok := d.next()
		if !ok {
			return
		}
		switch num {
		case 1:
			c.Type = uint8(d.uint(wt, "icmp.type", math.MaxUint8))
		case 2:
			c.Code = uint8(d.uint(wt, "icmp.code", math.MaxUint8))
		default:
			d.skip(wt)
		}
	}
}

func (d *decoder) tunnel(t *Tunnel) {
	for {
		num, wt, ok := d.next()
		if !ok {
			return
		}
		switch num {
		case 1:
			t.Type = d.str(wt, "tunnel.type")
		case 2:
			t.Src = d.addr(wt, "tunnel.src")
		case 3:
			t.Dst = d.addr(wt, "tunnel.dst")
		case 4:
			t.VNI = uint32(d.uint(wt, "tunnel.vni", math.MaxUint32))
		default:
			d.skip(wt)
		}
	}
}

func (d *decoder) tls(t *TLS) {
	for {
		num, wt, ok := d.next()
		if !ok {
			return
		}
		switch num {
		case 1:
			t.SNI = d.str(wt, "tls.sni")
		case 2:
			t.ALPN = append(t.ALPN, d.str(wt, "tls.alpn"))
		case 3:
			t.Version = d.str(wt, "tls.version")
		case 4:
			t.JA3 = d.str(wt, "tls.ja3")
		case 5:
			t.JA3String = d.str(wt, "tls.ja3_string")
		case 6:
			t.JA4 = d.str(wt, "tls.ja4")
		case 7:
			t.ServerVer = d.str(wt, "tls.server_version")
		case 8:
			t.Cipher = d.str(wt, "tls.cipher")
		case 9:
			t.CertSubject = d.str(wt, "tls.cert_subject")
		case 10:
			t.CertIssuer = d.str(wt, "tls.cert_issuer")
		default:
			d.skip(wt)
		}
	}
}

func (d *decoder) quic(q *QUIC) {
	for {
		num, wt, ok := d.next()
		if !ok {
			return
		}
		if num == 1 {
			q.Version = d.str(wt, "quic.version")
		} else {
			d.skip(wt)
		}
	}
}

func (d *decoder) dns(q *DNS) {
	for {
		num, wt, ok := d.next()
		if !ok {
			return
		}
		switch num {
		case 1:
			q.Query = d.str(wt, "dns.query")
		case 2:
			q.Queries = append(q.Queries, d.str(wt, "dns.queries"))
		case 3:
			q.QType = d.str(wt, "dns.qtype")
		case 4:
			q.RCode = d.str(wt, "dns.rcode")
		case 5:
			q.Answers = append(q.Answers, d.str(wt, "dns.answers"))
		default:
			d.skip(wt)
		}
	}
}

func (d *decoder) http(h *HTTP) {
	for {
		num, wt, ok := d.next()
		if !ok {
			return
		}
		switch num {
		case 1:
			h.Method = d.str(wt, "http.method")
		case 2:
			h.Host = d.str(wt, "http.host")
		case 3:
			h.Path = d.str(wt, "http.path")
		case 4:
			h.UserAgent = d.str(wt, "http.user_agent")
		case 5:
			h.Status = d.int(wt, "http.status")
		default:
			d.skip(wt)
		}
	}
}

func (d *decoder) ssh(s *SSH) {
	for {
		num, wt, ok := d.next()
		if !ok {
			return
		}
		switch num {
		case 1:
			s.Client = d.str(wt, "ssh.client")
		case 2:
			s.Server = d.str(wt, "ssh.server")
		default:
			d.skip(wt)
		}
	}
}

func (d *decoder) dhcp(h *DHCP) {
	for {
		num, wt, ok := d.next()
		if !ok {
			return
		}
		switch num {
		case 1:
			h.MsgTypes = append(h.MsgTypes, d.str(wt, "dhcp.msg_types"))
		case 2:
			h.ClientMAC = d.mac(wt, "dhcp.client_mac")
		case 3:
			h.RequestedIP = d.str(wt, "dhcp.requested_addr")
		case 4:
			h.AssignedIP = d.str(wt, "dhcp.assigned_addr")
		case 5:
			h.Hostname = d.str(wt, "dhcp.hostname")
		case 6:
			h.VendorClass = d.str(wt, "dhcp.vendor_class")
		case 7:
			h.ClientID = d.str(wt, "dhcp.client_id")
		default:
			d.skip(wt)
		}
	}
}

func (d *decoder) socks(k *SOCKS) {
	for {
		num, wt, ok := d.next()
		if !ok {
			return
		}
		switch num {
		case 1:
			k.Version = d.int(wt, "socks.version")
		case 2:
			k.Target = d.str(wt, "socks.target")
		default:
			d.skip(wt)
		}
	}
}
