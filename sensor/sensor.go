// Package sensor builds the capture side of edgeward: frames come from a
// capture source, are decoded, accounted in the flow table, and leave as
// flow.Records. ReadFile wires those stages for a capture file, in order.
package sensor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/appid"
	"github.com/edgeward/edgeward/sensor/decode"
	"github.com/edgeward/edgeward/sensor/flowtable"
	"github.com/edgeward/edgeward/sensor/identity"
	"github.com/edgeward/edgeward/sensor/inspect"
	"github.com/edgeward/edgeward/sensor/pcapfile"
)

// Config configures the sensor's processing stages.
type Config struct {
	Table   flowtable.Config
	Decode  decode.Config
	Inspect inspect.Config
	// NoInspect turns payload inspection (application metadata) off.
	NoInspect bool
	Identity  identity.Config
	// Progress, when set, is updated while the capture runs (every few
	// thousand packets from a file, about once a second live) so that a
	// caller on another goroutine can report progress; when the capture
	// ends it holds the returned Stats' counts. Use one per capture.
	Progress *Progress
}

// Progress counts what a running capture has consumed so far.
type Progress struct {
	Packets atomic.Int64
	Bytes   atomic.Int64 // captured bytes, excluding record headers

	// Each capture worker (ReadFile has one) publishes its decoder's
	// counters and its flow table's size to its own slot, so that
	// workers never overwrite each other's counts and the sums of the
	// counters never go back; the readers sum the slots.
	mu      sync.Mutex
	workers []workerProgress
}

type workerProgress struct {
	decode decode.Stats
	flows  int
}

// publish stores worker's decoder counters d and flow count.
func (p *Progress) publish(worker int, d *decode.Stats, flows int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if worker >= len(p.workers) {
		p.workers = append(p.workers, make([]workerProgress, worker+1-len(p.workers))...)
	}
	p.workers[worker] = workerProgress{decode: *d, flows: flows}
}

// Decode returns the decoder counters the workers last published, summed.
func (p *Progress) Decode() decode.Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	var d decode.Stats
	for i := range p.workers {
		addDecode(&d, &p.workers[i].decode)
	}
	return d
}

// Flows returns the flows held in the workers' flow tables as they last
// published them, summed.
func (p *Progress) Flows() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for i := range p.workers {
		n += p.workers[i].flows
	}
	return n
}

// Stats reports what one run processed.
type Stats struct {
	Packets int64 // frames read from the source
	Bytes   int64 // captured bytes read
	Decode  decode.Stats
	Table   flowtable.Stats
	Inspect inspect.Stats
	Elapsed time.Duration
}

// Errors is the number of frames the decoder could not use.
func (s *Stats) Errors() uint64 {
	d := &s.Decode
	return d.UnsupportedLink + d.BadLink + d.BadIP + d.BadTransport + d.FragInvalid + d.FragTruncated
}

// ReadFile reads a capture file to its end and passes every flow record to
// emit, flushing open flows with end_reason "eof" ("shutdown" when ctx ends
// first). When the file is damaged part way, the flows of the packets
// before the damage are still emitted and the returned error says where the
// damage is; check Stats.Packets to tell a damaged file from an unreadable
// one.
func ReadFile(ctx context.Context, path string, cfg Config, emit flowtable.Emit) (Stats, error) {
	start := time.Now()
	var st Stats
	r, err := pcapfile.Open(path)
	if err != nil {
		return st, err
	}
	defer r.Close()

	dec := decode.New(cfg.Decode)
	attr := identity.New(cfg.Identity)
	table := flowtable.New(cfg.Table, func(r *flow.Record) {
		attr.Apply(r)
		emit(r)
	})
	var insp *inspect.Inspector
	if !cfg.NoInspect {
		if cfg.Inspect.Apps == nil {
			if cfg.Inspect.Apps, err = appid.New(); err != nil {
				return st, fmt.Errorf("application lists: %w", err)
			}
		}
		insp = inspect.New(cfg.Inspect)
		table.SetInspector(insp)
	}
	var (
		fr   pcapfile.Frame
		pkt  decode.Packet
		rerr error
		end  = flow.EndEOF
	)
	for {
		if st.Packets&0xfff == 0 {
			if ctx.Err() != nil {
				// Stopped before the capture ended: not "eof".
				rerr, end = ctx.Err(), flow.EndShutdown
				break
			}
			if p := cfg.Progress; p != nil {
				p.Packets.Store(st.Packets)
				p.Bytes.Store(st.Bytes)
				p.publish(0, &dec.Stats, table.Stats().Active)
			}
		}
		if err := r.Next(&fr); err != nil {
			if !errors.Is(err, io.EOF) {
				rerr = err
			}
			break
		}
		st.Packets++
		st.Bytes += int64(len(fr.Data))
		if dec.Decode(fr.Data, fr.Link, fr.TS, &pkt) == decode.OK {
			table.Update(&pkt)
		}
	}
	if p := cfg.Progress; p != nil {
		p.Packets.Store(st.Packets)
		p.Bytes.Store(st.Bytes)
	}
	table.Flush(end)
	st.Decode = dec.Stats
	st.Table = table.Stats()
	if p := cfg.Progress; p != nil {
		p.publish(0, &st.Decode, st.Table.Active)
	}
	if insp != nil {
		st.Inspect = insp.Stats()
	}
	st.Elapsed = time.Since(start)
	return st, rerr
}
