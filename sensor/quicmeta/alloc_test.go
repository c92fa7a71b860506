package quicmeta

import (
	"testing"

	"github.com/edgeward/edgeward/sensor/tlsmeta"
)

// TestNewFlowAllocs pins the allocations of a new QUIC flow: key
// derivation allocates nothing; what is left is the two AES key schedules,
// the GCM state, and the SNI string.
func TestNewFlowAllocs(t *testing.T) {
	pkt := mustHex(t, rfc9001ClientInitial)
	var a Assembler
	buf := make([]byte, 0, 64)
	run := func() {
		a.Reset()
		if err := a.AddDatagram(pkt); err != nil {
			t.Fatal(err)
		}
		buf = a.Hello.AppendJA4(buf[:0], tlsmeta.QUIC)
	}
	run()
	if n := testing.AllocsPerRun(50, run); n > 4 {
		t.Errorf("new flow allocates %v times per run, want <= 4", n)
	}
	if n := testing.AllocsPerRun(50, func() { _, _, _, _ = ClientInitialSecrets(Version1, pkt[6:14]) }); n > 3 {
		t.Errorf("ClientInitialSecrets allocates %v times per run, want <= 3 (its results)", n)
	}
}
