// Package enrich adds to each flow what the pipeline knows about its
// addresses and names beyond the flow itself: country, AS number and
// organisation, and anonymizer flags from MaxMind-format databases, and
// matches against intel lists. Databases and lists reload when they change
// on disk; a cache in front of the databases keeps the per-flow cost to a
// few lock-protected map lookups.
package enrich

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/prometheus/client_golang/prometheus"
)

// Anon holds the flags of an anonymizer (GeoIP2-Anonymous-IP) database.
type Anon struct{ VPN, Hosting, Tor, PublicProxy, ResidentialProxy bool }

// Side is what the databases say about one address. Addresses that cannot
// be in them (private, loopback, link-local, ULA, CGNAT, multicast) are
// not looked up and have a zero Side.
type Side struct {
	Country   string // ISO 3166 alpha-2; "" = unknown
	ASN       uint32 // 0 = unknown
	ASOrg     string
	Anon      Anon
	AnonKnown bool // an anonymizer database is loaded: Anon is meaningful, true or false
}

// Intel names, per kind, the intel list the flow matched; "" = none.
type Intel struct{ IP, Domain, ASN, JA4 string }

// Result is the enrichment of one flow.
type Result struct {
	Src, Dst, Egress Side // Egress only when the record has one
	Intel            Intel
}

// Config says which databases and lists to load.
type Config struct {
	GeoIP     string   // GeoIP2/GeoLite2 Country or City, or a flat country_code database (ip-location-db); "" = none
	ASN       string   // GeoLite2-ASN (or GeoIP2-ISP, ip-location-db ASN) database; "" = none
	Anon      string   // GeoIP2-Anonymous-IP database; "" = none
	Intel     []string // intel list files, or directories of them
	CacheSize int      // addresses the cache keeps; 0 = DefaultCacheSize
	// Debounce is how long a changed file must be quiet before it is
	// reloaded, so a copy in progress or an editor's burst loads once.
	// 0 = DefaultDebounce.
	Debounce time.Duration
	Logger   *slog.Logger          // nil discards
	Registry prometheus.Registerer // nil: metrics are kept but not registered
}

// DefaultDebounce is the reload delay when Config.Debounce is 0.
const DefaultDebounce = 250 * time.Millisecond

// Enricher enriches flows. Enrich is safe for concurrent use and never
// waits for a reload: databases and lists are swapped in as one immutable
// state.
type Enricher struct {
	cfg   Config
	log   *slog.Logger
	state atomic.Pointer[state]
	cache *cache
	m     *metrics
	mu    sync.Mutex // serialises reloads
	gen   uint64     // last generation handed out; under mu
}

// state is one generation of databases and intel lists.
type state struct {
	gen   uint64
	db    [len(roles)]*database // by role index; nil = not loaded
	intel *intelSet
}

// New loads the configured databases and lists. A path that does not exist
// is logged once and its fields stay absent until it appears; a file that
// exists but cannot be used is an error naming it.
func New(cfg Config) (*Enricher, error) {
	if cfg.CacheSize < 0 {
		return nil, fmt.Errorf("enrich: cache size %d is negative", cfg.CacheSize)
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Enricher{cfg: cfg, log: log.With("component", "enrich"), cache: newCache(cfg.CacheSize)}
	e.m = newMetrics(e.cache)
	st := &state{intel: &intelSet{}}
	var errs []error
	for i, role := range roles {
		path := e.path(i)
		if path == "" {
			continue
		}
		d, err := openDatabase(role, path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			e.log.Warn("database not found; its fields stay absent until it appears", "database", role, "path", path)
		case err != nil:
			errs = append(errs, fmt.Errorf("enrich: %w", err))
		default:
			st.db[i] = d
			e.loaded(d)
		}
	}
	if len(cfg.Intel) > 0 {
		set, missing, problems, err := loadIntel(cfg.Intel)
		if err != nil {
			errs = append(errs, fmt.Errorf("enrich: %w", err))
		} else {
			for _, p := range missing {
				e.log.Warn("intel list not found; it is loaded when it appears", "path", p)
			}
			e.intelLoaded(set, problems)
			st.intel = set
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	e.gen++
	st.gen = e.gen
	e.state.Store(st)
	if cfg.Registry != nil {
		if err := e.m.register(cfg.Registry); err != nil {
			return nil, fmt.Errorf("enrich: registering metrics: %w", err)
		}
	}
	return e, nil
}

func (e *Enricher) path(role int) string {
	return [...]string{e.cfg.GeoIP, e.cfg.ASN, e.cfg.Anon}[role]
}

// Close releases the databases. Flows enriched afterwards get empty
// results.
func (e *Enricher) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gen++
	e.state.Store(&state{gen: e.gen, intel: &intelSet{}})
	return nil
}

// Enrich fills r for rec, overwriting it. On a cache hit it does not
// allocate.
func (e *Enricher) Enrich(rec *flow.Record, r *Result) {
	st := e.state.Load()
	dst := e.address(st, rec.Dst.IP, &r.Dst)
	src := e.address(st, rec.Src.IP, &r.Src)
	var egr holders
	if rec.Egress != nil {
		egr = e.address(st, rec.Egress.IP, &r.Egress)
	} else {
		r.Egress = Side{}
	}
	r.Intel = Intel{IP: first(dst.ip, src.ip, egr.ip), ASN: first(dst.asn, src.asn, egr.asn)}
	in := st.intel
	if len(in.byKind[kindDomain]) > 0 {
		r.Intel.Domain = matchNames(in, rec)
	}
	if rec.TLS != nil && len(in.byKind[kindJA4]) > 0 {
		r.Intel.JA4 = in.matchJA4(rec.TLS.JA4)
	}
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// matchNames matches the names a flow carries, most specific first:
// the destination's name (from SNI, Host or an earlier DNS answer), the
// TLS SNI, the HTTP Host and the DNS query.
func matchNames(in *intelSet, rec *flow.Record) string {
	if l := in.matchDomain(rec.Dst.Name); l != "" {
		return l
	}
	if t := rec.TLS; t != nil && t.SNI != rec.Dst.Name {
		if l := in.matchDomain(t.SNI); l != "" {
			return l
		}
	}
	if h := rec.HTTP; h != nil {
		if l := in.matchDomain(hostOnly(h.Host)); l != "" {
			return l
		}
	}
	if d := rec.DNS; d != nil {
		return in.matchDomain(d.Query)
	}
	return ""
}

// hostOnly strips the port from an HTTP Host or CONNECT target.
func hostOnly(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		return h[:i]
	}
	return h
}

// holders names the intel lists of kinds ip and asn holding an address.
type holders struct{ ip, asn string }

// address fills s for a and returns the intel lists holding it, from the cache
// or, on a miss, the databases.
func (e *Enricher) address(st *state, a netip.Addr, s *Side) holders {
	if !a.IsValid() {
		*s = Side{}
		return holders{}
	}
	a = a.Unmap()
	k := flow.AddrFrom(a)
	if l, ok := e.cache.get(&k, st.gen, s); ok {
		return l
	}
	var en entry
	e.lookup(st, a, &en)
	e.cache.put(&k, &en)
	*s = en.side
	return en.holders
}

// lookup computes the entry for a cache miss.
func (e *Enricher) lookup(st *state, a netip.Addr, en *entry) {
	*en = entry{gen: st.gen}
	if !skipDatabases(a) {
		var rec mmdbRecord
		for i, d := range st.db {
			if d == nil {
				continue
			}
			rec = mmdbRecord{}
			out, err := d.lookup(a, &rec)
			e.m.dbLookups[i][out].Inc()
			switch {
			case err != nil:
				e.lookupFailed(d, a, err)
			case out == found:
				d.fill(&rec, &en.side)
			}
			if d.role == roleAnon && err == nil {
				// Found or not listed, the flags are known; after a
				// failed lookup they stay absent, not false.
				en.side.AnonKnown = true
			}
		}
	}
	en.holders = holders{ip: st.intel.matchIP(a), asn: st.intel.matchASN(en.side.ASN)}
}

// lookupFailed logs the first failure of a database, which most likely
// means a damaged file, and leaves the rest to the metrics.
func (e *Enricher) lookupFailed(d *database, a netip.Addr, err error) {
	d.errOnce.Do(func() {
		e.log.Warn("database lookup failed; further failures are only counted", "database", d.role, "path", d.path, "ip", a, "err", err)
	})
}

// cgnat is RFC 6598 shared address space: carrier NAT, never in the
// databases.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

func skipDatabases(a netip.Addr) bool {
	return a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() ||
		a.IsUnspecified() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() ||
		cgnat.Contains(a) || a == netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// loaded reports a newly opened database.
func (e *Enricher) loaded(d *database) {
	md := d.r.Metadata
	e.m.epoch.WithLabelValues(d.role).Set(float64(md.BuildEpoch))
	e.log.Info("database loaded", "database", d.role, "path", d.path, "type", md.DatabaseType,
		"built", md.BuildTime().UTC().Format(time.RFC3339), "ip_version", md.IPVersion)
}

// maxProblems caps how many bad intel entries one load logs one by one.
const maxProblems = 20

func (e *Enricher) intelLoaded(set *intelSet, problems []string) {
	for i, p := range problems {
		if i == maxProblems {
			e.log.Warn("more intel list entries skipped", "count", len(problems)-maxProblems)
			break
		}
		e.log.Warn("intel list entry skipped", "problem", p)
	}
	for k, n := range set.entries {
		e.m.intelEntries.WithLabelValues(kindNames[k]).Set(float64(n))
	}
	e.m.intelSkipped.Set(float64(set.skipped))
	e.log.Info("intel lists loaded", "files", len(set.files), "ip", set.entries[kindIP], "domain", set.entries[kindDomain],
		"asn", set.entries[kindASN], "ja4", set.entries[kindJA4], "skipped", set.skipped)
}
