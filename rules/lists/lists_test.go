package lists

import (
	"strings"
	"testing"
)

func suffixes(t *testing.T, vs ...string) *Suffixes {
	t.Helper()
	var es []Entry
	for _, v := range vs {
		es = append(es, Entry{Value: v})
	}
	s, err := NewSuffixes(es)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSuffixSets: one walk gives what each set's Match gives.
func TestSuffixSets(t *testing.T) {
	sets := []*Suffixes{
		suffixes(t, "anydesk.com", "*.teamviewer.com"),
		suffixes(t, "com."),
		suffixes(t, "relay.anydesk.com"),
	}
	ss := NewSuffixSets(sets)
	for _, name := range []string{
		"relay.AnyDesk.com.", "anydesk.com", "notanydesk.com", "x.teamviewer.com", "teamviewer.org",
		"", ".", "com", strings.Repeat("a.", 200) + "anydesk.com",
	} {
		var want uint64
		for i, s := range sets {
			if s.Match(strings.ToLower(name)) {
				want |= 1 << i
			}
		}
		if got := ss.Match(name); got != want {
			t.Errorf("Match(%q) = %03b, want %03b", name, got, want)
		}
	}
}

// TestSuffixesMatch: on label boundaries, case-insensitive, trailing dot
// ignored, whatever the lengths of the names and suffixes.
func TestSuffixesMatch(t *testing.T) {
	long := strings.Repeat("x", 250) + ".example.org" // a suffix over 255 bytes
	s := suffixes(t, "anydesk.com", "*.glkvm.com", long)
	for _, c := range []struct {
		name string
		want bool
	}{
		{"anydesk.com", true},
		{"relay-1.AnyDesk.com.", true},
		{"notanydesk.com", false},
		{"com", false},
		{"www.glkvm.com", true},
		{"glkvm.com", true},
		{"glkvm.co", false},
		{"", false},
		{long, true},
		{"a." + long, true},
		{long[1:], false},
		{"A." + strings.ToUpper(long), true}, // too long to lower on the stack
		{strings.Repeat("b.", 150) + "anydesk.com", true},
		{strings.Repeat("b.", 150) + "anydesk.org", false},
	} {
		if got := s.Match(c.name); got != c.want {
			t.Errorf("Match(%.40q) = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestHasUpper: the eight-bytes-at-a-time test agrees with a byte loop on
// every byte value at every position.
func TestHasUpper(t *testing.T) {
	slow := func(s string) bool {
		for i := range len(s) {
			if 'A' <= s[i] && s[i] <= 'Z' {
				return true
			}
		}
		return false
	}
	for c := range 256 {
		for n := 1; n <= 19; n++ {
			for at := range n {
				b := []byte(strings.Repeat("a", n))
				b[at] = byte(c)
				if at > 0 {
					b[at-1] = 0xff // a neighbour with the high bit set
				}
				if s := string(b); hasUpper(s) != slow(s) {
					t.Fatalf("hasUpper(%q) = %v", s, hasUpper(s))
				}
			}
		}
	}
}

// TestMatchNoAlloc: matching a name with capitals lowers it on the stack;
// the suffix checks run for every name of every flow.
func TestMatchNoAlloc(t *testing.T) {
	s := suffixes(t, "anydesk.com")
	ss := NewSuffixSets([]*Suffixes{s})
	name := "Relay-7.AnyDesk.com"
	if n := testing.AllocsPerRun(100, func() {
		if !s.Match(name) || ss.Match(name) != 1 {
			t.Fatal("no match")
		}
	}); n != 0 {
		t.Errorf("%v allocations per match", n)
	}
}
