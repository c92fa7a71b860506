package inspect

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// socksRequest measures a SOCKS4/4a or SOCKS5 client handshake at the
// start of a client stream (greeting, optional username/password
// sub-negotiation, CONNECT request) and returns its length, the version
// and the requested target. needMore means b is a valid but incomplete
// prefix; ok false means b is not SOCKS.
func socksRequest(b []byte) (n, version int, target string, ok, needMore bool) {
	if len(b) < 2 {
		return 0, 0, "", len(b) == 1 && (b[0] == 4 || b[0] == 5), len(b) == 1
	}
	switch b[0] {
	case 4: // VN CD DSTPORT(2) DSTIP(4) USERID NUL [DOMAIN NUL]
		if b[1] != 1 && b[1] != 2 {
			return 0, 0, "", false, false
		}
		if len(b) < 9 {
			return 0, 0, "", true, true
		}
		port := binary.BigEndian.Uint16(b[2:4])
		end := indexNUL(b, 8, 256)
		if end < 0 {
			return 0, 0, "", end == -1, end == -1
		}
		n = end + 1
		ip := b[4:8]
		if ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0 { // 4a: a domain follows
			dend := indexNUL(b, n, 256)
			if dend < 0 {
				return 0, 0, "", dend == -1, dend == -1
			}
			return dend + 1, 4, string(b[n:dend]) + ":" + strconv.Itoa(int(port)), true, false
		}
		return n, 4, netip.AddrFrom4([4]byte(ip)).String() + ":" + strconv.Itoa(int(port)), true, false
	case 5: // VER NMETHODS METHODS...
		nm := int(b[1])
		if nm == 0 {
			return 0, 0, "", false, false
		}
		n = 2 + nm
		if len(b) < n+1 {
			return 0, 0, "", true, true
		}
		if b[n] == 1 { // username/password sub-negotiation: VER ULEN UNAME PLEN PASSWD
			if len(b) < n+2 {
				return 0, 0, "", true, true
			}
			p := n + 2 + int(b[n+1])
			if len(b) < p+1 {
				return 0, 0, "", true, true
			}
			n = p + 1 + int(b[p])
		}
		if len(b) < n+5 {
			return 0, 0, "", true, true
		}
		if b[n] != 5 || b[n+1] < 1 || b[n+1] > 3 || b[n+2] != 0 {
			return 0, 0, "", false, false
		}
		var host string
		a := n + 4
		switch b[n+3] {
		case 1:
			if len(b) < a+6 {
				return 0, 0, "", true, true
			}
			host = netip.AddrFrom4([4]byte(b[a : a+4])).String()
			a += 4
		case 3:
			l := int(b[a])
			if len(b) < a+1+l+2 {
				return 0, 0, "", true, true
			}
			host = string(b[a+1 : a+1+l])
			a += 1 + l
		case 4:
			if len(b) < a+18 {
				return 0, 0, "", true, true
			}
			host = "[" + netip.AddrFrom16([16]byte(b[a:a+16])).String() + "]"
			a += 16
		default:
			return 0, 0, "", false, false
		}
		port := binary.BigEndian.Uint16(b[a : a+2])
		return a + 2, 5, host + ":" + strconv.Itoa(int(port)), true, false
	}
	return 0, 0, "", false, false
}

// socksReply measures the proxy's side of the handshake; version is the
// client's.
func socksReply(b []byte, version int) (n int, needMore bool) {
	if version == 4 {
		if len(b) < 8 {
			return 0, true
		}
		return 8, false
	}
	if len(b) < 2 {
		return 0, true
	}
	n = 2
	if b[1] == 2 { // username/password: the sub-negotiation status
		n += 2
	}
	if len(b) < n+5 {
		return 0, true
	}
	switch b[n+3] {
	case 1:
		n += 4 + 4 + 2
	case 3:
		n += 4 + 1 + int(b[n+4]) + 2
	case 4:
		n += 4 + 16 + 2
	default:
		return len(b), false
	}
	if len(b) < n {
		return 0, true
	}
	return n, false
}

// indexNUL finds a NUL at or after from within limit bytes: -1 when b ends
// first (need more), -2 when the limit passes.
func indexNUL(b []byte, from, limit int) int {
	for i := from; i < len(b); i++ {
		if b[i] == 0 {
			return i
		}
		if i-from >= limit {
			return -2
		}
	}
	return -1
}
