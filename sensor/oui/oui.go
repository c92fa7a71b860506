// Package oui owns the IEEE MAC address block registry: which organisation
// a MAC address was assigned to, and whether the address is locally
// administered (as randomized MACs on phones and laptops are).
//
// The table is generated from Debian's ieee-data package (the IEEE
// Registration Authority's public MA-L, MA-M, MA-S and IAB listings) by
// `go generate`, which needs `apt-get install ieee-data`; see README.md for
// the source and licence. Only the assignment prefix and the organisation
// name are kept, gzip-compressed and embedded. The table is decompressed
// once, on the first lookup.
package oui

//go:generate go run ./internal/gen -dir /usr/share/ieee-data -o oui.tsv.gz

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

//go:embed oui.tsv.gz
var blob []byte

// Prefix lengths of the registries, longest first: MA-S and IAB (36 bits),
// MA-M (28 bits), MA-L (24 bits). A longer assignment is carved out of a
// shorter one registered to the IEEE itself, so the longest match wins.
var prefixBits = [...]uint{36, 28, 24}

// table is the decoded registry. key packs the prefix length above the
// 48-bit address space so one map holds all three registries.
type table struct {
	names  []string
	prefix map[uint64]uint32 // key(prefix, bits) -> index into names
}

func key(mac uint64, bits uint) uint64 { return mac>>(48-bits) | uint64(bits)<<48 }

// load is the one-time decompression; the registry is immutable after it.
var load = sync.OnceValue(func() *table {
	t, err := parse(blob)
	if err != nil {
		// The blob is generated and embedded at build time, so this is a
		// build defect, not an input error.
		panic(fmt.Sprintf("oui: embedded table is corrupt: %v", err))
	}
	return t
})

// parse reads the generated format: gzip of "Organisation\tPREFIX PREFIX...\n"
// lines, prefixes in upper-case hex of 6, 7 or 9 digits.
func parse(gz []byte) (*table, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	t := &table{prefix: make(map[uint64]uint32, 47000)}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		name, prefixes, ok := strings.Cut(sc.Text(), "\t")
		if !ok || name == "" {
			return nil, fmt.Errorf("line %d: want organisation<TAB>prefixes", line)
		}
		idx := uint32(len(t.names))
		t.names = append(t.names, name)
		for p := range strings.FieldsSeq(prefixes) {
			v, err := strconv.ParseUint(p, 16, 64)
			bits := uint(len(p)) * 4
			if err != nil || (bits != 24 && bits != 28 && bits != 36) {
				return nil, fmt.Errorf("line %d: bad prefix %q", line, p)
			}
			t.prefix[v|uint64(bits)<<48] = idx
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// Lookup returns the organisation the IEEE assigned mac's block to, using
// the longest registered prefix. It does not allocate.
func Lookup(mac [6]byte) (vendor string, ok bool) {
	t := load()
	v := uint64(mac[0])<<40 | uint64(mac[1])<<32 | uint64(mac[2])<<24 |
		uint64(mac[3])<<16 | uint64(mac[4])<<8 | uint64(mac[5])
	for _, bits := range prefixBits {
		if i, ok := t.prefix[key(v, bits)]; ok {
			return t.names[i], true
		}
	}
	return "", false
}

// IsLocallyAdministered reports whether mac has the U/L bit set: it was not
// assigned by a vendor but chosen locally, which today nearly always means
// a randomized (private) address on a phone, laptop or VM.
func IsLocallyAdministered(mac [6]byte) bool { return mac[0]&0x02 != 0 }

// IsMulticast reports whether mac is a group address; such addresses never
// identify a device.
func IsMulticast(mac [6]byte) bool { return mac[0]&0x01 != 0 }

// Len is the number of registered prefixes in the embedded table.
func Len() int { return len(load().prefix) }
