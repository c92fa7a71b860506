package report

import (
	"time"
)

// series is flow volume over time in at most maxBuckets buckets. Buckets
// are aligned to the Unix epoch; when the data would need more of them,
// the width steps up a ladder of round durations, each a multiple of the
// one before, and neighbours merge exactly. Memory is bounded whatever the
// time range and however flows arrive out of order. Bucket i lives in slot
// i mod maxBuckets, which is unique because hi - lo < maxBuckets.
type series struct {
	step   int   // index into widths
	lo, hi int64 // bucket index range present, valid when !empty
	empty  bool
	b      [maxBuckets]volume
}

type volume struct {
	flows uint64
	bytes uint64
}

const maxBuckets = 256

// widths are the bucket widths, each dividing the next, so that a bucket
// of one width lies inside exactly one bucket of any wider one.
var widths = [...]time.Duration{
	time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
	time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 7 * 24 * time.Hour, 28 * 24 * time.Hour, 364 * 24 * time.Hour,
	10 * 364 * 24 * time.Hour, 100 * 364 * 24 * time.Hour,
}

func newSeries() *series { return &series{empty: true} }

func (s *series) width() time.Duration { return widths[s.step] }

func slot(i int64) int { return int(i - floorDiv(i, maxBuckets)*maxBuckets) }

// at is the volume of bucket i, which must be in [lo, hi].
func (s *series) at(i int64) volume { return s.b[slot(i)] }

// bucketOf is the index of the bucket holding t at width w (floored, so
// that times before 1970 stay aligned too).
func bucketOf(t time.Time, w time.Duration) int64 {
	return floorDiv(t.UnixNano(), int64(w))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func (s *series) add(t time.Time, bytes uint64) {
	i := bucketOf(t, s.width())
	if s.empty {
		s.lo, s.hi, s.empty = i, i, false
	}
	for min(s.lo, i) <= max(s.hi, i)-maxBuckets && s.step < len(widths)-1 {
		s.coarsen()
		i = bucketOf(t, s.width())
	}
	s.lo, s.hi = min(s.lo, i), max(s.hi, i)
	v := &s.b[slot(i)]
	v.flows++
	v.bytes += bytes
}

// coarsen steps up to the next width, merging buckets.
func (s *series) coarsen() {
	from, to := int64(widths[s.step]), int64(widths[s.step+1])
	s.step++
	old := s.b
	s.b = [maxBuckets]volume{}
	for i := s.lo; i <= s.hi; i++ {
		v := old[slot(i)]
		w := &s.b[slot(floorDiv(i*from, to))]
		w.flows += v.flows
		w.bytes += v.bytes
	}
	s.lo, s.hi = floorDiv(s.lo*from, to), floorDiv(s.hi*from, to)
}
