package flow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
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
// damaged one a *DecodeError with the byte offset. A consumer of a stream
// of records uses a Decoder, which saves the allocation.
func DecodeBinary(b []byte, r *Record) error {
	return DecodeString(string(b), r)
}

// DecodeString is DecodeBinary for a record held in a string; the record's
// strings are slices of s, so it does not allocate when r is reused.
func DecodeString(s string, r *Record) error {
	var sp spares
	return decode(s, r, &sp)
}

// A Decoder decodes a stream of binary records, such as a consumer's, as
// DecodeBinary does, without allocating per record: it copies each record
// into a block of memory that the records after it share, and the records'
// strings are slices of the block; and it keeps the nested objects of the
// records it decoded into for the next records that need them, whatever
// the mix of record shapes. A string kept after the next Decode (a map
// key, a cache entry) holds its whole block: a consumer that keeps many
// strings for long clones them (strings.Clone).
//
// The zero Decoder is ready to use. It must not be copied after its first
// use, nor used by two goroutines at once.
type Decoder struct {
	block  strings.Builder // appended to, never overwritten
	spares spares
}

// decoderBlock is the size of a Decoder's blocks: about ten typical
// records, enough that allocating one is a small part of decoding them,
// and little for a kept string to hold. A record over a quarter of it
// gets a string of its own.
const decoderBlock = 4 << 10

// Decode decodes the binary record b into r, as DecodeBinary does. The
// caller may reuse b once it returns.
func (dec *Decoder) Decode(b []byte, r *Record) error {
	var s string
	if len(b) > decoderBlock/4 {
		s = string(b)
	} else {
		if dec.block.Cap()-dec.block.Len() < len(b) {
			dec.block.Reset()
			dec.block.Grow(decoderBlock)
		}
		start := dec.block.Len()
		dec.block.Write(b)
		s = dec.block.String()[start:]
	}
	return decode(s, r, &dec.spares)
}

// decode decodes the record s into r, taking the nested objects it needs
// from sp after putting r's there.
func decode(s string, r *Record, sp *spares) error {
	if len(s) == 0 {
		return &DecodeError{Msg: "empty record"}
	}
	if s[0] != WireVersion {
		if s[0] == '{' {
			return fmt.Errorf("%w %d (this looks like a JSON record, content type %s)", ErrVersion, s[0], ContentTypeJSON)
		}
		return fmt.Errorf("%w %d (this build reads version %d)", ErrVersion, s[0], WireVersion)
	}
	sp.keep(r)
	*r = Record{}
	d := decoder{s: s, sp: *sp}
	n, i := uvarint(s, 1, len(s))
	if i < 0 {
		d.badValue(&msgRecord, 0, 1, i)
		return d.err
	}
	if n != uint64(len(s)-i) {
		what := "truncated"
		if n < uint64(len(s)-i) {
			what = "trailing bytes"
		}
		return &DecodeError{Offset: 1, Msg: fmt.Sprintf("%s: the header says %d bytes follow, %d do", what, n, len(s)-i)}
	}
	d.record(r, i, len(s))
	*sp = d.sp
	return d.err
}

// spares are nested objects and a VLAN list that records held before
// they were decoded into, for reuse.
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
	vlan   []uint16
}

// keep puts r's nested objects and VLAN list in the empty places of sp.
func (sp *spares) keep(r *Record) {
	keepSpare(&sp.tcp, r.TCP)
	keepSpare(&sp.icmp, r.ICMP)
	keepSpare(&sp.tunnel, r.Tunnel)
	keepSpare(&sp.tls, r.TLS)
	keepSpare(&sp.quic, r.QUIC)
	keepSpare(&sp.dns, r.DNS)
	keepSpare(&sp.http, r.HTTP)
	keepSpare(&sp.ssh, r.SSH)
	keepSpare(&sp.dhcp, r.DHCP)
	keepSpare(&sp.socks, r.SOCKS)
	keepSpare(&sp.sensor, r.Sensor)
	keepSpare(&sp.device, r.Device)
	keepSpare(&sp.egress, r.Egress)
	if cap(r.VLAN) > cap(sp.vlan) {
		sp.vlan = r.VLAN
	}
}

func keepSpare[T any](spare **T, v *T) {
	if *spare == nil {
		*spare = v
	}
}

// object returns the object a nested message decodes into: *p when the
// record has it already (an object that occurs twice merges into one, as
// in Protocol Buffers), else the spare, cleared by reset, or a new one.
func object[T any](p, spare **T, reset func(*T)) *T {
	if *p == nil {
		if v := *spare; v != nil {
			*spare = nil
			reset(v)
			*p = v
		} else {
			*p = new(T)
		}
	}
	return *p
}

func zero[T any](v *T) {
	var z T
	*v = z
}

// decoder reads one record. Decoding is mostly the loops over each
// message's fields, which keep their position in registers: in most fields
// the tag and the value (a varint) or the value's length take one byte
// each, and read1 reads those inline; decoder.read reads any field. Each
// loop switches on the whole tag, field number and wire type, so that a
// field's case takes its value without checking its type; a tag no case
// takes goes to other. An error stops every loop.
type decoder struct {
	s   string // the record: its strings are slices of it
	err error
	sp  spares
}

// field is a field that read1 or read has read: its tag, and its value as
// a varint in v or as the bytes s[vs:ve] of a length-delimited or
// fixed-size value (for a varint, s[vs:ve] is its encoding). The next
// field starts at ve.
type field struct {
	t      uint64
	v      uint64
	vs, ve int
}

// read1 reads the field at s[i:end] if its tag takes one byte (fields 1 to
// 15) and its varint or length one byte (up to 127), as in most fields; ok
// is false otherwise. It is written to stay within the compiler's budget
// for inlining.
func read1(s string, i, end int) (f field, ok bool) {
	if i+1 < end {
		f.t, f.v = uint64(s[i]), uint64(s[i+1])
		if f.t-8 < 0x78 && f.v < 0x80 { // tags 0-7 are field 0
			f.vs, f.ve = i+1, i+2
			if f.t&7 == wtBytes {
				f.vs, f.ve = i+2, i+2+int(f.v)
			}
			ok = f.t&5 == 0 && f.ve <= end // wtVarint or wtBytes, within the message
		}
	}
	return
}

// read reads the field at s[i:end] of message m: its value by its wire
// type, whether m knows the field or not (so that an unknown field is
// skipped), except for wire types it cannot read, which other reports.
func (d *decoder) read(m *message, i, end int) field {
	s := d.s
	t, j := uint64(s[i]), i+1 // the message has bytes left
	if t >= 0x80 {
		t, j = uvarint(s, i, end)
	}
	if j < 0 || j-i > 5 || t < 8 {
		return d.badTag(m, i, j)
	}
	switch t & 7 {
	case wtVarint:
		v, k := uvarint(s, j, end)
		if k < 0 {
			return d.badValue(m, t, j, k)
		}
		return field{t: t, v: v, vs: j, ve: k}
	case wtBytes:
		n, k := uvarint(s, j, end)
		if k < 0 {
			return d.badValue(m, t, j, k)
		}
		if n > uint64(end-k) {
			return d.pastEnd(m, t, j, n, end-k)
		}
		return field{t: t, vs: k, ve: k + int(n)}
	case wtFixed64, wtFixed32:
		n := 8
		if t&7 == wtFixed32 {
			n = 4
		}
		if end-j < n {
			return d.badValue(m, t, j, varintTruncated)
		}
		return field{t: t, vs: j, ve: j + n}
	}
	return field{t: t, vs: j, ve: j}
}

// Results of uvarint for a varint it cannot read.
const (
	varintTruncated = -1
	varintOverflow  = -2
)

// uvarint reads the varint at s[i:end]: its value and the index after it,
// or varintTruncated or varintOverflow for the index.
func uvarint(s string, i, end int) (v uint64, j int) {
	for shift := uint(0); shift < 64; shift += 7 {
		if i >= end {
			return 0, varintTruncated
		}
		c := s[i]
		i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if shift == 63 && c > 1 {
				break
			}
			return v, i
		}
	}
	return 0, varintOverflow
}

// message describes a message for errors: its name in the record ("" for
// the record itself, and for a Timestamp, whose fields are named after
// the record's field) and its fields, by number.
type message struct {
	name   string
	fields []fieldInfo
}

// fieldInfo is a field's JSON name and wire type.
type fieldInfo struct {
	name string
	wt   int
}

var (
	msgRecord = message{"", []fieldInfo{
		fSchema: {"schema", wtBytes}, fID: {"id", wtBytes}, fCommunityID: {"community_id", wtBytes},
		fStart: {"start", wtBytes}, fEnd: {"end", wtBytes}, fDuration: {"duration_s", wtFixed64},
		fEndReason: {"end_reason", wtBytes}, fProto: {"proto", wtBytes}, fVLAN: {"vlan", wtBytes},
		fSrc: {"src", wtBytes}, fDst: {"dst", wtBytes}, fDirection: {"direction", wtBytes},
		fSensor: {"sensor", wtBytes}, fDevice: {"device", wtBytes}, fEgress: {"egress", wtBytes},
		fApp: {"app", wtBytes}, fAppSource: {"app_source", wtBytes}, fAppCategory: {"app_category", wtBytes},
		fTCP: {"tcp", wtBytes}, fICMP: {"icmp", wtBytes}, fTunnel: {"tunnel", wtBytes},
		fTLS: {"tls", wtBytes}, fQUIC: {"quic", wtBytes}, fDNS: {"dns", wtBytes}, fHTTP: {"http", wtBytes},
		fSSH: {"ssh", wtBytes}, fDHCP: {"dhcp", wtBytes}, fSOCKS: {"socks", wtBytes},
	}}
	msgStart       = message{"", []fieldInfo{1: {"start", wtVarint}, 2: {"start", wtVarint}}}
	msgEnd         = message{"", []fieldInfo{1: {"end", wtVarint}, 2: {"end", wtVarint}}}
	endpointFields = []fieldInfo{
		1: {"ip", wtBytes}, 2: {"port", wtVarint}, 3: {"mac", wtBytes}, 4: {"packets", wtVarint}, 5: {"bytes", wtVarint},
		6: {"payload_bytes", wtVarint}, 7: {"name", wtBytes}, 8: {"name_source", wtBytes}, 9: {"hostname", wtBytes},
	}
	msgSrc    = message{"src", endpointFields}
	msgDst    = message{"dst", endpointFields}
	msgSensor = message{"sensor", []fieldInfo{1: {"id", wtBytes}, 2: {"site", wtBytes}}}
	msgDevice = message{"device", []fieldInfo{
		1: {"ip", wtBytes}, 2: {"mac", wtBytes}, 3: {"vendor", wtBytes}, 4: {"randomized_mac", wtVarint},
		5: {"hostname", wtBytes}, 6: {"id", wtBytes}, 7: {"owner", wtBytes}, 8: {"assigned_site", wtBytes},
		9: {"assigned_country", wtBytes}, 10: {"home_timezone", wtBytes}, 11: {"matched_by", wtBytes},
	}}
	msgEgress = message{"egress", []fieldInfo{1: {"ip", wtBytes}, 2: {"port", wtVarint}, 3: {"source", wtBytes}, 4: {"peer", wtBytes}}}
	msgTCP    = message{"tcp", []fieldInfo{1: {"src_flags", wtVarint}, 2: {"dst_flags", wtVarint}, 3: {"history", wtBytes}}}
	msgICMP   = message{"icmp", []fieldInfo{1: {"type", wtVarint}, 2: {"code", wtVarint}}}
	msgTunnel = message{"tunnel", []fieldInfo{1: {"type", wtBytes}, 2: {"src", wtBytes}, 3: {"dst", wtBytes}, 4: {"vni", wtVarint}}}
	msgTLS    = message{"tls", []fieldInfo{
		1: {"sni", wtBytes}, 2: {"alpn", wtBytes}, 3: {"version", wtBytes}, 4: {"ja3", wtBytes}, 5: {"ja3_string", wtBytes},
		6: {"ja4", wtBytes}, 7: {"server_version", wtBytes}, 8: {"cipher", wtBytes}, 9: {"cert_subject", wtBytes},
		10: {"cert_issuer", wtBytes},
	}}
	msgQUIC = message{"quic", []fieldInfo{1: {"version", wtBytes}}}
	msgDNS  = message{"dns", []fieldInfo{
		1: {"query", wtBytes}, 2: {"queries", wtBytes}, 3: {"qtype", wtBytes}, 4: {"rcode", wtBytes}, 5: {"answers", wtBytes},
	}}
	msgHTTP = message{"http", []fieldInfo{
		1: {"method", wtBytes}, 2: {"host", wtBytes}, 3: {"path", wtBytes}, 4: {"user_agent", wtBytes}, 5: {"status", wtVarint},
	}}
	msgSSH  = message{"ssh", []fieldInfo{1: {"client", wtBytes}, 2: {"server", wtBytes}}}
	msgDHCP = message{"dhcp", []fieldInfo{
		1: {"msg_types", wtBytes}, 2: {"client_mac", wtBytes}, 3: {"requested_addr", wtBytes}, 4: {"assigned_addr", wtBytes},
		5: {"hostname", wtBytes}, 6: {"vendor_class", wtBytes}, 7: {"client_id", wtBytes},
	}}
	msgSOCKS = message{"socks", []fieldInfo{1: {"version", wtVarint}, 2: {"target", wtBytes}}}
)

// fieldName returns the JSON name of m's field with tag t, "" if m has
// none.
func (m *message) fieldName(t uint64) string {
	num := t >> 3
	switch {
	case num >= uint64(len(m.fields)) || m.fields[num].name == "":
		return ""
	case m.name == "":
		return m.fields[num].name
	}
	return m.name + "." + m.fields[num].name
}

// The errors of read return what it returns after an error: a field
// that ends past every message.

func (d *decoder) badTag(m *message, i, j int) field {
	if j < 0 || j-i > 5 {
		d.fail(m, 0, i, "bad field tag")
	} else {
		d.fail(m, 0, i, "bad field number 0")
	}
	return field{ve: len(d.s)}
}

// badValue reports a varint or fixed-size value that cannot be read: res
// is varintTruncated or varintOverflow.
func (d *decoder) badValue(m *message, t uint64, off, res int) field {
	if res == varintOverflow {
		d.fail(m, t, off, "varint overflows 64 bits")
	} else {
		d.fail(m, t, off, "truncated")
	}
	return field{ve: len(d.s)}
}

func (d *decoder) pastEnd(m *message, t uint64, off int, n uint64, left int) field {
	d.fail(m, t, off, fmt.Sprintf("length %d runs past the end (%d bytes left)", n, left))
	return field{ve: len(d.s)}
}

// fail records the first error, at byte off in the field with tag t of
// message m (t 0: in none).
func (d *decoder) fail(m *message, t uint64, off int, msg string) {
	if d.err == nil {
		d.err = &DecodeError{Offset: off, Field: m.fieldName(t), Msg: msg}
	}
}

// other handles a field that no case of m's switch took. A known field
// has the wrong wire type, an error. An unknown field (added by a later
// writer) is skipped, as read has done, unless read could not read its
// wire type.
func (d *decoder) other(m *message, f field) {
	if d.err != nil {
		return // f is read's field after an error
	}
	num, wt := f.t>>3, int(f.t&7)
	switch {
	case num < uint64(len(m.fields)) && m.fields[num].name != "":
		d.fail(m, f.t, f.vs, fmt.Sprintf("wire type %d, want %d", wt, m.fields[num].wt))
	case wt != wtVarint && wt != wtFixed64 && wt != wtBytes && wt != wtFixed32:
		d.fail(m, f.t, f.vs, fmt.Sprintf("unsupported wire type %d", wt))
	}
}

// uint returns a varint that may not exceed max.
func (d *decoder) uint(m *message, f field, max uint64) uint64 {
	if f.v > max {
		d.outOfRange(m, f, max)
		return 0
	}
	return f.v
}

func (d *decoder) outOfRange(m *message, f field, max uint64) {
	d.fail(m, f.t, f.vs, fmt.Sprintf("%d out of range (max %d)", f.v, max))
}

func (d *decoder) float64(f field) float64 {
	var p [8]byte
	copy(p[:], d.s[f.vs:f.ve])
	return math.Float64frombits(binary.LittleEndian.Uint64(p[:]))
}

func (d *decoder) addr(m *message, f field) netip.Addr {
	s := d.s[f.vs:f.ve]
	switch {
	case len(s) == 0:
		return netip.Addr{}
	case len(s) == 4:
		return netip.AddrFrom4([4]byte{s[0], s[1], s[2], s[3]})
	case len(s) >= 16:
		var a16 [16]byte
		copy(a16[:], s)
		a := netip.AddrFrom16(a16)
		if len(s) > 16 {
			a = a.WithZone(s[16:])
		}
		return a
	}
	d.fail(m, f.t, f.vs, fmt.Sprintf("address of %d bytes, want 4 or 16", len(s)))
	return netip.Addr{}
}

func (d *decoder) mac(m *message, f field) MAC {
	s := d.s[f.vs:f.ve]
	if len(s) != 6 {
		d.fail(m, f.t, f.vs, fmt.Sprintf("MAC of %d bytes, want 6", len(s)))
		return MAC{}
	}
	var a MAC
	copy(a[:], s)
	return a
}

func (d *decoder) record(r *Record, i, end int) {
	s, m := d.s, &msgRecord
	for i < end && d.err == nil {
		f, ok := read1(s, i, end)
		if !ok {
			f = d.read(m, i, end)
		}
		switch f.t {
		case fSchema<<3 | wtBytes:
			r.Schema = s[f.vs:f.ve]
		case fID<<3 | wtBytes:
			r.ID = s[f.vs:f.ve]
		case fCommunityID<<3 | wtBytes:
			r.CommunityID = s[f.vs:f.ve]
		case fStart<<3 | wtBytes:
			r.Start = d.timestamp(&msgStart, f)
		case fEnd<<3 | wtBytes:
			r.End = d.timestamp(&msgEnd, f)
		case fDuration<<3 | wtFixed64:
			r.DurationS = d.float64(f)
		case fEndReason<<3 | wtBytes:
			r.EndReason = EndReason(s[f.vs:f.ve])
		case fProto<<3 | wtBytes:
			r.Proto = s[f.vs:f.ve]
		case fVLAN<<3 | wtVarint, fVLAN<<3 | wtBytes:
			r.VLAN = d.vlan(f, r.VLAN)
		case fSrc<<3 | wtBytes:
			d.endpoint(&msgSrc, f, &r.Src)
		case fDst<<3 | wtBytes:
			d.endpoint(&msgDst, f, &r.Dst)
		case fDirection<<3 | wtBytes:
			r.Direction = s[f.vs:f.ve]
		case fSensor<<3 | wtBytes:
			d.sensor(f, &r.Sensor)
		case fDevice<<3 | wtBytes:
			d.device(f, &r.Device)
		case fEgress<<3 | wtBytes:
			d.egress(f, &r.Egress)
		case fApp<<3 | wtBytes:
			r.App = s[f.vs:f.ve]
		case fAppSource<<3 | wtBytes:
			r.AppSource = s[f.vs:f.ve]
		case fAppCategory<<3 | wtBytes:
			r.AppCategory = s[f.vs:f.ve]
		case fTCP<<3 | wtBytes:
			d.tcp(f, &r.TCP)
		case fICMP<<3 | wtBytes:
			d.icmp(f, &r.ICMP)
		case fTunnel<<3 | wtBytes:
			d.tunnel(f, &r.Tunnel)
		case fTLS<<3 | wtBytes:
			d.tls(f, &r.TLS)
		case fQUIC<<3 | wtBytes:
			d.quic(f, &r.QUIC)
		case fDNS<<3 | wtBytes:
			d.dns(f, &r.DNS)
		case fHTTP<<3 | wtBytes:
			d.http(f, &r.HTTP)
		case fSSH<<3 | wtBytes:
			d.ssh(f, &r.SSH)
		case fDHCP<<3 | wtBytes:
			d.dhcp(f, &r.DHCP)
		case fSOCKS<<3 | wtBytes:
			d.socks(f, &r.SOCKS)
		default:
			d.other(m, f)
		}
		i = f.ve
	}
}

// timestamp reads the google.protobuf.Timestamp in f.
func (d *decoder) timestamp(m *message, f field) time.Time {
	s, i, end := d.s, f.vs, f.ve
	var sec, nsec uint64
	for i < end && d.err == nil {
		f, ok := read1(s, i, end)
		if !ok {
			f = d.read(m, i, end)
		}
		switch f.t {
		case 1<<3 | wtVarint:
			sec = f.v
		case 2<<3 | wtVarint:
			nsec = d.uint(m, f, 999_999_999)
		default:
			d.other(m, f)
		}
		i = f.ve
	}
	return time.Unix(int64(sec), int64(nsec)).UTC()
}

// vlan appends the VLAN ids in f, packed or (as Protocol Buffers allows)
// one per field, to cur, or to the reused record's memory when cur is nil.
func (d *decoder) vlan(f field, cur []uint16) []uint16 {
	m := &msgRecord
	if f.t&7 == wtVarint {
		v := uint16(d.uint(m, f, math.MaxUint16))
		if cur == nil {
			cur, d.sp.vlan = d.sp.vlan[:0], nil
		}
		return append(cur, v)
	}
	for i := f.vs; i < f.ve; {
		v, j := uvarint(d.s, i, f.ve)
		switch {
		case j < 0:
			d.badValue(m, f.t, i, j)
			return cur
		case v > math.MaxUint16:
			d.fail(m, f.t, i, fmt.Sprintf("VLAN id %d out of range", v))
			return cur
		}
		if cur == nil {
			cur, d.sp.vlan = d.sp.vlan[:0], nil
		}
		cur = append(cur, uint16(v))
		i = j
	}
	return cur
}

func (d *decoder) endpoint(m *message, f field, p *Endpoint) {
	s, i, end := d.s, f.vs, f.ve
	for i < end && d.err == nil {
		f, ok := read1(s, i, end)
		if !ok {
			f = d.read(m, i, end)
		}
		switch f.t {
		case 1<<3 | wtBytes:
			p.IP = d.addr(m, f)
		case 2<<3 | wtVarint:
			p.Port = uint16(d.uint(m, f, math.MaxUint16))
		case 3<<3 | wtBytes:
			p.MAC = d.mac(m, f)
		case 4<<3 | wtVarint:
			p.Packets = f.v
		case 5<<3 | wtVarint:
			p.Bytes = f.v
		case 6<<3 | wtVarint:
			p.PayloadBytes = f.v
		case 7<<3 | wtBytes:
			p.Name = s[f.vs:f.ve]
		case 8<<3 | wtBytes:
			p.NameSource = s[f.vs:f.ve]
		case 9<<3 | wtBytes:
			p.Hostname = s[f.vs:f.ve]
		default:
			d.other(m, f)
		}
		i = f.ve
	}
}

func (d *decoder) sensor(f field, p **Sensor) {
	v := object(p, &d.sp.sensor, zero)
	s, i, end, m := d.s, f.vs, f.ve, &msgSensor
	for i < end && d.err == nil {
		f, ok := read1(s, i, end)
		if !ok {
			f = d.read(m, i, end)
		}
		switch f.t {
		case 1<<3 | wtBytes:
			v.ID = s[f.vs:f.ve]
		case 2<<3 | wtBytes:
			v.Site = s[f.vs:f.ve]
		default:
			d.other(m, f)
		}
		i = f.ve
	}
}

func (d *decoder) device(f field, p **Device) {
	v := object(p, &d.sp.device, zero)
	s, i, end, m := d.s, f.vs, f.ve, &msgDevice
	for i < end && d.err == nil {
		f, ok := read1(s, i, end)
		if !ok {
			f = d.read(m, i, end)
		}
		switch f.t {
		case 1<<3 | wtBytes:
			v.IP = d.addr(m, f)
		case 2<<3 | wtBytes:
			v.MAC = d.mac(m, f)
		case 3<<3 | wtBytes:
			v.Vendor = s[f.vs:f.ve]
		case 4<<3 | wtVarint:
			v.RandomizedMAC = d.uint(m, f, 1) == 1
		case 5<<3 | wtBytes:
			v.Hostname = s[f.vs:f.ve]
		case 6<<3 | wtBytes:
			v.ID = s[f.vs:f.ve]
		case 7<<3 | wtBytes:
			v.Owner = s[f.vs:f.ve]
		case 8<<3 | wtBytes:
			v.AssignedSite = s[f.vs:f.ve]
		case 9<<3 | wtBytes:
			v.AssignedCountry = s[f.vs:f.ve]
		case 10<<3 | wtBytes:
			v.HomeTimezone = s[f.vs:f.ve]
		case 11<<3 | wtBytes:
			v.MatchedBy = s[f.vs:f.ve]
		default:
			d.other(m, f)
		}
		i = f.ve
	}
}

func (d *decoder) egress(f field, p **Egress) {
	v := object(p, &d.sp.egress, zero)
	s, i, end, m := d.s, f.vs, f.ve, &msgEgress
	for i < end && d.err == nil {
		f, ok := read1(s, i, end)
		if !ok {
			f = d.read(m, i, end)
		}
		switch f.t {
		case 1<<3 | wtBytes:
			v.IP = d.addr(m, f)
		case 2<<3 | wtVarint:
			v.Port = uint16(d.uint(m, f, math.MaxUint16))
		case 3<<3 | wtBytes:
			v.Source = s[f.vs:f.ve]
		case 4<<3 | wtBytes:
			v.Peer = s[f.vs:f.ve]
		default:
			d.other(m, f)
		}
		i = f.ve
	}
}

func (d *decoder) tcp(f field, p **TCP) {
	v := object(p, &d.sp.tcp, zero)
	s, i, end, m := d.s, f.vs, f.ve, &msgTCP
	for i < end && d.err == nil {
		f, ok := read1(s, i, end)
		if !ok {
			f = d.read(m, i, end)
		}
		switch f.t {
		case 1<<3 | wtVarint:
			v.SrcFlags = TCPFlags(d.uint(m, f, math.MaxUint8))
		case 2<<3 | wtVarint:
			v.DstFlags = TCPFlags(d.uint(m, f, math.MaxUint8))
		case 3<<3 | wtBytes:
			v.History = s[f.vs:f.ve]
		default:
			d.other(m, f)
		}
		i = f.ve
	}
}

func (d *decoder) icmp(f field, p **ICMP) {
	v := object(p, &d.sp.icmp, zero)
	s, i, end, m := d.s, f.vs, f.ve, &msgICMP
	for i < end && d.err == nil {
		f, ok := read1(s, i, end)
		if !ok {
			f = d.read(m, i, end)
		}
		switch f.t {
		case 1<<3 | wtVarint:
			v.Type = uint8(d.uint(m, f, math.MaxUint8))
		case 2<<3 | wtVarint:
			v.Code = uint8(d.uint(m, f, math.MaxUint8))
		default:
			d.other(m, f)
		}
		i = f.ve
	}
}

func (d *decoder) tunnel(f field, p **Tunnel) {
	v := object(p, &d.sp.tunnel, zero)
	s, i, end, m := d.s, f.vs, f.ve, &msgTunnel
	for i < end && d.err == nil {
		f, ok := read1(s, i, end)
		if !ok {
			f = d.read(m, i, end)
		}
		switch f.t {
		case 1<<3 | wtBytes:
			v.Type = s[f.vs:f.ve]
		case 2<<3 | wtBytes:
			v.Src = d.addr(m, f)
		case 3<<3 | wtBytes:
			v.Dst = d.addr(m, f)
		case 4<<3 | wtVarint:
			v.VNI = uint32(d.uint(m, f, math.MaxUint32))
		default:
			d.other(m, f)
		}
		i = f.ve
	}
}

func (d *decoder) tls(f field, p **TLS) {
	v := object(p, &d.sp.tls, func(v *TLS) { *v = TLS{ALPN: v.ALPN[:0]} })
	s, i, end, m := d.s, f.vs, f.ve, &msgTLS
	for i < end && d.err == nil {
		f, ok := read1(s, i, end)
		if !ok {
			f = d.read(m, i, end)
		}
		switch f.t {
		case 1<<3 | wtBytes:
			v.SNI = s[f.vs:f.ve]
		case 2<<3 | wtBytes:
			v.ALPN = append(v.ALPN, s[f.vs:f.ve])
		case 3<<3 | wtBytes:
			v.Version = s[f.vs:f.ve]
		case 4<<3 | wtBytes:
			v.JA3 = s[f.vs:f.ve]
		case 5<<3 | wtBytes:
			v.JA3String = s[f.vs:f.ve]
		case 6<<3 | wtBytes:
			v.JA4 = s[f.vs:f.ve]
		case 7<<3 | wtBytes:
			v.ServerVer = s[f.vs:f.ve]
		case 8<<3 | wtBytes:
			v.Cipher = s[f.vs:f.ve]
		case 9<<3 | wtBytes:
			v.CertSubject = s[f.vs:f.ve]
		case 10<<3 | wtBytes:
			v.CertIssuer = s[f.vs:f.ve]
		default:
			d.other(m, f)
		}
		i = f.ve
	}
}

func (d *decoder) quic(f field, p **QUIC) {
	v := object(p, &d.sp.quic, zero)
	s, i, end, m := d.s, f.vs, f.ve, &msgQUIC
	for i < end && d.err == nil {
		f, ok := read1(s, i, end)
		if !ok {
			f = d.read(m, i, end)
		}
		switch f.t {
		case 1<<3 | wtBytes:
			v.Version = s[f.vs:f.ve]
		default:
			d.other(m, f)
		}
		i = f.ve
	}
}

func (d *decoder) dns(f field, p **DNS) {
	v := object(p, &d.sp.dns, func(v *DNS) { *v = DNS{Queries: v.Queries[:0], Answers: v.Answers[:0]} })
	s, i, end, m := d.s, f.vs, f.ve, &msgDNS
	for i < end && d.err == nil {
		f, ok := read1(s, i, end)
		if !ok {
			f = d.read(m, i, end)
		}
		switch f.t {
		case 1<<3 | wtBytes:
			v.Query = s[f.vs:f.ve]
		case 2<<3 | wtBytes:
			v.Queries = append(v.Queries, s[f.vs:f.ve])
		case 3<<3 | wtBytes:
			v.QType = s[f.vs:f.ve]
		case 4<<3 | wtBytes:
			v.RCode = s[f.vs:f.ve]
		case 5<<3 | wtBytes:
			v.Answers = append(v.Answers, s[f.vs:f.ve])
		default:
			d.other(m, f)
		}
		i = f.ve
	}
}

func (d *decoder) http(f field, p **HTTP) {
	v := object(p, &d.sp.http, zero)
	s, i, end, m := d.s, f.vs, f.ve, &msgHTTP
	for i < end && d.err == nil {
		f, ok := read1(s, i, end)
		if !ok {
			f = d.read(m, i, end)
		}
		switch f.t {
		case 1<<3 | wtBytes:
			v.Method = s[f.vs:f.ve]
		case 2<<3 | wtBytes:
			v.Host = s[f.vs:f.ve]
		case 3<<3 | wtBytes:
			v.Path = s[f.vs:f.ve]
		case 4<<3 | wtBytes:
			v.UserAgent = s[f.vs:f.ve]
		case 5<<3 | wtVarint:
			v.Status = int(int64(f.v))
		default:
			d.other(m, f)
		}
		i = f.ve
	}
}

func (d *decoder) ssh(f field, p **SSH) {
	v := object(p, &d.sp.ssh, zero)
	s, i, end, m := d.s, f.vs, f.ve, &msgSSH
	for i < end && d.err == nil {
		f, ok := read1(s, i, end)
		if !ok {
			f = d.read(m, i, end)
		}
		switch f.t {
		case 1<<3 | wtBytes:
			v.Client = s[f.vs:f.ve]
		case 2<<3 | wtBytes:
			v.Server = s[f.vs:f.ve]
		default:
			d.other(m, f)
		}
		i = f.ve
	}
}

func (d *decoder) dhcp(f field, p **DHCP) {
	v := object(p, &d.sp.dhcp, func(v *DHCP) { *v = DHCP{MsgTypes: v.MsgTypes[:0]} })
	s, i, end, m := d.s, f.vs, f.ve, &msgDHCP
	for i < end && d.err == nil {
		f, ok := read1(s, i, end)
		if !ok {
			f = d.read(m, i, end)
		}
		switch f.t {
		case 1<<3 | wtBytes:
			v.MsgTypes = append(v.MsgTypes, s[f.vs:f.ve])
		case 2<<3 | wtBytes:
			v.ClientMAC = d.mac(m, f)
		case 3<<3 | wtBytes:
			v.RequestedIP = s[f.vs:f.ve]
		case 4<<3 | wtBytes:
			v.AssignedIP = s[f.vs:f.ve]
		case 5<<3 | wtBytes:
			v.Hostname = s[f.vs:f.ve]
		case 6<<3 | wtBytes:
			v.VendorClass = s[f.vs:f.ve]
		case 7<<3 | wtBytes:
			v.ClientID = s[f.vs:f.ve]
		default:
			d.other(m, f)
		}
		i = f.ve
	}
}

func (d *decoder) socks(f field, p **SOCKS) {
	v := object(p, &d.sp.socks, zero)
	s, i, end, m := d.s, f.vs, f.ve, &msgSOCKS
	for i < end && d.err == nil {
		f, ok := read1(s, i, end)
		if !ok {
			f = d.read(m, i, end)
		}
		switch f.t {
		case 1<<3 | wtVarint:
			v.Version = int(int64(f.v))
		case 2<<3 | wtBytes:
			v.Target = s[f.vs:f.ve]
		default:
			d.other(m, f)
		}
		i = f.ve
	}
}
