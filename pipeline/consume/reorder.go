package consume

import (
	"container/heap"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/edgeward/edgeward/flow"
)

// The repartition topic gathers a key group's flows from every partition
// of the flows topic, interleaved in whatever order the flows workers
// happened to forward them. Rules keyed by something else than the device
// (several devices behind one egress address, say) build windows from
// that order, so a different interleaving would start a window at another
// flow and give the finding another uid and count than `edgeward run`,
// which sees the sensor's export order.
//
// The reorder buffer restores that order: a repartitioned record waits
// Config.ReorderDelay after it arrived, and records leave in the order of
// the sensor's export stamps (flow.HeaderExported), ties broken by where
// they came from. A record whose partner on another flows partition was
// forwarded within the delay therefore meets it in export order; one that
// arrives later than that (a flows partition far behind the others, during
// a takeover) is evaluated late and counted in
// edgeward_repartition_reorder_late_total. Records without a stamp (a
// producer other than edgeward's sensor) are stamped with their arrival.
//
// Held records are not yet evaluated: the partition's committed offset
// stays below the oldest of them, so a crash loses none.

// held is a repartitioned record waiting in the reorder buffer.
type held struct {
	stamp   int64 // export stamp, or arrival in Unix nanoseconds
	srcPart int32 // tie-breaks: source partition and offset
	srcOff  int64
	off     int64 // offset in the repartition topic
	arrived time.Time
	replay  bool   // read below the warm offset: output is dropped
	route   string // key group id
	key     []byte
	val     []byte
	headers []kafka.Header
	buf     []byte // backs headers' values
}

// reorder is a min-heap of held records by export order.
type reorder struct {
	h    []*held
	free []*held
	last int64 // stamp of the last record released; stamps are positive
}

func (r *reorder) Len() int { return len(r.h) }
func (r *reorder) Less(i, j int) bool {
	a, b := r.h[i], r.h[j]
	if a.stamp != b.stamp {
		return a.stamp < b.stamp
	}
	if a.srcPart != b.srcPart {
		return a.srcPart < b.srcPart
	}
	return a.srcOff < b.srcOff
}
func (r *reorder) Swap(i, j int) { r.h[i], r.h[j] = r.h[j], r.h[i] }
func (r *reorder) Push(x any)    { r.h = append(r.h, x.(*held)) }
func (r *reorder) Pop() any {
	x := r.h[len(r.h)-1]
	r.h[len(r.h)-1] = nil
	r.h = r.h[:len(r.h)-1]
	return x
}

// hold queues a copy of the record.
func (r *reorder) hold(off int64, route string, srcPart int32, srcOff int64, key, val []byte, headers []kafka.Header, replay bool, now time.Time) {
	var e *held
	if n := len(r.free); n > 0 {
		e, r.free = r.free[n-1], r.free[:n-1]
	} else {
		e = &held{}
	}
	e.stamp = now.UnixNano()
	if v, err := strconv.ParseInt(string(header(headers, flow.HeaderExported)), 10, 64); err == nil {
		e.stamp = v
	}
	e.srcPart, e.srcOff, e.off, e.arrived, e.replay, e.route = srcPart, srcOff, off, now, replay, route
	e.key, e.val = append(e.key[:0], key...), append(e.val[:0], val...)
	e.buf, e.headers = e.buf[:0], e.headers[:0]
	for _, h := range headers {
		e.buf = append(e.buf, h.Value...)
	}
	at := 0
	for _, h := range headers {
		n := len(h.Value)
		e.headers = append(e.headers, kafka.Header{Key: h.Key, Value: e.buf[at : at+n : at+n]})
		at += n
	}
	heap.Push(r, e)
}

// next pops the first record in export order if it has waited delay by
// now (any record when now is zero); done hands it back for reuse. late
// reports that a record after it in export order was released before.
func (r *reorder) next(now time.Time, delay time.Duration) (e *held, late bool) {
	if len(r.h) == 0 || (!now.IsZero() && now.Sub(r.h[0].arrived) < delay) {
		return nil, false
	}
	e = heap.Pop(r).(*held)
	late = e.stamp < r.last
	r.last = max(r.last, e.stamp)
	return e, late
}

func (r *reorder) done(e *held) { r.free = append(r.free, e) }

// minOffset is the lowest repartition-topic offset held, or limit.
func (r *reorder) minOffset(limit int64) int64 {
	for _, e := range r.h {
		limit = min(limit, e.off)
	}
	return limit
}

// reset drops every held record (the partition's state is dropped; its
// next owner reads them again from the committed offset).
func (r *reorder) reset() {
	for _, e := range r.h {
		r.free = append(r.free, e)
	}
	clear(r.h)
	r.h = r.h[:0]
	r.last = 0
}
