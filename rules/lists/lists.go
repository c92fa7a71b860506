// Package lists owns the lookup structures behind the rule functions
// cidr_in, dns_suffix_in, asn_in, oui_in and in_list, and the list file
// format. Every lookup costs a bounded number of steps that does not grow
// with the size of the list, so a 100k-entry threat list costs a flow about
// what a 10-entry allow list does.
package lists

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unsafe"
)

// Entry is one list value and where it was written.
type Entry struct {
	Value string
	Line  int
	Col   int
}

// Parse reads a list file: one entry a line; '#' starts a comment;
// blank lines are skipped; surrounding white space is trimmed. A UTF-8
// byte order mark (Windows editors write one) is not part of the first
// entry.
func Parse(r io.Reader) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\ufeff"))
		}
		if i := bytes.IndexByte(b, '#'); i >= 0 {
			b = b[:i]
		}
		lead := len(b) - len(bytes.TrimLeft(b, " \t"))
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		out = append(out, Entry{Value: string(b), Line: line, Col: lead + 1})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading list line %d: %w", line+1, err)
	}
	return out, nil
}

// EntryError says which entry of a list could not be used and why.
type EntryError struct {
	Index int // into the entries given to the builder
	Err   error
}

func (e *EntryError) Error() string { return e.Err.Error() }
func (e *EntryError) Unwrap() error { return e.Err }

// Strings is an exact-match set.
type Strings struct{ m map[string]struct{} }

// NewStrings builds an exact-match set.
func NewStrings(entries []Entry) *Strings {
	s := &Strings{m: make(map[string]struct{}, len(entries))}
	for _, e := range entries {
		s.m[e.Value] = struct{}{}
	}
	return s
}

// Contains reports whether v is in the set.
func (s *Strings) Contains(v string) bool { _, ok := s.m[v]; return ok }

// ContainsBytes is Contains for a byte slice, without converting it.
func (s *Strings) ContainsBytes(v []byte) bool { _, ok := s.m[string(v)]; return ok }

// Len is the number of distinct entries.
func (s *Strings) Len() int { return len(s.m) }

// Suffixes matches DNS names against domain suffixes on label boundaries:
// "anydesk.com" matches "anydesk.com" and "relay-1.anydesk.com" but not
// "notanydesk.com". Names compare case-insensitively, trailing dot ignored.
// A lookup costs one hash probe per label of the name, skipped for the
// labels no suffix is as long as.
type Suffixes struct {
	m    map[string]struct{}
	lens lengths
}

// lengths is a set of string lengths, all those over 255 in it as one:
// testing it is cheaper than hashing a string to find it is not there.
type lengths [4]uint64

func (l *lengths) add(n int) {
	n = min(n, 255)
	l[n>>6] |= 1 << (n & 63)
}

func (l *lengths) has(n int) bool {
	n = min(n, 255)
	return l[n>>6]>>(n&63)&1 != 0
}

// ErrBadSuffix is returned for an empty or malformed domain suffix.
var ErrBadSuffix = errors.New("not a domain suffix")

// NewSuffixes builds a suffix set. A leading "*." or "." is accepted and
// means the same as the bare suffix.
func NewSuffixes(entries []Entry) (*Suffixes, error) {
	s := &Suffixes{m: make(map[string]struct{}, len(entries))}
	var errs []error
	for i, e := range entries {
		v := strings.TrimPrefix(strings.TrimPrefix(e.Value, "*"), ".")
		v = strings.ToLower(strings.TrimSuffix(v, "."))
		if v == "" || strings.ContainsAny(v, " \t/*") || strings.Contains(v, "..") {
			errs = append(errs, &EntryError{i, fmt.Errorf("%q: %w", e.Value, ErrBadSuffix)})
			continue
		}
		s.m[v] = struct{}{}
		s.lens.add(len(v))
	}
	return s, errors.Join(errs...)
}

// Len is the number of distinct suffixes.
func (s *Suffixes) Len() int { return len(s.m) }

// Match reports whether name equals a suffix or ends with "."+suffix.
func (s *Suffixes) Match(name string) bool {
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return false
	}
	var buf [256]byte
	if hasUpper(name) {
		name = lowered(&buf, name)
	}
	for {
		if s.lens.has(len(name)) {
			if _, ok := s.m[name]; ok {
				return true
			}
		}
		i := strings.IndexByte(name, '.')
		if i < 0 {
			return false
		}
		name = name[i+1:]
	}
}

// SuffixSets matches a name against up to 64 suffix sets in one walk of
// its labels, for callers that check one name against several lists.
type SuffixSets struct {
	m    map[string]uint64
	lens lengths
}

// NewSuffixSets combines sets; bit i of Match's result is sets[i].
func NewSuffixSets(sets []*Suffixes) *SuffixSets {
	ss := &SuffixSets{m: map[string]uint64{}}
	for i, s := range sets[:min(len(sets), 64)] {
		for k := range s.m {
			ss.m[k] |= 1 << i
			ss.lens.add(len(k))
		}
	}
	return ss
}

// Match returns the sets name matches, as a bit mask.
func (ss *SuffixSets) Match(name string) uint64 {
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return 0
	}
	var buf [256]byte
	if hasUpper(name) {
		name = lowered(&buf, name)
	}
	var mask uint64
	for {
		if ss.lens.has(len(name)) {
			mask |= ss.m[name]
		}
		i := strings.IndexByte(name, '.')
		if i < 0 {
			return mask
		}
		name = name[i+1:]
	}
}

// lowered returns name in lower case, as the suffix sets hold names. It
// lowers name into buf (a longer one into a new buffer) and returns a
// string that shares buf's bytes, so that the map lookups do not
// allocate: the string must not outlive buf.
func lowered(buf *[256]byte, name string) string {
	b := buf[:0]
	if len(name) > len(buf) {
		b = make([]byte, 0, len(name))
	}
	for i := range len(name) {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// hasUpper reports whether s has an ASCII upper-case letter, eight bytes
// at a time: every name a suffix set matches is checked.
func hasUpper(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; len(s) >= 8; s = s[8:] {
		x := binary.LittleEndian.Uint64([]byte(s[:8]))
		// Without its high bit, a byte plus 0x3f reaches 0x80 from 'A'
		// on and plus 0x25 from past 'Z' on, with no carry out of it;
		// bytes with the high bit set are no letters.
		y := x &^ highs
		if ((y+0x3f*ones)^(y+0x25*ones))&^x&highs != 0 {
			return true
		}
	}
	for i := range len(s) {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// Numbers is a set of unsigned integers, e.g. AS numbers ("AS13335" and
// "13335" are the same entry).
type Numbers struct{ m map[uint64]struct{} }

// NewNumbers builds a number set; an "AS" prefix, in any case, is accepted.
func NewNumbers(entries []Entry) (*Numbers, error) {
	n := &Numbers{m: make(map[uint64]struct{}, len(entries))}
	var errs []error
	for i, e := range entries {
		v := e.Value
		if len(v) > 2 && strings.EqualFold(v[:2], "AS") {
			v = v[2:]
		}
		x, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			errs = append(errs, &EntryError{i, fmt.Errorf("%q is not a number or AS number", e.Value)})
			continue
		}
		n.m[x] = struct{}{}
	}
	return n, errors.Join(errs...)
}

// Contains reports whether x is in the set.
func (n *Numbers) Contains(x uint64) bool { _, ok := n.m[x]; return ok }

// Values lists the set's numbers in no particular order.
func (n *Numbers) Values() []uint64 {
	out := make([]uint64, 0, len(n.m))
	for x := range n.m {
		out = append(out, x)
	}
	return out
}

// OUIs is a set of IEEE MA-L prefixes (the first three bytes of a MAC).
type OUIs struct{ m map[uint32]struct{} }

// NewOUIs builds an OUI set from entries like "00:1A:2B", "00-1a-2b" or
// "001a2b"; a full MAC address is accepted and reduced to its OUI.
func NewOUIs(entries []Entry) (*OUIs, error) {
	o := &OUIs{m: make(map[uint32]struct{}, len(entries))}
	var errs []error
	for i, e := range entries {
		x, ok := parseOUI(e.Value)
		if !ok {
			errs = append(errs, &EntryError{i, fmt.Errorf("%q is not an OUI, want aa:bb:cc", e.Value)})
			continue
		}
		o.m[x] = struct{}{}
	}
	return o, errors.Join(errs...)
}

func parseOUI(s string) (uint32, bool) {
	var x uint32
	n := 0
	for i := 0; i < len(s) && n < 6; i++ {
		c := s[i]
		if c == ':' || c == '-' || c == '.' {
			continue
		}
		d, ok := unhex(c)
		if !ok {
			return 0, false
		}
		x = x<<4 | uint32(d)
		n++
	}
	return x, n == 6
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Contains reports whether the MAC address (text form) has an OUI in the set.
func (o *OUIs) Contains(mac string) bool {
	x, ok := parseOUI(mac)
	if !ok {
		return false
	}
	_, ok = o.m[x]
	return ok
}

// ContainsMAC is Contains for a binary MAC address.
func (o *OUIs) ContainsMAC(mac [6]byte) bool {
	_, ok := o.m[uint32(mac[0])<<16|uint32(mac[1])<<8|uint32(mac[2])]
	return ok
}

// Prefixes is a set of IP prefixes. Overlapping prefixes are merged into
// disjoint address ranges; a lookup indexes a bucket by the top 16 bits of
// the address and binary-searches the few ranges in it, so its cost is
// bounded by the densest /16, not by the list size.
type Prefixes struct {
	v4 rangeSet
	v6 rangeSet
	n  int
}

// NewPrefixes builds a prefix set from CIDRs ("10.0.0.0/8") and single
// addresses ("192.0.2.1"). Host bits are ignored. IPv4-mapped IPv6
// addresses are looked up as IPv4.
func NewPrefixes(entries []Entry) (*Prefixes, error) {
	var r4, r6 []span
	var errs []error
	for i, e := range entries {
		p, err := parsePrefix(e.Value)
		if err != nil {
			errs = append(errs, &EntryError{i, err})
			continue
		}
		lo, hi := bounds(p)
		if p.Addr().Is4() {
			r4 = append(r4, span{lo, hi})
		} else {
			r6 = append(r6, span{lo, hi})
		}
	}
	p := &Prefixes{v4: newRangeSet(r4, 32), v6: newRangeSet(r6, 128), n: len(entries) - len(errs)}
	return p, errors.Join(errs...)
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// u128 is an address as a big-endian 128-bit number (IPv4 in lo).
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) next() (u128, bool) {
	if a.lo == ^uint64(0) {
		if a.hi == ^uint64(0) {
			return a, false
		}
		return u128{a.hi + 1, 0}, true
	}
	return u128{a.hi, a.lo + 1}, true
}

func toU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{0, uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func bounds(p netip.Prefix) (lo, hi u128) {
	lo = toU128(p.Addr())
	host := p.Addr().BitLen() - p.Bits()
	hi = lo
	switch {
	case host >= 128:
		hi = u128{^uint64(0), ^uint64(0)}
	case host >= 64:
		hi.lo = ^uint64(0)
		hi.hi |= (1<<(host-64) - 1)
		if host == 128 {
			hi.hi = ^uint64(0)
		}
	case host > 0:
		hi.lo |= 1<<host - 1
	}
	return lo, hi
}

type span struct{ lo, hi u128 }

// rangeSet holds disjoint sorted spans and, per value of the top 16 bits,
// the first span that can contain an address with that value.
type rangeSet struct {
	spans  []span
	bucket []uint32 // len 65537 when spans is large enough to need it
	bits   int
}

const bucketMin = 32

func newRangeSet(in []span, bits int) rangeSet {
	slices.SortFunc(in, func(a, b span) int {
		switch {
		case a.lo.less(b.lo):
			return -1
		case b.lo.less(a.lo):
			return 1
		}
		return 0
	})
	var out []span
	for _, s := range in {
		if n := len(out); n > 0 {
			last := &out[n-1]
			nx, ok := last.hi.next()
			if !ok || !nx.less(s.lo) { // overlapping or adjacent
				if last.hi.less(s.hi) {
					last.hi = s.hi
				}
				continue
			}
		}
		out = append(out, s)
	}
	rs := rangeSet{spans: out, bits: bits}
	if len(out) >= bucketMin {
		rs.bucket = make([]uint32, 1<<16+1)
		j := 0
		for b := range 1 << 16 {
			// First span whose hi has top16 >= b.
			for j < len(out) && rs.top16(out[j].hi) < b {
				j++
			}
			rs.bucket[b] = uint32(j)
		}
		rs.bucket[1<<16] = uint32(len(out))
	}
	return rs
}

func (rs *rangeSet) top16(a u128) int {
	if rs.bits == 32 {
		return int(a.lo >> 16)
	}
	return int(a.hi >> 48)
}

func (rs *rangeSet) contains(a u128) bool {
	sp := rs.spans
	if rs.bucket != nil {
		t := rs.top16(a)
		// Spans before bucket[t] end below this /16; spans from
		// bucket[t+1] on end at or above the next one, and only the
		// first of them can start low enough to contain a.
		end := int(rs.bucket[t+1]) + 1
		sp = sp[rs.bucket[t]:min(end, len(sp))]
	}
	// First span with hi >= a.
	i, _ := slices.BinarySearchFunc(sp, a, func(s span, a u128) int {
		if s.hi.less(a) {
			return -1
		}
		return 1
	})
	return i < len(sp) && !a.less(sp[i].lo)
}

// Len is the number of entries the set was built from.
func (p *Prefixes) Len() int { return p.n }

// Contains reports whether a is inside any prefix of the set.
func (p *Prefixes) Contains(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	if a.Is4() {
		return p.v4.contains(toU128(a))
	}
	return p.v6.contains(toU128(a))
}
