// Package intern shares the strings the metadata parsers make from packet
// bytes that repeat across flows: server names, DNS names, answer
// addresses. A network talks to a few thousand names over and over, so most
// flows would otherwise allocate copies of strings the sensor already
// holds, and the garbage collector would trace them all.
package intern

import "hash/maphash"

// DefaultSize is the number of strings a zero Table holds.
const DefaultSize = 4096

// Table is a direct-mapped cache of strings: each string has one slot,
// chosen by a hash of its bytes, and a newer string evicts an older one
// from its slot. A hit costs a hash and a comparison and allocates nothing.
// The zero value holds DefaultSize strings. Not safe for concurrent use.
type Table struct {
	seed  maphash.Seed
	slots []string
}

// NewTable returns a Table holding up to size strings (rounded up to a
// power of two).
func NewTable(size int) *Table {
	t := &Table{}
	t.init(size)
	return t
}

func (t *Table) init(size int) {
	n := 1
	for n < size {
		n <<= 1
	}
	t.seed = maphash.MakeSeed()
	t.slots = make([]string, n)
}

// Bytes returns string(b), the same string as an earlier call with equal
// bytes when that one is still cached. A nil Table shares nothing.
func (t *Table) Bytes(b []byte) string {
	if t == nil || len(b) == 0 {
		return string(b)
	}
	if t.slots == nil {
		t.init(DefaultSize)
	}
	i := maphash.Bytes(t.seed, b) & uint64(len(t.slots)-1)
	if s := t.slots[i]; s == string(b) { // compared without a conversion
		return s
	}
	s := string(b)
	t.slots[i] = s
	return s
}
