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
	n, i := uvarint(s, 1)
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
	d.record(r, i)
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
// message's fields, which keep their position in registers. Each loop
// reads a field's tag (most take one byte) and switches on it, field
// number and wire type at once, so that the field's case reads the value
// knowing its type, with str, varint or fixed64. Those read the usual
// short values inline and leave the rest to a function of their own. A
// reader that cannot read its value, or a case that finds it invalid,
// returns the index -1 instead of the next field's: the loop stops, and
// stopAt has readAny read the field again to say what is wrong. A tag no
// case takes goes to skip.
type decoder struct {
	s   string // the record: its strings are slices of it
	err error
	sp  spares
}

// The readers of values and tags take the bytes of the message (s ends
// where it does) and the index i where the value or tag starts; they
// return it and the index after it, -1 if they cannot read it.
//
// The slow path of each is a function parameter: the compiler charges a
// call to a parameter (a constant function once inlined) much less than a
// call to a function against its inlining budget, and only so do the
// readers fit it. Inlined, they save a quarter of decoding's instructions.

// tag reads a field's tag, which starts before the message's end; 0 (no
// field has it) if it cannot.
func tag(s string, i int) (uint64, int) { return readTag(s, i, tagN) }

func readTag(s string, i int, slow func(string, int) (uint64, int)) (uint64, int) {
	if t := s[i]; t < 0x80 {
		return uint64(t), i + 1
	}
	return slow(s, i)
}

// tagN reads a tag of two to five bytes.
func tagN(s string, i int) (uint64, int) {
	if i+1 < len(s) && s[i+1] < 0x80 { // two bytes: fields 16 to 2047
		return uint64(s[i]&0x7f) | uint64(s[i+1])<<7, i + 2
	}
	t, j := uvarint(s, i)
	if j < 0 || j-i > 5 {
		return 0, i + 1
	}
	return t, j
}

// str reads a length-delimited value: a string, an address, a nested
// message.
func str(s string, i int) (string, int) { return readStr(s, i, strN) }

func readStr(s string, i int, slow func(string, int) (string, int)) (b string, j int) {
	if i < len(s) && s[i] < 0x80 {
		j = i + 1 + int(s[i])
		if j <= len(s) {
			return s[i+1 : j], j
		}
	}
	return slow(s, i)
}

func strN(s string, i int) (string, int) {
	n, j := uvarint(s, i)
	if j < 0 || n > uint64(len(s)-j) {
		return "", -1
	}
	return s[j : j+int(n)], j + int(n)
}

// varint reads a varint.
func varint(s string, i int) (uint64, int) { return readVarint(s, i, uvarint) }

func readVarint(s string, i int, slow func(string, int) (uint64, int)) (uint64, int) {
	if i < len(s) && s[i] < 0x80 {
		return uint64(s[i]), i + 1
	}
	return slow(s, i)
}

// fixed64 reads a fixed-size 64-bit value.
func fixed64(s string, i int) (uint64, int) {
	if len(s)-i < 8 {
		return 0, -1
	}
	return le64(s[i:]), i + 8
}

// appendStr appends a length-delimited value to l, the value of a
// repeated field.
func appendStr(l []string, s string, i int) ([]string, int) {
	b, j := str(s, i)
	if j < 0 {
		return l, j
	}
	return append(l, b), j
}

// sub returns a nested message: the record up to its end, and the index
// of its first field, -1 if it cannot be read.
func (d *decoder) sub(s string, i int) (string, int) {
	b, j := str(s, i)
	if j < 0 {
		return "", -1
	}
	return d.s[:j], j - len(b)
}

// Results of uvarint for a varint it cannot read.
const (
	varintTruncated = -1
	varintOverflow  = -2
)

// uvarint reads the varint at s[i:]: its value and the index after it,
// or varintTruncated or varintOverflow for the index.
func uvarint(s string, i int) (v uint64, j int) {
	for shift := uint(0); shift < 64; shift += 7 {
		if uint(i) >= uint(len(s)) {
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

// field is a field that readAny has read: its tag, and where its value
// is, s[vs:ve] (for a varint, its encoding; for a length-delimited value,
// the bytes after the length). The next field starts at ve.
type field struct {
	t      uint64
	vs, ve int
}

// readAny reads the field at s[i:] of message m, s ending where m does:
// its value by its wire type, whether m knows the field or not (so that
// an unknown field is skipped), except for wire types it cannot read,
// which other reports. It reports the errors of fields that cannot be
// read.
func (d *decoder) readAny(m *message, s string, i int) field {
	t, j := uvarint(s, i) // the message has bytes left
	if j < 0 || j-i > 5 || t < 8 {
		return d.badTag(m, i, j)
	}
	switch t & 7 {
	case wtVarint:
		_, k := uvarint(s, j)
		if k < 0 {
			return d.badValue(m, t, j, k)
		}
		return field{t: t, vs: j, ve: k}
	case wtBytes:
		n, k := uvarint(s, j)
		if k < 0 {
			return d.badValue(m, t, j, k)
		}
		if n > uint64(len(s)-k) {
			return d.pastEnd(m, t, j, n, len(s)-k)
		}
		return field{t: t, vs: k, ve: k + int(n)}
	case wtFixed64, wtFixed32:
		n := 8
		if t&7 == wtFixed32 {
			n = 4
		}
		if len(s)-j < n {
			return d.badValue(m, t, j, varintTruncated)
		}
		return field{t: t, vs: j, ve: j + n}
	}
	return field{t: t, vs: j, ve: j}
}

// skip handles the field at s[i:] that no case of m's switch takes, with
// other; it returns the index after it, -1 after an error.
func (d *decoder) skip(m *message, s string, i int) int {
	f := d.readAny(m, s, i)
	d.other(m, f)
	if d.err != nil {
		return -1
	}
	return f.ve
}

// stopAt ends a loop over m's fields at the field at s[i:] that a reader
// could not read, or that a case found invalid: it reports why the field
// cannot be read, if it cannot (a case reports what is invalid), and
// returns -1.
func (d *decoder) stopAt(m *message, s string, i int) int {
	d.readAny(m, s, i)
	if d.err == nil { // a reader and readAny disagree: fail rather than drop the rest
		d.fail(m, 0, i, "unreadable field")
	}
	return -1
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

// The errors of readAny return what it returns after an error: a field
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
// writer) is skipped, as readAny has done, unless readAny could not read
// its wire type.
func (d *decoder) other(m *message, f field) {
	if d.err != nil {
		return // f is readAny's field after an error
	}
	num, wt := f.t>>3, int(f.t&7)
	switch {
	case num < uint64(len(m.fields)) && m.fields[num].name != "":
		d.fail(m, f.t, f.vs, fmt.Sprintf("wire type %d, want %d", wt, m.fields[num].wt))
	case wt != wtVarint && wt != wtFixed64 && wt != wtBytes && wt != wtFixed32:
		d.fail(m, f.t, f.vs, fmt.Sprintf("unsupported wire type %d", wt))
	}
}

// The readers of values that can be invalid, for the field with tag t of
// message m, report what is wrong.

// uint reads a varint that may not exceed max.
func (d *decoder) uint(m *message, t uint64, s string, i int, max uint64) (uint64, int) {
	v, j := varint(s, i)
	if v > max {
		d.fail(m, t, i, fmt.Sprintf("%d out of range (max %d)", v, max))
		return 0, -1
	}
	return v, j
}

// uintN reads a varint that must fit a T.
func uintN[T ~uint8 | ~uint16 | ~uint32](d *decoder, m *message, t uint64, s string, i int) (T, int) {
	v, j := d.uint(m, t, s, i, uint64(^T(0)))
	return T(v), j
}

func (d *decoder) addr(m *message, t uint64, s string, i int) (netip.Addr, int) {
	b, j := str(s, i)
	switch {
	case len(b) == 4:
		return netip.AddrFrom4([4]byte{b[0], b[1], b[2], b[3]}), j
	case len(b) >= 16:
		var a16 [16]byte
		copy(a16[:], b[:16])
		a := netip.AddrFrom16(a16)
		if len(b) > 16 {
			a = a.WithZone(b[16:])
		}
		return a, j
	case len(b) == 0 || j < 0:
		return netip.Addr{}, j
	}
	d.fail(m, t, j-len(b), fmt.Sprintf("address of %d bytes, want 4 or 16", len(b)))
	return netip.Addr{}, -1
}

func (d *decoder) mac(m *message, t uint64, s string, i int) (MAC, int) {
	b, j := str(s, i)
	switch {
	case len(b) == 6:
		return MAC{b[0], b[1], b[2], b[3], b[4], b[5]}, j
	case j < 0:
		return MAC{}, j
	}
	d.fail(m, t, j-len(b), fmt.Sprintf("MAC of %d bytes, want 6", len(b)))
	return MAC{}, -1
}

func (d *decoder) record(r *Record, i int) {
	s, m := d.s, &msgRecord
	for i < len(s) {
		t, j := tag(s, i)
		switch t {
		case fSchema<<3 | wtBytes:
			r.Schema, j = str(s, j)
		case fID<<3 | wtBytes:
			r.ID, j = str(s, j)
		case fCommunityID<<3 | wtBytes:
			r.CommunityID, j = str(s, j)
		case fStart<<3 | wtBytes:
			r.Start, j = d.timestamp(&msgStart, s, j)
		case fEnd<<3 | wtBytes:
			r.End, j = d.timestamp(&msgEnd, s, j)
		case fDuration<<3 | wtFixed64:
			var v uint64
			v, j = fixed64(s, j)
			r.DurationS = math.Float64frombits(v)
		case fEndReason<<3 | wtBytes:
			var v string
			v, j = str(s, j)
			r.EndReason = EndReason(v)
		case fProto<<3 | wtBytes:
			r.Proto, j = str(s, j)
		case fVLAN<<3 | wtVarint, fVLAN<<3 | wtBytes:
			r.VLAN, j = d.vlan(t, s, j, r.VLAN)
		case fSrc<<3 | wtBytes:
			j = d.endpoint(&msgSrc, s, j, &r.Src)
		case fDst<<3 | wtBytes:
			j = d.endpoint(&msgDst, s, j, &r.Dst)
		case fDirection<<3 | wtBytes:
			r.Direction, j = str(s, j)
		case fSensor<<3 | wtBytes:
			j = d.sensor(s, j, &r.Sensor)
		case fDevice<<3 | wtBytes:
			j = d.device(s, j, &r.Device)
		case fEgress<<3 | wtBytes:
			j = d.egress(s, j, &r.Egress)
		case fApp<<3 | wtBytes:
			r.App, j = str(s, j)
		case fAppSource<<3 | wtBytes:
			r.AppSource, j = str(s, j)
		case fAppCategory<<3 | wtBytes:
			r.AppCategory, j = str(s, j)
		case fTCP<<3 | wtBytes:
			j = d.tcp(s, j, &r.TCP)
		case fICMP<<3 | wtBytes:
			j = d.icmp(s, j, &r.ICMP)
		case fTunnel<<3 | wtBytes:
			j = d.tunnel(s, j, &r.Tunnel)
		case fTLS<<3 | wtBytes:
			j = d.tls(s, j, &r.TLS)
		case fQUIC<<3 | wtBytes:
			j = d.quic(s, j, &r.QUIC)
		case fDNS<<3 | wtBytes:
			j = d.dns(s, j, &r.DNS)
		case fHTTP<<3 | wtBytes:
			j = d.http(s, j, &r.HTTP)
		case fSSH<<3 | wtBytes:
			j = d.ssh(s, j, &r.SSH)
		case fDHCP<<3 | wtBytes:
			j = d.dhcp(s, j, &r.DHCP)
		case fSOCKS<<3 | wtBytes:
			j = d.socks(s, j, &r.SOCKS)
		default:
			j = d.skip(m, s, i)
		}
		if j < 0 {
			d.stopAt(m, s, i)
			return
		}
		i = j
	}
}

// The decoders of nested messages take the bytes of the message that
// holds one and the index of its length; they return the index after it,
// or -1 after an error.

// timestamp decodes a google.protobuf.Timestamp.
func (d *decoder) timestamp(m *message, s string, i int) (time.Time, int) {
	if s, i = d.sub(s, i); i < 0 {
		return time.Time{}, i
	}
	var sec, nsec uint64
	for i < len(s) {
		t, j := tag(s, i)
		switch t {
		case 1<<3 | wtVarint:
			sec, j = varint(s, j)
		case 2<<3 | wtVarint:
			nsec, j = d.uint(m, t, s, j, 999_999_999)
		default:
			j = d.skip(m, s, i)
		}
		if j < 0 {
			return time.Time{}, d.stopAt(m, s, i)
		}
		i = j
	}
	return time.Unix(int64(sec), int64(nsec)).UTC(), i
}

// vlan appends the VLAN ids of the field with tag t, packed or (as
// Protocol Buffers allows) one per field, to cur, or to the reused
// record's memory when cur is nil.
func (d *decoder) vlan(t uint64, s string, i int, cur []uint16) ([]uint16, int) {
	m := &msgRecord
	if t&7 == wtVarint {
		v, j := uintN[uint16](d, m, t, s, i)
		if j >= 0 {
			if cur == nil {
				cur, d.sp.vlan = d.sp.vlan[:0], nil
			}
			cur = append(cur, v)
		}
		return cur, j
	}
	if s, i = d.sub(s, i); i < 0 {
		return cur, i
	}
	for i < len(s) {
		v, j := uvarint(s, i)
		switch {
		case j < 0:
			d.badValue(m, t, i, j)
			return cur, -1
		case v > math.MaxUint16:
			d.fail(m, t, i, fmt.Sprintf("VLAN id %d out of range", v))
			return cur, -1
		}
		if cur == nil {
			cur, d.sp.vlan = d.sp.vlan[:0], nil
		}
		cur = append(cur, uint16(v))
		i = j
	}
	return cur, i
}

func (d *decoder) endpoint(m *message, s string, i int, p *Endpoint) int {
	if s, i = d.sub(s, i); i < 0 {
		return i
	}
	for i < len(s) {
		t, j := tag(s, i)
		switch t {
		case 1<<3 | wtBytes:
			p.IP, j = d.addr(m, t, s, j)
		case 2<<3 | wtVarint:
			p.Port, j = uintN[uint16](d, m, t, s, j)
		case 3<<3 | wtBytes:
			p.MAC, j = d.mac(m, t, s, j)
		case 4<<3 | wtVarint:
			p.Packets, j = varint(s, j)
		case 5<<3 | wtVarint:
			p.Bytes, j = varint(s, j)
		case 6<<3 | wtVarint:
			p.PayloadBytes, j = varint(s, j)
		case 7<<3 | wtBytes:
			p.Name, j = str(s, j)
		case 8<<3 | wtBytes:
			p.NameSource, j = str(s, j)
		case 9<<3 | wtBytes:
			p.Hostname, j = str(s, j)
		default:
			j = d.skip(m, s, i)
		}
		if j < 0 {
			return d.stopAt(m, s, i)
		}
		i = j
	}
	return i
}

func (d *decoder) sensor(s string, i int, p **Sensor) int {
	if s, i = d.sub(s, i); i < 0 {
		return i
	}
	v, m := object(p, &d.sp.sensor, zero), &msgSensor
	for i < len(s) {
		t, j := tag(s, i)
		switch t {
		case 1<<3 | wtBytes:
			v.ID, j = str(s, j)
		case 2<<3 | wtBytes:
			v.Site, j = str(s, j)
		default:
			j = d.skip(m, s, i)
		}
		if j < 0 {
			return d.stopAt(m, s, i)
		}
		i = j
	}
	return i
}

func (d *decoder) device(s string, i int, p **Device) int {
	if s, i = d.sub(s, i); i < 0 {
		return i
	}
	v, m := object(p, &d.sp.device, zero), &msgDevice
	for i < len(s) {
		t, j := tag(s, i)
		switch t {
		case 1<<3 | wtBytes:
			v.IP, j = d.addr(m, t, s, j)
		case 2<<3 | wtBytes:
			v.MAC, j = d.mac(m, t, s, j)
		case 3<<3 | wtBytes:
			v.Vendor, j = str(s, j)
		case 4<<3 | wtVarint:
			var b uint64
			b, j = d.uint(m, t, s, j, 1)
			v.RandomizedMAC = b == 1
		case 5<<3 | wtBytes:
			v.Hostname, j = str(s, j)
		case 6<<3 | wtBytes:
			v.ID, j = str(s, j)
		case 7<<3 | wtBytes:
			v.Owner, j = str(s, j)
		case 8<<3 | wtBytes:
			v.AssignedSite, j = str(s, j)
		case 9<<3 | wtBytes:
			v.AssignedCountry, j = str(s, j)
		case 10<<3 | wtBytes:
			v.HomeTimezone, j = str(s, j)
		case 11<<3 | wtBytes:
			v.MatchedBy, j = str(s, j)
		default:
			j = d.skip(m, s, i)
		}
		if j < 0 {
			return d.stopAt(m, s, i)
		}
		i = j
	}
	return i
}

func (d *decoder) egress(s string, i int, p **Egress) int {
	if s, i = d.sub(s, i); i < 0 {
		return i
	}
	v, m := object(p, &d.sp.egress, zero), &msgEgress
	for i < len(s) {
		t, j := tag(s, i)
		switch t {
		case 1<<3 | wtBytes:
			v.IP, j = d.addr(m, t, s, j)
		case 2<<3 | wtVarint:
			v.Port, j = uintN[uint16](d, m, t, s, j)
		case 3<<3 | wtBytes:
			v.Source, j = str(s, j)
		case 4<<3 | wtBytes:
			v.Peer, j = str(s, j)
		default:
			j = d.skip(m, s, i)
		}
		if j < 0 {
			return d.stopAt(m, s, i)
		}
		i = j
	}
	return i
}

func (d *decoder) tcp(s string, i int, p **TCP) int {
	if s, i = d.sub(s, i); i < 0 {
		return i
	}
	v, m := object(p, &d.sp.tcp, zero), &msgTCP
	for i < len(s) {
		t, j := tag(s, i)
		switch t {
		case 1<<3 | wtVarint:
			v.SrcFlags, j = uintN[TCPFlags](d, m, t, s, j)
		case 2<<3 | wtVarint:
			v.DstFlags, j = uintN[TCPFlags](d, m, t, s, j)
		case 3<<3 | wtBytes:
			v.History, j = str(s, j)
		default:
			j = d.skip(m, s, i)
		}
		if j < 0 {
			return d.stopAt(m, s, i)
		}
		i = j
	}
	return i
}

func (d *decoder) icmp(s string, i int, p **ICMP) int {
	if s, i = d.sub(s, i); i < 0 {
		return i
	}
	v, m := object(p, &d.sp.icmp, zero), &msgICMP
	for i < len(s) {
		t, j := tag(s, i)
		switch t {
		case 1<<3 | wtVarint:
			v.Type, j = uintN[uint8](d, m, t, s, j)
		case 2<<3 | wtVarint:
			v.Code, j = uintN[uint8](d, m, t, s, j)
		default:
			j = d.skip(m, s, i)
		}
		if j < 0 {
			return d.stopAt(m, s, i)
		}
		i = j
	}
	return i
}

func (d *decoder) tunnel(s string, i int, p **Tunnel) int {
	if s, i = d.sub(s, i); i < 0 {
		return i
	}
	v, m := object(p, &d.sp.tunnel, zero), &msgTunnel
	for i < len(s) {
		t, j := tag(s, i)
		switch t {
		case 1<<3 | wtBytes:
			v.Type, j = str(s, j)
		case 2<<3 | wtBytes:
			v.Src, j = d.addr(m, t, s, j)
		case 3<<3 | wtBytes:
			v.Dst, j = d.addr(m, t, s, j)
		case 4<<3 | wtVarint:
			v.VNI, j = uintN[uint32](d, m, t, s, j)
		default:
			j = d.skip(m, s, i)
		}
		if j < 0 {
			return d.stopAt(m, s, i)
		}
		i = j
	}
	return i
}

func (d *decoder) tls(s string, i int, p **TLS) int {
	if s, i = d.sub(s, i); i < 0 {
		return i
	}
	v, m := object(p, &d.sp.tls, func(v *TLS) { *v = TLS{ALPN: v.ALPN[:0]} }), &msgTLS
	for i < len(s) {
		t, j := tag(s, i)
		switch t {
		case 1<<3 | wtBytes:
			v.SNI, j = str(s, j)
		case 2<<3 | wtBytes:
			v.ALPN, j = appendStr(v.ALPN, s, j)
		case 3<<3 | wtBytes:
			v.Version, j = str(s, j)
		case 4<<3 | wtBytes:
			v.JA3, j = str(s, j)
		case 5<<3 | wtBytes:
			v.JA3String, j = str(s, j)
		case 6<<3 | wtBytes:
			v.JA4, j = str(s, j)
		case 7<<3 | wtBytes:
			v.ServerVer, j = str(s, j)
		case 8<<3 | wtBytes:
			v.Cipher, j = str(s, j)
		case 9<<3 | wtBytes:
			v.CertSubject, j = str(s, j)
		case 10<<3 | wtBytes:
			v.CertIssuer, j = str(s, j)
		default:
			j = d.skip(m, s, i)
		}
		if j < 0 {
			return d.stopAt(m, s, i)
		}
		i = j
	}
	return i
}

func (d *decoder) quic(s string, i int, p **QUIC) int {
	if s, i = d.sub(s, i); i < 0 {
		return i
	}
	v, m := object(p, &d.sp.quic, zero), &msgQUIC
	for i < len(s) {
		t, j := tag(s, i)
		switch t {
		case 1<<3 | wtBytes:
			v.Version, j = str(s, j)
		default:
			j = d.skip(m, s, i)
		}
		if j < 0 {
			return d.stopAt(m, s, i)
		}
		i = j
	}
	return i
}

func (d *decoder) dns(s string, i int, p **DNS) int {
	if s, i = d.sub(s, i); i < 0 {
		return i
	}
	v, m := object(p, &d.sp.dns, func(v *DNS) { *v = DNS{Queries: v.Queries[:0], Answers: v.Answers[:0]} }), &msgDNS
	for i < len(s) {
		t, j := tag(s, i)
		switch t {
		case 1<<3 | wtBytes:
			v.Query, j = str(s, j)
		case 2<<3 | wtBytes:
			v.Queries, j = appendStr(v.Queries, s, j)
		case 3<<3 | wtBytes:
			v.QType, j = str(s, j)
		case 4<<3 | wtBytes:
			v.RCode, j = str(s, j)
		case 5<<3 | wtBytes:
			v.Answers, j = appendStr(v.Answers, s, j)
		default:
			j = d.skip(m, s, i)
		}
		if j < 0 {
			return d.stopAt(m, s, i)
		}
		i = j
	}
	return i
}

func (d *decoder) http(s string, i int, p **HTTP) int {
	if s, i = d.sub(s, i); i < 0 {
		return i
	}
	v, m := object(p, &d.sp.http, zero), &msgHTTP
	for i < len(s) {
		t, j := tag(s, i)
		switch t {
		case 1<<3 | wtBytes:
			v.Method, j = str(s, j)
		case 2<<3 | wtBytes:
			v.Host, j = str(s, j)
		case 3<<3 | wtBytes:
			v.Path, j = str(s, j)
		case 4<<3 | wtBytes:
			v.UserAgent, j = str(s, j)
		case 5<<3 | wtVarint:
			var n uint64
			n, j = varint(s, j)
			v.Status = int(int64(n))
		default:
			j = d.skip(m, s, i)
		}
		if j < 0 {
			return d.stopAt(m, s, i)
		}
		i = j
	}
	return i
}

func (d *decoder) ssh(s string, i int, p **SSH) int {
	if s, i = d.sub(s, i); i < 0 {
		return i
	}
	v, m := object(p, &d.sp.ssh, zero), &msgSSH
	for i < len(s) {
		t, j := tag(s, i)
		switch t {
		case 1<<3 | wtBytes:
			v.Client, j = str(s, j)
		case 2<<3 | wtBytes:
			v.Server, j = str(s, j)
		default:
			j = d.skip(m, s, i)
		}
		if j < 0 {
			return d.stopAt(m, s, i)
		}
		i = j
	}
	return i
}

func (d *decoder) dhcp(s string, i int, p **DHCP) int {
	if s, i = d.sub(s, i); i < 0 {
		return i
	}
	v, m := object(p, &d.sp.dhcp, func(v *DHCP) { *v = DHCP{MsgTypes: v.MsgTypes[:0]} }), &msgDHCP
	for i < len(s) {
		t, j := tag(s, i)
		switch t {
		case 1<<3 | wtBytes:
			v.MsgTypes, j = appendStr(v.MsgTypes, s, j)
		case 2<<3 | wtBytes:
			v.ClientMAC, j = d.mac(m, t, s, j)
		case 3<<3 | wtBytes:
			v.RequestedIP, j = str(s, j)
		case 4<<3 | wtBytes:
			v.AssignedIP, j = str(s, j)
		case 5<<3 | wtBytes:
			v.Hostname, j = str(s, j)
		case 6<<3 | wtBytes:
			v.VendorClass, j = str(s, j)
		case 7<<3 | wtBytes:
			v.ClientID, j = str(s, j)
		default:
			j = d.skip(m, s, i)
		}
		if j < 0 {
			return d.stopAt(m, s, i)
		}
		i = j
	}
	return i
}

func (d *decoder) socks(s string, i int, p **SOCKS) int {
	if s, i = d.sub(s, i); i < 0 {
		return i
	}
	v, m := object(p, &d.sp.socks, zero), &msgSOCKS
	for i < len(s) {
		t, j := tag(s, i)
		switch t {
		case 1<<3 | wtVarint:
			var n uint64
			n, j = varint(s, j)
			v.Version = int(int64(n))
		case 2<<3 | wtBytes:
			v.Target, j = str(s, j)
		default:
			j = d.skip(m, s, i)
		}
		if j < 0 {
			return d.stopAt(m, s, i)
		}
		i = j
	}
	return i
}
