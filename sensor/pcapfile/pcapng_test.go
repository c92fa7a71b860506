package pcapfile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// ngBlock is one little-endian pcapng block with its body padded to 4 bytes.
func ngBlock(typ uint32, body []byte) []byte {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	le := binary.LittleEndian
	b := le.AppendUint32(nil, typ)
	b = le.AppendUint32(b, uint32(12+len(body)))
	b = append(b, body...)
	return le.AppendUint32(b, uint32(12+len(body)))
}

// TestSimplePacketBlockTime: a pcapng Simple Packet Block has no timestamp;
// its frame must not be dated to year 1 (an int64 overflow in UnixNano that
// put the flow's start centuries before its other packets).
func TestSimplePacketBlockTime(t *testing.T) {
	le := binary.LittleEndian
	frame := []byte("0123456789abcdef")
	shb := le.AppendUint32(nil, 0x1a2b3c4d)
	shb = le.AppendUint16(shb, 1)
	shb = le.AppendUint16(shb, 0)
	shb = le.AppendUint64(shb, ^uint64(0))
	idb := le.AppendUint16(nil, 1) // Ethernet
	idb = le.AppendUint16(idb, 0)
	idb = le.AppendUint32(idb, 0)
	const us = 1_700_000_000_000_000 // microseconds, the default resolution
	epb := le.AppendUint32(nil, 0)
	epb = le.AppendUint32(epb, us>>32)
	epb = le.AppendUint32(epb, us&0xffffffff)
	epb = le.AppendUint32(epb, uint32(len(frame)))
	epb = le.AppendUint32(epb, uint32(len(frame)))
	epb = append(epb, frame...)
	spb := append(le.AppendUint32(nil, uint32(len(frame))), frame...)
	var b []byte
	b = append(b, ngBlock(0x0a0d0d0a, shb)...)
	b = append(b, ngBlock(1, idb)...)
	b = append(b, ngBlock(6, epb)...)
	b = append(b, ngBlock(3, spb)...)
	r, err := NewReader(bytes.NewReader(b), "spb.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	var fr Frame
	if err := r.Next(&fr); err != nil || fr.TS != us*1000 {
		t.Fatalf("enhanced packet: ts %d err %v", fr.TS, err)
	}
	if err := r.Next(&fr); err != nil {
		t.Fatal(err)
	}
	if fr.TS != us*1000 {
		t.Errorf("simple packet block dated %d ns, want the previous packet's time %d", fr.TS, int64(us*1000))
	}
}

// TestPcapngErrorOffset: a damaged pcapng block is reported at its own
// byte offset, not at however far the reader's buffer had read ahead.
func TestPcapngErrorOffset(t *testing.T) {
	le := binary.LittleEndian
	shb := func(major uint16) []byte {
		b := le.AppendUint32(nil, 0x1a2b3c4d)
		b = le.AppendUint16(b, major)
		b = le.AppendUint16(b, 0)
		return ngBlock(0x0a0d0d0a, le.AppendUint64(b, ^uint64(0)))
	}
	idb := le.AppendUint16(nil, 1)
	idb = le.AppendUint16(idb, 0)
	idb = le.AppendUint32(idb, 0)
	frame := bytes.Repeat([]byte{1}, 1000)
	epb := le.AppendUint32(nil, 0)
	epb = le.AppendUint32(epb, 0)
	epb = le.AppendUint32(epb, 1)
	epb = le.AppendUint32(epb, uint32(len(frame)))
	epb = le.AppendUint32(epb, uint32(len(frame)))
	epb = ngBlock(6, append(epb, frame...))
	b := append(shb(1), ngBlock(1, idb)...)
	b = append(b, epb...)
	bad := len(b)
	b = append(b, shb(2)...) // a section of an unknown version
	b = append(b, ngBlock(1, idb)...)
	for range 20 {
		b = append(b, epb...)
	}
	r, err := NewReader(bytes.NewReader(b), "x.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	var fr Frame
	if err := r.Next(&fr); err != nil {
		t.Fatal(err)
	}
	err = r.Next(&fr)
	want := fmt.Sprintf("packet 2 (pcapng blocks from byte %d)", bad)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want it to say %q", err, want)
	}
}
