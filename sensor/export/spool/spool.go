// Package spool is the exporter's bounded on-disk queue: records that
// could not reach Kafka wait here, in order, until they can.
//
// A spool is a directory of segment files, named by a sequence number and
// read oldest first. Each record is framed as a 4-byte little-endian
// length, the CRC-32C of the record, then the record. The read position
// survives restarts in a small cursor file, replaced atomically on each
// Commit. When the spool would grow past its size cap, whole segments are
// dropped, oldest first, and their records counted in Stats.Dropped.
//
// Durability: Append writes each batch to the file with one write(2), so
// records survive a crash of the process as soon as Append returns.
// Surviving a power loss needs fsync, of the segment and of the directory
// that names it, which the spool does when a segment is full, on Sync
// (the exporter calls it every second while records are spooled) and on
// Close: a power loss loses at most the last second.
// A record torn by a crash mid-write is detected by its length or CRC when
// the spool is opened again, logged and skipped (Stats.Torn); everything
// before it is kept.
package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

const (
	magic     = "EWSPOOL1" // first bytes of every segment
	frameHead = 8          // length + CRC
	// MaxRecord is the largest record the spool accepts.
	MaxRecord = 16 << 20
	// firstSeq leaves room below for Prepend.
	firstSeq = 1 << 40
	segExt   = ".seg"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrClosed is returned by operations on a closed spool.
var ErrClosed = errors.New("spool closed")

// Options configure a spool.
type Options struct {
	Dir      string
	MaxBytes int64 // size cap of all segments on disk; default 1 GiB
	// SegmentBytes is the size at which a new segment starts; default
	// MaxBytes/16 within [64 KiB, 64 MiB]. Dropping for the cap frees
	// whole segments.
	SegmentBytes int64
	Logger       *slog.Logger
}

// Stats describe the spool now; Dropped and Torn count since Open.
type Stats struct {
	Bytes    int64 // on disk, in segments
	Segments int
	Records  int64  // not yet committed
	Dropped  uint64 // records dropped, oldest first, for the size cap, and not sent
	Torn     uint64 // damaged records (and what followed them in their segment) skipped at Open
}

type segment struct {
	seq     uint64
	size    int64 // bytes of valid frames, header included
	readOff int64 // committed up to here
	records int64 // records after readOff
	rf      *os.File
}

// Spool is safe for concurrent use: typically one goroutine appends and
// another reads and commits.
type Spool struct {
	opts  Options
	log   *slog.Logger
	lockf *os.File // holds the directory's lock (lock.go) until Close

	mu      sync.Mutex
	segs    []*segment // oldest first; the last one is written to
	nextSeq uint64     // of the next segment Append starts
	lowSeq  uint64     // the lowest sequence number in use or named by the cursor; Prepend goes below
	w       *os.File   // the last segment, when open for writing
	dirty   bool       // written since the last fsync
	created bool       // a segment file created since the directory was last fsynced
	total   int64
	stats   Stats
	closed  bool
	readBuf []byte
	frame   []byte

	// sending is the Mark of the last Peek until its Commit: records the
	// reader is sending. If the cap drops their segment meanwhile
	// (sendingGone), they count as dropped only if they are never
	// committed.
	sending     Mark
	sendingGone bool
}

// Open opens (creating it if needed) the spool in opts.Dir and checks
// every segment, skipping a torn record at a segment's end.
func Open(opts Options) (*Spool, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 1 << 30
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = min(max(opts.MaxBytes/16, 64<<10), 64<<20)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{opts: opts, log: opts.Logger}
	var err error
	if s.lockf, err = lock(opts.Dir); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	opened := false
	defer func() {
		if !opened {
			s.lockf.Close()
		}
	}()
	ents, err := os.ReadDir(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, segExt) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, segExt), 10, 64)
		if err != nil || filepath.Base(s.path(seq)) != name {
			s.log.Warn("ignoring a file that is not a segment", "file", filepath.Join(opts.Dir, name))
			continue
		}
		s.segs = append(s.segs, &segment{seq: seq})
	}
	slices.SortFunc(s.segs, func(a, b *segment) int { return cmpSeq(a.seq, b.seq) })
	cursor := s.readCursor()
	// Sequence numbers are never reused, not even those of segments gone
	// before this Open that the cursor still names (a crash between a
	// segment's removal and the cursor's update): a Mark or a cursor entry
	// for an old segment must not apply to a new one, appended or
	// prepended.
	s.nextSeq = firstSeq
	for seq := range cursor {
		s.nextSeq = max(s.nextSeq, seq+1)
	}
	if len(s.segs) > 0 {
		s.nextSeq = max(s.nextSeq, s.segs[len(s.segs)-1].seq+1)
	}
	s.lowSeq = s.nextSeq
	for seq := range cursor {
		s.lowSeq = min(s.lowSeq, seq)
	}
	if len(s.segs) > 0 {
		s.lowSeq = min(s.lowSeq, s.segs[0].seq)
	}
	for _, g := range s.segs {
		g.readOff = max(cursor[g.seq], int64(len(magic)))
		if err := s.check(g); err != nil {
			return nil, err
		}
		s.total += g.size
	}
	// Segments wholly committed before a crash are removed now.
	s.segs = slices.DeleteFunc(s.segs, func(g *segment) bool {
		if g.records > 0 {
			return false
		}
		s.total -= g.size
		os.Remove(s.path(g.seq))
		return true
	})
	if len(s.segs) > 0 {
		s.log.Info("spool holds records from before", "dir", opts.Dir, "records", s.records(), "bytes", s.total, "segments", len(s.segs))
	}
	opened = true
	return s, nil
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *Spool) path(seq uint64) string {
	return filepath.Join(s.opts.Dir, fmt.Sprintf("%020d%s", seq, segExt))
}

// check validates a segment's frames, truncating it after the last good
// one, and counts its records after readOff.
func (s *Spool) check(g *segment) error {
	p := s.path(g.seq)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("spool: reading %s: %w", p, err)
	}
	if len(data) < len(magic) || string(data[:len(magic)]) != magic {
		if len(data) < len(magic) && bytes.HasPrefix([]byte(magic), data) {
			// Torn while being created.
			g.size = 0
			return f.Truncate(0)
		}
		return fmt.Errorf("spool: %s is not a spool segment (move it out of %s)", p, s.opts.Dir)
	}
	off := int64(len(magic))
	for off < int64(len(data)) {
		n, ok := validFrame(data[off:])
		if !ok {
			s.stats.Torn++
			s.log.Warn("spool: damaged record skipped (a crash while writing, or a disk error)",
				"file", p, "offset", off, "bytes_skipped", int64(len(data))-off)
			if err := f.Truncate(off); err != nil {
				return fmt.Errorf("spool: truncating %s: %w", p, err)
			}
			break
		}
		if off >= g.readOff {
			g.records++
		}
		off += n
	}
	g.size = off
	if g.readOff > g.size {
		g.readOff = g.size
	}
	return nil
}

// validFrame returns the length of the frame at the start of b, if whole
// and intact. Records are never empty, so that zeros (a tail whose data a
// power loss did not write) are damage: their CRC matches an empty record.
func validFrame(b []byte) (int64, bool) {
	if len(b) < frameHead {
		return 0, false
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n > MaxRecord || int64(len(b)-frameHead) < int64(n) {
		return 0, false
	}
	rec := b[frameHead : frameHead+int(n)]
	if crc32.Checksum(rec, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, false
	}
	return frameHead + int64(n), true
}

func (s *Spool) records() int64 {
	var n int64
	for _, g := range s.segs {
		n += g.records
	}
	return n
}

// ErrEmpty is returned for an empty record, which the spool cannot tell
// from damage.
var ErrEmpty = errors.New("spool: empty record")

// Append adds records at the end, in order. When the spool would exceed
// its cap, the oldest segments are dropped first.
func (s *Spool) Append(recs ...[]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if slices.ContainsFunc(recs, func(r []byte) bool { return len(r) == 0 }) {
		return ErrEmpty
	}
	return s.append(s.makeRoom(recs, false))
}

func (s *Spool) append(recs [][]byte) error {
	if len(recs) == 0 {
		return nil
	}
	s.frame = s.frames(s.frame[:0], recs)
	g, err := s.tail(int64(len(s.frame)))
	if err != nil {
		return err
	}
	if _, err := s.w.Write(s.frame); err != nil {
		// A short write leaves a torn frame that Open skips; keep
		// appending after it would hide the records behind it.
		s.closeWriter()
		return fmt.Errorf("spool: writing %s: %w", s.path(g.seq), err)
	}
	g.size += int64(len(s.frame))
	g.records += int64(len(recs))
	s.total += int64(len(s.frame))
	s.dirty = true
	return nil
}

// Prepend adds records before every uncommitted record, in a segment of
// their own: for a batch that failed while newer ones were spooled.
func (s *Spool) Prepend(recs ...[]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if slices.ContainsFunc(recs, func(r []byte) bool { return len(r) == 0 }) {
		return ErrEmpty
	}
	recs = s.makeRoom(recs, true)
	if len(s.segs) == 0 || len(recs) == 0 {
		return s.append(recs)
	}
	seq := s.lowSeq - 1
	data := s.frames(append([]byte(nil), magic...), recs)
	if err := writeFileSync(s.path(seq), data); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.lowSeq = seq
	s.created = true
	g := &segment{seq: seq, size: int64(len(data)), readOff: int64(len(magic)), records: int64(len(recs))}
	s.segs = slices.Insert(s.segs, 0, g)
	s.total += g.size
	return nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (s *Spool) frames(b []byte, recs [][]byte) []byte {
	for _, r := range recs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(r)))
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(r, crcTable))
		b = append(b, r...)
	}
	return b
}

// makeRoom drops the oldest segments until recs fit under the cap, and
// returns the records to write: a batch larger than the cap by itself
// loses its oldest records. Records to prepend are older than every
// spooled one, so they are the first to go.
func (s *Spool) makeRoom(recs [][]byte, prepend bool) [][]byte {
	var need int64
	for i, r := range recs {
		if len(r) > MaxRecord {
			s.stats.Dropped++
			s.log.Warn("spool: record too large, dropped", "bytes", len(r))
			recs = slices.Delete(slices.Clone(recs), i, i+1)
			return s.makeRoom(recs, prepend)
		}
		need += frameHead + int64(len(r))
	}
	room := s.opts.MaxBytes
	if prepend {
		room -= s.total
	}
	dropped := 0
	for len(recs) > 0 && need+int64(len(magic)) > room {
		need -= frameHead + int64(len(recs[0]))
		recs = recs[1:]
		dropped++
	}
	if dropped > 0 {
		s.stats.Dropped += uint64(dropped)
		s.log.Warn("spool full: dropped the oldest records", "records", dropped, "max_bytes", s.opts.MaxBytes)
	}
	for len(recs) > 0 && len(s.segs) > 0 && s.total+need+int64(len(magic)) > s.opts.MaxBytes {
		g := s.segs[0]
		lost := g.records
		if s.sending.n > 0 && s.sending.seq == g.seq {
			// The reader is sending some: their Commit says whether
			// they are lost.
			lost -= s.sending.n
			s.sendingGone = true
		}
		s.stats.Dropped += uint64(lost)
		s.log.Warn("spool full: dropped its oldest records", "records", lost, "bytes", g.size, "max_bytes", s.opts.MaxBytes)
		s.removeHead()
	}
	return recs
}

// removeHead deletes the oldest segment.
func (s *Spool) removeHead() {
	g := s.segs[0]
	if len(s.segs) == 1 {
		s.closeWriter()
	}
	if g.rf != nil {
		g.rf.Close()
	}
	if err := os.Remove(s.path(g.seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("spool: removing a segment", "err", err)
	}
	s.total -= g.size
	s.segs = s.segs[1:]
	s.writeCursor()
}

func (s *Spool) closeWriter() {
	if s.w != nil {
		if s.dirty {
			s.w.Sync()
			s.dirty = false
		}
		s.w.Close()
		s.w = nil
	}
}

// tail returns the segment to append n bytes to, starting a new one when
// the last is full or not open for writing.
func (s *Spool) tail(n int64) (*segment, error) {
	if len(s.segs) > 0 && s.w != nil {
		g := s.segs[len(s.segs)-1]
		if g.size+n <= s.opts.SegmentBytes || g.size == int64(len(magic)) {
			return g, nil
		}
	}
	s.closeWriter()
	seq := s.nextSeq
	p := s.path(seq)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if _, err := f.WriteString(magic); err != nil {
		f.Close()
		os.Remove(p)
		return nil, fmt.Errorf("spool: writing %s: %w", p, err)
	}
	s.w = f
	s.nextSeq++
	s.created = true
	g := &segment{seq: seq, size: int64(len(magic)), readOff: int64(len(magic))}
	s.segs = append(s.segs, g)
	s.total += g.size
	return g, nil
}

// Mark identifies records returned by Peek, for Commit.
type Mark struct {
	seq        uint64
	start, end int64
	n          int64
}

// Len returns the number of records not yet committed.
func (s *Spool) Len() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records()
}

// Peek returns up to max of the oldest uncommitted records (at most
// maxBytes of them, but at least one), without removing them. The slices
// are valid until the next Peek. Peek does not cross segments, so it may
// return fewer records than remain; none means the spool is empty.
func (s *Spool) Peek(dst [][]byte, max, maxBytes int) ([][]byte, Mark, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dst = dst[:0]
	if s.closed {
		return dst, Mark{}, ErrClosed
	}
	s.abandon()
	for len(s.segs) > 0 {
		g := s.segs[0]
		if g.records > 0 {
			dst, m, err := s.peek(g, dst, max, maxBytes)
			s.sending = m
			return dst, m, err
		}
		if len(s.segs) == 1 {
			break
		}
		s.removeHead()
	}
	return dst, Mark{}, nil
}

func (s *Spool) peek(g *segment, dst [][]byte, max, maxBytes int) ([][]byte, Mark, error) {
	p := s.path(g.seq)
	if g.rf == nil {
		f, err := os.Open(p)
		if err != nil {
			return dst, Mark{}, fmt.Errorf("spool: %w", err)
		}
		g.rf = f
	}
	want := min(int64(maxBytes), g.size-g.readOff)
	m := Mark{seq: g.seq, start: g.readOff, end: g.readOff}
	s.readBuf = s.readBuf[:0]
	for len(dst) < max && m.end < g.size {
		off := m.end - g.readOff
		if int64(len(s.readBuf)) < off+frameHead {
			if err := s.fill(g, want, off+frameHead); err != nil {
				return dst, m, err
			}
		}
		n := int64(binary.LittleEndian.Uint32(s.readBuf[off:]))
		if n == 0 || m.end+frameHead+n > g.size {
			s.damaged(g, m)
			break
		}
		if len(dst) > 0 && off+frameHead+n > int64(maxBytes) {
			break
		}
		if int64(len(s.readBuf)) < off+frameHead+n {
			if err := s.fill(g, want, off+frameHead+n); err != nil {
				return dst, m, err
			}
		}
		rec := s.readBuf[off+frameHead : off+frameHead+n]
		if crc32.Checksum(rec, crcTable) != binary.LittleEndian.Uint32(s.readBuf[off+4:]) {
			s.damaged(g, m)
			break
		}
		dst = append(dst, rec)
		m.end += frameHead + n
		m.n++
	}
	return dst, m, nil
}

// abandon ends the reader's claim on the records of its last Peek, not
// committed: those whose segment the cap dropped meanwhile are lost.
func (s *Spool) abandon() {
	if s.sendingGone {
		s.stats.Dropped += uint64(s.sending.n)
		s.log.Warn("spool full: dropped records that were being sent and not committed", "records", s.sending.n)
	}
	s.sending, s.sendingGone = Mark{}, false
}

// damaged drops the rest of g after the records of m, at a record found
// damaged while reading (the segment changed under the spool: a disk
// error), so that it does not block the records behind it.
func (s *Spool) damaged(g *segment, m Mark) {
	s.stats.Torn++
	s.log.Warn("spool: damaged record while reading, skipping the rest of its segment",
		"file", s.path(g.seq), "offset", m.end, "bytes_skipped", g.size-m.end)
	s.total -= g.size - m.end
	g.records, g.size = m.n, m.end // m's records wait for their Commit
	if g == s.segs[len(s.segs)-1] {
		// Appends would land after the damage, past g.size.
		s.closeWriter()
	}
}

// fill reads the segment from readOff so that readBuf holds at least need
// bytes (and up to want).
func (s *Spool) fill(g *segment, want, need int64) error {
	n := min(max(want, need), g.size-g.readOff)
	if need > n {
		return fmt.Errorf("spool: %s: record runs past the segment's end at %d", s.path(g.seq), g.readOff+need)
	}
	if int64(cap(s.readBuf)) < n {
		s.readBuf = make([]byte, n)
	}
	s.readBuf = s.readBuf[:n]
	if _, err := g.rf.ReadAt(s.readBuf, g.readOff); err != nil {
		return fmt.Errorf("spool: reading %s: %w", s.path(g.seq), err)
	}
	return nil
}

// Commit removes the records of m (sent, so no longer needed). Records
// dropped for the cap since Peek are ignored, and not counted dropped.
func (s *Spool) Commit(m Mark) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if m == s.sending {
		s.sending, s.sendingGone = Mark{}, false
	}
	i := slices.IndexFunc(s.segs, func(g *segment) bool { return g.seq == m.seq })
	if i < 0 || m.n == 0 {
		return nil
	}
	g := s.segs[i]
	if g.readOff != m.start {
		return fmt.Errorf("spool: commit at %d of segment %d, which is read up to %d", m.start, m.seq, g.readOff)
	}
	g.readOff = m.end
	g.records -= m.n
	switch {
	case g.records > 0:
	case s.records() == 0:
		// Everything is sent: start over with an empty directory.
		for len(s.segs) > 0 {
			s.removeHead()
		}
		return nil
	case i < len(s.segs)-1:
		if g.rf != nil {
			g.rf.Close()
		}
		os.Remove(s.path(g.seq))
		s.total -= g.size
		s.segs = slices.Delete(s.segs, i, i+1)
	}
	return s.writeCursor()
}

// cursor file: for each segment read part way, its sequence number and
// read offset (16 bytes), then the CRC-32C of those entries.
const cursorName = "cursor"

func (s *Spool) writeCursor() error {
	var b []byte
	for _, g := range s.segs {
		if g.readOff > int64(len(magic)) {
			b = binary.LittleEndian.AppendUint64(b, g.seq)
			b = binary.LittleEndian.AppendUint64(b, uint64(g.readOff))
		}
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
	p := filepath.Join(s.opts.Dir, cursorName)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

func (s *Spool) readCursor() map[uint64]int64 {
	p := filepath.Join(s.opts.Dir, cursorName)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	if len(b) < 4 || (len(b)-4)%16 != 0 || crc32.Checksum(b[:len(b)-4], crcTable) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		s.log.Warn("spool: damaged cursor file ignored; records already sent may be sent again", "file", p)
		return nil
	}
	m := map[uint64]int64{}
	for i := 0; i+16 <= len(b)-4; i += 16 {
		m[binary.LittleEndian.Uint64(b[i:])] = int64(binary.LittleEndian.Uint64(b[i+8:]))
	}
	return m
}

// Stats returns the spool's current state.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Bytes, st.Segments, st.Records = s.total, len(s.segs), s.records()
	return st
}

// Sync flushes appended records to stable storage.
func (s *Spool) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.syncDir(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if s.w == nil || !s.dirty {
		return nil
	}
	s.dirty = false
	if err := s.w.Sync(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// Close syncs and closes the spool; its records wait on disk for the next
// Open.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.abandon()
	err := s.syncDir()
	if s.w != nil {
		if s.dirty {
			if serr := s.w.Sync(); err == nil {
				err = serr
			}
		}
		if cerr := s.w.Close(); err == nil {
			err = cerr
		}
		s.w = nil
	}
	for _, g := range s.segs {
		if g.rf != nil {
			g.rf.Close()
		}
	}
	s.lockf.Close() // last: the next Open may start now
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// syncDir makes the segments created since the last call durable: the
// fsync of a new file does not make the directory entry naming it
// durable, so without this a power loss could lose a whole segment
// synced long before.
func (s *Spool) syncDir() error {
	if !s.created {
		return nil
	}
	d, err := os.Open(s.opts.Dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing the directory %s: %w", s.opts.Dir, err)
	}
	s.created = false
	return nil
}
