package enrich

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/edgeward/edgeward/rules/lists"
)

// Intel list kinds, as in Intel and the rule fields intel.<kind>.
const (
	kindIP = iota
	kindDomain
	kindASN
	kindJA4
	nKinds
)

var kindNames = [nKinds]string{"ip", "domain", "asn", "ja4"}

// intelList is one named list; a file may mix kinds, so it has up to one
// set per kind (nil when the list has no entry of that kind).
type intelList struct {
	name    string
	ips     *lists.Prefixes
	domains *lists.Suffixes
	asns    *lists.Numbers
	ja4s    *lists.Strings
}

// intelSet is every intel list, indexed by kind. Lists are in name order,
// so when a flow matches several lists of a kind the first name wins,
// whatever order the files were read in.
type intelSet struct {
	byKind [nKinds][]*intelList
	// anyDomain and anyJA4 hold the entries of every list when there is
	// more than one: most names match no list, and one set answers that
	// for the price of one.
	anyDomain *lists.Suffixes
	anyJA4    *lists.Strings
	entries   [nKinds]int
	skipped   int
	files     []fileStamp // what was read, to skip reloads that change nothing
	found     []string    // the configured paths that existed
}

type fileStamp struct {
	path string
	fi   os.FileInfo
}

// sameFiles reports whether the files are the ones stamps describes,
// unchanged.
func sameFiles(stamps []fileStamp, files []string) bool {
	if len(stamps) != len(files) {
		return false
	}
	for i, f := range files {
		fi, err := os.Stat(f)
		if err != nil || stamps[i].path != f || !sameStat(stamps[i].fi, fi) {
			return false
		}
	}
	return true
}

func sameStat(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

func (s *intelSet) matchIP(a netip.Addr) string {
	for _, l := range s.byKind[kindIP] {
		if l.ips.Contains(a) {
			return l.name
		}
	}
	return ""
}

func (s *intelSet) matchASN(n uint32) string {
	if n == 0 {
		return ""
	}
	for _, l := range s.byKind[kindASN] {
		if l.asns.Contains(uint64(n)) {
			return l.name
		}
	}
	return ""
}

func (s *intelSet) matchDomain(name string) string {
	if name == "" || s.anyDomain != nil && !s.anyDomain.Match(name) {
		return ""
	}
	for _, l := range s.byKind[kindDomain] {
		if l.domains.Match(name) {
			return l.name
		}
	}
	return ""
}

func (s *intelSet) matchJA4(fp string) string {
	if fp == "" || s.anyJA4 != nil && !s.anyJA4.Contains(fp) {
		return ""
	}
	for _, l := range s.byKind[kindJA4] {
		if l.ja4s.Contains(fp) {
			return l.name
		}
	}
	return ""
}

// sourced is a list entry and the file it came from.
type sourced struct {
	lists.Entry
	file string
}

// loadIntel reads the intel list files and directories. Paths that do not
// exist are returned in missing; entries that cannot be used are skipped
// and described, with file:line:col, in problems. An error means a file
// could not be read, and nothing was loaded.
func loadIntel(paths []string) (set *intelSet, missing, problems []string, err error) {
	set = &intelSet{}
	byName := map[string]*[nKinds][]sourced{}
	for _, p := range paths {
		files, err := intelFiles(p)
		if errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, p)
			continue
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("intel list %s: %w", p, err)
		}
		set.found = append(set.found, p)
		for _, f := range files {
			fi, err := os.Stat(f)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("intel list %s: %w", f, err)
			}
			set.files = append(set.files, fileStamp{f, fi})
			ents, err := readList(f)
			if err != nil {
				return nil, nil, nil, err
			}
			name := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
			k := byName[name]
			if k == nil {
				k = new([nKinds][]sourced)
				byName[name] = k
			}
			for _, e := range ents {
				kind, err := classify(e.Value)
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s:%d:%d: %v", f, e.Line, e.Col, err))
					continue
				}
				k[kind] = append(k[kind], sourced{e, f})
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		ents := byName[name]
		l, rejected, probs := buildList(name, ents)
		problems = append(problems, probs...)
		for kind := range nKinds {
			if len(ents[kind]) > 0 {
				set.byKind[kind] = append(set.byKind[kind], l)
				set.entries[kind] += len(ents[kind]) - rejected[kind]
			}
		}
	}
	if len(set.byKind[kindDomain]) > 1 {
		// Entries the list sets rejected were reported there.
		set.anyDomain, _ = lists.NewSuffixes(allOf(byName, kindDomain))
	}
	if len(set.byKind[kindJA4]) > 1 {
		set.anyJA4 = lists.NewStrings(allOf(byName, kindJA4))
	}
	set.skipped = len(problems)
	return set, missing, problems, nil
}

func allOf(byName map[string]*[nKinds][]sourced, kind int) []lists.Entry {
	var out []lists.Entry
	for _, k := range byName {
		for _, e := range k[kind] {
			out = append(out, e.Entry)
		}
	}
	return out
}

// intelFiles lists the files a configured path stands for: the file
// itself, or the regular files of a directory, without hidden ones (editor
// and temporary files, Kubernetes' ..data).
func intelFiles(p string) ([]string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []string{p}, nil
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		f := filepath.Join(p, e.Name())
		if fi, err := os.Stat(f); err != nil || !fi.Mode().IsRegular() {
			continue // a dangling link or a subdirectory
		}
		out = append(out, f)
	}
	return out, nil
}

func readList(path string) ([]lists.Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("intel list: %w", err)
	}
	defer f.Close()
	ents, err := lists.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("intel list %s: %w", path, err)
	}
	return ents, nil
}

// buildList builds the sets of one list; entries the sets reject are
// skipped and described.
func buildList(name string, k *[nKinds][]sourced) (l *intelList, rejected [nKinds]int, problems []string) {
	l = &intelList{name: name}
	report := func(kind int, err error) {
		ents := k[kind]
		for _, e := range unjoin(err) {
			rejected[kind]++
			var ee *lists.EntryError
			if errors.As(e, &ee) && ee.Index < len(ents) {
				s := ents[ee.Index]
				problems = append(problems, fmt.Sprintf("%s:%d:%d: %v", s.file, s.Line, s.Col, ee.Err))
			} else {
				problems = append(problems, fmt.Sprintf("intel list %s: %v", name, e))
			}
		}
	}
	plain := func(ents []sourced) []lists.Entry {
		out := make([]lists.Entry, len(ents))
		for i, e := range ents {
			out[i] = e.Entry
		}
		return out
	}
	var err error
	if ents := k[kindIP]; len(ents) > 0 {
		l.ips, err = lists.NewPrefixes(plain(ents))
		report(kindIP, err)
	}
	if ents := k[kindDomain]; len(ents) > 0 {
		l.domains, err = lists.NewSuffixes(plain(ents))
		report(kindDomain, err)
	}
	if ents := k[kindASN]; len(ents) > 0 {
		l.asns, err = lists.NewNumbers(plain(ents))
		report(kindASN, err)
	}
	if ents := k[kindJA4]; len(ents) > 0 {
		l.ja4s = lists.NewStrings(plain(ents))
	}
	return l, rejected, problems
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// classify says which kind of entry v is. IP addresses and CIDRs, AS
// numbers ("AS13335" or "13335") and JA4 fingerprints have recognisable
// shapes; everything else is a domain suffix, which the suffix set
// validates.
func classify(v string) (int, error) {
	switch {
	case isASN(v):
		return kindASN, nil
	case strings.Contains(v, "_") && !strings.Contains(v, "."):
		// Domain names with underscores (_dmarc.example.com) have dots.
		if !isJA4(v) {
			return 0, fmt.Errorf("%q is not a JA4 fingerprint (want e.g. t13d1516h2_8daaf6152771_e5627efa2ab1)", v)
		}
		return kindJA4, nil
	case strings.ContainsAny(v, ":/") || strings.Trim(v, "0123456789.") == "":
		return kindIP, nil
	}
	// No top-level domain is all digits: such an entry is an address
	// range or a mistyped address, which as a suffix would match nothing.
	name := strings.TrimSuffix(v, ".")
	if strings.Trim(name[strings.LastIndexByte(name, '.')+1:], "0123456789") == "" {
		return 0, fmt.Errorf("%q is not an IP address, CIDR or domain", v)
	}
	return kindDomain, nil
}

func isASN(v string) bool {
	if len(v) > 2 && strings.EqualFold(v[:2], "AS") {
		v = v[2:]
	}
	return v != "" && strings.Trim(v, "0123456789") == ""
}

// isJA4 checks the shape of a FoxIO JA4 fingerprint: a 10-character
// readable part (protocol, version, SNI, counts, ALPN) and two 12-digit
// hex hashes.
func isJA4(v string) bool {
	if len(v) != 36 || v[10] != '_' || v[23] != '_' {
		return false
	}
	if !strings.ContainsRune("tqd", rune(v[0])) {
		return false
	}
	for _, c := range v[1:10] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	for _, c := range v[11:23] + v[24:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
