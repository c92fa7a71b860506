// Package tlsmeta owns the extraction of TLS handshake metadata (ClientHello
// fields, JA3, JA4, ServerHello and the first server certificate's names)
// from the first bytes of a TCP stream. It never looks at application data.
//
// Every parser takes untrusted bytes, is bounded, never panics, and reports
// failures as one of the exported sentinel errors so callers can count them
// by kind.
package tlsmeta

import (
	"errors"
)

// Sentinel errors. Callers count them by kind with errors.Is.
var (
	// ErrNeedMore means the bytes so far are a valid prefix: feed the same
	// stream again once more bytes have arrived.
	ErrNeedMore = errors.New("tlsmeta: need more bytes")
	// ErrNotTLS means the stream does not start with a TLS handshake record.
	ErrNotTLS = errors.New("tlsmeta: not a TLS handshake")
	// ErrMalformed means the bytes are TLS-shaped but violate the encoding.
	ErrMalformed = errors.New("tlsmeta: malformed handshake")
	// ErrTooLarge means a handshake message or record exceeds the parser's bounds.
	ErrTooLarge = errors.New("tlsmeta: handshake exceeds size bound")
	// ErrUnexpectedMessage means the first handshake message is not the one
	// expected for this direction (e.g. not a ClientHello from the client).
	ErrUnexpectedMessage = errors.New("tlsmeta: unexpected handshake message")
	// ErrAlert means the peer sent a TLS alert instead of a handshake.
	ErrAlert = errors.New("tlsmeta: alert instead of handshake")
)

const (
	// MaxHandshakeLen bounds one handshake message. Real ClientHellos with
	// post-quantum key shares are about 2 kB; certificates chains rarely pass
	// 16 kB.
	MaxHandshakeLen = 64 << 10
	// maxRecordLen is the TLSCiphertext bound from RFC 8446 section 5.2; a
	// plaintext handshake record must be smaller, but being lenient here costs
	// nothing and the message bound still applies.
	maxRecordLen    = 1<<14 + 2048
	recordHeaderLen = 5

	recordTypeCCS       = 20
	recordTypeAlert     = 21
	recordTypeHandshake = 22

	typeClientHello = 1
	typeServerHello = 2
	typeCertificate = 11
)

// handshakeReader walks the handshake-layer byte stream carried in the TLS
// records at the start of a TCP stream. Handshake messages may span records
// (and records span TCP segments); only then are the bytes copied into buf.
type handshakeReader struct {
	stream []byte // whole stream from its first byte
	pos    int    // offset of the next unread record header in stream
	rec    []byte // unread handshake bytes of the current record
	buf    []byte // reused defragmentation buffer
	// seenHandshake is set once a handshake record has been read.
	seenHandshake bool
	// stopType is the content type of a non-handshake record that ended the
	// handshake-layer stream (0 if none seen yet).
	stopType byte
}

func (r *handshakeReader) reset(stream []byte) {
	r.stream = stream
	r.pos = 0
	r.rec = nil
	r.stopType = 0
	r.seenHandshake = false
}

// nextRecord loads the next non-empty handshake record into r.rec: a
// complete one, or the start of the incomplete one that ends the stream.
func (r *handshakeReader) nextRecord() error {
	for {
		rest := r.stream[r.pos:]
		if len(rest) == 0 {
			return ErrNeedMore
		}
		typ := rest[0]
		if !r.seenHandshake && typ != recordTypeHandshake {
			if typ != recordTypeAlert {
				return ErrNotTLS
			}
			// Some servers send a warning alert (e.g. unrecognized_name)
			// before their ServerHello; only a fatal one ends the handshake.
			if len(rest) < recordHeaderLen+2 {
				return ErrNeedMore
			}
			n := int(rest[3])<<8 | int(rest[4])
			if rest[1] != 3 || n != 2 || rest[recordHeaderLen] != 1 {
				return ErrAlert
			}
			r.pos += recordHeaderLen + n
			continue
		}
		if typ < recordTypeCCS || typ > 24 || (len(rest) >= 2 && rest[1] != 3) || (len(rest) >= 3 && rest[2] > 4) {
			if !r.seenHandshake {
				return ErrNotTLS
			}
			return ErrMalformed
		}
		if typ != recordTypeHandshake {
			r.stopType = typ
			return errEndOfHandshake
		}
		if len(rest) < recordHeaderLen {
			return ErrNeedMore
		}
		n := int(rest[3])<<8 | int(rest[4])
		if n > maxRecordLen {
			return ErrTooLarge
		}
		if len(rest) == recordHeaderLen && n > 0 {
			return ErrNeedMore
		}
		// An incomplete record is the end of the stream so far: what it
		// holds is used, for a large record (several handshake messages,
		// 16 KiB) can hold a complete ServerHello, or a certificate, long
		// before its end is seen, if it ever is.
		n = min(n, len(rest)-recordHeaderLen)
		r.rec = rest[recordHeaderLen : recordHeaderLen+n]
		r.pos += recordHeaderLen + n
		r.seenHandshake = true
		if n > 0 { // zero-length handshake records are illegal but harmless
			return nil
		}
	}
}

// errEndOfHandshake is internal: a non-handshake record follows.
var errEndOfHandshake = errors.New("tlsmeta: end of handshake records")

// next returns the next complete handshake message (4-byte header included).
// The returned slice aliases either the stream or r.buf and is valid until
// the next call.
func (r *handshakeReader) next() ([]byte, error) {
	if len(r.rec) == 0 {
		if err := r.nextRecord(); err != nil {
			return nil, err
		}
	}
	// Fast path: the message lies inside the current record.
	if len(r.rec) >= 4 {
		n := int(r.rec[1])<<16 | int(r.rec[2])<<8 | int(r.rec[3])
		if n > MaxHandshakeLen {
			return nil, ErrTooLarge
		}
		if len(r.rec) >= 4+n {
			msg := r.rec[:4+n]
			r.rec = r.rec[4+n:]
			return msg, nil
		}
	}
	// Slow path: the message spans records. While the stream is an
	// incomplete prefix (the common case for a caller feeding it segment by
	// segment), find that out without copying anything.
	if err := r.dryRun(); err != nil {
		return nil, err
	}
	// Gather the message across records.
	r.buf = append(r.buf[:0], r.rec...)
	r.rec = nil
	for {
		if len(r.buf) >= 4 {
			n := int(r.buf[1])<<16 | int(r.buf[2])<<8 | int(r.buf[3])
			if n > MaxHandshakeLen {
				return nil, ErrTooLarge
			}
			if len(r.buf) >= 4+n {
				// Keep what belongs to the next message for the next call.
				r.rec = r.buf[4+n:]
				msg := r.buf[: 4+n : 4+n]
				return msg, nil
			}
		}
		if err := r.nextRecord(); err != nil {
			if err == errEndOfHandshake {
				// A message cut by a different record type is malformed.
				return nil, ErrMalformed
			}
			return nil, err
		}
		r.buf = append(r.buf, r.rec...)
		r.rec = nil
	}
}

// available appends the handshake bytes from the reader's position to the
// end of the stream (or to a record of another type), and consumes them.
func (r *handshakeReader) available(dst []byte) []byte {
	dst = append(dst, r.rec...)
	for r.nextRecord() == nil {
		dst = append(dst, r.rec...)
	}
	r.rec = nil
	return dst
}

// dryRun walks the records the slow path of next would gather, without
// copying them, and returns the error next would return, or nil if the
// message is complete. It leaves the reader as it found it when it returns
// nil.
func (r *handshakeReader) dryRun() error {
	pos, rec, seen, stop := r.pos, r.rec, r.seenHandshake, r.stopType
	var hdr [4]byte
	copy(hdr[:], r.rec)
	have := len(r.rec)
	for {
		if have >= 4 {
			n := int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
			if n > MaxHandshakeLen {
				return ErrTooLarge
			}
			if have >= 4+n {
				r.pos, r.rec, r.seenHandshake, r.stopType = pos, rec, seen, stop
				return nil
			}
		}
		if err := r.nextRecord(); err != nil {
			if err == errEndOfHandshake {
				return ErrMalformed
			}
			return err
		}
		if have < 4 {
			copy(hdr[have:], r.rec)
		}
		have += len(r.rec)
		r.rec = nil
	}
}
