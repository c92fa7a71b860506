package report

import (
	"fmt"
	"strconv"
	"time"
)

// timelineView is the inline SVG timeline: alerts per bucket stacked by
// severity above, flow volume below, on one time axis. Coordinates are in
// SVG user units (the viewBox is tlWidth x tlHeight).
type timelineView struct {
	Empty     bool
	Bucket    string // bucket width, for the caption
	AlertBars []rect
	VolBars   []rect
	Ticks     []tick
	AlertMax  string
	VolMax    string
	NoAlerts  bool
	Legend    []sevCount
}

type rect struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

type tick struct {
	X     float64
	Label string
}

// Layout of the timeline, in SVG units.
const (
	tlWidth   = 1160
	tlHeight  = 232
	tlLeft    = 70
	tlRight   = 1148
	alertTop  = 18
	alertBase = 122
	volTop    = 146
	volBase   = 200
	tickY     = 220
	maxBars   = 120
	minBars   = 24
)

func (r *Report) timeline(fs []*finding, lo, hi time.Time) timelineView {
	var tv timelineView
	if lo.IsZero() {
		tv.Empty = true
		return tv
	}
	step := r.volume.step
	if r.flows == 0 {
		step = 0
	}
	w := widths[step]
	a, b := bucketOf(lo, w), bucketOf(hi, w)
	for b-a+1 > maxBars && step < len(widths)-1 {
		step++
		w = widths[step]
		a, b = bucketOf(lo, w), bucketOf(hi, w)
	}
	if n := b - a + 1; n < minBars {
		a -= (minBars - n) / 2
		b = a + minBars - 1
	}
	n := int(b - a + 1)
	tv.Bucket = fmtWidth(w)

	vol := make([]volume, n)
	from := int64(r.volume.width())
	for i := r.volume.lo; !r.volume.empty && i <= r.volume.hi; i++ {
		v := r.volume.at(i)
		j := floorDiv(i*from, int64(w)) - a
		if j >= 0 && j < int64(n) {
			vol[j].flows += v.flows
			vol[j].bytes += v.bytes
		}
	}
	alerts := make([][6]int, n)
	for _, f := range fs {
		if f.shadow || f.first.IsZero() {
			continue
		}
		j := bucketOf(f.first, w) - a
		if j >= 0 && j < int64(n) {
			alerts[j][5-clampSev(f.severityID)]++
		}
	}

	bw := float64(tlRight-tlLeft) / float64(n)
	gap := min(2, bw*0.2)
	x := func(j int) float64 { return round2(tlLeft + float64(j)*bw + gap/2) }
	var maxA int
	var maxV uint64
	for j := range n {
		t := 0
		for _, c := range alerts[j] {
			t += c
		}
		maxA = max(maxA, t)
		maxV = max(maxV, vol[j].bytes)
	}
	tv.NoAlerts = maxA == 0
	tv.AlertMax = strconv.Itoa(maxA)
	tv.VolMax = fmtBytes(maxV)
	for j := range n {
		start := time.Unix(0, (a+int64(j))*int64(w)).UTC()
		when := fmtTime(start) + " – " + start.Add(w).Format(endLayout(w))
		if maxA > 0 {
			y := float64(alertBase)
			// Most severe at the bottom of the stack, where it is seen first.
			for s := range 6 {
				c := alerts[j][s]
				if c == 0 {
					continue
				}
				h := max(2, float64(alertBase-alertTop)*float64(c)/float64(maxA))
				y -= h
				tv.AlertBars = append(tv.AlertBars, rect{
					X: x(j), Y: round2(y), W: round2(bw - gap), H: round2(h), Class: sevClass(5 - s),
					Title: fmt.Sprintf("%s: %d %s", when, c, sevNames[s]),
				})
			}
		}
		if v := vol[j]; v.bytes > 0 || v.flows > 0 {
			h := 1.0
			if maxV > 0 {
				h = max(1, float64(volBase-volTop)*float64(v.bytes)/float64(maxV))
			}
			tv.VolBars = append(tv.VolBars, rect{
				X: x(j), Y: round2(volBase - h), W: round2(bw - gap), H: round2(h), Class: "vol",
				Title: fmt.Sprintf("%s: %s flows, %s", when, fmtInt(v.flows), fmtBytes(v.bytes)),
			})
		}
	}
	tv.Ticks = ticks(a, b+1, w)
	for i := range tv.Ticks {
		tv.Ticks[i].X = round2(tlLeft + float64(tlRight-tlLeft)*tv.Ticks[i].X)
	}
	return tv
}

// ticks returns round times between buckets a and b (exclusive) of width
// w, X as a fraction of the axis.
func ticks(a, b int64, w time.Duration) []tick {
	lo, hi := a*int64(w), b*int64(w)
	span := time.Duration(hi - lo)
	steps := [...]time.Duration{
		time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
		24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 28 * 24 * time.Hour,
		91 * 24 * time.Hour, 364 * 24 * time.Hour,
	}
	iv := steps[len(steps)-1]
	for _, s := range steps {
		if span/s <= 8 {
			iv = s
			break
		}
	}
	layout := "15:04"
	switch {
	case iv < time.Minute:
		layout = "15:04:05"
	case iv >= 24*time.Hour:
		layout = "Jan 2"
	case span > 24*time.Hour:
		layout = "Jan 2 15:04"
	}
	var out []tick
	for t := (floorDiv(lo-1, int64(iv)) + 1) * int64(iv); t <= hi; t += int64(iv) {
		out = append(out, tick{
			X:     float64(t-lo) / float64(hi-lo),
			Label: time.Unix(0, t).UTC().Format(layout),
		})
	}
	return out
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// fmtWidth names a bucket width: "30 s", "5 min", "2 h", "7 days".
func fmtWidth(w time.Duration) string {
	switch {
	case w < time.Minute:
		return strconv.Itoa(int(w/time.Second)) + " s"
	case w < time.Hour:
		return strconv.Itoa(int(w/time.Minute)) + " min"
	case w < 24*time.Hour:
		return strconv.Itoa(int(w/time.Hour)) + " h"
	case w == 24*time.Hour:
		return "1 day"
	}
	return strconv.Itoa(int(w/(24*time.Hour))) + " days"
}

// endLayout formats a bucket's end after its full start time.
func endLayout(w time.Duration) string {
	if w < 24*time.Hour {
		return "15:04:05"
	}
	return "2006-01-02 15:04:05"
}
