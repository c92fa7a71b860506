package live

import (
	"errors"
	"testing"

	"golang.org/x/net/bpf"
)

func TestParseDDD(t *testing.T) {
	tests := []struct {
		name, in string
		want     []bpf.RawInstruction
		err      bool
	}{
		{"empty", "", nil, false},
		{"tcpdump -ddd ip", "4\n40 0 0 12\n21 0 1 2048\n6 0 0 262144\n6 0 0 0\n", []bpf.RawInstruction{
			{Op: 40, K: 12}, {Op: 21, Jt: 0, Jf: 1, K: 2048}, {Op: 6, K: 262144}, {Op: 6}}, false},
		{"commas", "2,6 0 0 65535,6 0 0 0", []bpf.RawInstruction{{Op: 6, K: 65535}, {Op: 6}}, false},
		{"count mismatch", "3,6 0 0 65535,6 0 0 0", nil, true},
		{"three numbers", "1,6 0 0", nil, true},
		{"out of range", "1,6 0 300 0", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CompileFilter(tc.in, "lo")
			if (err != nil) != tc.err {
				t.Fatalf("error %v, want error %v", err, tc.err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("instruction %d: %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestFilterExpressionNeedsPcap(t *testing.T) {
	_, err := CompileFilter("tcp port 443", "lo")
	if pcapBuild {
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if !errors.Is(err, ErrFilterSyntax) {
		t.Fatalf("error %v, want ErrFilterSyntax", err)
	}
}
