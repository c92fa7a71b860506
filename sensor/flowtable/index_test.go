package flowtable

import (
	"math/rand/v2"
	"testing"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/decode"
)

// TestIndex drives the index with random inserts and removes against a Go
// map, with tags drawn from a small range so that probe sequences collide,
// wrap around the array and shift back on removal, across several grows.
func TestIndex(t *testing.T) {
	for _, tc := range []struct{ tags, live, steps int }{{1, 200, 2000}, {64, 3000, 12000}, {1<<32 - 1, 9000, 40000}} {
		tags := uint32(tc.tags)
		r := rand.New(rand.NewPCG(1, uint64(tags)))
		tb := New(Config{}, func(*flow.Record) {})
		x := &tb.index
		ref := map[int32]uint32{} // entry -> tag
		keyOf := func(ei int32) flow.Key {
			return flow.Key{Src: flow.AddrFrom4([]byte{10, 0, byte(ei >> 8), byte(ei)}), SrcPort: uint16(ei), Proto: 6}
		}
		var live []int32
		for step := range tc.steps {
			if len(live) > 0 && (r.IntN(3) == 0 || len(live) > tc.live) {
				i := r.IntN(len(live))
				ei := live[i]
				live[i] = live[len(live)-1]
				live = live[:len(live)-1]
				x.remove(ref[ei], ei)
				delete(ref, ei)
				tb.free = append(tb.free, ei)
			} else {
				ei := tb.alloc()
				tb.at(ei).key = keyOf(ei)
				tag := r.Uint32N(tags)
				if tags == 1<<32-1 {
					tag = x.hash(&tb.at(ei).key, false)
				}
				x.insert(tag, ei)
				ref[ei] = tag
				live = append(live, ei)
			}
			if step%(tc.steps/20) != 0 {
				continue
			}
			if x.n != len(ref) {
				t.Fatalf("tags %d step %d: index holds %d, want %d", tags, step, x.n, len(ref))
			}
			for ei, tag := range ref {
				k := keyOf(ei)
				if got, ok := x.find(tb, &k, false, tag); !ok || got != ei {
					t.Fatalf("tags %d step %d: find(%d) = %d %v", tags, step, ei, got, ok)
				}
			}
			k := keyOf(0)
			k.Proto = 17 // never inserted
			if _, ok := x.find(tb, &k, false, r.Uint32N(tags)); ok {
				t.Fatalf("tags %d step %d: found an absent key", tags, step)
			}
		}
	}
}

// TestIndexSeeds: two tables hash the same key differently.
func TestIndexSeeds(t *testing.T) {
	a, b := newIndex(), newIndex()
	k := flow.Key{Src: cli, Dst: srv, SrcPort: 1, DstPort: 2, Proto: 6}
	if a.hash(&k, false) == b.hash(&k, false) && a.hash(&flow.Key{}, false) == b.hash(&flow.Key{}, false) {
		t.Error("two tables share their hash seed")
	}
}

// TestCanonicalOrientation: hash, canonical and sameKey agree with
// flow.Key.Canonical for both directions of a flow.
func TestCanonicalOrientation(t *testing.T) {
	x := newIndex()
	v6 := flow.AddrFrom16([]byte{0x20, 1, 0xd, 0xb8, 15: 1})
	for _, k := range []flow.Key{
		{Src: cli, Dst: srv, SrcPort: 50000, DstPort: 443, Proto: 6},
		{Src: srv, Dst: cli, SrcPort: 443, DstPort: 50000, Proto: 6},
		{Src: cli, Dst: cli, SrcPort: 9, DstPort: 7, Proto: 17, NVLAN: 2, VLAN: [2]uint16{100, 30}},
		{Src: cli, Dst: cli, SrcPort: 7, DstPort: 7, Proto: 17},
		{Src: v6, Dst: srv, SrcPort: 1, DstPort: 2, Proto: 6},
	} {
		c, want := k.Canonical()
		if got := canonical(&k); got != want {
			t.Errorf("%v: canonical %v, want %v", k, got, want)
		}
		r := k.Reverse()
		rs := canonical(&r)
		if x.hash(&k, want) != x.hash(&c, false) || x.hash(&r, rs) != x.hash(&c, false) {
			t.Errorf("%v: directions hash differently", k)
		}
		if !sameKey(&c, &k, want) || !sameKey(&c, &r, rs) {
			t.Errorf("%v: sameKey misses", k)
		}
		other := k
		other.DstPort++
		if sameKey(&c, &other, canonical(&other)) {
			t.Errorf("%v: sameKey matches %v", k, other)
		}
	}
}

// BenchmarkUpdate accounts packets of 64k open TCP flows in turn, both
// directions: the lookup and counter update of a packet of a known flow.
func BenchmarkUpdate(b *testing.B) {
	const flows = 1 << 16
	tb := New(Config{}, func(*flow.Record) {})
	pkts := make([]decode.Packet, 2*flows)
	for i := range flows {
		k := flow.Key{Src: flow.AddrFrom4([]byte{10, 1, byte(i >> 8), byte(i)}), Dst: srv, SrcPort: uint16(40000 + i%20000), DstPort: 443, Proto: 6}
		pkts[2*i] = decode.Packet{TS: 1, Key: k, IPBytes: 52, TCPFlags: flow.FlagACK}
		pkts[2*i+1] = decode.Packet{TS: 1, Key: k.Reverse(), IPBytes: 1500, PayloadLen: 1448, TCPFlags: flow.FlagACK}
	}
	for i := range pkts {
		tb.Update(&pkts[i])
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		tb.Update(&pkts[i])
		i = (i + 1) % len(pkts)
	}
}
