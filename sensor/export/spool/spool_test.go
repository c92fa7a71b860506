package spool

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func open(t *testing.T, dir string, maxBytes, segBytes int64) *Spool {
	t.Helper()
	s, err := Open(Options{Dir: dir, MaxBytes: maxBytes, SegmentBytes: segBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func recs(from, n int) [][]byte {
	var out [][]byte
	for i := from; i < from+n; i++ {
		out = append(out, []byte(fmt.Sprintf("record-%06d", i)))
	}
	return out
}

// drain reads and commits everything, max records per Peek.
func drain(t *testing.T, s *Spool, max int) []string {
	t.Helper()
	var got []string
	var buf [][]byte
	for {
		b, m, err := s.Peek(buf, max, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			return got
		}
		for _, r := range b {
			got = append(got, string(r))
		}
		if err := s.Commit(m); err != nil {
			t.Fatal(err)
		}
		buf = b
	}
}

func names(rs [][]byte) []string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r))
	}
	return out
}

func TestOrderAcrossSegments(t *testing.T) {
	for _, max := range []int{1, 7, 1000} {
		t.Run(fmt.Sprint("peek ", max), func(t *testing.T) {
			s := open(t, t.TempDir(), 1<<20, 200) // ~9 records per segment
			var want []string
			for i := 0; i < 100; i += 10 {
				if err := s.Append(recs(i, 10)...); err != nil {
					t.Fatal(err)
				}
				want = append(want, names(recs(i, 10))...)
			}
			if st := s.Stats(); st.Segments < 5 || st.Records != 100 {
				t.Fatalf("stats %+v", st)
			}
			if got := drain(t, s, max); !slices.Equal(got, want) {
				t.Fatalf("got %v\nwant %v", got, want)
			}
			if st := s.Stats(); st.Records != 0 || st.Segments != 0 || st.Bytes != 0 || st.Dropped != 0 {
				t.Errorf("after draining: %+v", st)
			}
			ents, _ := os.ReadDir(s.opts.Dir)
			for _, e := range ents {
				if strings.HasSuffix(e.Name(), segExt) {
					t.Errorf("segment %s left behind", e.Name())
				}
			}
		})
	}
}

func TestCapDropsOldestOnly(t *testing.T) {
	dir := t.TempDir()
	const capBytes = 4096
	s := open(t, dir, capBytes, 512)
	rec := func(i int) []byte { return []byte(fmt.Sprintf("%-92d", i)) } // 100 bytes framed
	n := 0
	// Below the cap nothing is dropped.
	for ; s.Stats().Bytes+100+int64(len(magic)) <= capBytes-512; n++ {
		if err := s.Append(rec(n)); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Dropped != 0 {
		t.Fatalf("dropped %d below the cap: %+v", st.Dropped, st)
	}
	for ; n < 200; n++ {
		if err := s.Append(rec(n)); err != nil {
			t.Fatal(err)
		}
		if b := s.Stats().Bytes; b > capBytes {
			t.Fatalf("spool at %d bytes, cap %d", b, capBytes)
		}
	}
	st := s.Stats()
	if st.Dropped == 0 || st.Dropped+uint64(st.Records) != 200 {
		t.Fatalf("stats %+v: dropped + held != 200", st)
	}
	got := drain(t, s, 1000)
	// What is left is the newest records, in order, without gaps.
	first := 200 - len(got)
	for i, g := range got {
		if strings.TrimSpace(g) != fmt.Sprint(first+i) {
			t.Fatalf("record %d is %q, want %d", i, g, first+i)
		}
	}
}

func TestRestartResumes(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 300})
	if err != nil {
		t.Fatal(err)
	}
	s.Append(recs(0, 50)...)
	b, m, _ := s.Peek(nil, 5, 1<<20)
	if got := names(b); !slices.Equal(got, names(recs(0, 5))) {
		t.Fatalf("peek %v", got)
	}
	s.Commit(m)
	b, _, _ = s.Peek(nil, 3, 1<<20) // read but not committed: comes again
	if len(b) != 3 {
		t.Fatal(len(b))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(recs(0, 1)...); err != ErrClosed {
		t.Errorf("append after close: %v", err)
	}

	s = open(t, dir, 1<<20, 300)
	if n := s.Len(); n != 45 {
		t.Fatalf("reopened with %d records, want 45", n)
	}
	s.Append(recs(50, 10)...)
	if got := drain(t, s, 4); !slices.Equal(got, names(recs(5, 55))) {
		t.Fatalf("after restart got %v", got)
	}
}

func TestTornTailSkipped(t *testing.T) {
	for _, tc := range []struct {
		name string
		tear func(data []byte) []byte
	}{
		{"half a header", func(b []byte) []byte { return append(b, 5, 0, 0) }},
		{"short record", func(b []byte) []byte { return b[:len(b)-3] }},
		{"bad crc", func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }},
		{"absurd length", func(b []byte) []byte { return append(b, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := Open(Options{Dir: dir})
			s.Append(recs(0, 10)...)
			s.Close()
			segs, _ := filepath.Glob(filepath.Join(dir, "*"+segExt))
			data, _ := os.ReadFile(segs[0])
			os.WriteFile(segs[0], tc.tear(data), 0o640)

			var log bytes.Buffer
			s, err := Open(Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(&log, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if st := s.Stats(); st.Torn != 1 {
				t.Errorf("torn %d, want 1", st.Torn)
			}
			if !strings.Contains(log.String(), "damaged record skipped") {
				t.Errorf("no warning logged: %s", log.String())
			}
			want := names(recs(0, 10))
			if tc.name != "half a header" && tc.name != "absurd length" {
				want = want[:9]
			}
			s.Append(recs(10, 1)...) // appends continue after the good part
			want = append(want, "record-000010")
			if got := drain(t, s, 100); !slices.Equal(got, want) {
				t.Errorf("got %v\nwant %v", got, want)
			}
		})
	}
}

func TestPrependGoesFirst(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20, 1<<20)
	s.Append(recs(10, 5)...)
	b, m, _ := s.Peek(nil, 2, 1<<20)
	s.Commit(m)
	_ = b
	if err := s.Prepend(recs(0, 3)...); err != nil {
		t.Fatal(err)
	}
	s.Append(recs(15, 2)...)
	want := append(names(recs(0, 3)), names(recs(12, 5))...)
	// The order survives a restart, including the part-read segment.
	s.Close()
	s = open(t, dir, 1<<20, 1<<20)
	if got := drain(t, s, 2); !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	// Prepend to an empty spool is an append.
	s.Prepend(recs(0, 1)...)
	if got := drain(t, s, 2); !slices.Equal(got, names(recs(0, 1))) {
		t.Errorf("got %v", got)
	}
}

func TestCommitAfterDropIsIgnored(t *testing.T) {
	s := open(t, t.TempDir(), 2048, 512)
	s.Append(recs(0, 5)...)
	_, m, _ := s.Peek(nil, 5, 1<<20)
	for i := 5; i < 200; i += 5 {
		s.Append(recs(i, 5)...) // drops the peeked segment
	}
	if err := s.Commit(m); err != nil {
		t.Errorf("commit of dropped records: %v", err)
	}
	st := s.Stats()
	if got := drain(t, s, 100); int64(len(got)) != st.Records || got[len(got)-1] != "record-000199" {
		t.Errorf("%d records after the drop (%+v), last %q", len(got), st, got[len(got)-1])
	}
}

func TestNotASegment(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "00000001099511627776.seg"), []byte("something else entirely"), 0o640)
	if _, err := Open(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "not a spool segment") {
		t.Errorf("err = %v", err)
	}
}

func TestPeekBytesLimit(t *testing.T) {
	s := open(t, t.TempDir(), 1<<20, 1<<20)
	s.Append(bytes.Repeat([]byte("a"), 5000), []byte("b"), []byte("c"))
	b, m, _ := s.Peek(nil, 10, 100) // one record larger than the limit still comes alone
	if len(b) != 1 || len(b[0]) != 5000 {
		t.Fatalf("peek returned %d records", len(b))
	}
	s.Commit(m)
	if got := drain(t, s, 10); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("got %v", got)
	}
}

func BenchmarkAppend(b *testing.B) {
	s, _ := Open(Options{Dir: b.TempDir(), MaxBytes: 1 << 40})
	defer s.Close()
	batch := make([][]byte, 1000)
	for i := range batch {
		batch[i] = bytes.Repeat([]byte{byte(i)}, 400)
	}
	b.ReportAllocs()
	b.SetBytes(400 * 1000)
	for b.Loop() {
		if err := s.Append(batch...); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStaleMarkAfterAllSegmentsDropped: a Mark from a Peek whose segment
// the cap then dropped (with every other segment) must not commit the
// records that took its place: they were never read.
func TestStaleMarkAfterAllSegmentsDropped(t *testing.T) {
	s := open(t, t.TempDir(), 300, 1<<20)
	s.Append(recs(0, 5)...) // 5 x 21 bytes framed
	_, m, _ := s.Peek(nil, 5, 1<<20)
	// A batch that needs the whole cap drops the peeked segment.
	if err := s.Append(recs(100, 12)...); err != nil {
		t.Fatal(err)
	}
	held := s.Stats().Records
	if err := s.Commit(m); err != nil {
		t.Fatal(err)
	}
	got := drain(t, s, 100)
	if int64(len(got)) != held || got[0] != "record-000101" && got[0] != "record-000100" {
		t.Fatalf("after committing a stale mark: %d records %v, want the %d held after the drop", len(got), got, held)
	}
}

// TestZeroFilledTailIsTorn: a power loss can leave a segment's tail as
// zeros (the size was updated, the data was not). Zeros must be reported
// as damage, not read as empty records.
func TestZeroFilledTailIsTorn(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(Options{Dir: dir})
	s.Append(recs(0, 3)...)
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+segExt))
	f, _ := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	f.Write(make([]byte, 4096))
	f.Close()

	s = open(t, dir, 0, 0)
	st := s.Stats()
	if st.Torn != 1 || st.Records != 3 {
		t.Errorf("stats %+v: want 3 records and the zeroed tail counted as torn", st)
	}
	if got := drain(t, s, 1000); !slices.Equal(got, names(recs(0, 3))) {
		t.Errorf("got %d records %q", len(got), got)
	}
}

// TestDamageWhileReadingKeepsCounts: a record found damaged by Peek (the
// file changed under the spool) drops the rest of its segment; the
// records Peek returned are still committed normally and the counts stay
// right.
func TestDamageWhileReadingKeepsCounts(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20, 1<<20)
	s.Append(recs(0, 5)...)
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+segExt))
	f, _ := os.OpenFile(segs[0], os.O_WRONLY, 0)
	f.WriteAt([]byte{'X'}, int64(len(magic))+3*21-1) // inside the third record
	f.Close()
	b, m, err := s.Peek(nil, 10, 1<<20)
	if err != nil || len(b) != 2 {
		t.Fatalf("peek: %d records, %v", len(b), err)
	}
	if err := s.Commit(m); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Records != 0 || st.Torn != 1 {
		t.Errorf("after the damaged segment: %+v, want 0 records", st)
	}
	s.Append(recs(5, 2)...)
	if got := drain(t, s, 10); !slices.Equal(got, names(recs(5, 2))) {
		t.Errorf("records appended after the damage: %q", got)
	}
}

// TestBadLengthWhileReadingDoesNotBlock: a record whose length field is
// damaged (it runs past its segment's end) is skipped with the rest of its
// segment like any damaged record, not reported by every Peek forever,
// which would keep everything behind it in the spool.
func TestBadLengthWhileReadingDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20, 200) // ~9 records per segment
	s.Append(recs(0, 5)...)
	s.Append(recs(5, 20)...) // in later segments
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+segExt))
	f, _ := os.OpenFile(segs[0], os.O_WRONLY, 0)
	f.WriteAt([]byte{0xff, 0xff}, int64(len(magic))+2*21) // the third record's length
	f.Close()
	var got []string
	for range 10 {
		b, m, err := s.Peek(nil, 100, 1<<20)
		if err != nil {
			continue
		}
		if len(b) == 0 {
			break
		}
		got = append(got, names(b)...)
		s.Commit(m)
	}
	if want := append(names(recs(0, 2)), names(recs(5, 20))...); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// TestPrependAtCapDropsOldest: records prepended (a batch that failed
// while newer ones were spooled) are the oldest; when the spool is at its
// cap they are the ones to drop, not newer spooled records.
func TestPrependAtCapDropsOldest(t *testing.T) {
	s := open(t, t.TempDir(), 8+10*21, 1<<20) // room for 10 records
	s.Append(recs(10, 10)...)
	if err := s.Prepend(recs(0, 5)...); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	got := drain(t, s, 100)
	if want := names(recs(10, 10)); !slices.Equal(got, want) || st.Dropped != 5 {
		t.Errorf("after prepending at the cap (%+v): %q, want the newest %q", st, got, want)
	}
}

// TestDropWhileSendingCountsOnlyLost: the cap drops the segment a reader
// has peeked and is sending. The records it sends and commits are
// delivered, not dropped; those it never commits (it peeks again, or the
// spool closes) are.
func TestDropWhileSendingCountsOnlyLost(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(s *Spool, m Mark)
		want uint64 // of the 5 peeked records, counted dropped
	}{
		{"committed", func(s *Spool, m Mark) { s.Commit(m) }, 0},
		{"peeked again", func(s *Spool, m Mark) { s.Peek(nil, 1, 1<<20) }, 5},
		{"closed", func(s *Spool, m Mark) { s.Close() }, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, t.TempDir(), 8+12*21, 1<<20) // room for 12 records
			s.Append(recs(0, 8)...)
			_, m, _ := s.Peek(nil, 5, 1<<20)
			if err := s.Append(recs(8, 10)...); err != nil { // drops the peeked segment
				t.Fatal(err)
			}
			dropped := s.Stats().Dropped
			tc.end(s, m)
			if got := s.Stats().Dropped; dropped != 3 || got != 3+tc.want {
				t.Errorf("dropped %d at the drop, %d after, want 3 then %d (3 never peeked)", dropped, got, 3+tc.want)
			}
		})
	}
}

// TestPrependNeverReusesASequenceNumber: a segment the cap dropped, or
// removed once read, leaves its sequence number behind in a reader's Mark
// and, after a crash between the removal and the cursor's update, in the
// cursor file. Prepend must not give that number to a new segment: the
// stale Mark would commit, or the stale cursor skip, records never sent.
func TestPrependNeverReusesASequenceNumber(t *testing.T) {
	t.Run("stale mark", func(t *testing.T) {
		s := open(t, t.TempDir(), 8+13*21, 5*21+8) // room for 13 records, 5 per segment
		s.Append(recs(0, 5)...)
		s.Append(recs(5, 5)...) // a second segment
		_, m, _ := s.Peek(nil, 5, 1<<20)
		s.Append(recs(10, 5)...) // drops the peeked segment
		if err := s.Prepend(recs(100, 2)...); err != nil {
			t.Fatal(err)
		}
		s.Commit(m)
		if got := drain(t, s, 100); len(got) == 0 || got[0] != "record-000100" {
			t.Errorf("after committing the dropped segment's mark: %q, want the prepended records first", got)
		}
	})
	t.Run("stale cursor", func(t *testing.T) {
		dir := t.TempDir()
		s, _ := Open(Options{Dir: dir, SegmentBytes: 5*21 + 8})
		s.Append(recs(0, 5)...)
		s.Append(recs(5, 5)...)
		_, m, _ := s.Peek(nil, 3, 1<<20)
		s.Commit(m) // the cursor names the first segment
		cursor, _ := os.ReadFile(filepath.Join(dir, cursorName))
		_, m, _ = s.Peek(nil, 5, 1<<20)
		s.Commit(m) // removes it, then rewrites the cursor
		// kill -9 between the removal and the cursor's rename.
		s.Close()
		os.WriteFile(filepath.Join(dir, cursorName), cursor, 0o640)

		s, _ = Open(Options{Dir: dir, SegmentBytes: 5*21 + 8})
		if err := s.Prepend(recs(100, 5)...); err != nil {
			t.Fatal(err)
		}
		s.Close() // or a crash: Prepend synced its segment
		s = open(t, dir, 0, 5*21+8)
		want := append(names(recs(100, 5)), names(recs(5, 5))...)
		if got := drain(t, s, 100); !slices.Equal(got, want) {
			t.Errorf("after restarting: %q\nwant %q", got, want)
		}
	})
}

// TestSyncAfterNewSegment: Sync and Close fsync the directory after a
// segment is created (appended or prepended), so that a power loss cannot
// lose the file's name. A test cannot see the fsync; strace can:
//
//	go test -c -o spool.test ./sensor/export/spool
//	strace -f -e trace=openat,fsync ./spool.test -test.run TestSyncAfterNewSegment
//
// shows the directory opened and fsynced after each segment's creation.
func TestSyncAfterNewSegment(t *testing.T) {
	s := open(t, t.TempDir(), 1<<20, 200)
	s.Append(recs(0, 20)...)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	s.Prepend(recs(100, 2)...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOneProcessPerDirectory: a second Open of a spool directory in use
// (two sensors given one directory) fails, naming the holder, instead of
// both writing the same segments and cursor; once the first is closed, or
// its process gone, the directory opens again.
func TestOneProcessPerDirectory(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0, 0)
	if err := s.Append([]byte("a")); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Options{Dir: dir})
	if want := fmt.Sprintf("spool: directory %s is in use by process %d", dir, os.Getpid()); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("second Open: %v, want %q...", err, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, 0, 0)
	if got := drain(t, s, 10); len(got) != 1 || got[0] != "a" {
		t.Errorf("after reopening: %q", got)
	}
	s.Close()
}
