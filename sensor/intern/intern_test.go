package intern

import (
	"testing"
	"unsafe"
)

func TestBytes(t *testing.T) {
	tests := []struct {
		name  string
		table *Table
	}{
		{"zero", &Table{}},
		{"small", NewTable(3)}, // rounded up to 4 slots: collisions evict
		{"nil", nil},
	}
	words := []string{"example.com", "api.example.com", "", "10.0.0.1", "EXAMPLE.com", "example.com"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range 3 {
				for _, w := range words {
					if got := tc.table.Bytes([]byte(w)); got != w {
						t.Fatalf("Bytes(%q) = %q", w, got)
					}
				}
			}
		})
	}
}

func TestBytesShares(t *testing.T) {
	tab := NewTable(DefaultSize)
	a := tab.Bytes([]byte("login.example.com"))
	b := []byte("login.example.com")
	var c string
	if n := testing.AllocsPerRun(100, func() { c = tab.Bytes(b) }); n != 0 {
		t.Errorf("a repeat allocates %v times", n)
	}
	if unsafe.StringData(a) != unsafe.StringData(c) {
		t.Error("a repeat returned a new string")
	}
	b[0] = 'L' // the table holds its own copy
	if a != "login.example.com" {
		t.Errorf("cached string changed to %q", a)
	}
}
