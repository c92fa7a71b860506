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
