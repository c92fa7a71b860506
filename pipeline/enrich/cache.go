package enrich

import (
	"encoding/binary"
	"sync"

	"github.com/edgeward/edgeward/flow"
)

// DefaultCacheSize is the number of addresses the cache keeps when
// Config.CacheSize is 0.
const DefaultCacheSize = 65536

// entry is everything enrich knows about one address under one generation
// of databases and intel lists.
type entry struct {
	gen  uint64
	side Side
	holders
}

// cache maps addresses to entries. It is set-associative: an address can
// only live in the ways of the one set its hash picks, and the least
// recently used way of a full set is replaced. Unlike a map plus a
// recency list (internal/lru), a hit touches only that set, two or three
// cache lines, which is most of what a lookup costs once the cache is
// larger than the CPU's. The sets are split among shards, each under its
// own lock, so pipeline workers on different cores rarely wait for each
// other. Entries of an older generation count as misses, which is how a
// reload invalidates the cache without touching it.
type cache struct {
	shards [nShards]shard
	mask   uint64 // sets per shard - 1
}

const (
	nShards = 16 // a power of two
	ways    = 4
)

type shard struct {
	mu      sync.Mutex
	clock   uint64 // use stamps; guarded by mu, like the counters
	lookups uint64
	hits    uint64
	sets    []set
	_       [128 - 8 - 3*8 - 24]byte // one shard per pair of cache lines
}

type set struct {
	keys  [ways]flow.Addr
	stamp [ways]uint64 // when the way was last used; 0 = empty
	ents  [ways]entry
}

func newCache(size int) *cache {
	perShard := max((size+nShards-1)/nShards, ways)
	n := 1
	for n*ways < perShard {
		n *= 2
	}
	c := &cache{mask: uint64(n - 1)}
	for i := range c.shards {
		c.shards[i].sets = make([]set, n)
	}
	return c
}

// locate hashes k (splitmix64's finaliser over its two halves) to its
// shard and set.
func (c *cache) locate(k *flow.Addr) (*shard, *set) {
	h := binary.LittleEndian.Uint64(k[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(k[8:])
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	sh := &c.shards[h>>(64-4)]
	return sh, &sh.sets[h&c.mask]
}

// get copies the side of k's entry into side and returns its intel lists
// if the entry is of generation gen.
func (c *cache) get(k *flow.Addr, gen uint64, side *Side) (holders, bool) {
	sh, s := c.locate(k)
	sh.mu.Lock()
	sh.lookups++
	for w := range ways {
		if s.keys[w] == *k && s.stamp[w] != 0 {
			if s.ents[w].gen != gen {
				break
			}
			sh.clock++
			s.stamp[w] = sh.clock
			sh.hits++
			*side = s.ents[w].side
			h := s.ents[w].holders
			sh.mu.Unlock()
			return h, true
		}
	}
	sh.mu.Unlock()
	return holders{}, false
}

// put stores e for k in k's own way if it has one (a stale generation),
// else in an empty or the least recently used way of its set.
func (c *cache) put(k *flow.Addr, e *entry) {
	sh, s := c.locate(k)
	sh.mu.Lock()
	v := -1
	for w := range ways {
		if s.keys[w] == *k && s.stamp[w] != 0 {
			v = w
			break
		}
	}
	if v < 0 {
		v = 0
		for w := 1; w < ways; w++ {
			if s.stamp[w] < s.stamp[v] {
				v = w
			}
		}
	}
	sh.clock++
	s.keys[v], s.stamp[v], s.ents[v] = *k, sh.clock, *e
	sh.mu.Unlock()
}

// counts sums the shards' counters, for the metrics.
func (c *cache) counts() (lookups, hits uint64) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		lookups += s.lookups
		hits += s.hits
		s.mu.Unlock()
	}
	return lookups, hits
}
