package flowtable

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"

	"github.com/edgeward/edgeward/flow"
)

// index maps canonical keys to entries: open addressing with linear
// probing over one flat array of 8-byte slots, each holding a 32-bit hash
// tag and the entry's number; the key itself is compared in the entry.
//
// It replaces a Go map, whose groups of 48-byte key and value slots cost
// each packet two cache misses (control word, slot) before the entry's
// own. Here a lookup reads one slot in an array a sixth of the size, and
// the key sits in the entry's first cache line, which the packet updates
// anyway. The hash is keyed with a random seed per table, so that crafted
// addresses cannot aim long probe sequences at it.
type index struct {
	slots []uint64 // 0: empty, else tag<<32 | entry+1
	mask  uint32
	n     int
	seed  [6]uint64
}

const minIndexSlots = 1 << 12

func newIndex() index {
	x := index{slots: make([]uint64, minIndexSlots), mask: minIndexSlots - 1}
	var b [48]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	for i := range x.seed {
		x.seed[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return x
}

// hash returns the tag of k's flow, the key as Canonical orders it
// (swapped says whether that is against k's order); its low bits pick the
// home slot.
func (x *index) hash(k *flow.Key, swapped bool) uint32 {
	a, b, pa, pb := &k.Src, &k.Dst, k.SrcPort, k.DstPort
	if swapped {
		a, b, pa, pb = b, a, pb, pa
	}
	le := binary.LittleEndian
	rest := uint64(pa) | uint64(pb)<<16 | uint64(k.Proto)<<32 | uint64(k.NVLAN)<<40
	vlan := uint64(k.VLAN[0]) | uint64(k.VLAN[1])<<16
	h := mix(le.Uint64(a[:8])^x.seed[0], le.Uint64(a[8:])^x.seed[1]) ^
		mix(le.Uint64(b[:8])^x.seed[2], le.Uint64(b[8:])^x.seed[3]) ^
		mix(rest^x.seed[4], vlan^x.seed[5])
	h = mix(h, 0x9e3779b97f4a7c15)
	return uint32(h) ^ uint32(h>>32)
}

// canonical reports whether k's endpoints are against Canonical's order
// (lower address, then lower port, first), without building the key.
func canonical(k *flow.Key) (swapped bool) {
	be := binary.BigEndian
	x, y := be.Uint64(k.Src[:8]), be.Uint64(k.Dst[:8])
	if x == y {
		x, y = be.Uint64(k.Src[8:]), be.Uint64(k.Dst[8:])
	}
	return x > y || x == y && k.SrcPort > k.DstPort
}

// sameKey reports whether c, a canonical key, is k's flow, k seen in the
// orientation swapped says; in word compares rather than a call to
// memequal.
func sameKey(c, k *flow.Key, swapped bool) bool {
	a, b, pa, pb := &k.Src, &k.Dst, k.SrcPort, k.DstPort
	if swapped {
		a, b, pa, pb = b, a, pb, pa
	}
	le := binary.LittleEndian
	return le.Uint64(c.Src[:8])^le.Uint64(a[:8])|le.Uint64(c.Src[8:])^le.Uint64(a[8:])|
		le.Uint64(c.Dst[:8])^le.Uint64(b[:8])|le.Uint64(c.Dst[8:])^le.Uint64(b[8:]) == 0 &&
		c.SrcPort == pa && c.DstPort == pb && c.Proto == k.Proto && c.NVLAN == k.NVLAN && c.VLAN == k.VLAN
}

// mix folds the 128-bit product of a and b, as wyhash does.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// find returns the entry holding k's flow (see hash), whose tag is h.
func (x *index) find(t *Table, k *flow.Key, swapped bool, h uint32) (int32, bool) {
	for i := h & x.mask; ; i = (i + 1) & x.mask {
		s := x.slots[i]
		if s == 0 {
			return none, false
		}
		if uint32(s>>32) == h {
			if ei := int32(uint32(s)) - 1; sameKey(&t.at(ei).key, k, swapped) {
				return ei, true
			}
		}
	}
}

// insert adds entry ei, whose key (absent from the index) has tag h.
func (x *index) insert(h uint32, ei int32) {
	if 4*(x.n+1) > 3*len(x.slots) {
		x.grow()
	}
	i := h & x.mask
	for x.slots[i] != 0 {
		i = (i + 1) & x.mask
	}
	x.slots[i] = uint64(h)<<32 | uint64(uint32(ei+1))
	x.n++
}

// remove drops entry ei, whose key has tag h, shifting back the slots
// after it that would otherwise no longer be found.
func (x *index) remove(h uint32, ei int32) {
	want := uint64(h)<<32 | uint64(uint32(ei+1))
	i := h & x.mask
	for x.slots[i] != want {
		i = (i + 1) & x.mask
	}
	for j := i; ; {
		j = (j + 1) & x.mask
		s := x.slots[j]
		if s == 0 {
			break
		}
		if home := uint32(s>>32) & x.mask; (j-home)&x.mask >= (j-i)&x.mask {
			x.slots[i] = s
			i = j
		}
	}
	x.slots[i] = 0
	x.n--
}

// grow doubles the slots; the tags say where each goes, so no entry is read.
func (x *index) grow() {
	old := x.slots
	x.slots = make([]uint64, 2*len(old))
	x.mask = uint32(len(x.slots) - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		i := uint32(s>>32) & x.mask
		for x.slots[i] != 0 {
			i = (i + 1) & x.mask
		}
		x.slots[i] = s
	}
}
