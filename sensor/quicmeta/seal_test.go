package quicmeta

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"testing"
)

// sealInitial builds a protected client Initial carrying frames, the way a
// client would (RFC 9001 section 5), padded to 1200 bytes.
func sealInitial(t testing.TB, version uint32, dcid []byte, pn uint32, frames []byte) []byte {
	t.Helper()
	return sealInitialKeys(t, version, dcid, dcid, pn, frames)
}

// sealInitialKeys is sealInitial for a packet sent to dcid but protected
// with the keys of keyDCID, the DCID of the client's first Initial.
func sealInitialKeys(t testing.TB, version uint32, keyDCID, dcid []byte, pn uint32, frames []byte) []byte {
	t.Helper()
	key, iv, hp, err := ClientInitialSecrets(version, keyDCID)
	if err != nil {
		t.Fatal(err)
	}
	const pnLen = 4
	hdr := []byte{0xc0 | (pnLen - 1)}
	hdr = binary.BigEndian.AppendUint32(hdr, version)
	hdr = append(hdr, byte(len(dcid)))
	hdr = append(hdr, dcid...)
	hdr = append(hdr, 0, 0) // empty SCID, empty token
	payloadLen := 1200 - len(hdr) - 2 - pnLen - 16
	if len(frames) > payloadLen {
		t.Fatalf("frames too long: %d", len(frames))
	}
	frames = append(frames, make([]byte, payloadLen-len(frames))...) // PADDING
	hdr = binary.BigEndian.AppendUint16(hdr, 0x4000|uint16(pnLen+len(frames)+16))
	pnOffset := len(hdr)
	hdr = binary.BigEndian.AppendUint32(hdr, pn)

	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, 12)
	copy(nonce, iv)
	for i := range 4 {
		nonce[8+i] ^= byte(pn >> (24 - 8*i))
	}
	pkt := aead.Seal(hdr, nonce, frames, hdr)

	hpBlock, _ := aes.NewCipher(hp)
	var mask [16]byte
	hpBlock.Encrypt(mask[:], pkt[pnOffset+4:pnOffset+20])
	pkt[0] ^= mask[0] & 0x0f
	for i := range pnLen {
		pkt[pnOffset+i] ^= mask[1+i]
	}
	return pkt
}

func cryptoFrame(off int, data []byte) []byte {
	f := []byte{frameCrypto}
	f = binary.BigEndian.AppendUint32(f, 0x80000000|uint32(off))
	f = binary.BigEndian.AppendUint16(f, 0x4000|uint16(len(data)))
	return append(f, data...)
}

func TestAssemblerSeveralInitials(t *testing.T) {
	var p Parser
	var in Initial
	if err := p.Parse(mustHex(t, rfc9001ClientInitial), &in); err != nil {
		t.Fatal(err)
	}
	hello := in.Crypto[0].Data
	dcid := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, version := range []uint32{Version1, VersionDraft29} {
		// Three Initials, the CRYPTO data split unevenly, one frame also
		// carrying an ACK and a PING, delivered last-first.
		p1 := sealInitial(t, version, dcid, 0, cryptoFrame(0, hello[:60]))
		p2 := sealInitial(t, version, dcid, 1, append([]byte{framePing, frameAck, 0, 0, 0, 0}, append(cryptoFrame(100, hello[100:]), cryptoFrame(60, hello[60:100])...)...))
		p3 := sealInitial(t, version, dcid, 2, cryptoFrame(30, hello[30:90])) // retransmit-like overlap
		var a Assembler
		for i, pkt := range [][]byte{p2, p3} {
			if err := a.AddDatagram(pkt); !errors.Is(err, ErrNeedMore) {
				t.Fatalf("version %#x packet %d: %v, want ErrNeedMore", version, i, err)
			}
		}
		if err := a.AddDatagram(p1); err != nil {
			t.Fatalf("version %#x: %v", version, err)
		}
		if a.Version != version || a.Hello.ServerName != "example.com" {
			t.Errorf("version %#x: got version %#x sni %q", version, a.Version, a.Hello.ServerName)
		}
		if err := a.AddDatagram(p2); err != nil {
			t.Errorf("after completion: %v", err)
		}
	}
}
