//go:build pcap

package live

import (
	"fmt"

	"github.com/gopacket/gopacket/pcap"
	"golang.org/x/net/bpf"
)

const pcapBuild = true

// CompileFilter compiles a capture filter for the interface: `tcpdump
// -ddd` output, or a tcpdump expression that libpcap compiles.
func CompileFilter(expr, iface string) ([]bpf.RawInstruction, error) {
	if expr == "" {
		return nil, nil
	}
	if prog, ok, err := parseDDD(expr); ok {
		return prog, err
	}
	lt := linkType(iface)
	ins, err := pcap.CompileBPFFilter(lt, 1<<16, expr)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", expr, err)
	}
	out := make([]bpf.RawInstruction, len(ins))
	for i, in := range ins {
		out[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return out, nil
}
