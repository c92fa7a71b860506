// Package pcapfile reads pcap and pcapng captures through gopacket's pcapgo
// readers, choosing the format from the magic number (never the file name),
// and turns every read failure into an error that says where it happened.
package pcapfile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gopacket/gopacket"
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
	br      *bufio.Reader // over cr; the pcapng reader reads from it directly
	recs    *records
	ng      *pcapgo.NgReader
	packets int64 // frames returned so far
	offset  int64 // byte offset of the next record (pcapng: of the blocks after the last packet)
	lastTS  int64 // pcapng: time of the last packet that had one
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
	// A small buffer: the classic pcap record reader reads megabytes at a
	// time, which bufio passes straight through. pcapgo's pcapng reader
	// wraps its input in a bufio.Reader, which takes this one as it is
	// (it is large enough), so the bytes it consumed are the ones counted
	// below this buffer minus the ones still buffered.
	cr := &countingReader{r: r}
	br := bufio.NewReaderSize(cr, 64<<10)
	rd := &Reader{name: name, cr: cr, br: br}
	magic, err := br.Peek(4)
	if err != nil {
		if len(magic) == 0 && (err == io.EOF) {
			return nil, fmt.Errorf("%s: empty file: %w", name, ErrFormat)
		}
		return nil, fmt.Errorf("%s: %d bytes, too short for a capture header: %w", name, len(magic), ErrFormat)
	}
	switch binary.LittleEndian.Uint32(magic) {
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		rd.format = PCAP
		rd.offset = 24
		rd.recs, err = newRecords(br, magic)
	case 0x0a0d0d0a:
		rd.format = PCAPNG
		rd.ng, err = pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		rd.offset = rd.consumed()
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
	if r.recs != nil {
		e := r.recs.next(fr)
		if e == nil {
			r.packets++
			r.offset += 16 + int64(len(fr.Data))
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
			// A Simple Packet Block has no timestamp (the zero time, whose
			// UnixNano overflows): it takes the previous packet's, so its
			// flow stays where the capture put it.
			if !ci.Timestamp.IsZero() {
				r.lastTS = ci.Timestamp.UnixNano()
			}
			fr.Data, fr.Link, fr.TS, fr.OrigLen = data, link, r.lastTS, ci.Length
			r.packets++
			r.offset = r.consumed()
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
	return fmt.Errorf("%s: packet %d (pcapng blocks from byte %d): %w", r.name, r.packets+1, r.offset, err)
}

// consumed returns how many bytes of the input the readers have taken.
func (r *Reader) consumed() int64 { return r.cr.n - int64(r.br.Buffered()) }

// Close closes the file Open opened.
func (r *Reader) Close() error {
	if r.f != nil {
		return r.f.Close()
	}
	return nil
}

// countingReader counts the bytes read from the input.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// newRecords reads the classic pcap file header with pcapgo (which checks
// the magic, version and link type) and returns the record reader.
// pcapgo accepts only version 2.4, but libpcap and Wireshark read every
// 2.x: older headers are presented to pcapgo as 2.4, and their swapped
// record length fields are put right as libpcap does (always before 2.3,
// for 2.3 when the captured length is the larger).
func newRecords(r *bufio.Reader, magic []byte) (*records, error) {
	hdr, err := r.Peek(24)
	if err != nil {
		return nil, fmt.Errorf("file header cut short: %w", io.ErrUnexpectedEOF)
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if magic[0] == 0xa1 { // written big-endian
		order = binary.BigEndian
	}
	fixed := append([]byte(nil), hdr...)
	minor := order.Uint16(hdr[6:8])
	if order.Uint16(hdr[4:6]) == 2 && minor < 4 {
		order.PutUint16(fixed[6:8], 4)
	}
	pr, err := pcapgo.NewReader(bytes.NewReader(fixed))
	if err != nil {
		return nil, err
	}
	r.Discard(24)
	p := &records{
		r:         r,
		buf:       make([]byte, recordBuf),
		bigEndian: magic[0] == 0xa1,
		nsFactor:  1000,
		maxCap:    max(int(pr.Snaplen()), maxSnaplen),
		swapped:   minor < 3,
		maybeSwap: minor == 3,
		link:      pr.LinkType(),
	}
	if pr.Resolution() == gopacket.TimestampResolutionNanosecond {
		p.nsFactor = 1
	}
	return p, nil
}
