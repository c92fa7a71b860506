// Package lru is a fixed-capacity least-recently-used map for the sensor's
// bounded tables (DNS names, DHCP leases). Entries live in one slice
// allocated up front and link by index, so lookups and updates of existing
// keys allocate nothing, and the garbage collector sees one array.
// An LRU is not safe for concurrent use.
package lru

import "math"

// LRU maps keys to values, evicting the least recently used entry when a
// new key arrives and it is full.
type LRU[K comparable, V any] struct {
	idx       map[K]int32
	ents      []entry[K, V]
	head      int32 // most recent
	tail      int32
	free      int32 // singly linked through next
	evictions uint64
}

type entry[K comparable, V any] struct {
	key        K
	val        V
	prev, next int32
}

const none = -1

// New returns an empty LRU holding up to capacity entries (at least 1).
func New[K comparable, V any](capacity int) *LRU[K, V] {
	capacity = min(max(capacity, 1), math.MaxInt32)
	l := &LRU[K, V]{
		idx:  make(map[K]int32, capacity),
		ents: make([]entry[K, V], capacity),
		head: none,
		tail: none,
	}
	for i := range l.ents {
		l.ents[i].next = int32(i + 1)
	}
	l.ents[capacity-1].next = none
	return l
}

// Len is the number of entries.
func (l *LRU[K, V]) Len() int { return len(l.idx) }

// Evictions counts entries dropped to make room.
func (l *LRU[K, V]) Evictions() uint64 { return l.evictions }

// Get returns the value for k, valid until the next Put or Delete, and
// marks it most recently used.
func (l *LRU[K, V]) Get(k K) (*V, bool) {
	i, ok := l.idx[k]
	if !ok {
		return nil, false
	}
	l.unlink(i)
	l.pushFront(i)
	return &l.ents[i].val, true
}

// Peek is Get without touching the entry's recency.
func (l *LRU[K, V]) Peek(k K) (*V, bool) {
	i, ok := l.idx[k]
	if !ok {
		return nil, false
	}
	return &l.ents[i].val, true
}

// GetIf is Get that marks the entry most recently used only when use says
// so: a lookup that finds it stale (expired, but kept for lookups of
// earlier times) leaves it to be evicted first. It reports whether the
// entry is there and use said yes.
func (l *LRU[K, V]) GetIf(k K, use func(*V) bool) bool {
	i, ok := l.idx[k]
	if !ok || !use(&l.ents[i].val) {
		return false
	}
	l.unlink(i)
	l.pushFront(i)
	return true
}

// Put stores v under k as the most recently used entry. When that evicts
// another entry, it returns the evicted key.
func (l *LRU[K, V]) Put(k K, v V) (evicted K, didEvict bool) {
	i, ok := l.idx[k]
	if ok {
		l.unlink(i)
	} else {
		if l.free == none {
			l.evictions++
			evicted, didEvict = l.ents[l.tail].key, true
			l.Delete(evicted)
		}
		i = l.free
		l.free = l.ents[i].next
		l.idx[k] = i
		l.ents[i].key = k
	}
	l.ents[i].val = v
	l.pushFront(i)
	return evicted, didEvict
}

// Delete removes k.
func (l *LRU[K, V]) Delete(k K) {
	i, ok := l.idx[k]
	if !ok {
		return
	}
	l.unlink(i)
	delete(l.idx, k)
	l.ents[i] = entry[K, V]{next: l.free}
	l.free = i
}

func (l *LRU[K, V]) unlink(i int32) {
	e := &l.ents[i]
	if e.prev != none {
		l.ents[e.prev].next = e.next
	} else {
		l.head = e.next
	}
	if e.next != none {
		l.ents[e.next].prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = none, none
}

func (l *LRU[K, V]) pushFront(i int32) {
	e := &l.ents[i]
	e.prev, e.next = none, l.head
	if l.head != none {
		l.ents[l.head].prev = i
	}
	l.head = i
	if l.tail == none {
		l.tail = i
	}
}
