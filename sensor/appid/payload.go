package appid

import (
	"bytes"
	"encoding/binary"
)

func payload(app, category string) Result {
	return Result{app, SourcePayload, category}
}

// Protocols many products share, which a product's name may refine.
const (
	appWireGuard = "wireguard"
	appOpenVPN   = "openvpn"
	appIPsec     = "ipsec"
)

// generic reports a payload match of a protocol many products share.
func generic(r Result) bool {
	return r.Source == SourcePayload && (r.App == appWireGuard || r.App == appOpenVPN || r.App == appIPsec)
}

// clip bounds what the signatures read, so a caller passing a whole packet
// costs the same as one passing MaxPayload bytes.
func clip(b []byte) []byte {
	if len(b) > MaxPayload {
		return b[:MaxPayload]
	}
	return b
}

// hasPayload reports whether in carries a payload for the signatures: every
// one of them needs bytes, so a flow without any (most flows identified at
// export) skips them.
func hasPayload(in *Input) bool {
	return len(in.ClientFirst)+len(in.ClientSecond)+len(in.ServerFirst)+len(in.ServerSecond) > 0
}

// matchPayload tries the signatures of the flow's transport. Each one is a
// structural check of a documented or widely reverse-engineered handshake;
// the sources are in the comments.
func matchPayload(in *Input) (Result, bool) {
	c1, c2 := clip(in.ClientFirst), clip(in.ClientSecond)
	s1, s2 := clip(in.ServerFirst), clip(in.ServerSecond)
	// A server that speaks first (RFB, SSH, NX) may be recorded as the
	// "client" when the capture missed the handshake, so banners are
	// checked on both sides.
	switch in.Proto {
	case TCP:
		switch {
		case isSSH(c1) || isSSH(s1):
			return payload("ssh", CategoryRemoteAccess), true
		case isRFB(s1) || isRFB(c1):
			return payload("vnc", CategoryRemoteAccess), true
		case isRDP(c1, s1):
			return payload("rdp", CategoryRemoteAccess), true
		case isNX(c1) || isNX(s1):
			return payload("nomachine", CategoryRemoteAccess), true
		case isICA(c1) || isICA(s1):
			return payload("citrix", CategoryRemoteAccess), true
		case isTeamViewerTCP(in, c1, c2, s1):
			return payload("teamviewer", CategoryRemoteAccess), true
		case isDERP(c1, s1):
			return payload("tailscale", CategoryVPN), true
		case isSOCKS5(c1, s1) || isSOCKS4(c1, s1):
			return payload("socks", CategoryProxy), true
		case isHTTPConnect(c1):
			return payload("http_connect", CategoryProxy), true
		case isSoftEther(c1):
			return payload("softether", CategoryVPN), true
		case isOpenVPNTCP(c1, c2, s1, s2):
			return payload(appOpenVPN, CategoryVPN), true
		}
	case UDP:
		if in.QUIC {
			return Result{}, false
		}
		switch {
		case isTailscaleDisco(c1) || isTailscaleDisco(s1):
			return payload("tailscale", CategoryVPN), true
		case isWireGuard(c1, s1):
			if in.ServerPort == 41641 || in.ClientPort == 41641 {
				// Tailscale's WireGuard port; its disco packets on the same
				// socket are matched above when seen.
				return payload("tailscale", CategoryVPN), true
			}
			return payload(appWireGuard, CategoryVPN), true
		case isOpenVPNUDP(c1, c2, s1, s2):
			return payload(appOpenVPN, CategoryVPN), true
		case isIKE(c1, in):
			return payload(appIPsec, CategoryVPN), true
		case isRDPUDP(c1, s1):
			return payload("rdp", CategoryRemoteAccess), true
		case isTeamViewerUDP(in, c1, s1):
			return payload("teamviewer", CategoryRemoteAccess), true
		case isZeroTier(in, c1) || isZeroTier(in, s1):
			return payload("zerotier", CategoryVPN), true
		}
	}
	return Result{}, false
}

// isSSH: RFC 4253 section 4.2 identification string.
func isSSH(b []byte) bool {
	return len(b) >= 8 && (bytes.HasPrefix(b, []byte("SSH-2.0-")) || bytes.HasPrefix(b, []byte("SSH-1.")))
}

// isRFB: RFC 6143 section 7.1.1 ProtocolVersion, "RFB 003.008\n" (Apple
// Remote Desktop sends 003.889).
func isRFB(b []byte) bool {
	if len(b) < 12 || !bytes.HasPrefix(b, []byte("RFB ")) || b[7] != '.' || b[11] != '\n' {
		return false
	}
	for _, i := range []int{4, 5, 6, 8, 9, 10} {
		if b[i] < '0' || b[i] > '9' {
			return false
		}
	}
	return true
}

// isRDP: TPKT (RFC 1006) version 3 carrying an X.224 Connection Request
// (0xE0), as MS-RDPBCGR 2.2.1.1 specifies, with either the
// "Cookie: mstshash=" routing token or an RDP_NEG_REQ; or the server's
// X.224 Connection Confirm (0xD0) to such a request.
func isRDP(c, s []byte) bool {
	tpkt := func(b []byte) bool {
		return len(b) >= 11 && b[0] == 3 && b[1] == 0 && int(binary.BigEndian.Uint16(b[2:])) >= 11 &&
			int(binary.BigEndian.Uint16(b[2:])) <= 4096 && int(b[4]) == int(binary.BigEndian.Uint16(b[2:]))-5
	}
	if !tpkt(c) || c[5] != 0xe0 {
		return false
	}
	if bytes.Contains(c, []byte("Cookie: mstshash=")) || bytes.Contains(c, []byte("Cookie: msts=")) {
		return true
	}
	n := int(binary.BigEndian.Uint16(c[2:]))
	if n <= len(c) && n >= 19 && c[n-8] == 0x01 && c[n-6] == 0x08 && c[n-5] == 0 { // RDP_NEG_REQ, length 8
		return true
	}
	return tpkt(s) && s[5] == 0xd0
}

// isRDPUDP: MS-RDPEMT/RDPEUDP SYN datagram: snSourceAck = -1, the SYN flag,
// padded to exactly 1232 bytes (MS-RDPEUDP 3.1.5.1.1).
func isRDPUDP(c, s []byte) bool {
	syn := func(b []byte, flag byte) bool {
		return len(b) >= 8 && b[0] == 0xff && b[1] == 0xff && b[2] == 0xff && b[3] == 0xff && b[7]&flag == flag
	}
	// The payload is clipped to MaxPayload, so the 1232-byte size is
	// checked through the padding being zero rather than the length.
	return syn(c, 0x01) && (len(c) == MaxPayload || len(c) == 1232) && allZero(c[len(c)-32:]) ||
		syn(c, 0x01) && syn(s, 0x05)
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// isNX: NoMachine NX server banners ("NXSH-x.y.z", "NXD-x.y.z").
func isNX(b []byte) bool {
	return bytes.HasPrefix(b, []byte("NXSH-")) || bytes.HasPrefix(b, []byte("NXD-"))
}

// isICA: Citrix ICA detect string "\x7f\x7fICA\x00" (port 1494) and CGP
// session reliability "\x1aCGP/01" (port 2598), as in nDPI's citrix.c.
func isICA(b []byte) bool {
	return bytes.HasPrefix(b, []byte("\x7f\x7fICA\x00")) || bytes.HasPrefix(b, []byte("\x1aCGP/01"))
}

// isTeamViewerTCP: TeamViewer's proprietary framing starts its commands
// with 0x17 0x24 (client) and answers 0x11 0x30 or 0x17 0x24 (nDPI
// teamviewer.c). Two bytes alone are weak, so a second confirming packet
// or TeamViewer's port is required.
func isTeamViewerTCP(in *Input, c1, c2, s1 []byte) bool {
	tv := func(b []byte) bool { return len(b) > 2 && b[0] == 0x17 && b[1] == 0x24 }
	resp := func(b []byte) bool {
		return len(b) > 2 && (b[0] == 0x11 && b[1] == 0x30 || b[0] == 0x17 && b[1] == 0x24)
	}
	if !tv(c1) {
		return false
	}
	return resp(s1) || tv(c2) || in.ServerPort == 5938
}

// isTeamViewerUDP: UDP datagrams carry 0x17 0x24 at offset 11 with a zero
// first byte (nDPI teamviewer.c); confirmed by both directions or port 5938.
func isTeamViewerUDP(in *Input, c, s []byte) bool {
	tv := func(b []byte) bool { return len(b) > 13 && b[0] == 0 && b[11] == 0x17 && b[12] == 0x24 }
	return tv(c) && (tv(s) || in.ServerPort == 5938 || in.ClientPort == 5938)
}

// Tailscale disco messages start with the magic "TS💬" (tailscale
// disco/disco.go: Magic = "TS\xf0\x9f\x92\xac") followed by the sender's
// 32-byte disco key and a 24-byte nonce.
var discoMagic = []byte("TS\xf0\x9f\x92\xac")

func isTailscaleDisco(b []byte) bool {
	return len(b) >= len(discoMagic)+32+24 && bytes.HasPrefix(b, discoMagic)
}

// isDERP: Tailscale's DERP relay over plain HTTP upgrades with
// "Upgrade: DERP" and the server's first frame (frameServerKey, type 1)
// carries the magic "DERP🔑" (tailscale derp/derp.go).
func isDERP(c, s []byte) bool {
	if bytes.HasPrefix(c, []byte("GET ")) && bytes.Contains(c, []byte("\nUpgrade: DERP")) {
		return true
	}
	return len(s) >= 13 && s[0] == 0x01 && bytes.Equal(s[5:13], []byte("DERP\xf0\x9f\x94\x91"))
}

// isSOCKS5: RFC 1928 method selection: VER=5, NMETHODS, METHODS, and the
// server's two-byte choice.
func isSOCKS5(c, s []byte) bool {
	if len(c) < 3 || c[0] != 5 || c[1] == 0 || len(c) != 2+int(c[1]) {
		return false
	}
	for _, m := range c[2:] {
		if m > 0x09 && m < 0x80 || m == 0xff { // IANA-assigned or private methods
			return false
		}
	}
	return len(s) == 0 || len(s) == 2 && s[0] == 5 && (s[1] <= 0x09 || s[1] >= 0x80)
}

// isSOCKS4: SOCKS4/4a request: VN=4, CD=1|2, port, address, NUL-terminated
// user id; reply VN=0, CD=90..93.
func isSOCKS4(c, s []byte) bool {
	if len(c) < 9 || c[0] != 4 || (c[1] != 1 && c[1] != 2) || c[len(c)-1] != 0 {
		return false
	}
	return len(s) == 0 || len(s) >= 8 && s[0] == 0 && s[1] >= 90 && s[1] <= 93
}

// isHTTPConnect: RFC 9110 section 9.3.6.
func isHTTPConnect(c []byte) bool {
	return bytes.HasPrefix(c, []byte("CONNECT ")) && bytes.Contains(c, []byte(" HTTP/1."))
}

// isSoftEther: SoftEther's clients start with an HTTP POST to
// /vpnsvc/connect.cgi (its protocol is HTTPS-shaped; this matches only the
// rare plain-text case).
func isSoftEther(c []byte) bool {
	return bytes.HasPrefix(c, []byte("POST /vpnsvc/"))
}

// isWireGuard: the WireGuard whitepaper section 5.4: type byte 1..4 and
// three reserved zero bytes; initiation is exactly 148 bytes, response 92,
// cookie reply 64, transport data 32 + a multiple of 16.
func isWireGuard(c, s []byte) bool {
	kind := func(b []byte) int {
		if len(b) < 32 || b[1] != 0 || b[2] != 0 || b[3] != 0 {
			return 0
		}
		switch {
		case b[0] == 1 && len(b) == 148, b[0] == 2 && len(b) == 92, b[0] == 3 && len(b) == 64:
			return int(b[0])
		case b[0] == 4 && (len(b)-32)%16 == 0:
			return 4
		}
		return 0
	}
	kc, ks := kind(c), kind(s)
	switch {
	case kc == 1 && (ks == 0 && len(s) == 0 || ks == 2 || ks == 3):
		return true
	case kc == 1 || kc == 2:
		return ks != 0
	case kc == 4 && ks == 4: // capture began mid-session
		return true
	case kc == 4 && ks == 1: // the server side re-keyed first
		return true
	}
	return false
}

// OpenVPN opcodes (openvpn ssl_pkt.h), in the top five bits of the first
// byte, key id in the low three.
const (
	ovpnHardResetClientV1 = 1
	ovpnHardResetServerV1 = 2
	ovpnHardResetClientV2 = 7
	ovpnHardResetServerV2 = 8
	ovpnHardResetClientV3 = 10 // tls-crypt-v2
	ovpnControlV1         = 4
	ovpnAckV1             = 5
	ovpnControlWKCV1      = 11
)

// isOpenVPNUDP matches a client hard reset (V1/V2/V3) whose layout is one of
// OpenVPN's: plain (session id, empty ack array, packet id 0), tls-auth
// (HMAC of 16/20/32/64 bytes, then packet id 1 and a timestamp), or
// tls-crypt (packet id 1 and a timestamp right after the session id) - or
// any client hard reset answered by a server hard reset.
//
// A flow whose first two packets from one side are a hard reset and then a
// control or ack packet carrying the same 64-bit session id is OpenVPN too;
// that also catches captures that only saw the server.
func isOpenVPNUDP(c1, c2, s1, s2 []byte) bool {
	return ovpnHandshake(c1, s1) || ovpnSameSession(c1, c2) || ovpnSameSession(s1, s2)
}

func ovpnHandshake(c, s []byte) bool {
	if !ovpnClientReset(c) {
		return false
	}
	if len(s) >= 9 && s[0]&7 == 0 && (s[0]>>3 == ovpnHardResetServerV2 || s[0]>>3 == ovpnHardResetServerV1) {
		return true
	}
	return ovpnLayout(c)
}

// isOpenVPNTCP is isOpenVPNUDP after OpenVPN's TCP 2-byte length prefix.
func isOpenVPNTCP(c1, c2, s1, s2 []byte) bool {
	strip := func(b []byte) []byte {
		if len(b) < 2+14 {
			return nil
		}
		n := int(binary.BigEndian.Uint16(b))
		if n < 14 || n > 1600 || n > len(b)-2 && len(b) < MaxPayload {
			return nil
		}
		return b[2:min(len(b), n+2)]
	}
	return isOpenVPNUDP(strip(c1), strip(c2), strip(s1), strip(s2))
}

// ovpnSameSession reports whether p2 continues the session p1 reset.
func ovpnSameSession(p1, p2 []byte) bool {
	if len(p1) < 14 || len(p2) < 14 || p1[0]&7 != 0 || p2[0]&7 != 0 {
		return false
	}
	switch p1[0] >> 3 {
	case ovpnHardResetClientV1, ovpnHardResetServerV1, ovpnHardResetClientV2, ovpnHardResetServerV2, ovpnHardResetClientV3:
	default:
		return false
	}
	switch p2[0] >> 3 {
	case ovpnControlV1, ovpnAckV1, ovpnControlWKCV1:
	default:
		return false
	}
	return !allZero(p1[1:9]) && bytes.Equal(p1[1:9], p2[1:9])
}

func ovpnClientReset(b []byte) bool {
	if len(b) < 14 || b[0]&7 != 0 {
		return false
	}
	op := b[0] >> 3
	return op == ovpnHardResetClientV1 || op == ovpnHardResetClientV2 || op == ovpnHardResetClientV3
}

func ovpnLayout(b []byte) bool {
	// plain: op, session id(8), ack array length 0, packet id 0 (and with
	// 2.6 an optional early-negotiation TLV after it).
	if b[9] == 0 && binary.BigEndian.Uint32(b[10:]) == 0 && (len(b) == 14 || len(b) == 22) {
		return true
	}
	// packet id 1 then a plausible Unix time (2004..2106 - the high byte
	// is 0x40..0xff).
	replay := func(off int) bool {
		return len(b) >= off+8 && binary.BigEndian.Uint32(b[off:]) == 1 && b[off+4] >= 0x40
	}
	if replay(9) { // tls-crypt / tls-crypt-v2: tag and ciphertext follow
		return len(b) >= 9+8+32
	}
	for _, h := range []int{16, 20, 32, 64} { // tls-auth HMAC size
		if replay(9+h) && len(b) >= 9+h+8+1+4 && b[9+h+8] == 0 {
			return true
		}
	}
	return false
}

// isIKE: an RFC 7296 (IKEv2) or RFC 2408 (IKEv1) header whose length field
// matches the datagram, a non-zero initiator SPI and a zero responder SPI
// in the first message; on 4500 after the 4-byte non-ESP marker (RFC 3948).
func isIKE(c []byte, in *Input) bool {
	if (in.ServerPort == 4500 || in.ClientPort == 4500) && len(c) >= 4 && allZero(c[:4]) {
		c = c[4:]
	}
	if len(c) < 28 {
		return false
	}
	ver := c[17]
	if ver != 0x20 && ver != 0x10 {
		return false
	}
	n := int(binary.BigEndian.Uint32(c[24:]))
	if n != len(c) && !(len(c) == MaxPayload && n > MaxPayload && n < 65536) {
		return false
	}
	if allZero(c[:8]) {
		return false
	}
	ex := c[18]
	return ver == 0x20 && ex >= 34 && ex <= 37 || ver == 0x10 && (ex == 2 || ex == 4 || ex == 5 || ex == 32)
}

// isZeroTier: a ZeroTier VL1 HELLO (ZeroTier Packet.hpp): 8-byte packet id,
// 5-byte destination and source addresses (never 0xff-prefixed, reserved),
// flags with cipher suite 0 (HELLO is authenticated but not encrypted),
// 8-byte MAC, then the verb 0x01 and protocol version. Required to be on
// port 9993 since the structure is only a few bits.
func isZeroTier(in *Input, b []byte) bool {
	if in.ServerPort != 9993 && in.ClientPort != 9993 {
		return false
	}
	return len(b) >= 28+1+1+3+8 && b[8] != 0xff && b[13] != 0xff && (b[18]>>3)&7 == 0 && b[27]&0x1f == 0x01 && b[28] >= 4 && b[28] <= 20
}
