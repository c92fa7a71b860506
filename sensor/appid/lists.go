package appid

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// List file names, read from every file system given to New.
const (
	DomainsFile = "app-domains.txt"
	PortsFile   = "app-ports.txt"
	ALPNFile    = "app-alpn.txt"
	CertsFile   = "app-certs.txt"
)

// ErrList marks a malformed list line; the error text says file:line.
var ErrList = errors.New("bad list entry")

func (id *Identifier) load(fsys fs.FS, required bool) error {
	var errs []error
	for _, f := range []struct {
		name  string
		parse func(fields []string) error
	}{
		{DomainsFile, id.addDomain},
		{PortsFile, id.addPorts},
		{ALPNFile, id.addALPN},
		{CertsFile, id.addCert},
	} {
		b, err := fs.ReadFile(fsys, f.name)
		if errors.Is(err, fs.ErrNotExist) && !required {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading app list: %w", err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for line := 1; sc.Scan(); line++ {
			fields, err := splitLine(sc.Text())
			if err == nil && len(fields) > 0 {
				err = f.parse(fields)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: %w: %v", f.name, line, ErrList, err))
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("reading %s: %w", f.name, err)
		}
	}
	return errors.Join(errs...)
}

// splitLine drops a '#' comment and splits on white space; a field may be
// double-quoted to hold spaces.
func splitLine(s string) ([]string, error) {
	var out []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" || s[0] == '#' {
			return out, nil
		}
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return nil, errors.New("unterminated quote")
			}
			out = append(out, s[1:end+1])
			s = s[end+2:]
			continue
		}
		end := strings.IndexAny(s, " \t")
		if end < 0 {
			end = len(s)
		}
		out = append(out, s[:end])
		s = s[end:]
	}
}

func validID(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func appCategory(fields []string, want int, format string) (entry, error) {
	if len(fields) != want {
		return entry{}, fmt.Errorf("want %q, got %d fields", format, len(fields))
	}
	app, cat := fields[want-2], fields[want-1]
	if !validID(app) || !validID(cat) {
		return entry{}, fmt.Errorf("app %q and category %q must be lower-case ids [a-z0-9_]+", app, cat)
	}
	return entry{app, cat}, nil
}

func (id *Identifier) addDomain(f []string) error {
	e, err := appCategory(f, 3, "suffix app category")
	if err != nil {
		return err
	}
	d := strings.ToLower(strings.Trim(f[0], "."))
	if d == "" || len(d) > maxName || strings.ContainsAny(d, "*/:") {
		return fmt.Errorf("suffix %q is not a domain name (write example.com, not *.example.com)", f[0])
	}
	id.domains[d] = e
	return nil
}

func (id *Identifier) addCert(f []string) error {
	e, err := appCategory(f, 3, `"common name" app category`)
	if err != nil {
		return err
	}
	if f[0] == "" || len(f[0]) > maxName {
		return fmt.Errorf("common name %q is empty or too long", f[0])
	}
	id.certs[strings.ToLower(f[0])] = e
	return nil
}

func (id *Identifier) addALPN(f []string) error {
	e, err := appCategory(f, 3, "alpn-prefix app category")
	if err != nil {
		return err
	}
	a := alpnEntry{id: f[0], prefix: strings.HasSuffix(f[0], "/") || strings.HasSuffix(f[0], "-"), entry: e}
	for i := range id.alpn {
		if id.alpn[i].id == a.id {
			id.alpn[i] = a
			return nil
		}
	}
	id.alpn = append(id.alpn, a)
	return nil
}

func (id *Identifier) addPorts(f []string) error {
	e, err := appCategory(f, 4, "tcp|udp port[-port] app category")
	if err != nil {
		return err
	}
	var proto uint8
	switch f[0] {
	case "tcp":
		proto = TCP
	case "udp":
		proto = UDP
	default:
		return fmt.Errorf("protocol %q: want tcp or udp", f[0])
	}
	lo, hi, isRange := strings.Cut(f[1], "-")
	first, err1 := strconv.ParseUint(lo, 10, 16)
	last := first
	var err2 error
	if isRange {
		last, err2 = strconv.ParseUint(hi, 10, 16)
	}
	if err1 != nil || err2 != nil || first == 0 || last < first {
		return fmt.Errorf("port %q: want 1-65535 or a range lo-hi", f[1])
	}
	for p := first; p <= last; p++ {
		id.ports[portKeyOf(proto, uint16(p))] = e
		id.portSetOf(proto).add(uint16(p))
	}
	return nil
}
