package dhcpmeta

import (
	"bytes"
	"github.com/edgeward/edgeward/internal/lru"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Lease is what the Table knows about the client holding an address.
type Lease struct {
	MAC         net.HardwareAddr
	Hostname    string // DHCPv4 option 12 or 81, DHCPv6 option 39
	VendorClass string
	ClientID    []byte // DHCPv4 option 61 or the DHCPv6 client DUID
	Seen        time.Time
}

// TableConfig sizes a Table. Zero fields take the defaults below.
type TableConfig struct {
	// Capacity bounds the address entries, and separately the pending
	// client identities; the least recently used is evicted. Default 16384.
	Capacity int
	// MaxAge bounds how long an entry labels flows after the message that
	// created it. The lease time from the server shortens it; a renewal
	// seen on the wire extends it. Default 24h.
	MaxAge time.Duration
}

// TableStats are cumulative counters and the current size.
type TableStats struct {
	Len       int
	Evictions uint64 // entries dropped for capacity (addresses and clients)
}

type addrKey [16]byte

func keyOf(a netip.Addr) addrKey { return a.Unmap().As16() }

type leaseEntry struct {
	lease   Lease
	expires int64 // unix nanoseconds
	// The client that held the address before another took it, until
	// prevEnd: flows are attributed when they close, with their start
	// time, and one that began before the reassignment is the previous
	// holder's.
	prev    *Lease
	prevEnd int64
}

// clientInfo is what a client said about itself, kept until the server's
// ACK or Reply tells which address it got. Keyed by "4"+MAC or "6"+DUID.
type clientInfo struct {
	mac         net.HardwareAddr
	hostname    string
	vendorClass string
	clientID    []byte
}

// Table maps an IP address to the DHCP client holding it. It is filled
// from server ACKs and Replies (the only messages that prove an
// assignment), enriched with what the same client said in its own
// DISCOVER/REQUEST or Solicit/Request, and from DHCPINFORM, where a client
// reports an address it already uses. Time is an argument so capture replay
// is deterministic. A Table is safe for concurrent use.
type Table struct {
	mu       sync.Mutex
	maxAge   time.Duration
	capacity int
	// leases and clients are made by the first message: a sensor that
	// never sees DHCP spends no memory on them.
	leases  *lru.LRU[addrKey, leaseEntry]
	clients *lru.LRU[string, clientInfo]
}

// NewTable returns an empty Table.
func NewTable(cfg TableConfig) *Table {
	if cfg.Capacity <= 0 {
		cfg.Capacity = 16384
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 24 * time.Hour
	}
	return &Table{maxAge: cfg.MaxAge, capacity: cfg.Capacity}
}

// init makes the LRUs; t.mu is held.
func (t *Table) init() {
	if t.leases == nil {
		t.leases = lru.New[addrKey, leaseEntry](t.capacity)
		t.clients = lru.New[string, clientInfo](t.capacity)
	}
}

// AddV4 records what a DHCPv4 message says. The Table keeps m's slices,
// which ParseV4 allocates afresh for every message.
func (t *Table) AddV4(m *V4, now time.Time) {
	if len(m.ClientMAC) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.init()
	ckey := "4" + string(m.ClientMAC)
	hostname := m.Hostname
	if hostname == "" {
		hostname = m.FQDN
	}
	switch m.Type {
	case Discover, Request, Inform:
		t.remember(ckey, clientInfo{mac: m.ClientMAC, hostname: hostname, vendorClass: m.VendorClass, clientID: m.ClientID})
		if m.Type == Inform && m.ClientAddr.IsValid() {
			t.bind(m.ClientAddr, ckey, clientInfo{mac: m.ClientMAC}, 0, now)
		}
	case Ack:
		addr := m.AssignedAddr
		if !addr.IsValid() {
			addr = m.ClientAddr // ACK to an INFORM leaves yiaddr zero
		}
		if addr.IsValid() {
			// Option 60 in a server message describes the server (some
			// echo their own); the client's vendor class comes from its
			// own messages.
			t.bind(addr, ckey, clientInfo{mac: m.ClientMAC, hostname: hostname, clientID: m.ClientID}, m.LeaseTime, now)
		}
	case Release:
		if m.ClientAddr.IsValid() {
			t.release(m.ClientAddr, now, func(l *Lease) bool { return bytes.Equal(l.MAC, m.ClientMAC) })
		}
	case Decline: // the client found the offered address already in use: it never held it
		if m.RequestedAddr.IsValid() {
			t.unbind(m.RequestedAddr, m.ClientMAC)
		}
	}
}

// AddV6 records what a DHCPv6 message says. The Table keeps m's slices,
// which ParseV6 allocates afresh for every message.
func (t *Table) AddV6(m *V6, now time.Time) {
	if len(m.ClientDUID) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.init()
	ckey := "6" + string(m.ClientDUID)
	info := clientInfo{mac: m.ClientMAC, hostname: m.FQDN, vendorClass: m.VendorClass, clientID: m.ClientDUID}
	switch m.Type {
	case Solicit, Request6, Confirm, Renew, Rebind, InformationRequest:
		t.remember(ckey, info)
	case Reply:
		info.vendorClass = "" // the server's, not the client's
		for _, a := range m.Addrs {
			if a.ValidSeconds == 0 {
				// RFC 8415 18.3.4: a zero valid lifetime withdraws the
				// address from this client.
				t.release(a.Addr, now, func(l *Lease) bool { return bytes.Equal(l.ClientID, m.ClientDUID) })
				continue
			}
			t.bind(a.Addr, ckey, info, a.ValidSeconds, now)
		}
	case Release6:
		for _, a := range m.Addrs {
			t.release(a.Addr, now, func(l *Lease) bool { return bytes.Equal(l.ClientID, m.ClientDUID) })
		}
	}
}

// remember merges what a client said about itself into its pending
// identity; empty fields do not erase earlier ones.
func (t *Table) remember(ckey string, in clientInfo) {
	if old, ok := t.clients.Get(ckey); ok {
		in = merge(in, *old)
	}
	t.clients.Put(ckey, in)
}

// bind records that addr belongs to the client ckey. Fields the server
// message lacks are taken from what the client said earlier.
func (t *Table) bind(addr netip.Addr, ckey string, info clientInfo, leaseSeconds uint32, now time.Time) {
	if c, ok := t.clients.Get(ckey); ok {
		info = merge(info, *c)
	}
	age := t.maxAge
	if leaseSeconds > 0 {
		age = min(age, time.Duration(leaseSeconds)*time.Second)
	}
	e := leaseEntry{
		lease:   Lease{MAC: info.mac, Hostname: info.hostname, VendorClass: info.vendorClass, ClientID: info.clientID, Seen: now},
		expires: now.Add(age).UnixNano(),
	}
	if old, ok := t.leases.Peek(keyOf(addr)); ok {
		if sameClient(&old.lease, &e.lease) {
			e.prev, e.prevEnd = old.prev, old.prevEnd // a renewal
		} else if end := min(old.expires, now.UnixNano()); old.lease.Seen.UnixNano() < end {
			prev := old.lease // old points into the table, which Put overwrites
			e.prev, e.prevEnd = &prev, end
		}
	}
	t.leases.Put(keyOf(addr), e)
}

// sameClient reports whether two leases are one client's: same MAC, or
// without MACs (DHCPv6) the same client id.
func sameClient(a, b *Lease) bool {
	if len(a.MAC) > 0 || len(b.MAC) > 0 {
		return bytes.Equal(a.MAC, b.MAC)
	}
	return bytes.Equal(a.ClientID, b.ClientID)
}

// release ends the lease on addr at now if holder says it is the client's.
// The entry stays: flows are attributed when they close, with their start
// time, and those the client opened before the release are still its own.
func (t *Table) release(addr netip.Addr, now time.Time, holder func(*Lease) bool) {
	if e, ok := t.leases.Peek(keyOf(addr)); ok && holder(&e.lease) {
		e.expires = min(e.expires, now.UnixNano())
	}
}

// unbind forgets that addr was mac's.
func (t *Table) unbind(addr netip.Addr, mac net.HardwareAddr) {
	if e, ok := t.leases.Peek(keyOf(addr)); ok && bytes.Equal(e.lease.MAC, mac) {
		t.leases.Delete(keyOf(addr))
	}
}

func merge(primary, fallback clientInfo) clientInfo {
	if len(primary.mac) == 0 {
		primary.mac = fallback.mac
	}
	if primary.hostname == "" {
		primary.hostname = fallback.hostname
	}
	if primary.vendorClass == "" {
		primary.vendorClass = fallback.vendorClass
	}
	if len(primary.clientID) == 0 {
		primary.clientID = fallback.clientID
	}
	return primary
}

// Lookup returns the client holding addr at now, if an unexpired entry
// says so: the one before the current holder when now is before the
// address changed hands. It does not allocate. An entry expired at now is
// kept: records are attributed when they close, with their start time, so
// a longer flow that started while the lease was held may still be looked
// up after this one; the capacity bounds what expired entries hold, and
// they are the first to be evicted, since only a hit marks an entry used.
func (t *Table) Lookup(addr netip.Addr, now time.Time) (Lease, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.leases == nil || t.leases.Len() == 0 {
		return Lease{}, false
	}
	var l *Lease
	found := t.leases.GetIf(keyOf(addr), func(e *leaseEntry) bool {
		switch p := e.prev; {
		case p != nil && now.UnixNano() < e.prevEnd && !now.Before(p.Seen):
			l = p
		case now.UnixNano() < e.expires:
			l = &e.lease
		}
		return l != nil
	})
	if !found {
		return Lease{}, false
	}
	return *l, true
}

// Stats returns the counters and current size.
func (t *Table) Stats() TableStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.leases == nil {
		return TableStats{}
	}
	return TableStats{
		Len:       t.leases.Len(),
		Evictions: t.leases.Evictions() + t.clients.Evictions(),
	}
}
