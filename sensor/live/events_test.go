package live

import (
	"net/netip"
	"testing"
	"unsafe"

	"github.com/edgeward/edgeward/bpf"
	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/flowtable"
	"github.com/gopacket/gopacket/layers"
)

type recSink struct {
	flows   []flowtable.External
	samples [][]byte
	ts      []int64
}

func (s *recSink) Frame([]byte, layers.LinkType, int64) {}
func (s *recSink) Flow(x *flowtable.External)           { s.flows = append(s.flows, *x) }
func (s *recSink) Sample(x *flowtable.External, f []byte, _ layers.LinkType, ts int64) {
	s.flows = append(s.flows, *x)
	s.samples = append(s.samples, append([]byte(nil), f...))
	s.ts = append(s.ts, ts)
}
func (s *recSink) Advance(int64) {}

// TestHandle turns ring-buffer events, laid out as the kernel writes them,
// into what the sink gets: the External flow, and the sampled frame with
// the VLAN tag the kernel took out put back.
func TestHandle(t *testing.T) {
	e := &EBPF{link: layers.LinkTypeEthernet, offset: 1000}
	var s bpf.Sample
	ev := &s.Ev
	ev.Kind, ev.TsNs = bpf.EventSample, 5
	ev.VlanPresent, ev.VlanTci, ev.VlanProto = 1, 0x2000|42, 0x0081 // 0x8100 in network byte order
	a, b := netip.MustParseAddr("10.0.0.5").As16(), netip.MustParseAddr("10.0.0.9").As16()
	ev.Key.A, ev.Key.B, ev.Key.PortA, ev.Key.PortB, ev.Key.Proto = a, b, 50000, 443, 6
	f := &ev.Flow
	f.FirstNs, f.LastNs, f.FirstFromB, f.FirstFlags = 1, 4, 1, 0x12
	f.Dir[0].Packets, f.Dir[1].Packets, f.Dir[1].Bytes = 3, 2, 100
	f.History[0], f.History[1], f.Nhistory = 'H'|0x80, 'A', 2
	frame := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00, 0x45}
	copy(s.Data[:], frame)
	ev.CapLen = uint32(len(frame))
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&s)), int(unsafe.Sizeof(bpf.Event{}))+len(frame))

	var sink recSink
	e.handle(raw, &sink)
	ev.Kind = bpf.EventFlow
	e.handle(raw[:unsafe.Sizeof(bpf.Event{})], &sink)
	e.handle(raw[:10], &sink) // too short: counted, not passed on

	if len(sink.samples) != 1 || len(sink.flows) != 2 || e.short.Load() != 1 {
		t.Fatalf("%d samples, %d flows, %d short", len(sink.samples), len(sink.flows), e.short.Load())
	}
	wantFrame := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x81, 0x00, 0x00, 42, 0x08, 0x00, 0x45}
	if string(sink.samples[0]) != string(wantFrame) || sink.ts[0] != 1005 {
		t.Errorf("frame % x at %d, want % x at 1005", sink.samples[0], sink.ts[0], wantFrame)
	}
	x := sink.flows[0]
	want := flowtable.External{
		Key: flow.Key{Src: flow.Addr(a), Dst: flow.Addr(b), SrcPort: 50000, DstPort: 443, Proto: 6},
		Gen: 1, First: 1001, Last: 1004, FirstFromDst: true, FirstFlags: 0x12, NHistory: 2,
	}
	want.Side[0].Packets, want.Side[1].Packets, want.Side[1].Bytes = 3, 2, 100
	want.History[0], want.History[1] = 'H'|0x80, 'A'
	if x != want {
		t.Errorf("external\n got  %+v\n want %+v", x, want)
	}
}
