package report

import (
	"cmp"
	"slices"
)

// topN counts bytes and flows per key in bounded memory with the weighted
// Space-Saving algorithm (Metwally et al.): up to capacity keys are tracked
// exactly; once full, a new key takes the place of the smallest one and
// inherits its counts as an upper bound, so heavy hitters are never lost
// and their counts are over-estimated by at most the evicted minimum. The
// entries form a min-heap on bytes, so an update is O(log capacity) and
// allocates nothing once the table is full.
type topN[K cmp.Ordered] struct {
	capacity int
	idx      map[K]int // key -> position in heap
	heap     []topEntry[K]
	evicted  uint64 // keys dropped to make room: counts are approximate when > 0
}

type topEntry[K cmp.Ordered] struct {
	key   K
	label string // e.g. the AS organisation
	bytes uint64
	flows uint64
	err   uint64 // bytes possibly belonging to evicted keys
}

func newTopN[K cmp.Ordered](capacity int) *topN[K] {
	return &topN[K]{capacity: capacity, idx: make(map[K]int, capacity), heap: make([]topEntry[K], 0, capacity)}
}

// add counts one flow of bytes for k; label is kept from the first call
// that gives one.
func (t *topN[K]) add(k K, label string, bytes uint64) {
	if i, ok := t.idx[k]; ok {
		e := &t.heap[i]
		e.bytes += bytes
		e.flows++
		if e.label == "" {
			e.label = label
		}
		t.down(i)
		return
	}
	if len(t.heap) < t.capacity {
		t.heap = append(t.heap, topEntry[K]{key: k, label: label, bytes: bytes, flows: 1})
		i := len(t.heap) - 1
		t.idx[k] = i
		t.up(i)
		return
	}
	// Replace the minimum: the newcomer may have been seen before, as
	// often as the key it replaces.
	m := &t.heap[0]
	delete(t.idx, m.key)
	t.evicted++
	*m = topEntry[K]{key: k, label: label, bytes: m.bytes + bytes, flows: m.flows + 1, err: m.bytes}
	t.idx[k] = 0
	t.down(0)
}

// top returns the n largest entries by bytes, ties by key.
func (t *topN[K]) top(n int) []topEntry[K] {
	out := slices.Clone(t.heap)
	slices.SortFunc(out, func(a, b topEntry[K]) int {
		if c := cmp.Compare(b.bytes, a.bytes); c != 0 {
			return c
		}
		return cmp.Compare(a.key, b.key)
	})
	return out[:min(n, len(out))]
}

func (t *topN[K]) less(i, j int) bool {
	a, b := &t.heap[i], &t.heap[j]
	return a.bytes < b.bytes || (a.bytes == b.bytes && a.key > b.key)
}

func (t *topN[K]) swap(i, j int) {
	t.heap[i], t.heap[j] = t.heap[j], t.heap[i]
	t.idx[t.heap[i].key] = i
	t.idx[t.heap[j].key] = j
}

func (t *topN[K]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !t.less(i, p) {
			return
		}
		t.swap(i, p)
		i = p
	}
}

func (t *topN[K]) down(i int) {
	n := len(t.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && t.less(r, l) {
			m = r
		}
		if !t.less(m, i) {
			return
		}
		t.swap(i, m)
		i = m
	}
}
