package rules

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
)

// benchSet writes 50 rules: 40 guarded by protocol/port equality, 5 on a
// 100k-entry domain list and 5 on a 100k-entry CIDR list.
func benchSet(b *testing.B, n int) (*Set, *Schema) {
	b.Helper()
	dir := b.TempDir()
	var doms, cidrs strings.Builder
	for i := range 100000 {
		fmt.Fprintf(&doms, "d%d.example%d.com\n", i, i%97)
		fmt.Fprintf(&cidrs, "%d.%d.%d.0/24\n", 11+i%200, (i/200)%256, i%256)
	}
	os.WriteFile(filepath.Join(dir, "doms.txt"), []byte(doms.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "cidrs.txt"), []byte(cidrs.String()), 0o644)
	var y strings.Builder
	y.WriteString("- list: doms\n  file: doms.txt\n- list: cidrs\n  file: cidrs.txt\n")
	for i := range n {
		var m string
		switch {
		case i%10 == 8:
			m = `dns_suffix_in(tls.sni, doms)`
		case i%10 == 9:
			m = fmt.Sprintf(`cidr_in(dst.ip, cidrs) && dst.port == %d`, 1000+i)
		default:
			m = fmt.Sprintf(`proto == "tcp" && dst.port in [%d, %d] && src.bytes > 1000`, 5000+i, 6000+i)
		}
		fmt.Fprintf(&y, "- rule: r%d\n  title: r%d\n  severity: low\n  category: remote_access\n  match: %s\n", i, i, m)
	}
	os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(y.String()), 0o644)
	s := testSchema(b)
	set, err := Load([]string{dir}, Options{Schema: s})
	if err != nil {
		b.Fatal(err)
	}
	return set, s
}

func benchInputs(s *Schema) []*Input {
	var out []*Input
	for i := range 256 {
		rec := &flow.Record{
			Proto: "tcp", Start: time.Unix(int64(i), 0), End: time.Unix(int64(i), 0),
			Src: flow.Endpoint{IP: netip.AddrFrom4([4]byte{10, 0, byte(i), 1}), Port: 50000, Bytes: 5000},
			Dst: flow.Endpoint{IP: netip.AddrFrom4([4]byte{93, byte(i), 1, 1}), Port: []uint16{443, 80, 53, 5001}[i%4]},
		}
		if i%4 == 3 {
			rec.Proto = "udp"
		}
		if i%2 == 0 {
			rec.TLS = &flow.TLS{SNI: fmt.Sprintf("www.site%d.org", i)}
		}
		in := &Input{Record: rec}
		out = append(out, in)
	}
	return out
}

// BenchmarkEvaluate reports the per-flow cost of 50 stateless rules over
// flows that mostly match nothing, the common case; the baseline is the
// same engine with one rule.
func BenchmarkEvaluate(b *testing.B) {
	for _, n := range []int{1, 50} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			set, s := benchSet(b, n)
			e := NewEngine(set, EngineConfig{})
			ins := benchInputs(s)
			alerts := 0
			emit := func(*Alert) { alerts++ }
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				e.Evaluate(ins[i%len(ins)], emit)
			}
			b.ReportMetric(float64(alerts)/float64(b.N), "alerts/flow")
		})
	}
}

func BenchmarkListLookup(b *testing.B) {
	set, s := benchSet(b, 10)
	_ = s
	l := set.listVals["cidrs"].(listVal).List
	d := set.listVals["doms"].(listVal).List
	a := netip.MustParseAddr("93.1.1.1")
	b.Run("cidr_100k", func(b *testing.B) {
		for b.Loop() {
			l.prefixes.Contains(a)
		}
	})
	b.Run("suffix_100k", func(b *testing.B) {
		for b.Loop() {
			d.suffixes.Match("a.b.www.site7.org")
		}
	})
}
