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
// the kernel counted). Config.Progress follows the source's counters once
// a second and each worker's decoder and flow table about once a second
// (see worker.tick), and ends equal to the returned Stats.
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
		w := newWorker(cfg, serial, i)
		workers[i] = w
		wg.Go(func() {
			errs[i] = src.Run(ctx, i, w)
			w.table.Flush(flow.EndShutdown)
			if w.progress != nil {
				w.publish() // the final counts
			}
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

	progress  *Progress // Config.Progress, or nil
	id        int       // the worker's index, its slot in progress
	published int64     // when it last published to progress (ns since the Unix epoch)
}

func newWorker(cfg Config, emit flowtable.Emit, id int) *worker {
	attr := identity.New(cfg.Identity)
	w := &worker{dec: decode.New(cfg.Decode), progress: cfg.Progress, id: id}
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
	w.tick(ts)
}

func (w *worker) Flow(x *flowtable.External) { w.table.UpdateExternal(x) }

func (w *worker) Sample(x *flowtable.External, frame []byte, link layers.LinkType, ts int64) {
	if w.dec.Decode(frame, link, ts, &w.pkt) == decode.OK {
		w.table.InspectExternal(x, &w.pkt)
	} else {
		w.table.UpdateExternal(x)
	}
	w.tick(ts)
}

func (w *worker) Advance(now int64) {
	w.table.Advance(now)
	w.tick(now)
}

// tick publishes the worker's counters to its progress when a second has
// passed since it last did by now, a frame's capture time or the time a
// quiet source tells (Advance: AF_PACKET's poll timeout, eBPF's sweep).
// The frames' own times are the clock, so the packet path pays a
// comparison, not a clock read nor a shared write; a clock stepped back
// by a second or more publishes too, rather than waiting for it to catch
// up.
func (w *worker) tick(now int64) {
	if d := now - w.published; w.progress != nil && (d >= int64(time.Second) || d <= -int64(time.Second)) {
		w.published = now
		w.publish()
	}
}

// publish stores the worker's decoder counters and flow count in its
// progress slot.
func (w *worker) publish() { w.progress.publish(w.id, &w.dec.Stats, w.table.Stats().Active) }

// add sums a worker's counters into s.
func (s *Stats) add(w *worker) {
	addDecode(&s.Decode, &w.dec.Stats)
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

// addDecode adds the decoder counters t to d.
func addDecode(d, t *decode.Stats) {
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
}
