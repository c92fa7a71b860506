// Package sshmeta owns SSH metadata: the identification string each side
// sends first (RFC 4253 4.2), "SSH-protoversion-softwareversion SP
// comments CR LF", split into its parts.
//
// golang.org/x/crypto/ssh reads this line only inside a live handshake on a
// net.Conn and does not export the parser, so the few lines here are our own.
package sshmeta

import (
	"bytes"
	"errors"
	"fmt"
)

// Sentinel errors, one per kind, so callers can count them instead of
// logging per packet. Errors returned by this package wrap exactly one.
var (
	// ErrNeedMore: the bytes so far may still become an identification line.
	ErrNeedMore = errors.New("sshmeta: incomplete SSH identification")
	// ErrNotSSH: the bytes cannot start an SSH connection.
	ErrNotSSH = errors.New("sshmeta: not SSH")
	// ErrMalformed: an "SSH-" line that breaks RFC 4253's rules, such as
	// one longer than MaxLine or holding control characters.
	ErrMalformed = errors.New("sshmeta: malformed SSH identification")
)

const (
	// MaxLine bounds the identification line including CR LF (RFC 4253 4.2).
	MaxLine = 255
	// A server may send lines before its identification (RFC 4253 4.2);
	// these bound how many are skipped before giving up.
	maxPreambleLines = 4
	maxPreambleBytes = 1024
	maxProtoLen      = 8
)

// Ident is a parsed identification line.
type Ident struct {
	Proto    string // protocol version: "2.0", or "1.99" for SSH-1 compatible servers
	Software string // "OpenSSH_9.6p1"
	Comments string // "Ubuntu-3"; empty when absent
}

// String reassembles the identification line without CR LF.
func (id Ident) String() string {
	s := "SSH-" + id.Proto + "-" + id.Software
	if id.Comments != "" {
		s += " " + id.Comments
	}
	return s
}

// Parse reads the identification line at the start of payload, the
// in-order bytes of either direction of a flow, into id, and returns the
// number of bytes up to and including its line end, where the binary packet
// protocol (KEXINIT) starts.
func Parse(payload []byte, id *Ident) (int, error) {
	*id = Ident{}
	pos := 0
	for lines := 0; ; lines++ {
		rest := payload[pos:]
		if len(rest) < 4 || !bytes.HasPrefix(rest, []byte("SSH-")) {
			if !bytes.HasPrefix([]byte("SSH-"), rest[:min(len(rest), 4)]) {
				// A preamble line (servers only), or not SSH.
				n, err := skipPreamble(rest, pos, lines)
				if err != nil {
					return 0, err
				}
				pos += n
				continue
			}
			return 0, ErrNeedMore
		}
		end := bytes.IndexByte(rest[:min(len(rest), MaxLine)], '\n')
		if end < 0 {
			if len(rest) >= MaxLine {
				return 0, fmt.Errorf("%w: no line end within %d bytes", ErrMalformed, MaxLine)
			}
			return 0, ErrNeedMore
		}
		line := rest[:end]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if err := id.parse(line[len("SSH-"):]); err != nil {
			*id = Ident{}
			return 0, err
		}
		return pos + end + 1, nil
	}
}

// skipPreamble returns the length of the text line at the start of rest.
// pos and lines say how much preamble precedes it.
func skipPreamble(rest []byte, pos, lines int) (int, error) {
	end := bytes.IndexByte(rest, '\n')
	line := rest
	if end >= 0 {
		line = rest[:end]
	}
	for i, c := range line {
		if (c < ' ' || c > '~') && !(c == '\r' && i == len(line)-1) && c != '\t' {
			return 0, ErrNotSSH // binary: another protocol
		}
	}
	switch {
	case lines == maxPreambleLines || pos+len(line) >= maxPreambleBytes:
		return 0, ErrNotSSH
	case end < 0:
		return 0, ErrNeedMore
	}
	return end + 1, nil
}

// parse splits "protoversion-softwareversion SP comments".
func (id *Ident) parse(b []byte) error {
	for _, c := range b {
		if c < ' ' || c > '~' {
			return fmt.Errorf("%w: byte %#x in identification", ErrMalformed, c)
		}
	}
	proto, rest, ok := bytes.Cut(b, []byte("-"))
	if !ok || len(proto) == 0 || len(proto) > maxProtoLen {
		return fmt.Errorf("%w: bad protocol version", ErrMalformed)
	}
	for _, c := range proto {
		if (c < '0' || c > '9') && c != '.' {
			return fmt.Errorf("%w: bad protocol version", ErrMalformed)
		}
	}
	software, comments, _ := bytes.Cut(rest, []byte(" "))
	if len(software) == 0 {
		return fmt.Errorf("%w: empty software version", ErrMalformed)
	}
	id.Proto = internProto(proto)
	id.Software = string(software)
	id.Comments = string(comments)
	return nil
}

func internProto(b []byte) string {
	switch string(b) {
	case "2.0":
		return "2.0"
	case "1.99":
		return "1.99"
	}
	return string(b)
}
