package flow

import (
	"errors"
	"math"
	"math/bits"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

var (
	errBadMAC   = errors.New("flow: bad MAC address, want aa:bb:cc:dd:ee:ff")
	errBadFlags = errors.New("flow: bad TCP flags, want letters from FSRPAUEC")
)

// TimeLayout is the record's time format: RFC 3339, UTC, nanoseconds.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// MarshalJSON encodes the record as one JSON object; see AppendJSON.
func (r *Record) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// AppendJSON appends the record as one JSON object (no newline). It is the
// exporter's hot path, so it writes directly instead of reflecting;
// TestJSONRoundTrip keeps it in step with the struct tags that
// encoding/json uses to decode.
func (r *Record) AppendJSON(b []byte) []byte {
	b = append(b, `{"schema":`...)
	b = appendString(b, r.Schema)
	b = append(b, `,"id":`...)
	b = appendString(b, r.ID)
	b = append(b, `,"community_id":`...)
	b = appendString(b, r.CommunityID)
	b = append(b, `,"start":`...)
	b = appendTime(b, r.Start)
	b = append(b, `,"end":`...)
	b = appendTime(b, r.End)
	b = append(b, `,"duration_s":`...)
	b = appendDuration(b, r.DurationS)
	b = append(b, `,"end_reason":`...)
	b = appendString(b, string(r.EndReason))
	b = append(b, `,"proto":`...)
	b = appendString(b, r.Proto)
	if len(r.VLAN) > 0 {
		b = append(b, `,"vlan":[`...)
		for i, v := range r.VLAN {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendUint(b, uint64(v))
		}
		b = append(b, ']')
	}
	b = append(b, `,"src":`...)
	b = r.Src.appendJSON(b)
	b = append(b, `,"dst":`...)
	b = r.Dst.appendJSON(b)
	b = appendField(b, 0, `,"direction":`, r.Direction)
	if s := r.Sensor; s != nil {
		b = append(b, `,"sensor":{`...)
		n := len(b)
		b = appendField(b, n, `,"id":`, s.ID)
		b = appendField(b, n, `,"site":`, s.Site)
		b = append(b, '}')
	}
	if d := r.Device; d != nil {
		b = append(b, `,"device":{"ip":"`...)
		b = appendAddr(b, d.IP)
		b = append(b, '"')
		if !d.MAC.IsZero() {
			b = append(b, `,"mac":"`...)
			b = appendMAC(b, d.MAC)
			b = append(b, '"')
		}
		b = appendField(b, 0, `,"vendor":`, d.Vendor)
		if d.RandomizedMAC {
			b = append(b, `,"randomized_mac":true`...)
		}
		b = appendField(b, 0, `,"hostname":`, d.Hostname)
		b = appendField(b, 0, `,"id":`, d.ID)
		b = appendField(b, 0, `,"owner":`, d.Owner)
		b = appendField(b, 0, `,"assigned_site":`, d.AssignedSite)
		b = appendField(b, 0, `,"assigned_country":`, d.AssignedCountry)
		b = appendField(b, 0, `,"home_timezone":`, d.HomeTimezone)
		b = appendField(b, 0, `,"matched_by":`, d.MatchedBy)
		b = append(b, '}')
	}
	if e := r.Egress; e != nil {
		b = append(b, `,"egress":{"ip":"`...)
		b = appendAddr(b, e.IP)
		b = append(b, '"')
		if e.Port != 0 {
			b = append(b, `,"port":`...)
			b = appendUint(b, uint64(e.Port))
		}
		b = append(b, `,"source":`...)
		b = appendString(b, e.Source)
		b = appendField(b, 0, `,"peer":`, e.Peer)
		b = append(b, '}')
	}
	b = appendField(b, 0, `,"app":`, r.App)
	b = appendField(b, 0, `,"app_source":`, r.AppSource)
	b = appendField(b, 0, `,"app_category":`, r.AppCategory)
	if t := r.TCP; t != nil {
		b = append(b, `,"tcp":{"src_flags":"`...)
		b, _ = t.SrcFlags.AppendText(b)
		b = append(b, `","dst_flags":"`...)
		b, _ = t.DstFlags.AppendText(b)
		b = append(b, `","history":`...)
		b = appendString(b, t.History)
		b = append(b, '}')
	}
	if c := r.ICMP; c != nil {
		b = append(b, `,"icmp":{"type":`...)
		b = appendUint(b, uint64(c.Type))
		b = append(b, `,"code":`...)
		b = appendUint(b, uint64(c.Code))
		b = append(b, '}')
	}
	if t := r.Tunnel; t != nil {
		b = append(b, `,"tunnel":{"type":`...)
		b = appendString(b, t.Type)
		b = append(b, `,"src":"`...)
		b = appendAddr(b, t.Src)
		b = append(b, `","dst":"`...)
		b = appendAddr(b, t.Dst)
		b = append(b, '"')
		if t.VNI != 0 {
			b = append(b, `,"vni":`...)
			b = appendUint(b, uint64(t.VNI))
		}
		b = append(b, '}')
	}
	b = r.appendMeta(b)
	return append(b, '}')
}

func (r *Record) appendMeta(b []byte) []byte {
	if t := r.TLS; t != nil {
		b = append(b, `,"tls":{`...)
		n := len(b)
		b = appendField(b, n, `,"sni":`, t.SNI)
		if len(t.ALPN) > 0 {
			b = appendKey(b, n, `,"alpn":`)
			b = appendStrings(b, t.ALPN)
		}
		b = appendField(b, n, `,"version":`, t.Version)
		b = appendField(b, n, `,"ja3":`, t.JA3)
		b = appendField(b, n, `,"ja3_string":`, t.JA3String)
		b = appendField(b, n, `,"ja4":`, t.JA4)
		b = appendField(b, n, `,"server_version":`, t.ServerVer)
		b = appendField(b, n, `,"cipher":`, t.Cipher)
		b = appendField(b, n, `,"cert_subject":`, t.CertSubject)
		b = appendField(b, n, `,"cert_issuer":`, t.CertIssuer)
		b = append(b, '}')
	}
	if q := r.QUIC; q != nil {
		b = append(b, `,"quic":{"version":`...)
		b = appendString(b, q.Version)
		b = append(b, '}')
	}
	if d := r.DNS; d != nil {
		b = append(b, `,"dns":{"query":`...)
		b = appendString(b, d.Query)
		if len(d.Queries) > 0 {
			b = append(b, `,"queries":`...)
			b = appendStrings(b, d.Queries)
		}
		b = append(b, `,"qtype":`...)
		b = appendString(b, d.QType)
		b = appendField(b, 0, `,"rcode":`, d.RCode)
		if len(d.Answers) > 0 {
			b = append(b, `,"answers":`...)
			b = appendStrings(b, d.Answers)
		}
		b = append(b, '}')
	}
	if h := r.HTTP; h != nil {
		b = append(b, `,"http":{"method":`...)
		b = appendString(b, h.Method)
		b = appendField(b, 0, `,"host":`, h.Host)
		b = appendField(b, 0, `,"path":`, h.Path)
		b = appendField(b, 0, `,"user_agent":`, h.UserAgent)
		if h.Status != 0 {
			b = append(b, `,"status":`...)
			b = appendInt(b, int64(h.Status))
		}
		b = append(b, '}')
	}
	if s := r.SSH; s != nil {
		b = append(b, `,"ssh":{`...)
		n := len(b)
		b = appendField(b, n, `,"client":`, s.Client)
		b = appendField(b, n, `,"server":`, s.Server)
		b = append(b, '}')
	}
	if d := r.DHCP; d != nil {
		b = append(b, `,"dhcp":{`...)
		n := len(b)
		if len(d.MsgTypes) > 0 {
			b = appendKey(b, n, `,"msg_types":`)
			b = appendStrings(b, d.MsgTypes)
		}
		if !d.ClientMAC.IsZero() {
			b = appendKey(b, n, `,"client_mac":`)
			b = append(b, '"')
			b = appendMAC(b, d.ClientMAC)
			b = append(b, '"')
		}
		b = appendField(b, n, `,"requested_addr":`, d.RequestedIP)
		b = appendField(b, n, `,"assigned_addr":`, d.AssignedIP)
		b = appendField(b, n, `,"hostname":`, d.Hostname)
		b = appendField(b, n, `,"vendor_class":`, d.VendorClass)
		b = appendField(b, n, `,"client_id":`, d.ClientID)
		b = append(b, '}')
	}
	if k := r.SOCKS; k != nil {
		b = append(b, `,"socks":{"version":`...)
		b = appendInt(b, int64(k.Version))
		b = append(b, `,"target":`...)
		b = appendString(b, k.Target)
		b = append(b, '}')
	}
	return b
}

// appendKey appends key, a member's `,"name":`, inside an object that
// opened at offset open, without the comma when it is the object's first
// member (open 0: never first).
func appendKey(b []byte, open int, key string) []byte {
	if len(b) == open {
		key = key[1:]
	}
	return append(b, key...)
}

// appendStrings appends a JSON array of strings.
func appendStrings(b []byte, l []string) []byte {
	b = append(b, '[')
	for i, v := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, v)
	}
	return append(b, ']')
}

// appendField appends key (`,"name":`) and the value unless it is empty.
func appendField(b []byte, open int, key, value string) []byte {
	if value == "" {
		return b
	}
	b = appendKey(b, open, key)
	return appendString(b, value)
}

func (e *Endpoint) appendJSON(b []byte) []byte {
	b = append(b, `{"ip":"`...)
	b = appendAddr(b, e.IP)
	b = append(b, `","port":`...)
	b = appendUint(b, uint64(e.Port))
	if !e.MAC.IsZero() {
		b = append(b, `,"mac":"`...)
		b = appendMAC(b, e.MAC)
		b = append(b, '"')
	}
	b = append(b, `,"packets":`...)
	b = appendUint(b, e.Packets)
	b = append(b, `,"bytes":`...)
	b = appendUint(b, e.Bytes)
	b = append(b, `,"payload_bytes":`...)
	b = appendUint(b, e.PayloadBytes)
	b = appendField(b, 0, `,"name":`, e.Name)
	b = appendField(b, 0, `,"name_source":`, e.NameSource)
	b = appendField(b, 0, `,"hostname":`, e.Hostname)
	return append(b, '}')
}

// appendAddr is netip.Addr.AppendTo, faster for IPv4 and IPv6 addresses
// without a zone, a record's commonest, for use inside a JSON string: an
// IPv6 zone is escaped, as it can hold any bytes in a decoded record.
func appendAddr(b []byte, a netip.Addr) []byte {
	switch {
	case a.Is4():
		return appendAddr4(b, a.As4())
	case a.Zone() != "":
		b = append(appendAddr(b, a.WithZone("")), '%')
		return appendEscaped(b, a.Zone())
	case a.Is6() && !a.Is4In6():
		return appendAddr6(b, a.As16())
	}
	return a.AppendTo(b)
}

func appendAddr6(b []byte, v [16]byte) []byte {
	var g [8]uint16
	for i := range g {
		g[i] = uint16(v[2*i])<<8 | uint16(v[2*i+1])
	}
	// The first of the longest runs of two or more zero groups becomes
	// "::" (RFC 5952).
	zs, zn := 8, 1
	for i := 0; i < 8; {
		j := i
		for j < 8 && g[j] == 0 {
			j++
		}
		if j-i > zn {
			zs, zn = i, j-i
		}
		i = max(j, i+1)
	}
	var buf [39]byte
	n := 0
	for i := 0; i < 8; i++ {
		if i == zs {
			buf[n], buf[n+1] = ':', ':'
			n += 2
			if i += zn; i == 8 {
				break
			}
		} else if i > 0 {
			buf[n] = ':'
			n++
		}
		n += putHex(buf[n:], g[i])
	}
	return append(b, buf[:n]...)
}

// putHex writes x in hex without leading zeros and returns the number of
// digits.
func putHex(b []byte, x uint16) int {
	n := max(1, (bits.Len16(x)+3)/4)
	for i := n - 1; i >= 0; i-- {
		b[i] = hexDigits[x&0xf]
		x >>= 4
	}
	return n
}

func appendAddr4(b []byte, v [4]byte) []byte {
	var buf [16]byte
	n := 0
	for _, x := range v {
		// Four bytes at once: the digits, and a byte that the dot after
		// them overwrites.
		d := decimals[x]
		*(*[4]byte)(buf[n:]) = d
		n += int(d[3])
		buf[n] = '.'
		n++
	}
	return append(b, buf[:n-1]...)
}

// decimals holds each byte value's decimal digits, and their count last.
var decimals = func() (t [256][4]byte) {
	for i := range t {
		s := strconv.Itoa(i)
		copy(t[i][:3], s)
		t[i][3] = byte(len(s))
	}
	return t
}()

// appendUint is strconv.AppendUint(b, v, 10), two digits at a time.
func appendUint(b []byte, v uint64) []byte {
	if v < 100 {
		if v < 10 {
			return append(b, byte('0'+v))
		}
		return append(b, twoDigits[2*v], twoDigits[2*v+1])
	}
	var buf [20]byte
	i := len(buf)
	for v >= 100 {
		q := v / 100
		i -= 2
		put2(buf[i:], int(v-q*100))
		v = q
	}
	if v >= 10 {
		i -= 2
		put2(buf[i:], int(v))
	} else {
		i--
		buf[i] = byte('0' + v)
	}
	return append(b, buf[i:]...)
}

// appendInt is strconv.AppendInt(b, v, 10).
func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		return appendUint(append(b, '-'), -uint64(v))
	}
	return appendUint(b, uint64(v))
}

// appendMAC is MAC.AppendText in one append.
func appendMAC(b []byte, m MAC) []byte {
	var buf [17]byte
	for i, x := range m {
		buf[3*i], buf[3*i+1] = hexDigits[x>>4], hexDigits[x&0xf]
		if i < 5 {
			buf[3*i+2] = ':'
		}
	}
	return append(b, buf[:]...)
}

// appendDuration appends seconds as strconv.AppendFloat(b, s, 'f', -1, 64)
// does, and null for NaN and infinities, which JSON has no number for (a
// decoded record may hold them; the sensor never makes them). A duration
// made as float64(ns)/1e9, as the sensor makes it, is written from its
// nanoseconds: below 2^20 s a float64's spacing is under 1e-9, so the
// exact decimal of ns/1e9 is the only shortest one that reads back as s,
// which is what AppendFloat prints, at a fraction of its cost.
func appendDuration(b []byte, s float64) []byte {
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return append(b, "null"...)
	}
	if s <= 0 || s >= 1<<20 {
		return strconv.AppendFloat(b, s, 'f', -1, 64)
	}
	ns := int64(math.Round(s * 1e9))
	if float64(ns)/1e9 != s {
		return strconv.AppendFloat(b, s, 'f', -1, 64)
	}
	b = appendUint(b, uint64(ns/1e9))
	frac := ns % 1e9
	if frac == 0 {
		return b
	}
	var buf [10]byte
	buf[0] = '.'
	put2(buf[1:], int(frac/1e7))
	put2(buf[3:], int(frac/1e5%100))
	put2(buf[5:], int(frac/1e3%100))
	put2(buf[7:], int(frac/10%100))
	buf[9] = byte('0' + frac%10)
	n := 10
	for buf[n-1] == '0' {
		n--
	}
	return append(b, buf[:n]...)
}

// appendTime writes TimeLayout by hand: time.AppendFormat's general layout
// interpreter costs more than the rest of a record's encoding.
func appendTime(b []byte, t time.Time) []byte {
	secs := t.Unix()
	ns := t.Nanosecond()
	// Civil date from days since the epoch (H. Hinnant's algorithm), for
	// years 0000-9999; time.Time.Date and Clock cost twice as much.
	if secs < -62167219200 || secs >= 253402300800 {
		b = append(b, '"')
		b = t.UTC().AppendFormat(b, TimeLayout)
		return append(b, '"')
	}
	days := secs / 86400
	sod := secs % 86400
	if sod < 0 {
		sod += 86400
		days--
	}
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	y := yoe + era*400
	if m <= 2 {
		y++
	}
	var buf [32]byte
	buf[0] = '"'
	put2(buf[1:], int(y/100))
	put2(buf[3:], int(y%100))
	buf[5] = '-'
	put2(buf[6:], int(m))
	buf[8] = '-'
	put2(buf[9:], int(d))
	buf[11] = 'T'
	put2(buf[12:], int(sod/3600))
	buf[14] = ':'
	put2(buf[15:], int(sod/60%60))
	buf[17] = ':'
	put2(buf[18:], int(sod%60))
	buf[20] = '.'
	put2(buf[21:], ns/1e7)
	put2(buf[23:], ns/1e5%100)
	put2(buf[25:], ns/1e3%100)
	put2(buf[27:], ns/10%100)
	buf[29] = byte('0' + ns%10)
	buf[30], buf[31] = 'Z', '"'
	return append(b, buf[:]...)
}

// put2 writes v (0-99) as two digits.
func put2(b []byte, v int) {
	b[0], b[1] = twoDigits[2*v], twoDigits[2*v+1]
}

const twoDigits = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// special reports whether any of w's bytes is not plain: a control
// character, non-ASCII, or one of " & < > \ (the SWAR zero-byte tests of
// Hacker's Delight 6-1, exact for "any"; " and &, < and > differ in one
// bit, which one test ignores).
func special(w uint64) bool {
	return (w-0x20*ones)&^w&highs|w&highs|zeroByte((w^'"'*ones)&^(4*ones))|
		zeroByte((w^'<'*ones)&^(2*ones))|zeroByte(w^'\\'*ones) != 0
}

const ones, highs = 0x0101010101010101, 0x8080808080808080

// zeroByte has the top bit of a byte of its result set if a byte of v is
// zero (and only then, if it is the first).
func zeroByte(v uint64) uint64 { return (v - ones) &^ v & highs }

// le64 returns the first eight bytes of s as a little-endian word.
func le64(s string) uint64 {
	s = s[:8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// plain marks the bytes a JSON string holds unescaped, as encoding/json
// writes them: ASCII but control characters and " \ < > & (it escapes <,
// > and & too).
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s as a JSON string, escaping as encoding/json does
// (invalid UTF-8 becomes U+FFFD), because names and banners come from the
// wire and may hold anything. Most are plain ASCII names, which it copies
// after a look at eight bytes at a time.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	return append(appendEscaped(b, s), '"')
}

// appendEscaped appends the inside of appendString's JSON string.
func appendEscaped(b []byte, s string) []byte {
	i := 0
	for ; i+8 <= len(s) && !special(le64(s[i:])); i += 8 {
	}
	for i < len(s) && plain[s[i]] {
		i++
	}
	if i == len(s) {
		return append(b, s...)
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}
