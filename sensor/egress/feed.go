package egress

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync/atomic"
	"time"
	"unicode"
)

// The session feed is JSON lines, one session a line; blank lines and
// lines starting with '#' are ignored:
//
//	{"inner":"10.99.0.11","outer":"203.0.113.50:51820","peer":"a.kim","device":"LT-0101","first_seen":"2026-11-20T13:00:00Z","last_seen":"2026-11-20T22:00:00Z"}
//
// inner, outer and first_seen are required; last_seen absent (or null)
// means still connected. Other fields are ignored, so a product may add
// its own. A later line for the same session (same inner, outer, peer and
// first_seen) replaces it: a product may write a session when it starts
// and again, with last_seen, when it ends.
type feedLine struct {
	Inner     string  `json:"inner"`
	Outer     string  `json:"outer"`
	Peer      string  `json:"peer,omitempty"`
	Device    string  `json:"device,omitempty"`
	FirstSeen string  `json:"first_seen"`
	LastSeen  *string `json:"last_seen,omitempty"`
}

// ParseFeedLine parses one line of the session feed (without its newline).
// A blank or comment line returns ok false and no error. An error carries
// the column when the JSON itself is malformed (as a *LineError with Line
// 0, for the caller to complete).
func ParseFeedLine(b []byte) (s Session, ok bool, err error) {
	indent := len(b) - len(bytes.TrimLeftFunc(b, unicode.IsSpace)) // what TrimSpace removes
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] == '#' {
		return Session{}, false, nil
	}
	var l feedLine
	if err := json.Unmarshal(b, &l); err != nil {
		// Columns count from the start of the line as written.
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return Session{}, false, &LineError{Col: indent + int(se.Offset), Err: fmt.Errorf("JSON: %v", se)}
		case errors.As(err, &te) && te.Field == "":
			return Session{}, false, &LineError{Col: indent + 1, Err: fmt.Errorf("a session line is a JSON object, not a %s", te.Value)}
		case errors.As(err, &te):
			return Session{}, false, &LineError{Col: indent + int(te.Offset), Err: fmt.Errorf("%s must be a string", te.Field)}
		}
		return Session{}, false, fmt.Errorf("JSON: %w", err)
	}
	s.Source = SourceFeed
	s.Peer, s.Device = l.Peer, l.Device
	if l.Inner == "" {
		return Session{}, false, errors.New(`"inner" (the tunnel address) is required`)
	}
	if s.Inner, err = netip.ParseAddr(l.Inner); err != nil {
		return Session{}, false, fmt.Errorf("inner %q is not an IP address", l.Inner)
	}
	if l.Outer == "" {
		return Session{}, false, errors.New(`"outer" (the public address, optionally with :port) is required`)
	}
	if s.Outer, err = parseOuter(l.Outer); err != nil {
		return Session{}, false, err
	}
	if l.FirstSeen == "" {
		return Session{}, false, errors.New(`"first_seen" (RFC 3339) is required`)
	}
	if s.FirstSeen, err = time.Parse(time.RFC3339Nano, l.FirstSeen); err != nil {
		return Session{}, false, fmt.Errorf("first_seen %q is not an RFC 3339 time (e.g. 2026-11-20T13:00:00Z)", l.FirstSeen)
	}
	if !validTime(s.FirstSeen) {
		return Session{}, false, fmt.Errorf("first_seen %q is not between 1970 and 2200", l.FirstSeen)
	}
	if l.LastSeen == nil || *l.LastSeen == "" {
		s.Active = true
		return s, true, nil
	}
	if s.LastSeen, err = time.Parse(time.RFC3339Nano, *l.LastSeen); err != nil {
		return Session{}, false, fmt.Errorf("last_seen %q is not an RFC 3339 time (e.g. 2026-11-20T22:00:00Z)", *l.LastSeen)
	}
	if !validTime(s.LastSeen) {
		return Session{}, false, fmt.Errorf("last_seen %q is not between 1970 and 2200", *l.LastSeen)
	}
	if s.LastSeen.Before(s.FirstSeen) {
		return Session{}, false, fmt.Errorf("last_seen %s is before first_seen %s", *l.LastSeen, l.FirstSeen)
	}
	return s, true, nil
}

// parseOuter reads a public address with or without a port:
// "203.0.113.50", "203.0.113.50:51820", "2001:db8::1", "[2001:db8::1]:51820".
func parseOuter(v string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(v); err == nil {
		if ap.Addr().IsUnspecified() {
			return netip.AddrPort{}, fmt.Errorf("outer %q is the unspecified address", v)
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("outer %q is not an IP address or address:port", v)
	}
	if a.IsUnspecified() {
		return netip.AddrPort{}, fmt.Errorf("outer %q is the unspecified address", v)
	}
	return netip.AddrPortFrom(a.Unmap(), 0), nil
}

// maxFeedLine bounds one feed line; a longer one is skipped.
const maxFeedLine = 64 << 10

// feedBatch is how many sessions are added to the store at once, so a
// large file does not hold the store's lock for long.
const feedBatch = 1024

// FeedStats counts what a Feed read.
type FeedStats struct {
	Lines    uint64 // session lines loaded
	BadLines uint64 // lines skipped
	Reopened uint64 // times the file was replaced or truncated and read from its start
}

// Feed reads a JSON-lines session feed file into a Store, following it as
// it grows (and from the start again when it is replaced or truncated).
type Feed struct {
	path  string
	store *Store
	log   *slog.Logger

	// Read position; only Load touches them.
	fi   os.FileInfo
	off  int64
	line int

	lines, bad, reopened atomic.Uint64
}

// NewFeed returns a Feed of the file at path; nothing is read until Load.
func NewFeed(path string, store *Store, log *slog.Logger) *Feed {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Feed{path: path, store: store, log: log.With("component", "egress", "source", SourceFeed, "path", path)}
}

// Stats returns the counters so far; safe to call concurrently with Load.
func (f *Feed) Stats() FeedStats {
	return FeedStats{Lines: f.lines.Load(), BadLines: f.bad.Load(), Reopened: f.reopened.Load()}
}

// Load reads the complete lines added since the last Load (a last line
// without its newline waits for the next). Bad lines are skipped and
// returned as Errors (file:line); any other error means the file could
// not be read.
func (f *Feed) Load() error {
	fh, err := os.Open(f.path)
	if err != nil {
		return fmt.Errorf("session feed: %w", err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("session feed: %w", err)
	}
	if f.fi != nil && (!os.SameFile(f.fi, fi) || fi.Size() < f.off) {
		f.off, f.line = 0, 0
		f.reopened.Add(1)
	}
	f.fi = fi
	if _, err := fh.Seek(f.off, io.SeekStart); err != nil {
		return fmt.Errorf("session feed %s: %w", f.path, err)
	}
	var (
		errs  Errors
		batch []Session
	)
	r := bufio.NewReaderSize(fh, 64<<10)
	for {
		b, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Too long: skip to the end of the line, if it has one yet.
			n := int64(len(b))
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = r.ReadSlice('\n')
				n += int64(len(b))
			}
			if err != nil {
				break // incomplete; read again once the line is complete
			}
			f.off += n
			f.line++
			f.bad.Add(1)
			errs.Add(&LineError{File: f.path, Line: f.line, Err: fmt.Errorf("line longer than %d bytes", maxFeedLine)})
			continue
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return fmt.Errorf("session feed %s: %w", f.path, err)
			}
			break // a last line without its newline waits for the next Load
		}
		f.off += int64(len(b))
		f.line++
		s, ok, perr := ParseFeedLine(b)
		if perr != nil {
			f.bad.Add(1)
			le := &LineError{File: f.path, Line: f.line, Err: perr}
			var pe *LineError
			if errors.As(perr, &pe) {
				le.Col, le.Err = pe.Col, pe.Err
			}
			errs.Add(le)
			continue
		}
		if !ok {
			continue
		}
		f.lines.Add(1)
		if batch = append(batch, s); len(batch) == feedBatch {
			f.store.Add(batch...)
			batch = batch[:0]
		}
	}
	f.store.Add(batch...)
	return errs.Err()
}

// Run loads the file at once and whenever it changes, until ctx is done.
// Bad lines are logged; a file that cannot be read is logged and tried
// again on the next change.
func (f *Feed) Run(ctx context.Context) error {
	return watchFile(ctx, f.path, 100*time.Millisecond, f.log, func() {
		logLoad(f.log, f.Load())
	})
}

// logLoad logs the outcome of a source's Load that runs in the background.
func logLoad(log *slog.Logger, err error) {
	var es Errors
	switch {
	case err == nil:
	case errors.As(err, &es):
		for _, e := range es {
			log.Warn("skipped session line", "error", e.Error())
		}
	default:
		log.Warn("reading sessions failed; keeping the sessions already loaded", "error", err)
	}
}

// FormatFeedLine appends s as one line of the session feed, with its
// newline: the format ParseFeedLine reads.
func FormatFeedLine(dst []byte, s Session) []byte {
	l := feedLine{Inner: s.Inner.String(), Outer: s.Outer.String(), Peer: s.Peer, Device: s.Device,
		FirstSeen: s.FirstSeen.UTC().Format(time.RFC3339Nano)}
	if s.Outer.Port() == 0 {
		l.Outer = s.Outer.Addr().String()
	}
	if !s.Active {
		end := s.LastSeen
		if end.Before(s.FirstSeen) { // zero too: the Store reads it as ending where it started
			end = s.FirstSeen
		}
		last := end.UTC().Format(time.RFC3339Nano)
		l.LastSeen = &last
	}
	b, _ := json.Marshal(l) // strings only: cannot fail
	dst = append(dst, b...)
	return append(dst, '\n')
}
