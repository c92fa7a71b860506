package sshmeta

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Ident
		wantN   int
		wantErr error
	}{
		{"OpenSSH with comment", "SSH-2.0-OpenSSH_9.6p1 Ubuntu-3\r\n\x00\x00\x05\xdc", Ident{"2.0", "OpenSSH_9.6p1", "Ubuntu-3"}, 32, nil},
		{"no comment", "SSH-2.0-OpenSSH_5.3\r\n", Ident{"2.0", "OpenSSH_5.3", ""}, 21, nil},
		{"dash in software", "SSH-2.0-APACHE-SSHD-2.5.0\r\n", Ident{"2.0", "APACHE-SSHD-2.5.0", ""}, 27, nil},
		{"SSH-1 compatible server, bare LF", "SSH-1.99-Cisco-1.25\n", Ident{"1.99", "Cisco-1.25", ""}, 20, nil},
		{"comments with spaces", "SSH-2.0-dropbear_2022.83 built for x y\r\n", Ident{"2.0", "dropbear_2022.83", "built for x y"}, 40, nil},
		{"server preamble lines", "Welcome\r\nauthorised use only\r\nSSH-2.0-srv\r\n", Ident{"2.0", "srv", ""}, 43, nil},
		{"empty", "", Ident{}, 0, ErrNeedMore},
		{"prefix", "SS", Ident{}, 0, ErrNeedMore},
		{"line without end", "SSH-2.0-OpenSSH_9", Ident{}, 0, ErrNeedMore},
		{"preamble line without end", "Welcome to", Ident{}, 0, ErrNeedMore},
		{"TLS", "\x16\x03\x01\x00\xa5\x01\x00", Ident{}, 0, ErrNotSSH},
		{"HTTP response with many lines", "HTTP/1.1 200 OK\r\nA: b\r\nC: d\r\nE: f\r\nG: h\r\n", Ident{}, 0, ErrNotSSH},
		{"too many preamble bytes", strings.Repeat("x", 1100), Ident{}, 0, ErrNotSSH},
		{"line over 255 bytes", "SSH-2.0-" + strings.Repeat("a", 300), Ident{}, 0, ErrMalformed},
		{"line of exactly 255 bytes", "SSH-2.0-" + strings.Repeat("a", 245) + "\r\n", Ident{"2.0", strings.Repeat("a", 245), ""}, 255, nil},
		{"line of 256 bytes", "SSH-2.0-" + strings.Repeat("a", 246) + "\r\n", Ident{}, 0, ErrMalformed},
		{"control byte", "SSH-2.0-Open\x01SSH\r\n", Ident{}, 0, ErrMalformed},
		{"no software", "SSH-2.0-\r\n", Ident{}, 0, ErrMalformed},
		{"bad protocol version", "SSH-two-x\r\n", Ident{}, 0, ErrMalformed},
		{"no dash after version", "SSH-2.0\r\n", Ident{}, 0, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var id Ident
			n, err := Parse([]byte(tt.in), &id)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Parse error = %v, want %v", err, tt.wantErr)
			}
			if id != tt.want || n != tt.wantN {
				t.Errorf("Parse = %+v, %d; want %+v, %d", id, n, tt.want, tt.wantN)
			}
			if err == nil && !strings.Contains(tt.in, id.String()+"\n") && !strings.Contains(tt.in, id.String()+"\r\n") {
				t.Errorf("String() = %q not in input", id.String())
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3\r\n", "banner\r\nSSH-1.99-x\n", "SSH-", "\x16\x03\x01"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var id Ident
		n, err := Parse(b, &id)
		if err != nil {
			if !errors.Is(err, ErrNeedMore) && !errors.Is(err, ErrNotSSH) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if id != (Ident{}) || n != 0 {
				t.Fatalf("error %v with result %+v, %d", err, id, n)
			}
			return
		}
		if n <= 0 || n > len(b) || b[n-1] != '\n' || len(id.String()) > MaxLine-1 {
			t.Fatalf("Parse = %+v, %d for %d bytes", id, n, len(b))
		}
	})
}

func BenchmarkParse(b *testing.B) {
	line := []byte("SSH-2.0-OpenSSH_9.6p1 Ubuntu-3\r\n\x00\x00\x05\xdc\x07\x14")
	// Baseline: the cheapest possible check, a prefix compare and line scan.
	b.Run("scan-baseline", func(b *testing.B) {
		for b.Loop() {
			if !strings.HasPrefix(string(line), "SSH-") || strings.IndexByte(string(line), '\n') < 0 {
				b.Fatal("no line")
			}
		}
	})
	b.Run("Parse", func(b *testing.B) {
		var id Ident
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Parse(line, &id); err != nil {
				b.Fatal(err)
			}
		}
	})
}
