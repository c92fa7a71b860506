// Package flow owns the flow record schema that the sensor produces and the
// pipeline consumes, and its wire encoding. It imports only the standard
// library so both halves of edgeward can share it without sharing anything
// else.
package flow

import (
	"encoding/binary"
	"net/netip"
)

// IP protocol numbers used by the schema.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
)

// Addr is an IP address packed into 16 bytes; IPv4 is stored IPv4-mapped
// (::ffff:a.b.c.d). Unlike netip.Addr it holds no pointer, so keys built from
// it are cheap to hash and invisible to the garbage collector.
type Addr [16]byte

// AddrFrom converts a netip.Addr. The zone is dropped.
func AddrFrom(a netip.Addr) Addr { return Addr(a.As16()) }

// AddrFrom4 packs a 4-byte IPv4 address.
func AddrFrom4(b []byte) Addr {
	return Addr{10: 0xff, 11: 0xff, 12: b[0], 13: b[1], 14: b[2], 15: b[3]}
}

// AddrFrom16 packs a 16-byte IPv6 address.
func AddrFrom16(b []byte) (a Addr) {
	copy(a[:], b)
	return a
}

// Is4 reports whether a is an IPv4-mapped address.
func (a Addr) Is4() bool {
	return a[0]|a[1]|a[2]|a[3]|a[4]|a[5]|a[6]|a[7]|a[8]|a[9] == 0 && a[10] == 0xff && a[11] == 0xff
}

// Netip returns the address as a netip.Addr, unmapping IPv4.
func (a Addr) Netip() netip.Addr { return netip.AddrFrom16(a).Unmap() }

func (a Addr) String() string { return a.Netip().String() }

// compare orders addresses as big-endian 128-bit numbers (bytewise);
// IPv4-mapped and IPv6 addresses never compare equal.
func (a Addr) compare(b Addr) int {
	x, y := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8])
	if x == y {
		x, y = binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:])
	}
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// MaxVLAN is how many 802.1Q tags a key keeps (outer first): QinQ.
const MaxVLAN = 2

// Key identifies one direction of a flow. It is packed, comparable and
// pointer-free so that it can key a hash map on the per-packet path.
//
// For ICMP and ICMPv6 the ports hold the Community ID port equivalents
// (type and counterpart type, or type and code), so that a request and its
// reply share a key.
type Key struct {
	Src, Dst         Addr
	SrcPort, DstPort uint16
	Proto            uint8
	NVLAN            uint8 // number of valid entries in VLAN
	VLAN             [MaxVLAN]uint16
}

// Reverse returns the key of the opposite direction.
func (k Key) Reverse() Key {
	k.Src, k.Dst = k.Dst, k.Src
	k.SrcPort, k.DstPort = k.DstPort, k.SrcPort
	return k
}

// Canonical returns the key with its endpoints ordered (lower address, then
// lower port, first), so both directions of a conversation map to one value,
// and whether it had to swap them.
func (k *Key) Canonical() (c Key, swapped bool) {
	o := k.Src.compare(k.Dst)
	c = *k
	if o > 0 || (o == 0 && k.SrcPort > k.DstPort) {
		c.Src, c.Dst = k.Dst, k.Src
		c.SrcPort, c.DstPort = k.DstPort, k.SrcPort
		return c, true
	}
	return c, false
}

// VLANs returns the valid VLAN ids, outer first, or nil when untagged.
func (k *Key) VLANs() []uint16 {
	if k.NVLAN == 0 {
		return nil
	}
	return append([]uint16(nil), k.VLAN[:k.NVLAN]...)
}

// ProtoName returns the schema's name for an IP protocol number: "tcp",
// "udp", "icmp", "icmp6", or the number in decimal.
func ProtoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMP:
		return "icmp"
	case ProtoICMPv6:
		return "icmp6"
	}
	return protoNumbers[p]
}

var protoNumbers = func() (t [256]string) {
	for i := range t {
		t[i] = itoa(i)
	}
	return t
}()

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [3]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}

// ProtoNumber is the inverse of ProtoName.
func ProtoNumber(s string) (uint8, bool) {
	switch s {
	case "tcp":
		return ProtoTCP, true
	case "udp":
		return ProtoUDP, true
	case "icmp":
		return ProtoICMP, true
	case "icmp6":
		return ProtoICMPv6, true
	}
	n := 0
	if s == "" || len(s) > 3 {
		return 0, false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n > 255 {
		return 0, false
	}
	return uint8(n), true
}
