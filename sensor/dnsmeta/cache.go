package dnsmeta

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"time"

	"github.com/edgeward/edgeward/internal/lru"
)

// Config sizes a Cache. Zero fields take the defaults below.
type Config struct {
	// Capacity bounds the number of (client, server) entries; the least
	// recently used entry is evicted to make room. Default 65536.
	Capacity int
	// MinTTL and MaxTTL clamp answer TTLs. A floor keeps zero-TTL answers
	// (common with load balancers) long enough to label the connection
	// that follows them; a ceiling bounds how stale a label can get.
	// Defaults 30s and 24h.
	MinTTL, MaxTTL time.Duration
	// SharedResolvers lists the resolvers whose answers feed LookupServer.
	// Empty means every resolver; see the package doc for why to set it.
	SharedResolvers []netip.Prefix
}

// CacheStats are cumulative counters and the current size.
type CacheStats struct {
	Len       int
	Inserts   uint64 // new entries
	Updates   uint64 // existing entries refreshed by a newer answer
	Evictions uint64 // entries dropped for capacity
}

// addrKey is an address packed without the netip zone pointer, so map keys
// hold no pointers for the GC to scan. IPv4 is kept in its mapped form.
type addrKey [16]byte

func keyOf(a netip.Addr) addrKey { return a.Unmap().As16() }

type pairKey struct{ client, server addrKey }

// cached is what the cache knows for one (client, server) pair: the latest
// answer, and the one it replaced. Records are named when they close, so a
// lookup for a flow that began before the latest answer arrived must see
// the answer the client had then, not one it received later.
type cached struct {
	answer
	prev   answer
	shared bool // indexed in byServer
}

// answer is one answer's name and validity, in unix nanoseconds.
type answer struct {
	name           string
	added, expires int64
}

// answerSkew is how much later than a flow's start its answer may have
// been captured and still name it: capture on several queues or
// interfaces reorders packets by milliseconds, and a client may use an
// answer a moment before the sensor sees it.
const answerSkew = int64(2 * time.Second)

// at returns the answer valid at now: received by then (give or take
// answerSkew) and not expired.
func (c *cached) at(now int64) (string, bool) {
	for _, a := range [...]*answer{&c.answer, &c.prev} {
		if a.added <= now+answerSkew && now < a.expires {
			return a.name, true
		}
	}
	return "", false
}

// Cache maps (client, server address) to the name the client resolved to
// reach that server. It is bounded by Config.Capacity and takes time as an
// argument so capture replay is deterministic. Lookups do not allocate.
// A Cache is safe for concurrent use.
type Cache struct {
	mu       sync.Mutex
	minTTL   int64
	maxTTL   int64
	capacity int
	shared   []netip.Prefix
	pairs    *lru.LRU[pairKey, cached] // made by the first answer
	byServer map[addrKey]pairKey       // the latest shared answer per server
	// answered has a bit set for the hash of every server address an
	// answer ever named; bits are never cleared. Most flows go to
	// addresses no answer named, and a clear bit rules them out without a
	// probe of the (large, cold) pairs map.
	answered [1 << 16 / 64]uint64
	stats    CacheStats
	resolved []Resolved // Add scratch
}

// answeredBit returns the word and bit of a server address in answered.
func answeredBit(server addrKey) (int, uint64) {
	h := (binary.LittleEndian.Uint64(server[:8]) ^ binary.LittleEndian.Uint64(server[8:])) * 0x9e3779b97f4a7c15
	h >>= 64 - 16
	return int(h / 64), 1 << (h % 64)
}

// NewCache returns an empty Cache.
func NewCache(cfg Config) *Cache {
	if cfg.Capacity <= 0 {
		cfg.Capacity = 65536
	}
	if cfg.MinTTL <= 0 {
		cfg.MinTTL = 30 * time.Second
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = 24 * time.Hour
	}
	cfg.MaxTTL = max(cfg.MaxTTL, cfg.MinTTL)
	return &Cache{
		minTTL:   int64(cfg.MinTTL),
		maxTTL:   int64(cfg.MaxTTL),
		capacity: cfg.Capacity,
		shared:   append([]netip.Prefix(nil), cfg.SharedResolvers...),
		byServer: make(map[addrKey]pairKey),
	}
}

// Add records the addresses a response resolves its query name to, for the
// client it was sent to, and returns how many it recorded. resolver is the
// response's source address. Only NOERROR responses to standard queries
// count; anything else is ignored.
func (c *Cache) Add(client, resolver netip.Addr, m *Message, now time.Time) int {
	if !m.Response || m.Opcode != 0 || m.RCode != 0 || m.QName == "" {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resolved = m.Resolve(c.resolved[:0])
	if len(c.resolved) == 0 {
		return 0
	}
	if c.pairs == nil {
		c.pairs = lru.New[pairKey, cached](c.capacity)
	}
	shared := c.isShared(resolver)
	ck := keyOf(client)
	t := now.UnixNano()
	for _, r := range c.resolved {
		ttl := min(max(int64(r.TTL)*int64(time.Second), c.minTTL), c.maxTTL)
		c.put(pairKey{ck, keyOf(r.Addr)}, answer{m.QName, t, t + ttl}, shared)
	}
	return len(c.resolved)
}

func (c *Cache) isShared(resolver netip.Addr) bool {
	if len(c.shared) == 0 {
		return true
	}
	resolver = resolver.Unmap()
	for _, p := range c.shared {
		if p.Contains(resolver) {
			return true
		}
	}
	return false
}

func (c *Cache) put(k pairKey, a answer, shared bool) {
	w, bit := answeredBit(k.server)
	c.answered[w] |= bit
	wasShared := false
	v := cached{answer: a, shared: shared}
	if old, ok := c.pairs.Get(k); ok { // refreshed in place: one lookup
		c.stats.Updates++
		wasShared = old.shared
		if old.name == a.name {
			// The same name again (a re-resolution, often every TTL):
			// one answer since the first, so that a long flow keeps it.
			v.answer.added, v.prev = old.added, old.prev
		} else {
			v.prev = old.answer
		}
		*old = v
	} else {
		c.stats.Inserts++
		if ev, ok := c.pairs.Put(k, v); ok {
			c.stats.Evictions++
			c.unindex(ev)
		}
	}
	if shared {
		c.byServer[k.server] = k
	} else if wasShared {
		c.unindex(k)
	}
}

// Lookup returns the name client resolved to reach server, if an answer
// received by now and unexpired at now says so.
func (c *Cache) Lookup(client, server netip.Addr, now time.Time) (string, bool) {
	sk := keyOf(server)
	w, bit := answeredBit(sk)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.answered[w]&bit == 0 {
		return "", false
	}
	return c.hit(pairKey{keyOf(client), sk}, now.UnixNano())
}

// LookupServer is the weaker fallback described in the package doc: the
// name some client most recently resolved to server through a shared
// resolver. Prefer Lookup; use this only when it misses.
func (c *Cache) LookupServer(server netip.Addr, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.byServer[keyOf(server)]
	if !ok {
		return "", false
	}
	return c.hit(k, now.UnixNano())
}

// hit is called only for a server an answer named (answered, byServer),
// so pairs is made. An answer expired at now is kept: records are named
// when they close, with their start time, so a longer flow that started
// while the answer was valid may still be looked up after this one. The
// capacity bounds what expired answers hold, and they are the first to
// be evicted, since only a hit marks an entry as used.
func (c *Cache) hit(k pairKey, now int64) (name string, ok bool) {
	ok = c.pairs.GetIf(k, func(e *cached) bool {
		name, ok = e.at(now)
		return ok
	})
	return name, ok
}

// Stats returns the counters and current size.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	if c.pairs != nil {
		s.Len = c.pairs.Len()
	}
	return s
}

// unindex drops k from byServer if it is the pair indexed there.
func (c *Cache) unindex(k pairKey) {
	if j, ok := c.byServer[k.server]; ok && j == k {
		delete(c.byServer, k.server)
	}
}
