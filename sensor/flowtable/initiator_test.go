package flowtable

import (
	"testing"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/decode"
)

// TestSYNSeenLaterNamesInitiator: the initiator is the sender of the TCP
// SYN (docs/schema.md), also when a segment of the responder reached the
// sensor first (capture reordering, merged interfaces).
func TestSYNSeenLaterNamesInitiator(t *testing.T) {
	S, A, P := flow.FlagSYN, flow.FlagACK, flow.FlagPSH
	early := pk(0, 1, 6, P|A, 100) // server 443 -> client: looks like a reply anyway
	early.Key.SrcPort, early.Key.DstPort = 8443, 50000
	syn := pk(1, 0, 6, S, 0)
	syn.Key.DstPort = 8443
	synack := pk(2, 1, 6, S|A, 0)
	synack.Key.SrcPort = 8443
	r, _ := run(Config{}, []decode.Packet{early, syn, synack})
	if len(r) != 1 {
		t.Fatalf("%d records", len(r))
	}
	if r[0].Src.IP.String() != "10.0.0.5" || r[0].Src.Port != 50000 || r[0].Src.Packets != 1 || r[0].Dst.Packets != 2 {
		t.Errorf("src %s:%d (%d packets), want the SYN's sender 10.0.0.5:50000 (1 packet); history %s",
			r[0].Src.IP, r[0].Src.Port, r[0].Src.Packets, r[0].TCP.History)
	}
}

// TestICMPTypeIsInitiators: icmp.type is the first message the initiator
// sent, also when the capture saw the reply first.
func TestICMPTypeIsInitiators(t *testing.T) {
	req, rep := pk(1, 0, 1, 0, 56), pk(0, 1, 1, 0, 56)
	req.ICMPType = 8
	req.Key.SrcPort, req.Key.DstPort, _ = flow.ICMPPorts(1, 8, 0)
	rep.Key.SrcPort, rep.Key.DstPort, _ = flow.ICMPPorts(1, 0, 0)
	r, _ := run(Config{}, []decode.Packet{rep, req})
	if len(r) != 1 {
		t.Fatalf("%d records", len(r))
	}
	if r[0].Src.IP.String() != "10.0.0.5" || r[0].ICMP.Type != 8 {
		t.Errorf("src %s icmp %+v, want src 10.0.0.5 and type 8 (its echo request)", r[0].Src.IP, *r[0].ICMP)
	}
}
