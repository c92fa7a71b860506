package lru

import "testing"

func TestLRU(t *testing.T) {
	l := New[string, int](2)
	l.Put("a", 1)
	l.Put("b", 2)
	if v, ok := l.Get("a"); !ok || *v != 1 { // a becomes most recent
		t.Fatalf("Get(a) = %v %v", v, ok)
	}
	if k, ev := l.Put("c", 3); !ev || k != "b" {
		t.Errorf("Put(c) evicted %q %v, want b", k, ev)
	}
	if _, ok := l.Peek("b"); ok {
		t.Error("b still present")
	}
	if _, ev := l.Put("a", 10); ev { // update, no eviction
		t.Error("updating a evicted")
	}
	if v, _ := l.Peek("a"); *v != 10 {
		t.Errorf("a = %d", *v)
	}
	l.Delete("a")
	if l.Len() != 1 || l.Evictions() != 1 {
		t.Errorf("len %d evictions %d", l.Len(), l.Evictions())
	}
	if _, ev := l.Put("d", 4); ev { // the deleted slot is reused
		t.Error("Put after Delete evicted")
	}
	if n := testing.AllocsPerRun(100, func() { l.Put("d", 5); l.Get("c") }); n != 0 {
		t.Errorf("%.0f allocs", n)
	}
}

// TestGetIf: an entry GetIf does not use keeps its place, so it is evicted
// first; one it uses becomes the most recent.
func TestGetIf(t *testing.T) {
	l := New[string, int](2)
	l.Put("a", 1)
	l.Put("b", 2)
	if l.GetIf("a", func(v *int) bool { return *v > 1 }) {
		t.Error("GetIf(a) used a refused entry")
	}
	if k, _ := l.Put("c", 3); k != "a" {
		t.Errorf("Put(c) evicted %q, want a (GetIf left it least recent)", k)
	}
	if !l.GetIf("b", func(v *int) bool { return *v == 2 }) || l.GetIf("x", func(*int) bool { return true }) {
		t.Error("GetIf(b) or GetIf(x) wrong")
	}
	if k, _ := l.Put("d", 4); k != "c" {
		t.Errorf("Put(d) evicted %q, want c (GetIf made b the most recent)", k)
	}
}
