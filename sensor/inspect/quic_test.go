package inspect

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/tls"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/decode"
	"github.com/edgeward/edgeward/sensor/quicmeta"
)

// quicClientHello returns the ClientHello crypto/tls sends at the QUIC
// Initial level for sni.
func quicClientHello(t *testing.T, sni string) []byte {
	t.Helper()
	c := tls.QUICClient(&tls.QUICConfig{TLSConfig: &tls.Config{ServerName: sni, NextProtos: []string{"h3"}, MinVersion: tls.VersionTLS13}})
	c.SetTransportParameters(nil)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for e := c.NextEvent(); e.Kind != tls.QUICNoEvent; e = c.NextEvent() {
		if e.Kind == tls.QUICWriteData && e.Level == tls.QUICEncryptionLevelInitial {
			return append([]byte(nil), e.Data...)
		}
	}
	t.Fatal("no Initial CRYPTO data")
	return nil
}

// quicCrypto is a CRYPTO frame.
func quicCrypto(off int, data []byte) []byte {
	f := []byte{0x06}
	f = binary.BigEndian.AppendUint32(f, 0x80000000|uint32(off))
	f = binary.BigEndian.AppendUint16(f, 0x4000|uint16(len(data)))
	return append(f, data...)
}

// quicInitial seals a QUIC v1 client Initial to dcid with the keys of
// keyDCID (the DCID of the client's first Initial), padded to 1200 bytes.
func quicInitial(t *testing.T, keyDCID, dcid []byte, pn uint32, frames []byte) []byte {
	t.Helper()
	key, iv, hp, err := quicmeta.ClientInitialSecrets(quicmeta.Version1, keyDCID)
	if err != nil {
		t.Fatal(err)
	}
	hdr := []byte{0xc3, 0, 0, 0, 1, byte(len(dcid))}
	hdr = append(hdr, dcid...)
	hdr = append(hdr, 0, 0) // empty SCID and token
	payloadLen := 1200 - len(hdr) - 2 - 4 - 16
	frames = append(frames, make([]byte, payloadLen-len(frames))...)
	hdr = binary.BigEndian.AppendUint16(hdr, 0x4000|uint16(4+len(frames)+16))
	pnOffset := len(hdr)
	hdr = binary.BigEndian.AppendUint32(hdr, pn)
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	nonce := append([]byte(nil), iv...)
	binary.BigEndian.PutUint32(nonce[8:], binary.BigEndian.Uint32(nonce[8:])^pn)
	pkt := aead.Seal(hdr, nonce, frames, hdr)
	hpBlock, _ := aes.NewCipher(hp)
	var mask [16]byte
	hpBlock.Encrypt(mask[:], pkt[pnOffset+4:pnOffset+20])
	pkt[0] ^= mask[0] & 0x0f
	for i := range 4 {
		pkt[pnOffset+i] ^= mask[1+i]
	}
	return pkt
}

func udpPkt(ts *int64, fromClient bool, payload []byte) decode.Packet {
	*ts += int64(time.Millisecond)
	a := func(s string) flow.Addr { return flow.AddrFrom(netip.MustParseAddr(s)) }
	k := flow.Key{Src: a("10.0.0.5"), Dst: a("142.250.1.1"), SrcPort: 50000, DstPort: 443, Proto: flow.ProtoUDP}
	if !fromClient {
		k.Src, k.Dst, k.SrcPort, k.DstPort = k.Dst, k.Src, k.DstPort, k.SrcPort
	}
	return decode.Packet{TS: *ts, Key: k, IPBytes: 28 + uint32(len(payload)), PayloadLen: uint32(len(payload)), Payload: payload}
}

// TestQUICHelloAcrossOtherDatagrams: a ClientHello in two Initials must be
// read whatever the client sends between them that is not a decryptable
// client Initial of its own: a 0-RTT datagram, or an Initial it resends to
// the server's connection ID (protected with the keys of its first DCID).
func TestQUICHelloAcrossOtherDatagrams(t *testing.T) {
	hello := quicClientHello(t, "www.example.org")
	odcid := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	scid := []byte{9, 9, 9, 9}
	cut := len(hello) / 2
	first := quicInitial(t, odcid, odcid, 0, quicCrypto(0, hello[:cut]))
	// A 0-RTT packet (long header type 1) whose payload is opaque here.
	zeroRTT := append([]byte{0xd3, 0, 0, 0, 1, 8}, odcid...)
	zeroRTT = append(zeroRTT, 0, 0x40, 100)
	zeroRTT = append(zeroRTT, make([]byte, 100)...)
	serverInitial := append([]byte{0xc3, 0, 0, 0, 1, 0, 4}, scid...)
	serverInitial = append(serverInitial, make([]byte, 200)...)
	for _, tc := range []struct {
		name   string
		middle [][]byte // client datagrams between the two parts
		second []byte
	}{
		{"0-RTT between", [][]byte{zeroRTT}, quicInitial(t, odcid, odcid, 1, quicCrypto(cut, hello[cut:]))},
		{"garbage between", [][]byte{{0x40, 1, 2, 3}}, quicInitial(t, odcid, odcid, 1, quicCrypto(cut, hello[cut:]))},
		{"resent to the server's connection ID", nil, quicInitial(t, odcid, scid, 1, append([]byte{0x02, 0, 0, 0, 0}, quicCrypto(cut, hello[cut:])...))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ts int64
			pkts := []decode.Packet{udpPkt(&ts, true, first), udpPkt(&ts, false, serverInitial)}
			for _, m := range tc.middle {
				pkts = append(pkts, udpPkt(&ts, true, m))
			}
			pkts = append(pkts, udpPkt(&ts, true, tc.second))
			recs := records(t, pkts)
			if len(recs) != 1 {
				t.Fatalf("%d records", len(recs))
			}
			if r := recs[0]; r.TLS == nil || r.TLS.SNI != "www.example.org" || r.QUIC == nil || r.QUIC.Version != "1" || r.TLS.JA4 == "" || r.TLS.JA4[0] != 'q' {
				t.Errorf("tls = %+v quic = %+v, want sni www.example.org, version 1, a q JA4", r.TLS, r.QUIC)
			}
		})
	}
}
