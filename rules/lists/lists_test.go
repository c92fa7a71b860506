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
