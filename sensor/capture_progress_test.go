package sensor

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

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
