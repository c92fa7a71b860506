package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/edgeward/edgeward/bpf"
	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/flowtable"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// EBPFConfig configures the eBPF capture.
type EBPFConfig struct {
	Interface string
	// Flow must be the flow table's configuration: the kernel restarts a
	// flow after the same idle and active timeouts, and user space
	// collects closed flows after the same linger.
	Flow flowtable.Config
	// SamplePackets is how many payload packets of each direction of a
	// flow the kernel sends for inspection (default 16, twice inspect's
	// default of 8, which is enough for what inspection looks at).
	SamplePackets int
	// SampleBytes is how many payload bytes a sample carries (default and
	// most: bpf.SnapMax, 16 KiB with the headers, what inspection
	// reassembles of a stream at most). Fewer save ring-buffer space but
	// lose what lies beyond: a QUIC Initial needs its whole datagram, a
	// TLS ClientHello or certificate the whole of each segment.
	SampleBytes int
	// MaxFlows sizes the kernel's flow map (default 1,048,576 entries,
	// 178 bytes each); when it is full its LRU evicts, counted in
	// Stats.MapFull.
	MaxFlows int
	// RingBytes sizes the event ring buffer (default 8 MiB, a power of 2).
	RingBytes int
	// SweepInterval is how often the flow map is read (default 2 s).
	SweepInterval time.Duration
	// Clsact attaches with a clsact qdisc and direct-action filters even
	// where TCX is available (Linux 6.6 and later use TCX by default).
	Clsact bool
	Logger *slog.Logger
}

func (c EBPFConfig) withDefaults() EBPFConfig {
	if c.SamplePackets <= 0 {
		c.SamplePackets = 16
	}
	if c.SampleBytes <= 0 {
		c.SampleBytes = bpf.SnapMax
	}
	if c.MaxFlows <= 0 {
		c.MaxFlows = 1 << 20
	}
	if c.RingBytes <= 0 {
		c.RingBytes = 8 << 20
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = 2 * time.Second
	}
	if c.Flow.IdleTimeout <= 0 {
		c.Flow.IdleTimeout = flowtable.DefaultIdleTimeout
	}
	if c.Flow.ActiveTimeout <= 0 {
		c.Flow.ActiveTimeout = flowtable.DefaultActiveTimeout
	}
	if c.Flow.CloseLinger <= 0 {
		c.Flow.CloseLinger = flowtable.DefaultCloseLinger
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// EBPF counts flows with the TC programs of package bpf. Loading and
// attaching needs CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (or root); once
// OpenEBPF returns, reading the map and the ring buffer needs only the file
// descriptors it holds, so the process may drop every capability
// (DropCapabilities).
type EBPF struct {
	cfg     EBPFConfig
	log     *slog.Logger
	objs    bpf.Objects
	links   []link.Link
	filters []*netlink.BpfFilter // clsact: the filters added, Id their program's
	owners  []int                // clsact: sockets marking the filters as alive (clsact.go)
	attach  string
	rd      *ringbuf.Reader
	link    layers.LinkType
	ifindex int
	offset  int64 // wall clock minus CLOCK_MONOTONIC, ns
	down    bool  // the interface was down at the last sweep

	rec     ringbuf.Record
	x       flowtable.External
	vlanBuf []byte
	keys    []bpf.Key
	vals    []bpf.Flow
	expired []bpf.Key

	deleted atomic.Uint64 // entries collected by the sweep
	entries atomic.Int64
	evicted atomic.Uint64 // entries the LRU evicted before a sweep collected them
	short   atomic.Uint64 // events too short to be ours
	detach  sync.Once

	// Close frees the counters map; Stats then returns what it held, as
	// the drop counters stay exported (Collector) while the daemon
	// flushes to Kafka, and a Prometheus counter must not fall back.
	closeMu sync.Mutex
	closed  bool
	final   Stats
}

// OpenEBPF loads the programs, attaches them to the interface's ingress
// and egress and opens the ring buffer.
func OpenEBPF(cfg EBPFConfig) (*EBPF, error) {
	cfg = cfg.withDefaults()
	where := "ebpf " + cfg.Interface
	ifc, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if cfg.RingBytes&(cfg.RingBytes-1) != 0 {
		return nil, fmt.Errorf("%s: ring buffer size %d is not a power of 2", where, cfg.RingBytes)
	}
	_ = rlimit.RemoveMemlock() // kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK
	spec, err := bpf.LoadSpec()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	e := &EBPF{cfg: cfg, log: cfg.Logger.With("component", "ebpf", "interface", cfg.Interface), link: linkType(cfg.Interface), ifindex: ifc.Index}
	raw := uint8(0)
	if e.link == layers.LinkTypeRaw {
		raw = 1
	}
	for name, v := range map[string]any{
		"idle_ns":        uint64(cfg.Flow.IdleTimeout),
		"active_ns":      uint64(cfg.Flow.ActiveTimeout),
		"linger_ns":      uint64(cfg.Flow.CloseLinger),
		"sample_packets": uint32(cfg.SamplePackets),
		"sample_bytes":   uint32(min(cfg.SampleBytes, bpf.SnapMax)),
		"raw_ip":         raw,
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("%s: setting %s: %w", where, name, err)
		}
	}
	spec.Maps["flows"].MaxEntries = uint32(cfg.MaxFlows)
	spec.Maps["events"].MaxEntries = uint32(cfg.RingBytes)
	if err := spec.LoadAndAssign(&e.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("%s: the kernel's verifier rejected the programs: %w", where, err)
		}
		return nil, fmt.Errorf("%s: loading programs (needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN): %w", where, err)
	}
	if err := e.attachAll(ifc.Index); err != nil {
		e.Close()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if e.rd, err = ringbuf.NewReader(e.objs.Events); err != nil {
		e.Close()
		return nil, fmt.Errorf("%s: ring buffer: %w", where, err)
	}
	e.offset = clockOffset()
	e.rec.RawSample = make([]byte, 0, unsafe.Sizeof(bpf.Sample{}))
	e.keys = make([]bpf.Key, sweepBatch)
	e.vals = make([]bpf.Flow, sweepBatch)
	e.log.Info("attached", "mode", e.attach, "max_flows", cfg.MaxFlows, "ring_bytes", cfg.RingBytes)
	return e, nil
}

// Attach says how the programs are attached: "tcx" or "clsact".
func (e *EBPF) Attach() string { return e.attach }

func (e *EBPF) attachAll(ifindex int) error {
	if !e.cfg.Clsact {
		in, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: e.objs.Ingress, Attach: ebpf.AttachTCXIngress})
		if err == nil {
			e.links = append(e.links, in)
			out, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: e.objs.Egress, Attach: ebpf.AttachTCXEgress})
			if err != nil {
				return fmt.Errorf("attaching to egress (tcx): %w", err)
			}
			e.links = append(e.links, out)
			e.attach = "tcx"
			return nil
		}
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return fmt.Errorf("attaching to ingress (tcx): %w", err)
		}
		e.log.Info("tcx not supported (Linux before 6.6): attaching with clsact", "error", err)
	}
	return e.attachClsact(ifindex)
}

// unattach detaches the programs, so the kernel's counts stop changing.
func (e *EBPF) unattach() {
	e.detach.Do(func() {
		for _, l := range e.links {
			l.Close()
		}
		e.detachClsact()
	})
}

// Workers is 1: the kernel counts on every CPU, user space reads once.
func (e *EBPF) Workers() int { return 1 }

const sweepBatch = 4096

// Run passes ring-buffer events to sink as they come and sweeps the flow
// map every SweepInterval, collecting idle and closed flows. When ctx is
// done it detaches the programs, reads the events left and sweeps once
// more, so sink holds every flow the kernel counted.
func (e *EBPF) Run(ctx context.Context, _ int, sink Sink) error {
	stop := context.AfterFunc(ctx, func() { _ = e.rd.Flush() })
	defer stop()
	next := time.Now().Add(e.cfg.SweepInterval)
	for ctx.Err() == nil {
		e.rd.SetDeadline(next)
		err := e.rd.ReadInto(&e.rec)
		switch {
		case err == nil:
			e.handle(e.rec.RawSample, sink)
			if e.rec.Remaining > 0 || time.Now().Before(next) {
				continue
			}
		case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, ringbuf.ErrFlushed):
		default:
			return fmt.Errorf("ebpf %s: reading events: %w", e.cfg.Interface, err)
		}
		if now := time.Now(); !now.Before(next) {
			if err := e.sweep(sink, now); err != nil {
				return err
			}
			if err := e.checkInterface(); err != nil {
				return err // the sweep above collected what was counted
			}
			if err := e.checkFilters(); err != nil {
				return err
			}
			next = now.Add(e.cfg.SweepInterval)
		}
	}
	e.unattach()
	e.rd.SetDeadline(time.Now())
	for {
		err := e.rd.ReadInto(&e.rec)
		if errors.Is(err, ringbuf.ErrFlushed) {
			continue // the stop's flush; read on to the deadline
		}
		if err != nil {
			break
		}
		e.handle(e.rec.RawSample, sink)
	}
	return e.sweep(sink, time.Now())
}

// checkInterface fails when the interface is gone: its programs went with
// it, so nothing would be counted again. While it is down the programs stay
// attached and count again once it is up; that is logged.
func (e *EBPF) checkInterface() error {
	l, err := netlink.LinkByIndex(e.ifindex)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return fmt.Errorf("ebpf %s: the interface is gone (deleted?), and its programs with it", e.cfg.Interface)
	}
	if err != nil {
		return nil // cannot tell; the next sweep asks again
	}
	if down := l.Attrs().Flags&net.FlagUp == 0; down != e.down {
		e.down = down
		if down {
			e.log.Warn("interface is down: nothing is captured until it is up")
		} else {
			e.log.Info("interface is up again")
		}
	}
	return nil
}

var eventSize = int(unsafe.Sizeof(bpf.Event{}))

// handle passes one ring-buffer event to sink. The event is read in place:
// the generated types have the kernel's layout (the package only builds
// for little-endian targets, as the objects it embeds).
func (e *EBPF) handle(raw []byte, sink Sink) {
	if len(raw) < eventSize {
		e.short.Add(1)
		return
	}
	ev := (*bpf.Event)(unsafe.Pointer(&raw[0]))
	e.external(&ev.Key, &ev.Flow)
	switch ev.Kind {
	case bpf.EventFlow:
		sink.Flow(&e.x)
	case bpf.EventSample:
		n := int(ev.CapLen)
		if eventSize+n > len(raw) {
			e.short.Add(1)
			return
		}
		frame := raw[eventSize : eventSize+n]
		if ev.VlanPresent != 0 && len(frame) >= 12 {
			// The kernel took the outer tag out of the frame: put it
			// back, as AFPacket does.
			tpid := ev.VlanProto>>8 | ev.VlanProto<<8 // network byte order
			if tpid == 0 {
				tpid = 0x8100
			}
			tci := ev.VlanTci & 0x0fff
			e.vlanBuf = append(append(append(e.vlanBuf[:0], frame[:12]...), byte(tpid>>8), byte(tpid), byte(tci>>8), byte(tci)), frame[12:]...)
			frame = e.vlanBuf
		}
		sink.Sample(&e.x, frame, e.link, e.wall(ev.TsNs))
	default:
		e.short.Add(1)
	}
}

// external fills e.x from a kernel entry.
func (e *EBPF) external(k *bpf.Key, v *bpf.Flow) {
	x := &e.x
	x.Key = flow.Key{Src: flow.Addr(k.A), Dst: flow.Addr(k.B), SrcPort: k.PortA, DstPort: k.PortB,
		Proto: k.Proto, NVLAN: k.Nvlan, VLAN: k.Vlan}
	x.Gen = v.FirstNs
	x.First, x.Last = e.wall(v.FirstNs), e.wall(v.LastNs)
	x.Closed = 0
	if v.CloseNs != 0 {
		x.Closed = e.wall(v.CloseNs)
	}
	x.FirstFromDst = v.FirstFromB != 0
	x.FirstFlags = flow.TCPFlags(v.FirstFlags)
	x.ICMPType, x.ICMPCode = v.IcmpType, v.IcmpCode
	for s := range 2 {
		d := &v.Dir[s]
		x.Side[s] = flowtable.Side{Packets: d.Packets, Bytes: d.Bytes, Payload: d.Payload,
			Flags: flow.TCPFlags(d.Flags), FIN: d.Fin != 0, MAC: flow.MAC(d.Mac)}
	}
	x.RST = v.Rst != 0
	x.History = v.History
	x.NHistory = int(v.Nhistory)
}

func (e *EBPF) wall(mono uint64) int64 { return int64(mono) + e.offset }

// sweep reads every flow in the map into sink, and collects (deletes) the
// flows that are idle or closed past the linger; the flow table closes
// their records by the same rules.
func (e *EBPF) sweep(sink Sink, now time.Time) error {
	mono := uint64(now.UnixNano() - e.offset)
	created := e.counters()[bpf.CounterFlows]
	idle, linger := uint64(e.cfg.Flow.IdleTimeout), uint64(e.cfg.Flow.CloseLinger)
	e.expired = e.expired[:0]
	var (
		cursor  ebpf.MapBatchCursor
		entries int64
	)
	for {
		n, err := e.objs.Flows.BatchLookup(&cursor, e.keys, e.vals, nil)
		for i := range n {
			v := &e.vals[i]
			e.external(&e.keys[i], v)
			sink.Flow(&e.x)
			entries++
			if mono-v.LastNs >= idle && mono > v.LastNs || v.CloseNs != 0 && mono > v.CloseNs && mono-v.CloseNs >= linger {
				e.expired = append(e.expired, e.keys[i])
			}
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
		if err != nil {
			return fmt.Errorf("ebpf %s: reading the flow map: %w", e.cfg.Interface, err)
		}
	}
	var v bpf.Flow
	for i := range e.expired {
		if err := e.objs.Flows.LookupAndDelete(&e.expired[i], &v); err != nil {
			continue // the LRU evicted it meanwhile
		}
		e.external(&e.expired[i], &v)
		sink.Flow(&e.x)
		e.deleted.Add(1)
		entries--
	}
	e.entries.Store(entries)
	// Entries created before this sweep began, less those collected and
	// those still there, were evicted by the LRU: never more than that.
	if ev := int64(created) - int64(e.deleted.Load()) - entries; ev > int64(e.evicted.Load()) {
		e.evicted.Store(uint64(ev))
	}
	sink.Advance(now.UnixNano())
	return nil
}

// counters sums the kernel's per-CPU counters.
func (e *EBPF) counters() (sum [bpf.NumCounters]uint64) {
	var per []bpf.Stats
	if err := e.objs.Counters.Lookup(uint32(0), &per); err == nil {
		for i := range per {
			for c := range sum {
				sum[c] += per[i].N[c]
			}
		}
	}
	return sum
}

// Stats returns the kernel's counters and the sweep's; after Close, their
// last values.
func (e *EBPF) Stats() Stats {
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	if e.closed {
		return e.final
	}
	return e.stats()
}

func (e *EBPF) stats() Stats {
	sum := e.counters()
	return Stats{
		Packets:      sum[bpf.CounterPackets],
		Bytes:        sum[bpf.CounterBytes],
		RingbufDrops: sum[bpf.CounterRingbufDrops],
		MapFull:      sum[bpf.CounterMapFull] + e.evicted.Load(),
		Samples:      sum[bpf.CounterSamples],
		FlowEvents:   sum[bpf.CounterFlowEvents],
		Flows:        sum[bpf.CounterFlows],
		Entries:      int(e.entries.Load()),
	}
}

// Close detaches the programs and frees the maps.
func (e *EBPF) Close() error {
	e.unattach()
	if e.rd != nil {
		e.rd.Close()
	}
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	if !e.closed {
		e.final, e.closed = e.stats(), true
	}
	return e.objs.Close()
}

// clockOffset measures wall clock minus CLOCK_MONOTONIC (the clock of
// bpf_ktime_get_ns), taking the tightest of a few readings.
func clockOffset() int64 {
	best, off := int64(1<<62), int64(0)
	for range 5 {
		var ts unix.Timespec
		a := time.Now().UnixNano()
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		b := time.Now().UnixNano()
		if b-a < best {
			best, off = b-a, (a+b)/2-ts.Nano()
		}
	}
	return off
}
