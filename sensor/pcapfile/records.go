package pcapfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/gopacket/gopacket/layers"
)

// records reads classic pcap records without copying them: frames are
// slices of a large read buffer. pcapgo.Reader copies every record into its
// own buffer through two io.ReadFull calls, which was a quarter of the cost
// of `edgeward flows`; pcapgo still parses and validates the file header,
// and TestRecordsMatchPcapgo / FuzzRecords hold this loop to pcapgo's
// results record for record.
type records struct {
	r          io.Reader
	buf        []byte
	start, end int // unread bytes are buf[start:end]
	bigEndian  bool
	nsFactor   int64 // 1 for nanosecond files, 1000 for microsecond ones
	maxCap     int
	swapped    bool // pcap < 2.3: len before caplen; 2.3: swap when caplen > len
	maybeSwap  bool
	link       layers.LinkType
	err        error
}

const (
	// recordBuf fits in a core's L2 cache, so the records the kernel just
	// copied in are still cached when they are decoded (4 MiB cost 30%
	// more CPU in `make bench`). It grows for files whose snaplen allows
	// larger records.
	recordBuf = 512 << 10
	// maxSnaplen is the largest record pcapgo accepts whatever the header's
	// snaplen says (its eagerReadMax), as tcpdump and Wireshark do.
	maxSnaplen = 262144
)

func (p *records) next(fr *Frame) error {
	if p.err != nil {
		return p.err
	}
	if p.end-p.start < 16 {
		if err := p.fill(16); err != nil {
			return p.fail(err)
		}
	}
	h := p.buf[p.start : p.start+16 : p.start+16]
	var sec, sub int64
	var caplen, length int
	if p.bigEndian {
		sec, sub = int64(binary.BigEndian.Uint32(h[0:4])), int64(binary.BigEndian.Uint32(h[4:8]))
		caplen, length = int(binary.BigEndian.Uint32(h[8:12])), int(binary.BigEndian.Uint32(h[12:16]))
	} else {
		sec, sub = int64(binary.LittleEndian.Uint32(h[0:4])), int64(binary.LittleEndian.Uint32(h[4:8]))
		caplen, length = int(binary.LittleEndian.Uint32(h[8:12])), int(binary.LittleEndian.Uint32(h[12:16]))
	}
	if p.swapped || (p.maybeSwap && caplen > length) {
		caplen, length = length, caplen
	}
	if caplen > p.maxCap {
		return p.fail(fmt.Errorf("capture length exceeds snap length: %d > %d", caplen, p.maxCap))
	}
	if caplen > length {
		return p.fail(fmt.Errorf("capture length exceeds original packet length: %d > %d", caplen, length))
	}
	if p.end-p.start < 16+caplen {
		if err := p.fill(16 + caplen); err != nil {
			return p.fail(err)
		}
	}
	fr.Data = p.buf[p.start+16 : p.start+16+caplen : p.start+16+caplen]
	fr.TS = sec*1e9 + sub*p.nsFactor
	fr.OrigLen = length
	fr.Link = p.link
	p.start += 16 + caplen
	return nil
}

// fill makes n unread bytes available, reading more as needed; io.EOF only
// when the file ends exactly between records.
func (p *records) fill(n int) error {
	if p.end-p.start >= n {
		return nil
	}
	if p.start > 0 {
		p.end = copy(p.buf, p.buf[p.start:p.end])
		p.start = 0
	}
	if n > len(p.buf) {
		nb := make([]byte, n)
		copy(nb, p.buf[:p.end])
		p.buf = nb
	}
	for p.end < n {
		m, err := p.r.Read(p.buf[p.end:])
		p.end += m
		if err != nil && p.end < n {
			if errors.Is(err, io.EOF) {
				if p.end == 0 && n == 16 {
					return io.EOF
				}
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

func (p *records) fail(err error) error {
	p.err = err
	return err
}
