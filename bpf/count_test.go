package bpf

import (
	"net"
	"testing"
)

// TestCount runs a TCP connection and a UDP exchange through the ingress
// program (BPF_PROG_TEST_RUN) and checks what the kernel's map holds: the
// canonical key, per-direction counters, OR-ed flags, history letters and
// the close, against what sensor/flowtable computes for the same packets.
func TestCount(t *testing.T) {
	objs := loadObjects(t, nil)
	cli, srv := net.IPv4(10, 0, 0, 5).To4(), net.IPv4(93, 184, 216, 34).To4()
	const (
		F, S, R, P, A = 0x01, 0x02, 0x04, 0x08, 0x10
	)
	type pkt struct {
		fromServer bool
		flags      uint8
		seq        uint32
		payload    int
	}
	tcp := []pkt{
		{false, S, 100, 0}, {true, S | A, 500, 0}, {false, A, 101, 0},
		{false, P | A, 101, 300}, {true, P | A, 501, 1000}, {false, P | A, 101, 300}, // a retransmission
		{false, F | A, 401, 0}, {true, F | A, 1501, 0}, {false, A, 402, 0},
	}
	for _, p := range tcp {
		var f []byte
		if p.fromServer {
			f = frame(t, false, true, srv, cli, 443, 50000, p.flags, p.seq, p.payload)
		} else {
			f = frame(t, false, true, cli, srv, 50000, 443, p.flags, p.seq, p.payload)
		}
		if _, _, err := objs.Ingress.Test(f); err != nil {
			t.Fatal(err)
		}
	}
	var key Key
	copy(key.A[:], net.IPv4(10, 0, 0, 5).To16()) // 10.0.0.5 < 93.184.216.34: the client is a
	copy(key.B[:], net.IPv4(93, 184, 216, 34).To16())
	key.PortA, key.PortB, key.Proto = 50000, 443, 6
	var v Flow
	if err := objs.Flows.Lookup(&key, &v); err != nil {
		t.Fatalf("flow not in the map: %v", err)
	}
	hist := ""
	for _, c := range v.History[:v.Nhistory] {
		if c&0x80 != 0 {
			hist += string(rune(c&0x7f + 'a' - 'A'))
		} else {
			hist += string(rune(c))
		}
	}
	a, b := v.Dir[0], v.Dir[1]
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"client packets", a.Packets, uint64(6)},
		{"server packets", b.Packets, uint64(3)},
		{"client bytes", a.Bytes, uint64(6*40 + 600)},
		{"server bytes", b.Bytes, uint64(3*40 + 1000)},
		{"client payload", a.Payload, uint64(600)},
		{"client flags", a.Flags, uint8(F | S | P | A)},
		{"server flags", b.Flags, uint8(F | S | P | A)},
		{"history", hist, "ShADdTFf"},
		{"first from b", v.FirstFromB, uint8(0)},
		{"first flags", v.FirstFlags, uint8(S)},
		{"closed", v.CloseNs != 0, true},
		{"client mac", net.HardwareAddr(a.Mac[:]).String(), "02:00:00:00:00:01"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	s := sumStats(t, objs)
	if s[CounterPackets] != uint64(len(tcp)) || s[CounterFlows] != 1 || s[CounterSamples] != 3 || s[CounterFlowEvents] != 1 {
		t.Errorf("counters: %v", s)
	}
}
