package httpmeta

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Request
		wantErr error
	}{
		{
			name: "GET with host and agent",
			in:   "GET /download/CHANGES.bro-aux.txt HTTP/1.1\r\nUser-Agent: Wget/1.14 (darwin12.2.0)\r\nAccept: */*\r\nHost: Bro.ORG\r\nConnection: Keep-Alive\r\n\r\n",
			want: Request{Method: "GET", Version: "HTTP/1.1", Host: "bro.org", Path: "/download/CHANGES.bro-aux.txt", UserAgent: "Wget/1.14 (darwin12.2.0)"},
		},
		{
			name: "host port split and query dropped",
			in:   "POST /api/login?token=secret HTTP/1.0\r\nhost: example.com:8080\r\n\r\nbody",
			want: Request{Method: "POST", Version: "HTTP/1.0", Host: "example.com", Port: 8080, Path: "/api/login", HasQuery: true},
		},
		{
			name: "IPv6 literal host",
			in:   "GET / HTTP/1.1\r\nHost: [2001:DB8::1]:8443\r\n\r\n",
			want: Request{Method: "GET", Version: "HTTP/1.1", Host: "2001:db8::1", Port: 8443, Path: "/"},
		},
		{
			name: "CONNECT takes host and port from the request line",
			in:   "CONNECT apache.org:443 HTTP/1.1\r\nHost: apache.org:443\r\nUser-Agent: curl/7.68.0\r\n\r\n",
			want: Request{Method: "CONNECT", Version: "HTTP/1.1", Host: "apache.org", Port: 443, UserAgent: "curl/7.68.0"},
		},
		{
			name: "absolute-form overrides Host and drops userinfo",
			in:   "GET http://user:pw@Proxy.Example:3128/x/y?q=1 HTTP/1.1\r\nHost: other.example\r\n\r\n",
			want: Request{Method: "GET", Version: "HTTP/1.1", Host: "proxy.example", Port: 3128, Path: "/x/y", HasQuery: true},
		},
		{
			name: "absolute-form without path",
			in:   "GET http://a.example HTTP/1.1\r\n\r\n",
			want: Request{Method: "GET", Version: "HTTP/1.1", Host: "a.example", Path: "/"},
		},
		{
			name: "SSDP M-SEARCH, bare LF line ends",
			in:   "M-SEARCH * HTTP/1.1\nHOST: 239.255.255.250:1900\nMAN: \"ssdp:discover\"\n\n",
			want: Request{Method: "M-SEARCH", Version: "HTTP/1.1", Host: "239.255.255.250", Port: 1900, Path: "*"},
		},
		{
			name: "long path and agent truncated",
			in:   "GET /" + strings.Repeat("a", 400) + " HTTP/1.1\r\nUser-Agent: " + strings.Repeat("b", 400) + "\r\n\r\n",
			want: Request{Method: "GET", Version: "HTTP/1.1", Path: "/" + strings.Repeat("a", MaxPath-1), PathTruncated: true, UserAgent: strings.Repeat("b", MaxUserAgent)},
		},
		{
			name: "truncation does not split UTF-8",
			in:   "GET /" + strings.Repeat("a", MaxPath-2) + "é HTTP/1.1\r\n\r\n",
			want: Request{Method: "GET", Version: "HTTP/1.1", Path: "/" + strings.Repeat("a", MaxPath-2), PathTruncated: true},
		},
		{
			name:    "headers incomplete keeps what was seen",
			in:      "GET /a HTTP/1.1\r\nHost: x.example\r\nUser-Ag",
			want:    Request{Method: "GET", Version: "HTTP/1.1", Host: "x.example", Path: "/a"},
			wantErr: ErrNeedMore,
		},
		{name: "empty", in: "", wantErr: ErrNeedMore},
		{name: "method prefix", in: "GE", wantErr: ErrNeedMore},
		{name: "request line prefix", in: "GET /index.html HTTP/1", wantErr: ErrNeedMore},
		{name: "request line before LF", in: "GET / HTTP/1.1\r", wantErr: ErrNeedMore},
		{name: "TLS ClientHello", in: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", wantErr: ErrNotHTTP},
		{name: "SSH banner", in: "SSH-2.0-OpenSSH_9.6\r\n", wantErr: ErrNotHTTP},
		{name: "SMTP-like lowercase", in: "ehlo example.com\r\n", wantErr: ErrNotHTTP},
		{name: "wrong version", in: "GET / FTP/1.0\r\n\r\n", wantErr: ErrNotHTTP},
		{name: "HTTP/0.9 simple request", in: "GET /\r\n", wantErr: ErrNotHTTP},
		{name: "method too long", in: strings.Repeat("A", 40) + " / HTTP/1.1\r\n", wantErr: ErrNotHTTP},
		{
			name:    "header block over the bound",
			in:      "GET / HTTP/1.1\r\nHost: big.example\r\nCookie: " + strings.Repeat("c", MaxHeaderBytes),
			want:    Request{Method: "GET", Version: "HTTP/1.1", Host: "big.example", Path: "/"},
			wantErr: ErrTooLong,
		},
		{name: "request line over the bound", in: "GET /" + strings.Repeat("a", MaxHeaderBytes), wantErr: ErrNotHTTP},
	}
	var r Request
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ParseRequest([]byte(tt.in), &r)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("ParseRequest error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (r.HeaderLen < 2 || tt.in[r.HeaderLen-1] != '\n' || tt.in[r.HeaderLen-2] != '\n' && tt.in[r.HeaderLen-3:r.HeaderLen] != "\n\r\n") {
				t.Errorf("HeaderLen %d does not end at the empty line", r.HeaderLen)
			}
			got := r
			got.HeaderLen = 0
			if got != tt.want {
				t.Errorf("ParseRequest =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// TestParseRequestEveryPrefix checks that each proper prefix of a request
// asks for more bytes rather than rejecting the flow.
func TestParseRequestEveryPrefix(t *testing.T) {
	full := "CONNECT apache.org:443 HTTP/1.1\r\nHost: apache.org:443\r\n\r\n"
	var r Request
	for n := range len(full) {
		if err := ParseRequest([]byte(full[:n]), &r); !errors.Is(err, ErrNeedMore) {
			t.Errorf("prefix %q: %v, want ErrNeedMore", full[:n], err)
		}
	}
	if err := ParseRequest([]byte(full), &r); err != nil {
		t.Errorf("full request: %v", err)
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Response
		wantErr error
	}{
		{"200", "HTTP/1.1 200 OK\r\n", Response{"HTTP/1.1", 200}, nil},
		{"no reason phrase", "HTTP/1.0 404\r\n", Response{"HTTP/1.0", 404}, nil},
		{"CONNECT established", "HTTP/1.1 200 Connection established\r\n\r\n", Response{"HTTP/1.1", 200}, nil},
		{"prefix", "HTTP/1.1 20", Response{}, ErrNeedMore},
		{"status without terminator", "HTTP/1.1 200", Response{}, ErrNeedMore},
		{"empty", "", Response{}, ErrNeedMore},
		{"not HTTP", "SSH-2.0-x\r\n", Response{}, ErrNotHTTP},
		{"letters in status", "HTTP/1.1 2x0 OK\r\n", Response{}, ErrNotHTTP},
		{"four-digit status", "HTTP/1.1 2000 OK\r\n", Response{}, ErrNotHTTP},
	}
	var r Response
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ParseResponse([]byte(tt.in), &r)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("ParseResponse error = %v, want %v", err, tt.wantErr)
			}
			if r != tt.want {
				t.Errorf("ParseResponse = %+v, want %+v", r, tt.want)
			}
		})
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET /x?y HTTP/1.1\r\nHost: a.example:80\r\nUser-Agent: u\r\n\r\n",
		"CONNECT [::1]:443 HTTP/1.1\r\n\r\n",
		"GET http://u@h:1/p HTTP/1.0\n\n",
		"HTTP/1.1 200 OK\r\n",
	} {
		f.Add([]byte(s))
	}
	var req Request
	var resp Response
	f.Fuzz(func(t *testing.T, b []byte) {
		err := ParseRequest(b, &req)
		if err != nil && !errors.Is(err, ErrNeedMore) && !errors.Is(err, ErrNotHTTP) && !errors.Is(err, ErrTooLong) {
			t.Fatalf("unexpected error kind %v", err)
		}
		if len(req.Path) > MaxPath || len(req.UserAgent) > MaxUserAgent || len(req.Host) > MaxHost {
			t.Fatalf("bound exceeded: %+v", req)
		}
		if err == nil {
			if req.Method == "" || !strings.HasPrefix(req.Version, "HTTP/") {
				t.Fatalf("accepted without method or version: %+v", req)
			}
			// A flow must never be rejected before its request is complete.
			for _, n := range []int{req.HeaderLen / 2, req.HeaderLen - 1} {
				if perr := ParseRequest(b[:n], &req); !errors.Is(perr, ErrNeedMore) {
					t.Fatalf("prefix of %d bytes of an accepted request: %v", n, perr)
				}
			}
		}
		if err := ParseResponse(b, &resp); err == nil && (resp.StatusCode < 0 || resp.StatusCode > 999) {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}

func BenchmarkParseRequest(b *testing.B) {
	req := []byte("GET /download/CHANGES.bro-aux.txt HTTP/1.1\r\nUser-Agent: Wget/1.14 (darwin12.2.0)\r\nAccept: */*\r\nHost: bro.org\r\nConnection: Keep-Alive\r\n\r\n")
	// Baseline: the standard library's full parser on the same request.
	b.Run("net/http-baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(req))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ParseRequest", func(b *testing.B) {
		var r Request
		b.ReportAllocs()
		for b.Loop() {
			if err := ParseRequest(req, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
