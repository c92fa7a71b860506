package sensor_test

import (
	"bytes"
	"testing"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/synth"
	"github.com/edgeward/edgeward/sensor/decode"
	"github.com/edgeward/edgeward/sensor/flowtable"
	"github.com/edgeward/edgeward/sensor/pcapfile"
)

// TestPacketPathDoesNotAllocate asserts that reading, decoding and
// accounting a packet of a known flow allocates nothing, over a realistic
// mix (TLS, QUIC, DNS, HTTP, IPv6, VLANs) from the synthesizer.
func TestPacketPathDoesNotAllocate(t *testing.T) {
	var buf bytes.Buffer
	if _, err := synth.Generate(synth.Config{Seed: 7, Flows: 300}, &buf, nil); err != nil {
		t.Fatal(err)
	}
	r, err := pcapfile.NewReader(bytes.NewReader(buf.Bytes()), "synth")
	if err != nil {
		t.Fatal(err)
	}
	type frame struct {
		data []byte
		fr   pcapfile.Frame
	}
	var frames []frame
	var fr pcapfile.Frame
	for r.Next(&fr) == nil {
		frames = append(frames, frame{append([]byte(nil), fr.Data...), fr})
	}
	dec := decode.New(decode.Config{})
	table := flowtable.New(flowtable.Config{}, func(*flow.Record) {})
	var p decode.Packet
	last := frames[len(frames)-1].fr.TS
	for _, f := range frames { // first pass creates every flow
		if dec.Decode(f.data, f.fr.Link, last, &p) == decode.OK {
			table.Update(&p)
		}
	}
	i := 0
	allocs := testing.AllocsPerRun(len(frames), func() {
		f := &frames[i%len(frames)]
		i++
		if dec.Decode(f.data, f.fr.Link, last, &p) == decode.OK {
			table.Update(&p)
		}
	})
	if allocs != 0 {
		t.Errorf("decode + flow update allocates %.2f times per packet", allocs)
	}
	t.Logf("%d frames", len(frames))
}
