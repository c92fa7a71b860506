package sensor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/appid"
	"github.com/edgeward/edgeward/sensor/decode"
	"github.com/edgeward/edgeward/sensor/flowtable"
	"github.com/edgeward/edgeward/sensor/identity"
	"github.com/edgeward/edgeward/sensor/inspect"
	"github.com/edgeward/edgeward/sensor/live"
	"github.com/gopacket/gopacket/layers"
)

// Capture captures from a live source until ctx is cancelled, then flushes
// every open flow with end_reason "shutdown" and returns. Each of the
// source's workers gets its own decoder, flow table and inspector, built
// as ReadFile builds them; emit is called from one goroutine at a time.
// Stats.Packets and Stats.Bytes are the source's (frames read, or packets
// the kernel counted).
func Capture(ctx context.Context, src live.Source, cfg Config, emit flowtable.Emit) (Stats, error) {
	start := time.Now()
	var st Stats
	if !cfg.NoInspect && cfg.Inspect.Apps == nil {
		apps, err := appid.New()
		if err != nil {
			return st, fmt.Errorf("application lists: %w", err)
		}
		cfg.Inspect.Apps = apps
	}
	n := src.Workers()
	var mu sync.Mutex
	serial := emit
	if n > 1 {
		serial = func(r *flow.Record) {
			mu.Lock()
			defer mu.Unlock()
			emit(r)
		}
	}
	if p := cfg.Progress; p != nil {
		// The source counts frames; publish them for progress and metrics
		// while the capture runs (ReadFile does it from its loop).
		done := make(chan struct{})
		defer close(done)
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					ss := src.Stats()
					p.Packets.Store(int64(ss.Packets))
					p.Bytes.Store(int64(ss.Bytes))
				}
			}
		}()
	}
	workers := make([]*worker, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		w := newWorker(cfg, serial)
		workers[i] = w
		wg.Go(func() {
			errs[i] = src.Run(ctx, i, w)
			w.table.Flush(flow.EndShutdown)
		})
	}
	wg.Wait()
	for _, w := range workers {
		st.add(w)
	}
	ss := src.Stats()
	st.Packets, st.Bytes = int64(ss.Packets), int64(ss.Bytes)
	if p := cfg.Progress; p != nil {
		p.Packets.Store(st.Packets)
		p.Bytes.Store(st.Bytes)
	}
	st.Elapsed = time.Since(start)
	for _, err := range errs {
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

// worker is one capture worker's pipeline; it is the live.Sink its
// source's Run feeds.
type worker struct {
	dec   *decode.Decoder
	table *flowtable.Table
	insp  *inspect.Inspector
	pkt   decode.Packet
}

func newWorker(cfg Config, emit flowtable.Emit) *worker {
	attr := identity.New(cfg.Identity)
	w := &worker{dec: decode.New(cfg.Decode)}
	w.table = flowtable.New(cfg.Table, func(r *flow.Record) {
		attr.Apply(r)
		emit(r)
	})
	if !cfg.NoInspect {
		w.insp = inspect.New(cfg.Inspect)
		w.table.SetInspector(w.insp)
	}
	return w
}

func (w *worker) Frame(data []byte, link layers.LinkType, ts int64) {
	if w.dec.Decode(data, link, ts, &w.pkt) == decode.OK {
		w.table.Update(&w.pkt)
	}
}

func (w *worker) Flow(x *flowtable.External) { w.table.UpdateExternal(x) }

func (w *worker) Sample(x *flowtable.External, frame []byte, link layers.LinkType, ts int64) {
	if w.dec.Decode(frame, link, ts, &w.pkt) == decode.OK {
		w.table.InspectExternal(x, &w.pkt)
		return
	}
	w.table.UpdateExternal(x)
}

func (w *worker) Advance(now int64) { w.table.Advance(now) }

// add sums a worker's counters into s.
func (s *Stats) add(w *worker) {
	d, t := &s.Decode, w.dec.Stats
	d.Frames += t.Frames
	d.NotIP += t.NotIP
	d.UnsupportedLink += t.UnsupportedLink
	d.BadLink += t.BadLink
	d.BadIP += t.BadIP
	d.BadTransport += t.BadTransport
	d.Truncated += t.Truncated
	d.Tunnels += t.Tunnels
	d.FragHeld += t.FragHeld
	d.FragReassembled += t.FragReassembled
	d.FragExpired += t.FragExpired
	d.FragEvicted += t.FragEvicted
	d.FragInvalid += t.FragInvalid
	d.FragTruncated += t.FragTruncated
	ft := w.table.Stats()
	s.Table.Packets += ft.Packets
	s.Table.Created += ft.Created
	s.Table.Exported += ft.Exported
	s.Table.Evicted += ft.Evicted
	s.Table.Active += ft.Active
	s.Table.SampleMismatches += ft.SampleMismatches
	if w.insp == nil {
		return
	}
	is := w.insp.Stats()
	in := &s.Inspect
	in.ClientHellos += is.ClientHellos
	in.ServerHellos += is.ServerHellos
	in.QUICInitials += is.QUICInitials
	in.DNSMessages += is.DNSMessages
	in.HTTPRequests += is.HTTPRequests
	in.SSHBanners += is.SSHBanners
	in.DHCPMessages += is.DHCPMessages
	in.Skipped += is.Skipped
	in.FingerprintHits += is.FingerprintHits
	in.FingerprintMisses += is.FingerprintMisses
	in.CertCacheHits += is.CertCacheHits
	if in.Errors == nil {
		in.Errors = map[string]uint64{}
	}
	for k, v := range is.Errors {
		in.Errors[k] += v
	}
}
