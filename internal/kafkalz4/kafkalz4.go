// Package kafkalz4 replaces kafka-go's lz4 codec, process-wide, with one
// that costs less per record. Import it for its effect:
//
//	import _ "github.com/edgeward/edgeward/internal/kafkalz4"
//
// kafka-go's record batch encoder writes every record to the codec in about
// twenty small writes (lengths, varints, key, value, each header's key and
// value). Its lz4 codec hands each straight to the lz4 frame writer, which
// pays a state check, a deferred call and a copy for each: about a tenth of
// the exporter's CPU per record. This codec appends the writes to a reused
// buffer and compresses the batch in one call on Close.
//
// The frames differ from kafka-go's in two ways that the Java producer
// shares: 64 KiB blocks instead of 4 MiB (so a pooled writer holds 64 KiB,
// not 4 MiB, per block buffer) and no content checksum (the record batch
// already has a CRC-32C over the compressed bytes, and the Java consumer
// does not check it). Every lz4 frame reader takes both. Reading is
// kafka-go's own.
package kafkalz4

import (
	"io"
	"sync"

	"github.com/pierrec/lz4/v4"
	"github.com/segmentio/kafka-go/compress"
	kafkagolz4 "github.com/segmentio/kafka-go/compress/lz4"
)

func init() { compress.Codecs[compress.Lz4] = &Codec{} }

// Codec is the lz4 compress.Codec installed in kafka-go's codec table.
type Codec struct{ kafkagolz4.Codec }

// maxPooled is the largest collected batch whose buffer goes back to the
// pool; larger ones (rare: batches are 1 MiB by default) are left to the GC.
const maxPooled = 4 << 20

var writers = sync.Pool{New: func() any {
	zw := lz4.NewWriter(nil)
	if err := zw.Apply(lz4.ChecksumOption(false), lz4.BlockSizeOption(lz4.Block64Kb), lz4.ConcurrencyOption(1)); err != nil {
		panic(err) // constant options: cannot fail
	}
	return &writer{zw: zw}
}}

// NewWriter implements compress.Codec.
func (*Codec) NewWriter(w io.Writer) io.WriteCloser {
	z := writers.Get().(*writer)
	z.dst, z.buf = w, z.buf[:0]
	return z
}

type writer struct {
	dst io.Writer // nil once closed
	buf []byte
	zw  *lz4.Writer
}

func (w *writer) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	return len(p), nil
}

func (w *writer) WriteString(s string) (int, error) {
	w.buf = append(w.buf, s...)
	return len(s), nil
}

// Close compresses what was written into one lz4 frame on the destination
// and returns the writer to the pool.
func (w *writer) Close() error {
	if w.dst == nil {
		return nil
	}
	w.zw.Reset(w.dst)
	_, err := w.zw.Write(w.buf)
	if err == nil {
		err = w.zw.Close()
	}
	w.zw.Reset(nil)
	w.dst = nil
	if cap(w.buf) <= maxPooled {
		writers.Put(w)
	}
	return err
}
