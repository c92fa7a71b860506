package quicmeta

import (
	"slices"

	"github.com/edgeward/edgeward/sensor/tlsmeta"
)

// MaxCryptoLen bounds the reassembled Initial CRYPTO stream of one
// connection. ClientHellos with post-quantum key shares span two or three
// Initials (about 2-4 kB); 64 KiB matches tlsmeta.MaxHandshakeLen.
const MaxCryptoLen = tlsmeta.MaxHandshakeLen + 4

// Assembler reassembles the client's Initial CRYPTO stream of one QUIC
// connection, from any number of Initial packets arriving in any order, and
// parses the ClientHello once it is contiguous. The zero value is ready to
// use; Reset it to reuse it for another connection.
type Assembler struct {
	// Version is the QUIC version of the first decrypted Initial.
	Version uint32
	// Hello is valid once AddDatagram or AddCrypto has returned nil.
	Hello tlsmeta.ClientHello

	parser Parser
	in     Initial
	buf    []byte // CRYPTO stream bytes, valid where covered
	spans  []span // sorted, disjoint, non-adjacent covered ranges
	done   bool
}

type span struct{ start, end int }

// Reset forgets the connection, keeping allocated buffers.
func (a *Assembler) Reset() {
	a.Version = 0
	a.Hello.Reset()
	a.buf = a.buf[:0]
	a.spans = a.spans[:0]
	a.done = false
	a.parser.Forget()
}

// Done reports whether the ClientHello has been parsed.
func (a *Assembler) Done() bool { return a.done }

// AddDatagram decrypts the first client Initial in a UDP datagram and adds
// its CRYPTO frames. It returns nil once the ClientHello is complete and
// parsed into Hello, ErrNeedMore (from tlsmeta) while it is not, or the
// error that made the datagram or the hello unusable.
func (a *Assembler) AddDatagram(datagram []byte) error {
	if a.done {
		return nil
	}
	if err := a.parser.Parse(datagram, &a.in); err != nil {
		return err
	}
	if a.Version == 0 {
		a.Version = a.in.Version
	}
	for _, f := range a.in.Crypto {
		if err := a.add(f.Offset, f.Data); err != nil {
			return err
		}
	}
	return a.tryParse()
}

// AddCrypto adds one CRYPTO frame's data at its stream offset. Overlapping
// data is assumed identical to what is already held (it is a retransmit).
func (a *Assembler) AddCrypto(offset uint64, data []byte) error {
	if a.done {
		return nil
	}
	if err := a.add(offset, data); err != nil {
		return err
	}
	return a.tryParse()
}

func (a *Assembler) add(offset uint64, data []byte) error {
	if offset > MaxCryptoLen || uint64(len(data)) > MaxCryptoLen-offset {
		return ErrTooLarge
	}
	if len(data) == 0 {
		return nil
	}
	start, end := int(offset), int(offset)+len(data)
	if end > len(a.buf) {
		a.buf = append(a.buf, make([]byte, end-len(a.buf))...)
	}
	copy(a.buf[start:end], data)
	// Merge [start, end) into the span list.
	i := 0
	for i < len(a.spans) && a.spans[i].end < start {
		i++
	}
	j := i
	for j < len(a.spans) && a.spans[j].start <= end {
		start = min(start, a.spans[j].start)
		end = max(end, a.spans[j].end)
		j++
	}
	a.spans = slices.Replace(a.spans, i, j, span{start, end})
	return nil
}

// contiguous returns the stream bytes from offset 0 up to the first hole.
func (a *Assembler) contiguous() []byte {
	if len(a.spans) == 0 || a.spans[0].start != 0 {
		return nil
	}
	return a.buf[:a.spans[0].end]
}

func (a *Assembler) tryParse() error {
	b := a.contiguous()
	if len(b) == 0 {
		return tlsmeta.ErrNeedMore
	}
	err := a.Hello.ParseHandshake(b)
	if err == nil {
		a.done = true
	}
	return err
}

// ErrNeedMore is tlsmeta.ErrNeedMore, re-exported for callers that only
// import this package.
var ErrNeedMore = tlsmeta.ErrNeedMore
