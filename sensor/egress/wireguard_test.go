package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// fakeWG is an in-memory WireGuard interface.
type fakeWG struct {
	mu    sync.Mutex
	peers []wgtypes.Peer
	err   error
	reads int
}

func (f *fakeWG) Device(name string) (*wgtypes.Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.err != nil {
		return nil, f.err
	}
	return &wgtypes.Device{Name: name, Peers: append([]wgtypes.Peer(nil), f.peers...)}, nil
}

func (f *fakeWG) set(peers ...wgtypes.Peer) {
	f.mu.Lock()
	f.peers = peers
	f.mu.Unlock()
}

func ipnet(s string) net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return *n
}

func udp(s string) *net.UDPAddr { return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

func key(t *testing.T) wgtypes.Key {
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey()
}

func TestWireGuardPoll(t *testing.T) {
	laptop, idle := key(t), key(t)
	allowed := []net.IPNet{ipnet("10.99.0.2/32"), ipnet("fd00:99::2/128"), ipnet("10.50.0.0/24")}
	dev := &fakeWG{}
	store := NewStore(StoreConfig{Skew: -1})
	w := NewWireGuard(dev, "wg0", store, nil)
	inner, inner6 := netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("fd00:99::2")
	lookup := func(a netip.Addr, t time.Time) string {
		s, ok := store.Lookup(a, t)
		if !ok {
			return ""
		}
		return s.Outer.String()
	}

	// 10:00: the laptop shook hands at 09:58 from its home address; the
	// idle peer has a configured endpoint but never connected.
	dev.set(
		wgtypes.Peer{PublicKey: laptop, Endpoint: udp("203.0.113.50:51820"), LastHandshakeTime: at(9, 58), AllowedIPs: allowed},
		wgtypes.Peer{PublicKey: idle, Endpoint: udp("198.51.100.1:51820"), AllowedIPs: []net.IPNet{ipnet("10.99.0.3/32")}},
	)
	if err := w.Poll(at(10, 0)); err != nil {
		t.Fatal(err)
	}
	if store.Len() != 2 {
		t.Fatalf("%d sessions after the first poll, want 2 (IPv4 and IPv6 host addresses; no subnet, no idle peer)", store.Len())
	}
	s, _ := store.Lookup(inner, at(9, 59))
	if s.Peer != laptop.String() || s.Source != SourceWireGuard || !s.FirstSeen.Equal(at(9, 58)) || !s.Active {
		t.Errorf("session %+v", s)
	}
	if got := lookup(inner6, at(9, 59)); got != "203.0.113.50:51820" {
		t.Errorf("IPv6 inner address: %q", got)
	}

	// 10:01: a new handshake updates last_seen only.
	dev.set(wgtypes.Peer{PublicKey: laptop, Endpoint: udp("203.0.113.50:51820"), LastHandshakeTime: at(10, 0).Add(30 * time.Second), AllowedIPs: allowed})
	if err := w.Poll(at(10, 1)); err != nil {
		t.Fatal(err)
	}
	if s, _ := store.Lookup(inner, at(10, 1)); store.Len() != 2 || !s.LastSeen.Equal(at(10, 0).Add(30*time.Second)) {
		t.Errorf("after a handshake: %d sessions, last_seen %s", store.Len(), s.LastSeen)
	}

	// 10:02: the laptop roamed (a handshake at 10:01:40 from the new address).
	dev.set(wgtypes.Peer{PublicKey: laptop, Endpoint: udp("198.51.100.77:4500"), LastHandshakeTime: at(10, 1).Add(40 * time.Second), AllowedIPs: allowed})
	if err := w.Poll(at(10, 2)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{at(10, 1), "203.0.113.50:51820"},
		{at(10, 1).Add(50 * time.Second), "198.51.100.77:4500"},
		{at(11, 0), "198.51.100.77:4500"},
	} {
		if got := lookup(inner, tc.t); got != tc.want {
			t.Errorf("after roaming, at %s: %q, want %q", tc.t.Format(time.TimeOnly), got, tc.want)
		}
	}

	// 10:03: the peer is removed from the interface.
	dev.set()
	if err := w.Poll(at(10, 3)); err != nil {
		t.Fatal(err)
	}
	if got := lookup(inner, at(10, 2)); got != "198.51.100.77:4500" {
		t.Errorf("at the last poll that showed the peer: %q", got)
	}
	if got := lookup(inner, at(10, 4)); got != "" {
		t.Errorf("after the peer was removed: %q", got)
	}
	if st := w.Stats(); st.Polls != 4 || st.Sessions != 4 || st.Peers != 0 {
		t.Errorf("stats %+v", st)
	}

	dev.err = os.ErrNotExist
	if err := w.Poll(at(10, 4)); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "wg0") {
		t.Errorf("Poll of a missing interface: %v", err)
	}
}

func TestWireGuardRunPolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dev := &fakeWG{}
		w := NewWireGuard(dev, "wg0", NewStore(StoreConfig{}), nil)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- w.Run(ctx, 5*time.Second) }()
		time.Sleep(12 * time.Second)
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if dev.reads != 3 { // at 0, 5 and 10 seconds
			t.Errorf("%d polls in 12s at a 5s interval, want 3", dev.reads)
		}
	})
}
