package pcapfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeward/edgeward/internal/corpus"
	"github.com/edgeward/edgeward/internal/synth"
	"github.com/gopacket/gopacket/pcapgo"
)

// compareWithPcapgo reads b with Reader and with pcapgo.Reader and fails on
// the first record where they differ (data, time, length, or one failing
// where the other does not).
func compareWithPcapgo(t *testing.T, name string, b []byte) int {
	t.Helper()
	ref, refErr := pcapgo.NewReader(bytes.NewReader(b))
	ours, ourErr := NewReader(bytes.NewReader(b), name)
	if (refErr == nil) != (ourErr == nil) {
		t.Fatalf("%s: open: pcapgo %v, ours %v", name, refErr, ourErr)
	}
	if refErr != nil {
		return 0
	}
	n, off := 0, 24
	le := binary.LittleEndian.Uint32(b) == 0xa1b2c3d4 || binary.LittleEndian.Uint32(b) == 0xa1b23c4d
	for {
		// pcapgo multiplies the sub-second field in uint32 and overflows
		// when it is out of range (>= 1e6 us); compare times only when it
		// is valid.
		validSub := true
		if le && len(b) >= off+8 {
			validSub = binary.LittleEndian.Uint32(b[off+4:]) < 1e6
		}
		data, ci, re := ref.ReadPacketData()
		var fr Frame
		oe := ours.Next(&fr)
		if errors.Is(re, io.EOF) && oe != nil && strings.Contains(oe.Error(), "cut short") {
			// pcapgo reports a clean end when a record header is followed
			// by none of its data; tshark and edgeward say the file is cut
			// short, which it is.
			return n
		}
		if (re == nil) != (oe == nil) {
			t.Fatalf("%s record %d: pcapgo %v, ours %v", name, n+1, re, oe)
		}
		if re != nil {
			if errors.Is(re, io.EOF) != errors.Is(oe, io.EOF) {
				t.Fatalf("%s record %d: pcapgo %v, ours %v", name, n+1, re, oe)
			}
			return n
		}
		n++
		off += 16 + len(data)
		if !bytes.Equal(data, fr.Data) || (validSub && ci.Timestamp.UnixNano() != fr.TS) || ci.Length != fr.OrigLen || ref.LinkType() != fr.Link {
			t.Fatalf("%s record %d differs: pcapgo %d bytes ts %d len %d link %d; ours %d bytes ts %d len %d link %d",
				name, n, len(data), ci.Timestamp.UnixNano(), ci.Length, ref.LinkType(), len(fr.Data), fr.TS, fr.OrigLen, fr.Link)
		}
	}
}

func TestRecordsMatchPcapgo(t *testing.T) {
	var buf bytes.Buffer
	if _, err := synth.Generate(synth.Config{Seed: 5, Flows: 500}, &buf, nil); err != nil {
		t.Fatal(err)
	}
	if n := compareWithPcapgo(t, "synth", buf.Bytes()); n < 1000 {
		t.Errorf("only %d synthetic records", n)
	}
	var micro bytes.Buffer
	if _, err := synth.Render(synth.RandomFlows(synth.Config{Seed: 6, Flows: 50}), &micro, nil, synth.Options{Format: synth.PCAPMicro}); err != nil {
		t.Fatal(err)
	}
	compareWithPcapgo(t, "synth-usec", micro.Bytes())
	files, _ := filepath.Glob(filepath.Join(corpusDir(t), "pcaps", "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if len(b) < 24 || binary.LittleEndian.Uint32(b) == 0x0a0d0d0a {
			continue // pcapng goes through pcapgo itself
		}
		if v := binary.LittleEndian.Uint16(b[6:8]) | binary.BigEndian.Uint16(b[6:8]); v != 4 {
			continue // pre-2.4 files, which pcapgo refuses (see TestLegacyVersions)
		}
		compareWithPcapgo(t, filepath.Base(f), b)
	}
}

func corpusDir(t *testing.T) (dir string) {
	t.Run("corpus", func(t *testing.T) { dir = corpus.Dir(t) })
	return dir
}

// pcapHeader is a 2.4 little-endian microsecond header, Ethernet.
func pcapHeader(minor uint16, snaplen uint32) []byte {
	h := make([]byte, 24)
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], minor)
	binary.LittleEndian.PutUint32(h[16:], snaplen)
	binary.LittleEndian.PutUint32(h[20:], 1)
	return h
}

func record(sec, usec, caplen, length uint32, data []byte) []byte {
	r := make([]byte, 16, 16+len(data))
	binary.LittleEndian.PutUint32(r[0:], sec)
	binary.LittleEndian.PutUint32(r[4:], usec)
	binary.LittleEndian.PutUint32(r[8:], caplen)
	binary.LittleEndian.PutUint32(r[12:], length)
	return append(r, data...)
}

func TestLegacyVersions(t *testing.T) {
	data := []byte("0123456789")
	// Version 2.2 stores the original length first.
	b := append(pcapHeader(2, 65535), record(1, 5, 60, 10, data)...)
	r, err := NewReader(bytes.NewReader(b), "old.pcap")
	if err != nil {
		t.Fatal(err)
	}
	var fr Frame
	if err := r.Next(&fr); err != nil || string(fr.Data) != string(data) || fr.OrigLen != 60 || fr.TS != 1e9+5000 {
		t.Fatalf("record %q len %d ts %d err %v", fr.Data, fr.OrigLen, fr.TS, err)
	}
}

func TestErrors(t *testing.T) {
	frame := []byte("0123456789")
	tests := []struct {
		name    string
		data    []byte
		openErr string
		packets int64
		nextErr string // error after the packets, "" for a clean EOF
	}{
		{"empty", nil, "empty file", 0, ""},
		{"tiny", []byte{0xd4, 0xc3}, "too short", 0, ""},
		{"not a capture", []byte("GET / HTTP/1.1\r\n\r\n0123456789"), "magic number", 0, ""},
		{"header cut", pcapHeader(4, 65535)[:20], "cut short", 0, ""},
		{"no packets", pcapHeader(4, 65535), "", 0, ""},
		{"cut mid-record", append(append(pcapHeader(4, 65535), record(1, 0, 10, 10, frame)...), record(2, 0, 10, 10, frame)[:20]...),
			"", 1, "packet 2 at byte offset 50: file ends in the middle of a packet record"},
		{"oversized record", append(pcapHeader(4, 65535), record(1, 0, 4325376, 4325376, nil)...),
			"", 0, "packet 1 at byte offset 24: capture length exceeds snap length"},
		{"caplen over len", append(pcapHeader(4, 65535), record(1, 0, 10, 5, frame)...),
			"", 0, "capture length exceeds original packet length"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tc.data), "x.pcap")
			if tc.openErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.openErr) {
					t.Fatalf("open error %v, want %q", err, tc.openErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var fr Frame
			for r.Next(&fr) == nil {
			}
			err = r.Next(&fr)
			if r.Packets() != tc.packets {
				t.Errorf("%d packets, want %d", r.Packets(), tc.packets)
			}
			if tc.nextErr == "" && err != io.EOF || tc.nextErr != "" && (err == nil || !strings.Contains(err.Error(), tc.nextErr)) {
				t.Errorf("error %v, want %q", err, tc.nextErr)
			}
		})
	}
}

func TestRecordLargerThanBuffer(t *testing.T) {
	big := bytes.Repeat([]byte{7}, recordBuf+1000)
	b := append(pcapHeader(4, uint32(len(big))), record(1, 0, uint32(len(big)), uint32(len(big)), big)...)
	b = append(b, record(2, 0, 3, 3, []byte("abc"))...)
	if n := compareWithPcapgo(t, "big", b); n != 2 {
		t.Errorf("%d records, want 2", n)
	}
}

func FuzzRecords(f *testing.F) {
	f.Add(record(1, 2, 10, 10, []byte("0123456789")), uint32(65535))
	f.Add(record(1, 2, 10, 5, []byte("0123456789")), uint32(0))
	f.Add([]byte{1, 2, 3}, uint32(70000))
	f.Fuzz(func(t *testing.T, body []byte, snaplen uint32) {
		compareWithPcapgo(t, "fuzz", append(pcapHeader(4, snaplen), body...))
	})
}

func FuzzReader(f *testing.F) {
	f.Add(append(pcapHeader(4, 100), record(1, 2, 3, 3, []byte("abc"))...))
	f.Add([]byte{0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b), "fuzz")
		if err != nil {
			return
		}
		var fr Frame
		for i := 0; i < 10000 && r.Next(&fr) == nil; i++ {
		}
	})
}
