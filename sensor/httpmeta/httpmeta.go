// Package httpmeta owns HTTP/1.x metadata: from the first bytes of a TCP
// flow it extracts the request method, host, path and User-Agent (or, from
// the server side, the response status), and classifies flows that are not
// HTTP.
//
// It does not use net/http.ReadRequest: that needs the whole header block,
// cannot tell "not HTTP" from "not yet complete" on a partial segment,
// rejects malformed-but-real traffic, and builds a header map per request.
// The sensor needs a bounded prefix classifier over untrusted bytes that
// reads three headers and ignores the rest.
//
// Only metadata leaves this package: Path stops before the query string,
// which often carries credentials and session tokens, and bodies are never
// read.
package httpmeta

import (
	"bytes"
	"errors"
	"unicode/utf8"
)

// Sentinel errors, one per kind, so callers can count them instead of
// logging per packet.
var (
	// ErrNeedMore: the bytes so far are a valid start of an HTTP message
	// but the header block (or status line) is not complete yet.
	ErrNeedMore = errors.New("httpmeta: incomplete HTTP header block")
	// ErrNotHTTP: the bytes cannot start an HTTP/1.x message.
	ErrNotHTTP = errors.New("httpmeta: not HTTP/1.x")
	// ErrTooLong: the header block does not end within MaxHeaderBytes.
	// The request fields found within the bound are still filled in.
	ErrTooLong = errors.New("httpmeta: HTTP header block exceeds bound")
)

// Bounds on what is read and kept.
const (
	MaxHeaderBytes = 8 << 10 // request line plus headers
	MaxPath        = 256
	MaxUserAgent   = 256
	MaxHost        = 255 // a DNS name's maximum length
	maxMethod      = 24
)

// Request is the metadata of an HTTP/1.x request.
type Request struct {
	Method  string // "GET", "CONNECT", ...
	Version string // "HTTP/1.1"
	// Host is lowercase with the port split off into Port (0 when absent)
	// and IPv6 brackets removed. It comes from the request target when
	// that carries an authority (CONNECT, absolute-form proxy requests),
	// else from the Host header.
	Host string
	Port uint16
	// Path is the request-target path, without query or fragment,
	// truncated to MaxPath bytes ("" for CONNECT, "*" for OPTIONS *).
	Path          string
	PathTruncated bool
	HasQuery      bool
	UserAgent     string // truncated to MaxUserAgent bytes
	// HeaderLen is the length of the request line and header block,
	// including the empty line: where a body or the next request starts.
	// It is set only when ParseRequest returns nil.
	HeaderLen int
}

// Response is the metadata of an HTTP/1.x status line.
type Response struct {
	Version    string
	StatusCode int
}

// ParseRequest reads the request at the start of payload, the in-order
// client-to-server bytes of a flow, into r.
//
// On ErrNeedMore the fields of the request line and of the complete header
// lines seen so far are filled in, so a caller that gives up waiting still
// has them; on ErrTooLong likewise for the first MaxHeaderBytes.
func ParseRequest(payload []byte, r *Request) error {
	*r = Request{}
	b := payload
	if len(b) > MaxHeaderBytes {
		b = b[:MaxHeaderBytes]
	}
	incomplete := ErrNeedMore
	if len(b) < len(payload) || len(b) == MaxHeaderBytes {
		incomplete = ErrTooLong
	}

	// Request line: method SP request-target SP HTTP-version CRLF.
	i := 0
	for i < len(b) && i <= maxMethod && isMethodChar(b[i]) {
		i++
	}
	switch {
	case i > maxMethod || i == 0 && len(b) > 0:
		return ErrNotHTTP
	case i == len(b):
		return incomplete
	case b[i] != ' ':
		return ErrNotHTTP
	}
	method := b[:i]
	j := i + 1
	for j < len(b) && isTargetChar(b[j]) {
		j++
	}
	switch {
	case j == len(b):
		if incomplete == ErrTooLong {
			return ErrNotHTTP // no real client sends an 8 KiB request line
		}
		return ErrNeedMore
	case j == i+1 || b[j] != ' ':
		return ErrNotHTTP
	}
	target := b[i+1 : j]
	line, rest, ok := cutLine(b[j+1:])
	if !ok {
		if !isVersionPrefix(bytes.TrimSuffix(b[j+1:], []byte("\r"))) {
			return ErrNotHTTP
		}
		return incomplete
	}
	if !isVersion(line) {
		return ErrNotHTTP
	}

	r.Method = internMethod(method)
	r.Version = internVersion(line)
	if bytes.Equal(method, []byte("CONNECT")) {
		r.Host, r.Port = splitHostPort(target)
	} else {
		r.parseTarget(target)
	}

	// Header fields until the empty line.
	fromTarget := r.Host != ""
	for {
		line, rest, ok = cutLine(rest)
		if !ok {
			return incomplete
		}
		if len(line) == 0 {
			r.HeaderLen = len(b) - len(rest)
			return nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || name[0] == ' ' || name[0] == '\t' {
			continue // obs-fold or junk line: tolerate, it carries nothing we read
		}
		value = bytes.Trim(value, " \t")
		switch {
		case !fromTarget && r.Host == "" && bytes.EqualFold(name, []byte("Host")):
			r.Host, r.Port = splitHostPort(value)
		case r.UserAgent == "" && bytes.EqualFold(name, []byte("User-Agent")):
			r.UserAgent = string(truncate(value, MaxUserAgent))
		}
	}
}

// parseTarget splits an origin-form or absolute-form request target.
func (r *Request) parseTarget(t []byte) {
	if i := bytes.Index(t, []byte("://")); i > 0 && t[0] != '/' {
		// absolute-form: the authority overrides any Host header (RFC 9112 3.2.2).
		auth := t[i+3:]
		end := bytes.IndexAny(auth, "/?#")
		if end < 0 {
			end = len(auth)
		}
		if at := bytes.LastIndexByte(auth[:end], '@'); at >= 0 {
			auth = auth[at+1:] // drop userinfo: credentials are not metadata
			end -= at + 1
		}
		r.Host, r.Port = splitHostPort(auth[:end])
		t = auth[end:]
		if len(t) == 0 || t[0] != '/' {
			t = append([]byte("/"), t...)
		}
	}
	if q := bytes.IndexAny(t, "?#"); q >= 0 {
		r.HasQuery = t[q] == '?'
		t = t[:q]
	}
	r.PathTruncated = len(t) > MaxPath
	r.Path = string(truncate(t, MaxPath))
}

// ParseResponse reads the status line at the start of payload, the
// in-order server-to-client bytes of a flow, into r.
func ParseResponse(payload []byte, r *Response) error {
	*r = Response{}
	// HTTP-version SP 3DIGIT (SP reason / CRLF)
	const n = len("HTTP/1.1 200")
	b := payload[:min(len(payload), n+1)]
	if !isVersionPrefix(b[:min(len(b), 8)]) {
		return ErrNotHTTP
	}
	for k := 8; k < len(b); k++ {
		c := b[k]
		switch {
		case k == 8 && c != ' ',
			k > 8 && k < n && (c < '0' || c > '9'),
			k == n && c != ' ' && c != '\r' && c != '\n':
			return ErrNotHTTP
		}
	}
	if len(b) < n+1 {
		return ErrNeedMore
	}
	r.Version = internVersion(b[:8])
	r.StatusCode = int(b[9]-'0')*100 + int(b[10]-'0')*10 + int(b[11]-'0')
	return nil
}

// cutLine splits at the first LF, dropping a CR before it; bare-LF line
// ends are tolerated as real servers and scripts send them.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, b, false
	}
	line = b[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, b[i+1:], true
}

// isMethodChar admits the methods seen in practice (uppercase, with '-' and
// '_' for M-SEARCH and VERSION_CONTROL); lowercase tokens are legal but in
// practice mean a text protocol that is not HTTP.
func isMethodChar(c byte) bool { return 'A' <= c && c <= 'Z' || c == '-' || c == '_' }

// isTargetChar admits visible bytes; high bytes appear in real, badly
// encoded URLs.
func isTargetChar(c byte) bool { return c > ' ' && c != 0x7f }

func isVersion(b []byte) bool {
	return len(b) == 8 && isVersionPrefix(b)
}

// isVersionPrefix reports whether b is a prefix of "HTTP/d.d".
func isVersionPrefix(b []byte) bool {
	const pat = "HTTP/0.0"
	if len(b) > len(pat) {
		return false
	}
	for k, c := range b {
		if pat[k] == '0' {
			if c < '0' || c > '9' {
				return false
			}
		} else if c != pat[k] {
			return false
		}
	}
	return true
}

var methods = [...]string{"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS",
	"CONNECT", "PATCH", "TRACE", "PRI", "M-SEARCH", "NOTIFY", "SUBSCRIBE",
	"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT"}

// internMethod avoids an allocation for the common methods.
func internMethod(b []byte) string {
	for _, m := range methods {
		if string(b) == m {
			return m
		}
	}
	return string(b)
}

func internVersion(b []byte) string {
	switch string(b) {
	case "HTTP/1.1":
		return "HTTP/1.1"
	case "HTTP/1.0":
		return "HTTP/1.0"
	}
	return string(b)
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port" and
// lowercases the host. A port that is not a number in range is dropped.
func splitHostPort(b []byte) (string, uint16) {
	host, port := b, []byte(nil)
	if len(b) > 0 && b[0] == '[' {
		if end := bytes.IndexByte(b, ']'); end > 0 {
			host = b[1:end]
			if rest := b[end+1:]; len(rest) > 1 && rest[0] == ':' {
				port = rest[1:]
			}
		}
	} else if i := bytes.LastIndexByte(b, ':'); i >= 0 && bytes.IndexByte(b[:i], ':') < 0 {
		host, port = b[:i], b[i+1:]
	}
	host = truncate(host, MaxHost)
	var buf [MaxHost]byte
	for k, c := range host {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[k] = c
	}
	return string(buf[:len(host)]), parsePort(port)
}

func parsePort(b []byte) uint16 {
	if len(b) == 0 || len(b) > 5 {
		return 0
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0
	}
	return uint16(n)
}

// truncate cuts b to at most n bytes without splitting a UTF-8 sequence.
func truncate(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	cut := n
	for k := 0; k < utf8.UTFMax && cut > 0 && !utf8.RuneStart(b[cut]); k++ {
		cut--
	}
	return b[:cut]
}
