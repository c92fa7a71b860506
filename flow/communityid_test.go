package flow

import (
	"net/netip"
	"testing"
)

func key(proto uint8, src string, sport uint16, dst string, dport uint16) Key {
	return Key{
		Src: AddrFrom(netip.MustParseAddr(src)), Dst: AddrFrom(netip.MustParseAddr(dst)),
		SrcPort: sport, DstPort: dport, Proto: proto,
	}
}

// Vectors from the Community ID specification's baseline (seed 0).
func TestCommunityID(t *testing.T) {
	tests := []struct {
		name string
		k    Key
		one  bool
		want string
	}{
		{"tcp", key(ProtoTCP, "128.232.110.120", 34855, "66.35.250.204", 80), false, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
		{"tcp reversed", key(ProtoTCP, "66.35.250.204", 80, "128.232.110.120", 34855), false, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
		{"udp", key(ProtoUDP, "192.168.1.52", 54585, "8.8.8.8", 53), false, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="},
		{"icmp echo", key(ProtoICMP, "192.168.0.89", 8, "192.168.0.1", 0), false, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="},
		{"icmp echo reply", key(ProtoICMP, "192.168.0.1", 0, "192.168.0.89", 8), false, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="},
		{"icmp6 echo", key(ProtoICMPv6, "fe80::200:86ff:fe05:80da", 135, "fe80::260:97ff:fe07:69ea", 136), false, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := CommunityID(tc.k, tc.one); got != tc.want {
				t.Errorf("CommunityID = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestCanonical(t *testing.T) {
	a := key(ProtoTCP, "10.0.0.1", 80, "10.0.0.2", 1234)
	b := a.Reverse()
	ca, sa := a.Canonical()
	cb, sb := b.Canonical()
	if ca != cb || sa == sb || sa {
		t.Errorf("canonical %v/%v swapped %v/%v", ca, cb, sa, sb)
	}
	same := key(ProtoUDP, "::1", 5, "::1", 3)
	if c, s := same.Canonical(); !s || c.SrcPort != 3 {
		t.Errorf("equal addresses: ports not ordered: %+v", c)
	}
	if v4, v6 := AddrFrom(netip.MustParseAddr("255.255.255.255")), AddrFrom(netip.MustParseAddr("::1")); v4.compare(v6) <= 0 {
		t.Errorf("::ffff:255.255.255.255 should sort after ::1")
	}
}
