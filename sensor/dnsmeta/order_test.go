package dnsmeta

import (
	"testing"
	"time"
)

// TestLookupOutOfOrder: records are named when they close, with their
// start time, so lookups do not come in start-time order. A flow that
// started after the answer expired must not erase the answer for a longer
// flow that started while it was valid and closes later.
func TestLookupOutOfOrder(t *testing.T) {
	c := NewCache(Config{})
	c.Add(alice, resolver, answerMsg("a.example", 60, "192.0.2.80"), testEpoch)
	// A short flow started at +5 min (the client kept using the address
	// past the TTL) closes first.
	if name, ok := c.Lookup(alice, cdn, testEpoch.Add(5*time.Minute)); ok {
		t.Errorf("flow at +5 min named %q after the TTL", name)
	}
	// A long flow started at +1 s closes next.
	if name, ok := c.Lookup(alice, cdn, testEpoch.Add(time.Second)); !ok || name != "a.example" {
		t.Errorf("flow started at +1 s, within the TTL, named %q, %v; want a.example", name, ok)
	}
}
