package egress

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// Sessions closed at the same time (an OpenVPN server restarting: every
// client leaves the status file in one read) tie in eviction order. A full
// store must still drop about an eighth, not every session, and must not
// stay above its bound.
func TestEvictTies(t *testing.T) {
	t.Run("all tied", func(t *testing.T) {
		s := NewStore(StoreConfig{MaxSessions: 16})
		var batch []Session
		for i := range 17 {
			batch = append(batch, sess(fmt.Sprintf("10.0.0.%d", i+1), "192.0.2.1:1", "p", at(10, 0), at(11, 0), false))
		}
		s.Add(batch...)
		if n := s.Len(); n < 14 || n > 16 {
			t.Errorf("Len %d after evicting from 17 tied sessions, want 14..16", n)
		}
	})
	t.Run("ties above the oldest", func(t *testing.T) {
		s := NewStore(StoreConfig{MaxSessions: 16})
		batch := []Session{sess("10.0.1.1", "192.0.2.1:1", "p", at(9, 0), at(9, 30), false)}
		for i := range 20 {
			batch = append(batch, sess(fmt.Sprintf("10.0.0.%d", i+1), "192.0.2.1:1", "p", at(10, 0), at(11, 0), false))
		}
		s.Add(batch...)
		if n := s.Len(); n < 14 || n > 16 {
			t.Errorf("Len %d with MaxSessions 16, want 14..16", n)
		}
		if _, ok := s.Lookup(batch[0].Inner, at(9, 10)); ok {
			t.Error("the session that ended longest ago was kept")
		}
	})
	t.Run("active sessions started together", func(t *testing.T) {
		s := NewStore(StoreConfig{MaxSessions: 16})
		for i := range 17 {
			s.Add(sess(fmt.Sprintf("10.0.0.%d", i+1), "192.0.2.1:1", "p", at(10, 0), time.Time{}, true))
		}
		if n := s.Len(); n < 14 {
			t.Errorf("Len %d: a full store of sessions started together was emptied, want 14..16", n)
		}
	})
}

func TestEvictSmallBound(t *testing.T) {
	s := NewStore(StoreConfig{MaxSessions: 1})
	s.Add(sess("10.0.0.1", "192.0.2.1:1", "p", at(10, 0), at(10, 5), false))
	s.Add(sess("10.0.0.2", "192.0.2.1:1", "p", at(10, 10), at(10, 15), false))
	if n := s.Len(); n != 1 {
		t.Errorf("Len %d with MaxSessions 1", n)
	}
	if _, ok := s.Lookup(netipAddr("10.0.0.2"), at(10, 12)); !ok {
		t.Error("the newest session was evicted")
	}
}

func netipAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
