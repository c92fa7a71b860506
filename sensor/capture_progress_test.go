package sensor

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/synth"
	"github.com/edgeward/edgeward/sensor/live"
)

// countingSource is a live source whose kernel counted packets and bytes
// and that captures until ctx ends.
type countingSource struct{ packets atomic.Uint64 }

func (s *countingSource) Workers() int { return 1 }
func (s *countingSource) Run(ctx context.Context, _ int, _ live.Sink) error {
	s.packets.Store(1234)
	<-ctx.Done()
	return nil
}
func (s *countingSource) Stats() live.Stats {
	n := s.packets.Load()
	return live.Stats{Packets: n, Bytes: 100 * n}
}
func (s *countingSource) Close() error { return nil }

// TestCaptureProgressWhileLive checks what docs/operations.md says of the
// sensor's edgeward_packets_total and edgeward_bytes_total (read from
// Config.Progress) with live capture: they follow the source's counters
// while the capture runs, not only when it ends.
func TestCaptureProgressWhileLive(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var p Progress
	done := make(chan struct{})
	go func() {
		defer close(done)
		Capture(ctx, &countingSource{}, Config{NoInspect: true, Progress: &p}, nil)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for p.Packets.Load() != 1234 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	running := p.Packets.Load()
	cancel()
	<-done
	if running != 1234 || p.Bytes.Load() != 123400 {
		t.Errorf("while capturing: %d packets, want 1234", running)
	}
}

// badIPFrame is an Ethernet frame whose IPv4 header is all zeros: the
// decoder counts it as bad_ip.
func badIPFrame() []byte {
	f := make([]byte, 14+20)
	f[12] = 0x08 // EtherType IPv4
	return f
}

// TestWorkerPublishesProgress checks when a capture worker publishes its
// counters to Config.Progress: at its first frame, then once a second has
// passed by the frames' or Advance's clock, or the clock stepped back a
// second or more; not for each frame.
func TestWorkerPublishesProgress(t *testing.T) {
	var p Progress
	w := newWorker(Config{NoInspect: true, Progress: &p}, nil, 1)
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC).UnixNano()
	sec := int64(time.Second)
	for i, step := range []struct {
		ts      int64
		advance bool
		want    uint64
	}{
		{ts: t0, want: 1},
		{ts: t0 + sec/2, want: 1},
		{ts: t0 + sec - 1, want: 1},
		{ts: t0 + sec, advance: true, want: 3}, // a quiet link: no frame, the time
		{ts: t0 + sec/2, want: 3},              // a frame a little out of order
		{ts: t0 + 2*sec, want: 5},
		{ts: t0 - 3600*sec, want: 6}, // the clock stepped back an hour
		{ts: t0 - 3600*sec + sec/2, want: 6},
	} {
		if step.advance {
			w.Advance(step.ts)
		} else {
			w.Frame(badIPFrame(), layers.LinkTypeEthernet, step.ts)
		}
		if got := p.Decode().BadIP; got != step.want {
			t.Errorf("step %d: published %d bad_ip, want %d (the worker counted %d)", i, got, step.want, w.dec.Stats.BadIP)
		}
	}
}

// TestReadFileProgressEndsAtStats checks that a file's Progress ends
// equal to the Stats ReadFile returns.
func TestReadFileProgressEndsAtStats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.Generate(synth.Config{Seed: 3, Flows: 200}, f, nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var p Progress
	st, err := ReadFile(context.Background(), path, Config{NoInspect: true, Progress: &p}, func(*flow.Record) {})
	if err != nil {
		t.Fatal(err)
	}
	if st.Decode.Frames == 0 || p.Decode() != st.Decode || p.Flows() != st.Table.Active || p.Packets.Load() != st.Packets {
		t.Errorf("progress: %+v, %d flows, %d packets; stats: %+v, %d flows, %d packets",
			p.Decode(), p.Flows(), p.Packets.Load(), st.Decode, st.Table.Active, st.Packets)
	}
}
