// Command gen builds the gzip-compressed OUI table that package oui embeds
// from the IEEE registry CSV files shipped in Debian's ieee-data package.
//
// It keeps only the assignment prefix and the organisation name: one
// "Organisation\tPREFIX PREFIX ...\n" line per organisation, sorted, with
// its prefixes in upper-case hex (6 digits MA-L, 7 MA-M, 9 MA-S/IAB).
// Grouping by organisation keeps the blob small, since many organisations
// hold dozens of MA-L blocks, and the output is deterministic.
//
//	go run ./internal/gen -dir /usr/share/ieee-data -o oui.tsv.gz
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// sources are the registry files and the prefix length, in hex digits, of
// each. IAB is the 36-bit registry that preceded MA-S.
var sources = []struct {
	file   string
	digits int
}{
	{"oui.csv", 6},
	{"mam.csv", 7},
	{"oui36.csv", 9},
	{"iab.csv", 9},
}

func main() {
	dir := flag.String("dir", "/usr/share/ieee-data", "directory holding the ieee-data CSV files (apt-get install ieee-data)")
	out := flag.String("o", "oui.tsv.gz", "output file")
	flag.Parse()
	if err := run(*dir, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(dir, out string) error {
	seen := map[string]string{}
	for _, s := range sources {
		if err := read(filepath.Join(dir, s.file), s.digits, seen); err != nil {
			return err
		}
	}
	byName := map[string][]string{}
	for prefix, name := range seen {
		byName[name] = append(byName[name], prefix)
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	slices.Sort(names)

	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	for _, n := range names {
		p := byName[n]
		slices.Sort(p)
		fmt.Fprintf(zw, "%s\t%s\n", n, strings.Join(p, " "))
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

func read(path string, digits int, seen map[string]string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w (install Debian's ieee-data package or pass -dir)", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.LazyQuotes = true
	r.FieldsPerRecord = -1
	for first := true; ; first = false {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if first || len(rec) < 3 {
			continue // header
		}
		prefix := strings.ToUpper(strings.TrimSpace(rec[1]))
		name := strings.Join(strings.Fields(rec[2]), " ") // tabs and runs of spaces
		if len(prefix) != digits || strings.Trim(prefix, "0123456789ABCDEF") != "" || name == "" {
			line, _ := r.FieldPos(1)
			return fmt.Errorf("%s:%d: unexpected assignment %q for a %d-digit registry", path, line, rec[1], digits)
		}
		seen[prefix] = name
	}
}
