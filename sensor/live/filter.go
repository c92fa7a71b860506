//go:build !pcap

package live

import (
	"fmt"

	"golang.org/x/net/bpf"
)

const pcapBuild = false

// CompileFilter compiles a capture filter for the interface: `tcpdump
// -ddd` output only, as this build has no libpcap (see -tags pcap).
func CompileFilter(expr, _ string) ([]bpf.RawInstruction, error) {
	if expr == "" {
		return nil, nil
	}
	prog, ok, err := parseDDD(expr)
	if !ok {
		return nil, fmt.Errorf("%q: %w", expr, ErrFilterSyntax)
	}
	return prog, err
}
