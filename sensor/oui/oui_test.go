package oui

import (
	"testing"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		name   string
		mac    [6]byte
		vendor string
		ok     bool
	}{
		{"raspberry pi 4 (MA-L DC:A6:32)", [6]byte{0xdc, 0xa6, 0x32, 0x01, 0x02, 0x03}, "Raspberry Pi Trading Ltd", true},
		{"raspberry pi 3 (MA-L B8:27:EB)", [6]byte{0xb8, 0x27, 0xeb, 0x11, 0x22, 0x33}, "Raspberry Pi Foundation", true},
		{"raspberry pi 400 (MA-L E4:5F:01)", [6]byte{0xe4, 0x5f, 0x01, 0xaa, 0xbb, 0xcc}, "Raspberry Pi Trading Ltd", true},
		{"raspberry pi (MA-L 28:CD:C1)", [6]byte{0x28, 0xcd, 0xc1, 0, 0, 1}, "Raspberry Pi Trading Ltd", true},
		{"MA-M wins over the IEEE-held MA-L", [6]byte{0x20, 0x85, 0x93, 0xb0, 0x00, 0x01}, "IOG Products LLC", true},
		{"sibling MA-M block in the same MA-L", [6]byte{0x20, 0x85, 0x93, 0x00, 0x00, 0x01}, "Hemina Spa", true},
		{"MA-S wins over the IEEE-held MA-L", [6]byte{0x70, 0xb3, 0xd5, 0xf2, 0xf0, 0x01}, "TELEPLATFORMS", true},
		{"IAB", [6]byte{0x00, 0x50, 0xc2, 0x7d, 0x50, 0x01}, "DEUTA-WERKE GmbH", true},
		{"unassigned locally administered", [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := Lookup(tt.mac)
			if v != tt.vendor || ok != tt.ok {
				t.Errorf("Lookup(% x) = %q, %v; want %q, %v", tt.mac, v, ok, tt.vendor, tt.ok)
			}
		})
	}
}

func TestTableSize(t *testing.T) {
	// A regenerated table that lost a registry would shrink by thousands.
	if n := Len(); n < 40000 {
		t.Errorf("embedded table has %d prefixes, want >= 40000 (MA-L+MA-M+MA-S+IAB)", n)
	}
	if len(blob) > 600<<10 {
		t.Errorf("embedded blob is %d bytes, want <= 600 KiB", len(blob))
	}
}

func TestIsLocallyAdministered(t *testing.T) {
	tests := []struct {
		name string
		mac  [6]byte
		want bool
	}{
		{"vendor assigned", [6]byte{0xdc, 0xa6, 0x32, 1, 2, 3}, false},
		{"android/ios/windows randomized", [6]byte{0xda, 0xa1, 0x19, 1, 2, 3}, true},
		{"x2 pattern", [6]byte{0x02, 0, 0, 0, 0, 1}, true},
		{"x6 pattern", [6]byte{0x36, 0, 0, 0, 0, 1}, true},
		{"multicast, not local", [6]byte{0x01, 0x00, 0x5e, 0, 0, 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsLocallyAdministered(tt.mac); got != tt.want {
				t.Errorf("IsLocallyAdministered(% x) = %v, want %v", tt.mac, got, tt.want)
			}
		})
	}
	if !IsMulticast([6]byte{0x01, 0x00, 0x5e, 0, 0, 1}) || IsMulticast([6]byte{0xdc, 0xa6, 0x32, 1, 2, 3}) {
		t.Error("IsMulticast wrong")
	}
}

func TestLookupAllocs(t *testing.T) {
	Lookup([6]byte{}) // decompress outside the measurement
	macs := [][6]byte{{0xdc, 0xa6, 0x32, 1, 2, 3}, {0x70, 0xb3, 0xd5, 0xf2, 0xf0, 1}, {0x02, 0, 0, 0, 0, 1}}
	allocs := testing.AllocsPerRun(1000, func() {
		for _, m := range macs {
			Lookup(m)
		}
	})
	if allocs != 0 {
		t.Errorf("Lookup allocates %.1f times per run, want 0", allocs)
	}
}

// BenchmarkLookup reports a hit on each registry and a miss (which probes
// all three prefix lengths); BenchmarkMapBaseline is the single map probe
// the lookup is built from, to read the result as a ratio.
func BenchmarkLookup(b *testing.B) {
	cases := []struct {
		name string
		mac  [6]byte
	}{
		{"MA-L", [6]byte{0xdc, 0xa6, 0x32, 1, 2, 3}},
		{"MA-S", [6]byte{0x70, 0xb3, 0xd5, 0xf2, 0xf0, 1}},
		{"miss", [6]byte{0x02, 0, 0, 0, 0, 1}},
	}
	Lookup([6]byte{})
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Lookup(c.mac)
			}
		})
	}
}

func BenchmarkMapBaseline(b *testing.B) {
	t := load()
	k := key(0xdca632010203, 24)
	for b.Loop() {
		_ = t.prefix[k]
	}
}

func BenchmarkDecompress(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parse(blob); err != nil {
			b.Fatal(err)
		}
	}
}
