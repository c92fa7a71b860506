package consume

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/edgeward/edgeward/flow"
)

// TestReorder: held records leave in export-stamp order once they have
// waited the delay, a record arriving after a later one left is reported
// late, and the lowest held offset bounds what may be committed.
func TestReorder(t *testing.T) {
	var r reorder
	t0 := time.Unix(1000, 0)
	stamped := func(st int64) []kafka.Header {
		return []kafka.Header{{Key: HeaderContentType, Value: []byte(flow.ContentType)},
			{Key: flow.HeaderExported, Value: []byte(strconv.FormatInt(st, 10))}}
	}
	// Offsets 10..13 of the repartition topic, from two flows partitions,
	// out of export order.
	r.hold(10, "g", 1, 5, []byte("k"), []byte("v30"), stamped(30), false, t0)
	r.hold(11, "g", 0, 7, []byte("k"), []byte("v10"), stamped(10), false, t0)
	r.hold(12, "g", 1, 6, []byte("k"), []byte("v40"), stamped(40), false, t0.Add(time.Second))
	r.hold(13, "g", 0, 8, []byte("k"), []byte("v20"), stamped(20), false, t0.Add(time.Second))
	if got := r.minOffset(14); got != 10 {
		t.Errorf("minOffset %d, want 10", got)
	}
	if e, _ := r.next(t0.Add(time.Second), 2*time.Second); e != nil {
		t.Fatalf("released %s before its delay", e.val)
	}
	var order []string
	for {
		e, late := r.next(t0.Add(3*time.Second), 2*time.Second)
		if e == nil {
			break
		}
		if late {
			t.Errorf("%s reported late", e.val)
		}
		order = append(order, string(e.val))
		if string(e.headers[1].Value) != string(e.val[1:]) {
			t.Errorf("%s kept headers %v", e.val, e.headers)
		}
		r.done(e)
	}
	if want := "v10 v20 v30 v40"; strings.Join(order, " ") != want {
		t.Errorf("released %s, want %s", strings.Join(order, " "), want)
	}
	if got := r.minOffset(14); got != 14 {
		t.Errorf("minOffset with nothing held %d, want 14", got)
	}
	// A record the sensor exported before v40 arrives after it left.
	r.hold(14, "g", 0, 9, []byte("k"), []byte("v35"), stamped(35), false, t0.Add(3*time.Second))
	e, late := r.next(time.Time{}, 2*time.Second) // zero time: everything, at once
	if e == nil || !late || string(e.val) != "v35" {
		t.Errorf("late record: %v %v", e, late)
	}
	// Records without a stamp take their arrival; reset drops all.
	r.hold(15, "g", -1, 15, nil, []byte("x"), nil, true, t0.Add(4*time.Second))
	if r.h[0].stamp != t0.Add(4*time.Second).UnixNano() || !r.h[0].replay || r.h[0].srcOff != 15 {
		t.Errorf("unstamped record held as %+v", r.h[0])
	}
	r.reset()
	if r.Len() != 0 || r.minOffset(16) != 16 {
		t.Errorf("reset left %d records", r.Len())
	}
}
