package report

import (
	"testing"
	"time"
)

func TestSeries(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		times     []time.Duration // offsets from t0
		wantWidth time.Duration
	}{
		{"one bucket", []time.Duration{0, 200 * time.Millisecond, 999 * time.Millisecond}, time.Second},
		{"fits at 1s", []time.Duration{0, 255 * time.Second}, time.Second},
		{"needs 5s", []time.Duration{0, 256 * time.Second}, 5 * time.Second},
		{"out of order", []time.Duration{10 * time.Hour, 0, 5 * time.Hour, -3 * time.Hour}, 5 * time.Minute},
		{"a year", []time.Duration{0, 365 * 24 * time.Hour}, 7 * 24 * time.Hour},
		{"before 1970", []time.Duration{-56 * 365 * 24 * time.Hour, 0}, 364 * 24 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSeries()
			for i, d := range tc.times {
				s.add(t0.Add(d), uint64(i+1))
			}
			if s.width() != tc.wantWidth {
				t.Errorf("width %v, want %v", s.width(), tc.wantWidth)
			}
			if s.hi-s.lo >= maxBuckets {
				t.Errorf("span %d buckets, want < %d", s.hi-s.lo+1, maxBuckets)
			}
			var flows, bytes uint64
			for i := s.lo; i <= s.hi; i++ {
				flows += s.at(i).flows
				bytes += s.at(i).bytes
			}
			n := uint64(len(tc.times))
			if flows != n || bytes != n*(n+1)/2 {
				t.Errorf("totals %d flows %d bytes, want %d %d", flows, bytes, n, n*(n+1)/2)
			}
			for _, d := range tc.times { // every time is inside the range
				if i := bucketOf(t0.Add(d), s.width()); i < s.lo || i > s.hi {
					t.Errorf("%v: bucket %d outside [%d, %d]", d, i, s.lo, s.hi)
				}
			}
		})
	}
}

func TestWidthsDivide(t *testing.T) {
	for i := 1; i < len(widths); i++ {
		if widths[i]%widths[i-1] != 0 {
			t.Errorf("%v is not a multiple of %v: merged buckets would straddle", widths[i], widths[i-1])
		}
	}
}

func TestTopN(t *testing.T) {
	type add struct {
		key   string
		bytes uint64
	}
	tests := []struct {
		name     string
		capacity int
		adds     []add
		want     []string // top keys by bytes
		evicted  bool
	}{
		{"exact under capacity", 4, []add{{"a", 1}, {"b", 5}, {"a", 10}, {"c", 3}}, []string{"a", "b", "c"}, false},
		{"ties by key", 4, []add{{"b", 2}, {"a", 2}}, []string{"a", "b"}, false},
		{"heavy hitter survives churn", 3, []add{{"big", 1000}, {"x1", 1}, {"x2", 1}, {"x3", 1}, {"x4", 1}, {"x5", 1}, {"big", 1}}, []string{"big"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tn := newTopN[string](tc.capacity)
			for _, a := range tc.adds {
				tn.add(a.key, "", a.bytes)
			}
			top := tn.top(len(tc.want))
			for i, k := range tc.want {
				if top[i].key != k {
					t.Errorf("top[%d] = %s, want %s (%+v)", i, top[i].key, k, top)
				}
			}
			if (tn.evicted > 0) != tc.evicted {
				t.Errorf("evicted %d", tn.evicted)
			}
			if len(tn.heap) > tc.capacity || len(tn.idx) != len(tn.heap) {
				t.Errorf("heap %d idx %d, capacity %d", len(tn.heap), len(tn.idx), tc.capacity)
			}
			for i := 1; i < len(tn.heap); i++ { // the heap property holds
				if tn.less(i, (i-1)/2) {
					t.Errorf("heap violated at %d", i)
				}
			}
		})
	}
}

func TestCountryName(t *testing.T) {
	for code, want := range map[string]string{"KP": "North Korea", "US": "United States", "ZW": "Zimbabwe", "AD": "Andorra", "QQ": "", "": "", "U": ""} {
		if got := countryName(code); got != want {
			t.Errorf("countryName(%q) = %q, want %q", code, got, want)
		}
	}
}
