// Package pcapfile reads pcap and pcapng captures through gopacket's pcapgo
// readers, choosing the format from the magic number (never the file name),
// and turns every read failure into an error that says where it happened.
package pcapfile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// ErrFormat means the input is not a pcap or pcapng file.
var ErrFormat = errors.New("not a pcap or pcapng file")

// Format names a capture container.
type Format string

// Formats.
const (
	PCAP   Format = "pcap"
	PCAPNG Format = "pcapng"
)

// Frame is one captured frame. Data is valid until the next call to Next.
type Frame struct {
	Data    []byte
	Link    layers.LinkType
	TS      int64 // ns since the Unix epoch
	OrigLen int   // length on the wire
}

// Reader reads frames from a capture.
type Reader struct {
	name    string
	format  Format
	f       *os.File
	cr      *countingReader
	pcap    *pcapgo.Reader
	ng      *pcapgo.NgReader
	packets int64 // frames returned so far
	offset  int64 // pcap: byte offset of the next record
}

// Open opens a capture file.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := NewReader(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.f = f
	return r, nil
}

// NewReader reads a capture from r; name is used in error messages.
func NewReader(r io.Reader, name string) (*Reader, error) {
	cr := &countingReader{r: bufio.NewReaderSize(r, 1<<20)}
	rd := &Reader{name: name, cr: cr}
	magic, err := cr.r.Peek(4)
	if err != nil {
		if len(magic) == 0 && (err == io.EOF) {
			return nil, fmt.Errorf("%s: empty file: %w", name, ErrFormat)
		}
		return nil, fmt.Errorf("%s: %d bytes, too short for a capture header: %w", name, len(magic), ErrFormat)
	}
	switch binary.LittleEndian.Uint32(magic) {
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		rd.format = PCAP
		// pcapgo accepts only version 2.4, but libpcap and Wireshark read
		// every 2.x: present older files to pcapgo as 2.4, fixing the
		// record headers on the way (see legacyReader).
		// Classic pcap offsets are computed exactly from the record
		// lengths, so pcapgo reads the buffered file directly.
		var src io.Reader = cr.r
		if hdr, err := cr.r.Peek(24); err == nil {
			order := binary.ByteOrder(binary.LittleEndian)
			if magic[0] == 0xa1 { // written big-endian
				order = binary.BigEndian
			}
			if minor := order.Uint16(hdr[6:8]); order.Uint16(hdr[4:6]) == 2 && minor < 4 {
				lr := &legacyReader{r: cr.r, order: order, minor: minor}
				lr.pending = append(lr.pending, hdr...)
				order.PutUint16(lr.pending[6:8], 4)
				cr.r.Discard(24)
				src = lr
			}
		}
		rd.pcap, err = pcapgo.NewReader(src)
		rd.offset = 24
	case 0x0a0d0d0a:
		rd.format = PCAPNG
		rd.ng, err = pcapgo.NewNgReader(cr, pcapgo.NgReaderOptions{WantMixedLinkType: true})
	default:
		return nil, fmt.Errorf("%s: magic number %08x: %w", name, binary.BigEndian.Uint32(magic), ErrFormat)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: reading %s header at byte offset 0: %w", name, rd.format, err)
	}
	return rd, nil
}

// Format returns the container format.
func (r *Reader) Format() Format { return r.format }

// Packets returns how many frames Next has returned.
func (r *Reader) Packets() int64 { return r.packets }

// Next returns the next frame, io.EOF at a clean end, or an error that
// names the file, the number of the packet that could not be read and its
// byte offset. After an error the reader is unusable.
func (r *Reader) Next(fr *Frame) error {
	var err error
	if r.pcap != nil {
		data, ci, e := r.pcap.ZeroCopyReadPacketData()
		if e == nil {
			fr.Data, fr.Link, fr.TS, fr.OrigLen = data, r.pcap.LinkType(), ci.Timestamp.UnixNano(), ci.Length
			r.packets++
			r.offset += 16 + int64(ci.CaptureLength)
			return nil
		}
		err = e
	} else {
		data, ci, e := r.ng.ZeroCopyReadPacketData()
		if e == nil {
			link := r.ng.LinkType()
			if iface, ierr := r.ng.Interface(ci.InterfaceIndex); ierr == nil {
				link = iface.LinkType
			}
			fr.Data, fr.Link, fr.TS, fr.OrigLen = data, link, ci.Timestamp.UnixNano(), ci.Length
			r.packets++
			return nil
		}
		err = e
	}
	if err == io.EOF {
		return io.EOF
	}
	if err == io.ErrUnexpectedEOF {
		err = errors.New("file ends in the middle of a packet record (cut short)")
	} else if errors.Is(err, pcapgo.ErrNgVersionMismatch) {
		err = fmt.Errorf("pcapng section header with an unsupported version (only 1.0 is defined): %w", err)
	}
	if r.format == PCAP {
		return fmt.Errorf("%s: packet %d at byte offset %d: %w", r.name, r.packets+1, r.offset, err)
	}
	return fmt.Errorf("%s: packet %d (pcapng block before byte %d): %w", r.name, r.packets+1, r.cr.n, err)
}

// Close closes the file Open opened.
func (r *Reader) Close() error {
	if r.f != nil {
		return r.f.Close()
	}
	return nil
}

// countingReader counts the bytes handed to the pcapgo reader.
type countingReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// legacyReader rewrites a pcap 2.0-2.3 stream into 2.4. Before 2.3 the
// record header held the original length before the captured length;
// libpcap swaps them back always for < 2.3 and, for 2.3, when the captured
// length is the larger.
type legacyReader struct {
	r       io.Reader
	order   binary.ByteOrder
	minor   uint16
	pending []byte // bytes ready to hand out: the file header or a fixed record header
	body    int64  // record bytes still to pass through
}

func (l *legacyReader) Read(p []byte) (int, error) {
	if len(l.pending) == 0 && l.body == 0 {
		var h [16]byte
		if n, err := io.ReadFull(l.r, h[:]); err != nil {
			if err == io.ErrUnexpectedEOF || (err == io.EOF && n > 0) {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
		caplen, length := l.order.Uint32(h[8:12]), l.order.Uint32(h[12:16])
		if l.minor < 3 || caplen > length {
			caplen, length = length, caplen
			l.order.PutUint32(h[8:12], caplen)
			l.order.PutUint32(h[12:16], length)
		}
		l.pending = append(l.pending[:0], h[:]...)
		l.body = int64(caplen)
	}
	if len(l.pending) > 0 {
		n := copy(p, l.pending)
		l.pending = l.pending[n:]
		return n, nil
	}
	if int64(len(p)) > l.body {
		p = p[:l.body]
	}
	n, err := l.r.Read(p)
	l.body -= int64(n)
	return n, err
}
