package flowtable

import (
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/decode"
)

// kernel is an in-memory fake of the eBPF programs' flow map (bpf/capture.c):
// it counts packets into External values as the kernel does, and hands
// them to the table as the loader does (a flow event before a restart, a
// sweep after every packet).
type kernel struct {
	cfg   Config
	flows map[flow.Key]*kflow
}

type kflow struct {
	x      External
	seen   [2]uint16
	seqEnd [2]uint32
	seqOK  [2]bool
}

func (k *kernel) packet(t *Table, p *decode.Packet) {
	ck, side := p.Key.Canonical()
	s := 0
	if side {
		s = 1
	}
	f := k.flows[ck]
	cfg := k.cfg.withDefaults()
	restart := f != nil && (f.x.Closed != 0 && p.Key.Proto == flow.ProtoTCP && p.TCPFlags&(flow.FlagSYN|flow.FlagACK) == flow.FlagSYN ||
		f.x.Closed != 0 && p.TS-f.x.Closed >= int64(cfg.CloseLinger) ||
		p.TS-f.x.Last >= int64(cfg.IdleTimeout) || p.TS-f.x.First >= int64(cfg.ActiveTimeout))
	if restart {
		t.UpdateExternal(&f.x) // the flow event with the final counters
	}
	if f == nil || restart {
		f = &kflow{x: External{Key: ck, Gen: uint64(p.TS), First: p.TS, Last: p.TS, FirstFromDst: side,
			FirstFlags: p.TCPFlags, ICMPType: p.ICMPType, ICMPCode: p.ICMPCode}}
		k.flows[ck] = f
	}
	x := &f.x
	x.Last = max(x.Last, p.TS)
	x.First = min(x.First, p.TS) // a capture file's times may step back; the kernel's never do
	d := &x.Side[s]
	d.Packets++
	d.Bytes += uint64(p.IPBytes)
	d.Payload += uint64(p.PayloadLen)
	if d.MAC.IsZero() {
		d.MAC = p.SrcMAC
	}
	if o := &x.Side[1-s]; o.MAC.IsZero() {
		o.MAC = p.DstMAC
	}
	if p.Key.Proto == flow.ProtoTCP {
		fl := p.TCPFlags
		d.Flags |= fl
		letter := func(c byte) {
			bit := historyBit(c)
			if f.seen[s]&bit != 0 || x.NHistory == len(x.History) {
				return
			}
			f.seen[s] |= bit
			x.History[x.NHistory] = c | byte(s)<<7
			x.NHistory++
		}
		switch {
		case fl&flow.FlagSYN != 0 && fl&(flow.FlagFIN|flow.FlagRST) != 0:
			letter('Q')
		case fl&flow.FlagSYN != 0 && fl&flow.FlagACK != 0:
			letter('H')
		case fl&flow.FlagSYN != 0:
			letter('S')
		}
		if fl&flow.FlagFIN != 0 {
			letter('F')
		}
		if fl&flow.FlagRST != 0 {
			letter('R')
		}
		if p.PayloadLen > 0 {
			end := p.Seq + p.PayloadLen
			ahead := int32(end-f.seqEnd[s]) > 0
			if f.seqOK[s] && !ahead {
				letter('T')
			} else {
				letter('D')
			}
			if !f.seqOK[s] || ahead {
				f.seqEnd[s], f.seqOK[s] = end, true
			}
		} else if fl&(flow.FlagSYN|flow.FlagFIN|flow.FlagRST|flow.FlagACK) == flow.FlagACK {
			letter('A')
		}
		if fl&flow.FlagRST != 0 {
			x.RST = true
		}
		if fl&flow.FlagFIN != 0 {
			d.FIN = true
		}
		if (x.RST || x.Side[0].FIN && x.Side[1].FIN) && x.Closed == 0 {
			x.Closed = p.TS
		}
	}
	t.UpdateExternal(x) // the sweep
}

// TestExternalMatchesUpdate counts the same packets with Update and, through
// the fake kernel, with UpdateExternal, and requires identical records.
func TestExternalMatchesUpdate(t *testing.T) {
	S, A, F, R, P := flow.FlagSYN, flow.FlagACK, flow.FlagFIN, flow.FlagRST, flow.FlagPSH
	handshake := []decode.Packet{pk(0, 0, 6, S, 0), pk(1, 1, 6, S|A, 0), pk(2, 0, 6, A, 0)}
	data := func(ts int64, dir int, seq uint32, n uint32) decode.Packet {
		p := pk(ts, dir, 6, P|A, n)
		p.Seq = seq
		return p
	}
	icmp := func(ts int64, dir int, typ uint8) decode.Packet {
		p := pk(ts, dir, 1, 0, 56)
		p.ICMPType = typ
		p.Key.SrcPort, p.Key.DstPort, _ = flow.ICMPPorts(1, typ, 0)
		if dir == 1 {
			p.Key.Src, p.Key.Dst = srv, cli
		}
		return p
	}
	tests := []struct {
		name string
		cfg  Config
		pkts []decode.Packet
	}{
		{"tcp closed by fin", Config{}, append(handshake, data(3, 0, 1, 100), data(4, 1, 1, 1000), data(5, 0, 1, 100),
			pk(6, 0, 6, F|A, 0), pk(7, 1, 6, F|A, 0), pk(8, 0, 6, A, 0), pk(20*sec, 0, 6, A, 0))},
		{"rst", Config{}, append(handshake, pk(3, 1, 6, R|A, 0))},
		{"port reuse after close", Config{}, append(handshake, pk(3, 0, 6, R, 0), pk(4, 0, 6, S, 0))},
		{"idle timeout", Config{IdleTimeout: 10 * time.Second},
			[]decode.Packet{pk(0, 0, 17, 0, 10), pk(11*sec, 0, 17, 0, 10), pk(40*sec, 1, 17, 0, 10)}},
		{"active timeout", Config{ActiveTimeout: 10 * time.Second}, func() (ps []decode.Packet) {
			for i := range 25 {
				ps = append(ps, pk(int64(i)*sec, i%2, 17, 0, 10))
			}
			return ps
		}()},
		{"syn-ack first", Config{}, []decode.Packet{pk(0, 1, 6, S|A, 0), pk(1, 0, 6, A, 0)}},
		{"udp reply from a well-known port", Config{}, func() []decode.Packet {
			p := pk(0, 0, 17, 0, 10)
			p.Key.DstPort = 53
			q := p
			q.Key, q.TS = p.Key.Reverse(), 1
			return []decode.Packet{q, p}
		}()},
		{"icmp echo and reply", Config{}, []decode.Packet{icmp(0, 0, 8), icmp(1, 1, 0)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, _ := run(tc.cfg, tc.pkts)
			var got recs
			tb := New(tc.cfg, func(r *flow.Record) {
				c := *r
				if r.TCP != nil {
					tc := *r.TCP
					c.TCP = &tc
				}
				got = append(got, c)
			})
			k := &kernel{cfg: tc.cfg, flows: map[flow.Key]*kflow{}}
			for i := range tc.pkts {
				k.packet(tb, &tc.pkts[i])
			}
			tb.Flush(flow.EndEOF)
			if len(got) != len(want) {
				t.Fatalf("%d records, want %d", len(got), len(want))
			}
			for i := range want {
				if g, w := string(got[i].AppendJSON(nil)), string(want[i].AppendJSON(nil)); g != w {
					t.Errorf("record %d:\n got  %s\n want %s", i, g, w)
				}
			}
		})
	}
}

// TestExternalStaleSnapshot: counters older than the table's are ignored.
func TestExternalStaleSnapshot(t *testing.T) {
	var out recs
	tb := New(Config{}, func(r *flow.Record) { out = append(out, *r) })
	p := pk(0, 0, 17, 0, 1)
	key, _ := p.Key.Canonical()
	x := External{Key: key, Gen: 1, First: 0, Last: 5}
	x.Side[0].Packets = 5
	tb.UpdateExternal(&x)
	old := x
	old.Side[0].Packets, old.Last = 2, 2
	tb.UpdateExternal(&old)
	tb.Flush(flow.EndShutdown)
	if len(out) != 1 || out[0].Src.Packets != 5 {
		t.Errorf("records %+v", out)
	}
}

// TestExternalAfterIdleClose: counters of a flow whose record the table
// closed as idle do not open a second record.
func TestExternalAfterIdleClose(t *testing.T) {
	var out recs
	tb := New(Config{IdleTimeout: 10 * time.Second}, func(r *flow.Record) { out = append(out, *r) })
	p := pk(0, 0, 17, 0, 1)
	key, _ := p.Key.Canonical()
	x := External{Key: key, Gen: 1, First: 0, Last: sec}
	x.Side[0].Packets = 1
	tb.UpdateExternal(&x)
	tb.Advance(30 * sec)
	tb.UpdateExternal(&x) // a late copy, e.g. from the sweep that collected it
	tb.Flush(flow.EndShutdown)
	if len(out) != 1 || out[0].EndReason != flow.EndIdle {
		t.Errorf("records %+v", out)
	}
}
