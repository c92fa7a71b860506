package dhcpmeta

// lru is a fixed-capacity least-recently-used map. Entries live in one
// slice allocated up front and link by index, so get and put of an existing
// key do not allocate.
type lru[K comparable, V any] struct {
	idx       map[K]int32
	ents      []lruEntry[K, V]
	head      int32 // most recent
	tail      int32
	free      int32 // singly linked through next
	evictions uint64
}

type lruEntry[K comparable, V any] struct {
	key        K
	val        V
	prev, next int32
}

const nilIdx = -1

func newLRU[K comparable, V any](capacity int) *lru[K, V] {
	l := &lru[K, V]{
		idx:  make(map[K]int32, capacity),
		ents: make([]lruEntry[K, V], capacity),
		head: nilIdx,
		tail: nilIdx,
	}
	for i := range l.ents {
		l.ents[i].next = int32(i + 1)
	}
	l.ents[capacity-1].next = nilIdx
	return l
}

func (l *lru[K, V]) len() int { return len(l.idx) }

// get returns the value for k and marks it most recently used.
func (l *lru[K, V]) get(k K) (*V, bool) {
	i, ok := l.idx[k]
	if !ok {
		return nil, false
	}
	l.unlink(i)
	l.pushFront(i)
	return &l.ents[i].val, true
}

// peek returns the value for k without touching its recency.
func (l *lru[K, V]) peek(k K) (*V, bool) {
	i, ok := l.idx[k]
	if !ok {
		return nil, false
	}
	return &l.ents[i].val, true
}

// put stores v under k, evicting the least recently used entry when full.
func (l *lru[K, V]) put(k K, v V) {
	i, ok := l.idx[k]
	if ok {
		l.unlink(i)
	} else {
		if l.free == nilIdx {
			l.evictions++
			l.del(l.ents[l.tail].key)
		}
		i = l.free
		l.free = l.ents[i].next
		l.idx[k] = i
		l.ents[i].key = k
	}
	l.ents[i].val = v
	l.pushFront(i)
}

func (l *lru[K, V]) del(k K) {
	i, ok := l.idx[k]
	if !ok {
		return
	}
	l.unlink(i)
	delete(l.idx, k)
	l.ents[i] = lruEntry[K, V]{next: l.free}
	l.free = i
}

func (l *lru[K, V]) unlink(i int32) {
	e := &l.ents[i]
	if e.prev != nilIdx {
		l.ents[e.prev].next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nilIdx {
		l.ents[e.next].prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nilIdx, nilIdx
}

func (l *lru[K, V]) pushFront(i int32) {
	e := &l.ents[i]
	e.prev, e.next = nilIdx, l.head
	if l.head != nilIdx {
		l.ents[l.head].prev = i
	}
	l.head = i
	if l.tail == nilIdx {
		l.tail = i
	}
}
