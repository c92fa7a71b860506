package inspect

import (
	"bytes"
	"testing"
)

func TestStream(t *testing.T) {
	type seg struct {
		seq  uint32
		data string
	}
	tests := []struct {
		name  string
		limit int
		segs  []seg
		want  string
	}{
		{"in order", 100, []seg{{1000, "abc"}, {1003, "def"}}, "abcdef"},
		{"retransmission", 100, []seg{{1000, "abc"}, {1000, "abc"}, {1003, "def"}}, "abcdef"},
		{"overlap keeps the new part", 100, []seg{{1000, "abc"}, {1001, "bcdef"}}, "abcdef"},
		{"out of order held", 100, []seg{{1000, "abc"}, {1006, "ghi"}, {1003, "def"}}, "abcdefghi"},
		{"two held", 100, []seg{{1000, "ab"}, {1006, "gh"}, {1004, "ef"}, {1002, "cd"}}, "abcdefgh"},
		{"limit", 4, []seg{{1000, "abc"}, {1003, "def"}}, "abcd"},
		{"sequence wrap", 100, []seg{{0xfffffffe, "ab"}, {0, "cd"}}, "abcd"},
		{"gap never filled", 100, []seg{{1000, "ab"}, {1010, "zz"}}, "ab"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s stream
			s.reset(tc.limit)
			for _, g := range tc.segs {
				s.add(g.seq, []byte(g.data))
			}
			if string(s.buf) != tc.want {
				t.Errorf("buf %q, want %q", s.buf, tc.want)
			}
		})
	}
}

func TestSOCKS(t *testing.T) {
	tests := []struct {
		name     string
		req      []byte
		n, ver   int
		target   string
		ok, more bool
	}{
		{"socks4", []byte{4, 1, 0, 80, 93, 184, 216, 34, 'u', 0}, 10, 4, "93.184.216.34:80", true, false},
		{"socks4a", append([]byte{4, 1, 1, 187, 0, 0, 0, 1, 0}, "example.com\x00"...), 21, 4, "example.com:443", true, false},
		{"socks5 domain", append([]byte{5, 1, 0, 5, 1, 0, 3, 11}, "example.com\x01\xbb"...), 21, 5, "example.com:443", true, false},
		{"socks5 ipv4 with auth", []byte{5, 2, 0, 2, 1, 1, 'u', 1, 'p', 5, 1, 0, 1, 10, 0, 0, 1, 0, 22}, 19, 5, "10.0.0.1:22", true, false},
		{"socks5 incomplete", []byte{5, 1, 0, 5, 1}, 0, 0, "", true, true},
		{"not socks", []byte("GET / HTTP/1.1\r\n"), 0, 0, "", false, false},
		{"socks5 bad request", []byte{5, 1, 0, 9, 9, 9, 9, 9}, 0, 0, "", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, v, target, ok, more := socksRequest(tc.req)
			if n != tc.n || v != tc.ver || target != tc.target || ok != tc.ok || more != tc.more {
				t.Errorf("got n=%d v=%d %q ok=%v more=%v; want n=%d v=%d %q ok=%v more=%v", n, v, target, ok, more, tc.n, tc.ver, tc.target, tc.ok, tc.more)
			}
		})
	}
	if n, more := socksReply([]byte{5, 0, 5, 0, 0, 1, 10, 0, 0, 1, 0, 80, 'H'}, 5); n != 12 || more {
		t.Errorf("socks5 reply: n=%d more=%v", n, more)
	}
	if n, more := socksReply([]byte{0, 90, 0, 0, 0, 0, 0, 0}, 4); n != 8 || more {
		t.Errorf("socks4 reply: n=%d more=%v", n, more)
	}
}

// FuzzSOCKS: no panic, lengths within the input, and a complete parse is
// stable when more bytes follow.
func FuzzSOCKS(f *testing.F) {
	f.Add([]byte{5, 1, 0, 5, 1, 0, 3, 1, 'a', 0, 80})
	f.Add([]byte{4, 1, 0, 80, 0, 0, 0, 1, 0, 'x', 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, _, target, ok, more := socksRequest(b)
		if n < 0 || n > len(b) {
			t.Fatalf("request length %d of %d bytes", n, len(b))
		}
		if ok && !more && n > 0 {
			n2, _, target2, _, _ := socksRequest(append(bytes.Clone(b), 0xff, 0xff))
			if n2 != n || target2 != target {
				t.Fatalf("parse changed with trailing bytes: %d %q vs %d %q", n, target, n2, target2)
			}
		}
		for _, v := range []int{4, 5} {
			if m, _ := socksReply(b, v); m < 0 || m > len(b) {
				t.Fatalf("reply length %d of %d bytes", m, len(b))
			}
		}
	})
}

// FuzzStream: arbitrary segments never overflow the limit and the
// in-order bytes only grow.
func FuzzStream(f *testing.F) {
	f.Add(uint32(1000), []byte("abcdef"), uint8(3), uint8(2))
	f.Fuzz(func(t *testing.T, seq uint32, data []byte, cut, shift uint8) {
		var s stream
		s.reset(64)
		c := int(cut) % (len(data) + 1)
		prev := 0
		for _, g := range []struct {
			seq uint32
			b   []byte
		}{{seq + uint32(c), data[c:]}, {seq, data[:c]}, {seq - uint32(shift), data}, {seq + uint32(shift), data}} {
			s.add(g.seq, g.b)
			if len(s.buf) > 64 || len(s.buf) < prev || len(s.held) > maxHeld {
				t.Fatalf("buf %d (was %d), held %d", len(s.buf), prev, len(s.held))
			}
			prev = len(s.buf)
		}
	})
}
