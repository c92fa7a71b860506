package flow

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
)

// Community ID v1 (https://github.com/corelight/community-id-spec), seed 0,
// as computed by Zeek, Suricata and nDPI for the same connection.

var icmp4Counterpart = map[uint8]uint8{
	0: 8, 8: 0, // echo reply / echo
	13: 14, 14: 13, // timestamp
	15: 16, 16: 15, // information
	10: 9, 9: 10, // router solicitation / advertisement
	17: 18, 18: 17, // address mask
}

var icmp6Counterpart = map[uint8]uint8{
	128: 129, 129: 128, // echo
	130: 131, 131: 130, // MLD query / report
	133: 134, 134: 133, // router solicitation / advertisement
	135: 136, 136: 135, // neighbour solicitation / advertisement
	139: 140, 140: 139, // node information (who-are-you)
	144: 145, 145: 144, // home agent address discovery
}

// ICMPPorts returns the Community ID port equivalents of an ICMP or ICMPv6
// message: (type, counterpart type) for request/reply pairs, otherwise
// (type, code) and oneWay set.
func ICMPPorts(proto, typ, code uint8) (sport, dport uint16, oneWay bool) {
	m := icmp4Counterpart
	if proto == ProtoICMPv6 {
		m = icmp6Counterpart
	}
	if c, ok := m[typ]; ok {
		return uint16(typ), uint16(c), false
	}
	return uint16(typ), uint16(code), true
}

// CommunityID returns the Community ID v1 string ("1:" + base64 SHA-1) for a
// flow seen from its initiator. For ICMP the key's ports must already be the
// ICMPPorts equivalents and oneWay says whether the message type has no
// counterpart.
func CommunityID(k Key, oneWay bool) string {
	src, dst, sp, dp := k.Src, k.Dst, k.SrcPort, k.DstPort
	hasPorts := k.Proto == ProtoTCP || k.Proto == ProtoUDP || k.Proto == ProtoICMP || k.Proto == ProtoICMPv6 || k.Proto == 132
	if !oneWay {
		c := src.compare(dst)
		if c > 0 || (c == 0 && hasPorts && sp > dp) {
			src, dst, sp, dp = dst, src, dp, sp
		}
	}
	var buf [2 + 16 + 16 + 2 + 4]byte
	b := buf[:2] // seed 0
	if src.Is4() && dst.Is4() {
		b = append(b, src[12:]...)
		b = append(b, dst[12:]...)
	} else {
		b = append(b, src[:]...)
		b = append(b, dst[:]...)
	}
	b = append(b, k.Proto, 0)
	if hasPorts {
		b = binary.BigEndian.AppendUint16(b, sp)
		b = binary.BigEndian.AppendUint16(b, dp)
	}
	sum := sha1.Sum(b)
	var out [2 + 28]byte
	out[0], out[1] = '1', ':'
	base64.StdEncoding.Encode(out[2:], sum[:])
	return string(out[:])
}
