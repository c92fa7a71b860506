package egress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// OpenVPNStatus is one read of an OpenVPN server's status file (the
// `status` directive; `status-version` 1, 2 or 3).
type OpenVPNStatus struct {
	Version int       // 1, 2 or 3
	Time    time.Time // when the server wrote the file (TIME / Updated); zero when absent
	// Complete is true when the file ends with END: OpenVPN rewrites the
	// file in place, and a read racing the rewrite sees a part of it.
	Complete bool
	// Sessions are the connected clients that have a tunnel address, one
	// per address (a client with IPv4 and IPv6 addresses has two). They
	// are Active; LastSeen is Time, or the routing table's Last Ref when
	// that is later or the file has no time.
	Sessions []Session
}

// Column names, as OpenVPN writes them in the header rows.
const (
	colCN        = "Common Name"
	colReal      = "Real Address"
	colVirtual   = "Virtual Address"
	colVirtual6  = "Virtual IPv6 Address"
	colSince     = "Connected Since"
	colSinceUnix = "Connected Since (time_t)"
	colUsername  = "Username"
	colLastRef   = "Last Ref"
	colLastRefTT = "Last Ref (time_t)"
)

// Headers used when a version 2/3 file has no HEADER row before its rows
// (OpenVPN 2.4 and later write these).
var (
	defaultClientHeader  = []string{colCN, colReal, colVirtual, colVirtual6, "Bytes Received", "Bytes Sent", colSince, colSinceUnix, colUsername, "Client ID", "Peer ID", "Data Channel Cipher"}
	defaultRoutingHeader = []string{colVirtual, colCN, colReal, colLastRef, colLastRefTT}
)

// OpenVPN writes times with time_string: ctime's layout before 2.5, ISO
// 8601 without a zone since, both in the server's local time.
var openvpnTimeLayouts = []string{"2006-01-02 15:04:05", "Mon Jan _2 15:04:05 2006"}

type ovClient struct {
	cn      string
	real    netip.AddrPort
	virtual []netip.Addr
	since   time.Time
}

type ovRoute struct {
	inner   netip.Addr
	cn      string
	real    netip.AddrPort
	lastRef time.Time
}

// ovParser holds the state of one status file parse.
// ovHeader is a table's columns: their index by name, and how many.
type ovHeader struct {
	index map[string]int
	n     int
}

type ovParser struct {
	name    string
	loc     *time.Location
	st      *OpenVPNStatus
	errs    Errors
	headers map[string]ovHeader // by table
	clients []*ovClient
	routes  []ovRoute
}

// ParseOpenVPNStatus reads an OpenVPN status file of any status-version;
// name is used in error messages and loc for times written without a
// zone (nil: the local zone). A line that cannot be used is skipped and
// reported in Errors (file:line) with the rest still read; any other
// error means the contents are not an OpenVPN server status file.
func ParseOpenVPNStatus(name string, src []byte, loc *time.Location) (*OpenVPNStatus, error) {
	if loc == nil {
		loc = time.Local
	}
	p := &ovParser{name: name, loc: loc, st: &OpenVPNStatus{}, headers: map[string]ovHeader{}}
	lines := strings.Split(strings.ReplaceAll(string(src), "\r\n", "\n"), "\n")
	first := 0
	for first < len(lines) && strings.TrimSpace(lines[first]) == "" {
		first++
	}
	if first == len(lines) {
		return nil, fmt.Errorf("%s: empty OpenVPN status file", name)
	}
	head := lines[first]
	switch {
	case head == "OpenVPN CLIENT LIST":
		p.st.Version = 1
		p.parseV1(lines, first+1)
	case strings.HasPrefix(head, "TITLE") || strings.HasPrefix(head, "TIME") || strings.HasPrefix(head, "HEADER") || strings.HasPrefix(head, "CLIENT_LIST"):
		sep := ","
		p.st.Version = 2
		if i := strings.IndexAny(head, ",\t"); i >= 0 && head[i] == '\t' {
			sep = "\t"
			p.st.Version = 3
		}
		p.parseV2(lines, first, sep)
	case strings.HasPrefix(head, "OpenVPN STATISTICS"):
		return nil, fmt.Errorf("%s:%d: an OpenVPN client's status file; sessions come from the server's", name, first+1)
	default:
		return nil, fmt.Errorf("%s:%d: not an OpenVPN status file (want \"OpenVPN CLIENT LIST\", TITLE, TIME or HEADER first)", name, first+1)
	}
	p.sessions()
	return p.st, p.errs.Err()
}

func (p *ovParser) fail(line int, format string, args ...any) {
	p.errs.Add(&LineError{File: p.name, Line: line, Err: fmt.Errorf(format, args...)})
}

// parseV1 reads the layout of status-version 1: titled sections whose
// first row names the columns.
func (p *ovParser) parseV1(lines []string, from int) {
	section, needHeader := "CLIENT_LIST", true
	for i := from; i < len(lines); i++ {
		n, l := i+1, lines[i]
		switch {
		case strings.TrimSpace(l) == "":
			continue
		case l == "END":
			p.st.Complete = true
			return
		case l == "ROUTING TABLE":
			section, needHeader = "ROUTING_TABLE", true
			continue
		case l == "GLOBAL STATS":
			section, needHeader = "", false
			continue
		case section == "CLIENT_LIST" && strings.HasPrefix(l, "Updated,"):
			t, err := p.parseTime(strings.TrimPrefix(l, "Updated,"), "")
			if err != nil {
				p.fail(n, "Updated: %v", err)
			}
			p.st.Time = t
			continue
		case section == "":
			continue
		}
		fields := strings.Split(l, ",")
		if needHeader {
			p.setHeader(section, fields)
			needHeader = false
			continue
		}
		p.row(n, section, fields)
	}
}

// parseV2 reads status-version 2 (sep ",") and 3 (sep "\t"): every line
// starts with its kind.
func (p *ovParser) parseV2(lines []string, from int, sep string) {
	for i := from; i < len(lines); i++ {
		n, l := i+1, lines[i]
		if strings.TrimSpace(l) == "" {
			continue
		}
		fields := strings.Split(l, sep)
		switch kind := fields[0]; kind {
		case "END":
			p.st.Complete = true
			return
		case "TITLE", "GLOBAL_STATS":
		case "TIME":
			// TIME,<local time>,<time_t>
			if len(fields) < 2 {
				p.fail(n, "TIME line without a time")
				continue
			}
			unix := ""
			if len(fields) > 2 {
				unix = fields[2]
			}
			t, err := p.parseTime(fields[1], unix)
			if err != nil {
				p.fail(n, "TIME: %v", err)
				continue
			}
			p.st.Time = t
		case "HEADER":
			if len(fields) < 3 {
				p.fail(n, "HEADER line without columns")
				continue
			}
			p.setHeader(fields[1], fields[2:])
		case "CLIENT_LIST", "ROUTING_TABLE":
			p.row(n, kind, fields[1:])
		default:
			if !isKeyword(kind) {
				p.fail(n, "unrecognised line (want CLIENT_LIST, ROUTING_TABLE, HEADER, TIME, ... separated by %q)", sep)
			}
			// A kind from a newer OpenVPN: nothing to take from it.
		}
	}
}

func isKeyword(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !('A' <= c && c <= 'Z' || c == '_') {
			return false
		}
	}
	return true
}

func (p *ovParser) setHeader(table string, cols []string) {
	h := ovHeader{index: make(map[string]int, len(cols)), n: len(cols)}
	for i, c := range cols {
		h.index[strings.TrimSpace(c)] = i
	}
	p.headers[table] = h
}

func (p *ovParser) header(table string) ovHeader {
	if h, ok := p.headers[table]; ok {
		return h
	}
	def := defaultClientHeader
	if table == "ROUTING_TABLE" {
		def = defaultRoutingHeader
	}
	p.setHeader(table, def)
	return p.headers[table]
}

// row reads one CLIENT_LIST or ROUTING_TABLE row against its header.
func (p *ovParser) row(n int, table string, fields []string) {
	h := p.header(table)
	if len(fields) != h.n {
		p.fail(n, "%s row has %d fields, the header names %d", table, len(fields), h.n)
		return
	}
	get := func(col string) string {
		if i, ok := h.index[col]; ok {
			return strings.TrimSpace(fields[i])
		}
		return ""
	}
	real, err := parseReal(get(colReal))
	if err != nil {
		p.fail(n, "%v", err)
		return
	}
	if table == "ROUTING_TABLE" {
		r := ovRoute{cn: get(colCN), real: real}
		inner, host := parseVirtual(get(colVirtual))
		if !host {
			return // a subnet (iroute) or a MAC address (tap): not one device's address
		}
		r.inner = inner
		if s := get(colLastRef); s != "" || get(colLastRefTT) != "" {
			if r.lastRef, err = p.parseTime(s, get(colLastRefTT)); err != nil {
				p.fail(n, "Last Ref: %v", err)
				return
			}
		}
		p.routes = append(p.routes, r)
		return
	}
	c := &ovClient{cn: get(colCN), real: real}
	if c.cn == "UNDEF" || c.cn == "" {
		if u := get(colUsername); u != "" && u != "UNDEF" {
			c.cn = u
		}
	}
	for _, col := range []string{colVirtual, colVirtual6} {
		v := get(col)
		if v == "" {
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			p.fail(n, "%s %q is not an IP address", col, v)
			return
		}
		c.virtual = append(c.virtual, a.Unmap())
	}
	if c.since, err = p.parseTime(get(colSince), get(colSinceUnix)); err != nil {
		p.fail(n, "Connected Since: %v", err)
		return
	}
	p.clients = append(p.clients, c)
}

// parseTime prefers the time_t column; the text form is local time.
func (p *ovParser) parseTime(text, unix string) (time.Time, error) {
	if unix != "" {
		sec, err := strconv.ParseInt(strings.TrimSpace(unix), 10, 64)
		if t := time.Unix(sec, 0); err == nil && validTime(t) {
			return t, nil
		}
		return time.Time{}, fmt.Errorf("%q is not a Unix time", unix)
	}
	text = strings.TrimSpace(text)
	for _, layout := range openvpnTimeLayouts {
		if t, err := time.ParseInLocation(layout, text, p.loc); err == nil && validTime(t) {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (want e.g. 2026-11-20 13:00:00)", text)
}

// parseReal reads a client's real address as OpenVPN prints it:
// "203.0.113.50:51820", an IPv6 address without its port, or either after
// a protocol prefix ("udp4:", "tcp6-server:").
func parseReal(s string) (netip.AddrPort, error) {
	if s == "" {
		return netip.AddrPort{}, errors.New("no Real Address")
	}
	if ap, err := parseOuter(s); err == nil {
		return ap, nil
	}
	if proto, rest, ok := strings.Cut(s, ":"); ok && (strings.HasPrefix(proto, "udp") || strings.HasPrefix(proto, "tcp")) {
		if ap, err := parseOuter(rest); err == nil {
			return ap, nil
		}
	}
	return netip.AddrPort{}, fmt.Errorf("Real Address %q is not an IP address or address:port", s)
}

// parseVirtual reads a routing table address; host reports a single IP
// address (OpenVPN 2.3 marks cached routes with a trailing 'C').
func parseVirtual(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(s, "C")); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

// sessions joins the client list with the routing table: the table gives
// the addresses of clients whose list has none (status-version 1) and
// when each was last used.
func (p *ovParser) sessions() {
	lastRef := map[netip.Addr]time.Time{}
	for _, r := range p.routes {
		lastRef[r.inner] = r.lastRef
		var owner *ovClient
		for _, c := range p.clients {
			if c.cn == r.cn && c.real == r.real {
				owner = c
				break
			}
		}
		if owner == nil {
			continue // a client being torn down: gone from the list, not yet from the routes
		}
		known := false
		for _, v := range owner.virtual {
			known = known || v == r.inner
		}
		if !known {
			owner.virtual = append(owner.virtual, r.inner)
		}
	}
	for _, c := range p.clients {
		for _, v := range c.virtual {
			s := Session{Inner: v, Outer: c.real, Peer: c.cn, Source: SourceOpenVPN, FirstSeen: c.since, LastSeen: p.st.Time, Active: true}
			if t := lastRef[v]; t.After(s.LastSeen) || s.LastSeen.IsZero() {
				s.LastSeen = t
			}
			p.st.Sessions = append(p.st.Sessions, s)
		}
	}
}

// OpenVPNStats counts what an OpenVPN source read.
type OpenVPNStats struct {
	Loads      uint64 // complete reads applied
	Incomplete uint64 // reads that raced a rewrite and were not applied
	BadLines   uint64
	Sessions   uint64 // sessions in the last read applied
}

// OpenVPN keeps a Store up to date from a server's status file: sessions
// that appear are added, those that disappear are closed at the last time
// the file showed them.
type OpenVPN struct {
	path  string
	store *Store
	loc   *time.Location
	log   *slog.Logger

	// Only Load touches these.
	known    map[sessionKey]Session // sessions of the last read
	lastTime time.Time

	loads, incomplete, bad, sessions atomic.Uint64
}

// NewOpenVPN returns an OpenVPN source for the status file at path; loc is
// the server's zone for times written without one (nil: local).
func NewOpenVPN(path string, store *Store, loc *time.Location, log *slog.Logger) *OpenVPN {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &OpenVPN{path: path, store: store, loc: loc, known: map[sessionKey]Session{},
		log: log.With("component", "egress", "source", SourceOpenVPN, "path", path)}
}

// Stats returns the counters so far; safe to call concurrently with Load.
func (o *OpenVPN) Stats() OpenVPNStats {
	return OpenVPNStats{Loads: o.loads.Load(), Incomplete: o.incomplete.Load(), BadLines: o.bad.Load(), Sessions: o.sessions.Load()}
}

// ErrIncomplete means a status file was read while OpenVPN was rewriting
// it (no END line); the previous read stays in use.
var ErrIncomplete = errors.New("incomplete OpenVPN status file (no END line); keeping the previous sessions")

// Load reads the status file and applies the difference to the last read.
// Bad lines are skipped and returned as Errors; any other error (the file
// is unreadable, not a status file, or incomplete) changes nothing.
func (o *OpenVPN) Load() error {
	src, err := os.ReadFile(o.path)
	if err != nil {
		return fmt.Errorf("OpenVPN status: %w", err)
	}
	st, err := ParseOpenVPNStatus(o.path, src, o.loc)
	if st == nil {
		return err
	}
	if !st.Complete {
		o.incomplete.Add(1)
		return fmt.Errorf("%s: %w", o.path, ErrIncomplete)
	}
	var es Errors
	errors.As(err, &es)
	o.bad.Add(uint64(len(es)))
	now := st.Time
	if now.IsZero() {
		if fi, err := os.Stat(o.path); err == nil {
			now = fi.ModTime()
		}
	}
	cur := make(map[sessionKey]Session, len(st.Sessions))
	for _, s := range st.Sessions {
		cur[keyOf(&s)] = s
	}
	var closed []Session
	for k, s := range o.known {
		if _, ok := cur[k]; !ok {
			s.Active, s.LastSeen = false, o.lastTime
			closed = append(closed, s)
		}
	}
	o.store.Add(closed...)
	o.store.Add(st.Sessions...)
	o.known, o.lastTime = cur, now
	o.loads.Add(1)
	o.sessions.Store(uint64(len(st.Sessions)))
	return err
}

// sessionKey identifies a session across reads of a source.
type sessionKey struct {
	inner netip.Addr
	outer netip.AddrPort
	peer  string
	first int64
}

func keyOf(s *Session) sessionKey {
	return sessionKey{s.Inner, s.Outer, s.Peer, s.FirstSeen.UnixNano()}
}

// Run loads the file at once and whenever it changes, until ctx is done;
// failed loads are logged and leave the previous sessions in use.
func (o *OpenVPN) Run(ctx context.Context) error {
	return watchFile(ctx, o.path, 250*time.Millisecond, o.log, func() {
		if err := o.Load(); errors.Is(err, ErrIncomplete) {
			o.log.Debug("status file read during a rewrite; waiting for the next change")
		} else {
			logLoad(o.log, err)
		}
	})
}
