package flowtable

import (
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/decode"
)

const sec = int64(time.Second)

var (
	cli = flow.AddrFrom(netip.MustParseAddr("10.0.0.5"))
	srv = flow.AddrFrom(netip.MustParseAddr("93.184.216.34"))
)

// pk builds a decoded packet; dir 0 is client to server.
func pk(ts int64, dir int, proto uint8, flags flow.TCPFlags, plen uint32) decode.Packet {
	p := decode.Packet{TS: ts, Key: flow.Key{Src: cli, Dst: srv, SrcPort: 50000, DstPort: 443, Proto: proto},
		IPBytes: 40 + plen, PayloadLen: plen, TCPFlags: flags}
	if dir == 1 {
		p.Key = p.Key.Reverse()
	}
	return p
}

type recs []flow.Record

func run(cfg Config, pkts []decode.Packet) (recs, Stats) {
	var out recs
	t := New(cfg, func(r *flow.Record) {
		c := *r
		if r.TCP != nil {
			tc := *r.TCP
			c.TCP = &tc
		}
		out = append(out, c)
	})
	for i := range pkts {
		t.Update(&pkts[i])
	}
	t.Flush(flow.EndEOF)
	return out, t.Stats()
}

func TestTable(t *testing.T) {
	S, A, F, R, P := flow.FlagSYN, flow.FlagACK, flow.FlagFIN, flow.FlagRST, flow.FlagPSH
	handshake := []decode.Packet{pk(0, 0, 6, S, 0), pk(1, 1, 6, S|A, 0), pk(2, 0, 6, A, 0)}
	tests := []struct {
		name    string
		cfg     Config
		pkts    []decode.Packet
		reasons []flow.EndReason
		check   func(t *testing.T, r recs, st Stats)
	}{
		{"tcp session closed by fin", Config{}, append(handshake,
			pk(3, 0, 6, P|A, 100), pk(4, 1, 6, P|A, 1000), pk(5, 0, 6, F|A, 0), pk(6, 1, 6, F|A, 0), pk(7, 0, 6, A, 0),
			pk(20*sec, 0, 6, A, 0)), // after the linger: a new flow
			[]flow.EndReason{flow.EndFIN, flow.EndEOF}, func(t *testing.T, r recs, _ Stats) {
				a := r[0]
				if a.TCP.History != "ShADdFf" || a.Src.Packets != 5 || a.Dst.Packets != 3 || a.Src.PayloadBytes != 100 || a.Dst.Bytes != 3*40+1000 {
					t.Errorf("history %s src %+v dst %+v", a.TCP.History, a.Src, a.Dst)
				}
				if a.Src.IP.String() != "10.0.0.5" || a.Src.Port != 50000 || a.TCP.SrcFlags != S|A|P|F {
					t.Errorf("initiator %s:%d flags %s", a.Src.IP, a.Src.Port, a.TCP.SrcFlags)
				}
			}},
		{"rst", Config{}, append(handshake, pk(3, 1, 6, R|A, 0)), []flow.EndReason{flow.EndRST}, nil},
		{"port reuse after close", Config{}, append(handshake, pk(3, 0, 6, R, 0), pk(4, 0, 6, S, 0)),
			[]flow.EndReason{flow.EndRST, flow.EndEOF}, nil},
		{"idle timeout", Config{IdleTimeout: 10 * time.Second}, []decode.Packet{pk(0, 0, 17, 0, 10), pk(11*sec, 0, 17, 0, 10), pk(40*sec, 1, 17, 0, 10)},
			[]flow.EndReason{flow.EndIdle, flow.EndIdle, flow.EndEOF}, nil},
		{"idle gap on a requeued flow", Config{IdleTimeout: 10 * time.Second}, func() []decode.Packet {
			other := pk(12*sec, 0, 17, 0, 1)
			other.Key.SrcPort = 1
			// At 12 s the flow is requeued (last packet 9 s); its next
			// packet, 11 s after the last, must still start a new record.
			return []decode.Packet{pk(0, 0, 17, 0, 1), pk(9*sec, 0, 17, 0, 1), other, pk(20*sec, 0, 17, 0, 1)}
		}(), []flow.EndReason{flow.EndIdle, flow.EndEOF, flow.EndEOF}, func(t *testing.T, r recs, _ Stats) {
			if r[0].Src.Packets != 2 {
				t.Errorf("first record has %d packets, want 2", r[0].Src.Packets)
			}
		}},
		{"active timeout", Config{ActiveTimeout: 10 * time.Second}, func() (ps []decode.Packet) {
			for i := range 25 {
				ps = append(ps, pk(int64(i)*sec, i%2, 17, 0, 10))
			}
			return ps
		}(), []flow.EndReason{flow.EndActive, flow.EndActive, flow.EndEOF}, func(t *testing.T, r recs, _ Stats) {
			if r[0].Src.Packets+r[0].Dst.Packets != 10 || r[1].Start.Unix() != 10 {
				t.Errorf("first record %d packets, second starts at %v", r[0].Src.Packets+r[0].Dst.Packets, r[1].Start)
			}
		}},
		{"syn-ack first names its receiver", Config{}, []decode.Packet{pk(0, 1, 6, S|A, 0), pk(1, 0, 6, A, 0)},
			[]flow.EndReason{flow.EndEOF}, func(t *testing.T, r recs, _ Stats) {
				if r[0].Src.Port != 50000 || r[0].TCP.History != "^hA" {
					t.Errorf("src port %d history %s", r[0].Src.Port, r[0].TCP.History)
				}
			}},
		{"udp reply from a well-known port", Config{}, func() []decode.Packet {
			p := pk(0, 0, 17, 0, 10)
			p.Key.DstPort = 53
			q := p
			q.Key, q.TS = p.Key.Reverse(), 1
			return []decode.Packet{q, p}
		}(), []flow.EndReason{flow.EndEOF}, func(t *testing.T, r recs, _ Stats) {
			if r[0].Dst.Port != 53 || r[0].Src.Packets != 1 || r[0].Dst.Packets != 1 {
				t.Errorf("src %+v dst %+v", r[0].Src, r[0].Dst)
			}
		}},
		{"eviction when full", Config{MaxFlows: 2}, func() (ps []decode.Packet) {
			for i := range 3 {
				p := pk(int64(i), 0, 17, 0, 1)
				p.Key.SrcPort += uint16(i)
				ps = append(ps, p)
			}
			return ps
		}(), []flow.EndReason{flow.EndEvicted, flow.EndEOF, flow.EndEOF}, func(t *testing.T, r recs, st Stats) {
			if st.Evicted != 1 || r[0].Src.Port != 50000 {
				t.Errorf("evicted %d, first record port %d", st.Evicted, r[0].Src.Port)
			}
		}},
		{"vlans separate flows", Config{}, func() []decode.Packet {
			a, b := pk(0, 0, 17, 0, 1), pk(1, 0, 17, 0, 1)
			b.Key.VLAN, b.Key.NVLAN = [2]uint16{42}, 1
			return []decode.Packet{a, b}
		}(), []flow.EndReason{flow.EndEOF, flow.EndEOF}, func(t *testing.T, r recs, _ Stats) {
			if len(r[1].VLAN) != 1 || r[1].VLAN[0] != 42 {
				t.Errorf("vlan %v", r[1].VLAN)
			}
		}},
		{"icmp echo and reply", Config{}, func() []decode.Packet {
			req, rep := pk(0, 0, 1, 0, 56), pk(1, 1, 1, 0, 56)
			req.ICMPType = 8
			req.Key.SrcPort, req.Key.DstPort, _ = flow.ICMPPorts(1, 8, 0)
			rep.Key.SrcPort, rep.Key.DstPort, _ = flow.ICMPPorts(1, 0, 0)
			return []decode.Packet{req, rep}
		}(), []flow.EndReason{flow.EndEOF}, func(t *testing.T, r recs, _ Stats) {
			if r[0].ICMP == nil || r[0].ICMP.Type != 8 || r[0].Dst.Packets != 1 || r[0].Src.Port != 0 {
				t.Errorf("icmp %+v dst %+v", r[0].ICMP, r[0].Dst)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, st := run(tc.cfg, tc.pkts)
			if len(r) != len(tc.reasons) {
				t.Fatalf("%d records, want %d: %+v", len(r), len(tc.reasons), r)
			}
			for i, want := range tc.reasons {
				if r[i].EndReason != want {
					t.Errorf("record %d end_reason %s, want %s", i, r[i].EndReason, want)
				}
			}
			if tc.check != nil {
				tc.check(t, r, st)
			}
		})
	}
}

// TestDeterministic: the same packets give the same records, ids included.
func TestDeterministic(t *testing.T) {
	pkts := []decode.Packet{pk(0, 0, 6, flow.FlagSYN, 0), pk(sec, 1, 6, flow.FlagSYN|flow.FlagACK, 0)}
	a, _ := run(Config{}, pkts)
	b, _ := run(Config{}, pkts)
	if string(a[0].AppendJSON(nil)) != string(b[0].AppendJSON(nil)) {
		t.Errorf("records differ:\n%s\n%s", a[0].AppendJSON(nil), b[0].AppendJSON(nil))
	}
}

// TestUpdateDoesNotAllocate: accounting a packet of a known flow allocates
// nothing.
func TestUpdateDoesNotAllocate(t *testing.T) {
	tb := New(Config{}, func(*flow.Record) {})
	p := pk(0, 0, 6, flow.FlagSYN, 0)
	tb.Update(&p)
	ts := int64(0)
	var q decode.Packet // reused, as the sensor reuses its packet
	allocs := testing.AllocsPerRun(1000, func() {
		ts += 1000
		q = pk(ts, int(ts/1000)%2, 6, flow.FlagACK|flow.FlagPSH, 100)
		q.Seq = uint32(ts)
		tb.Update(&q)
	})
	if allocs != 0 {
		t.Errorf("Update allocates %.1f times per packet", allocs)
	}
}

// TestEntryLayout holds entry to its cache lines: a packet of a known flow
// reads the first (key, state, times) and updates the second (counters).
func TestEntryLayout(t *testing.T) {
	var e entry
	if s := unsafe.Sizeof(e); s%64 != 0 {
		t.Errorf("entry is %d bytes, not a multiple of 64", s)
	}
	if o := unsafe.Offsetof(e.first) + unsafe.Sizeof(e.first); o > 64 {
		t.Errorf("entry's first line ends at %d", o)
	}
	if o := unsafe.Offsetof(e.dir); o != 64 || unsafe.Sizeof(e.dir) != 64 {
		t.Errorf("counters at %d, %d bytes; want the second line", o, unsafe.Sizeof(e.dir))
	}
}
