// Package live captures at a network interface. It owns the two capture
// paths of a gateway sensor and what they need from the kernel:
//
//   - AFPacket reads whole frames from AF_PACKET sockets (TPACKET_V3 rings,
//     a fanout group for several workers, an optional classic BPF filter);
//     it is the portable path.
//   - EBPF loads the TC programs of package bpf, attaches them to the
//     interface's ingress and egress (TCX, or clsact before Linux 6.6),
//     reads the flows they count from the kernel's map and the payload
//     samples they send over a ring buffer.
//
// Both hand what they read to a Sink, which sensor.Capture implements with
// the same decoder, flow table and inspector the capture-file path uses, so
// every record is built by one builder whatever the source.
package live

import (
	"context"

	"github.com/edgeward/edgeward/sensor/flowtable"
	"github.com/gopacket/gopacket/layers"
)

// Sink receives what a source captures. A source calls one worker's Sink
// from one goroutine only.
type Sink interface {
	// Frame accounts one captured frame (captured at ts, ns since the Unix
	// epoch). data is valid only during the call.
	Frame(data []byte, link layers.LinkType, ts int64)
	// Flow sets the counters of a flow the kernel counts.
	Flow(x *flowtable.External)
	// Sample passes a payload packet of a kernel-counted flow, captured
	// at ts, for inspection; frame is valid only during the call.
	Sample(x *flowtable.External, frame []byte, link layers.LinkType, ts int64)
	// Advance tells the time (ns since the Unix epoch) when nothing else
	// does, so idle flows end while the link is quiet.
	Advance(now int64)
}

// Source is a live capture.
type Source interface {
	// Workers is how many Run calls the source wants, each with its own
	// Sink (AF_PACKET fanout); flows never span workers.
	Workers() int
	// Run captures into sink until ctx is done, then passes what the
	// kernel still holds and returns. worker is in [0, Workers()).
	Run(ctx context.Context, worker int, sink Sink) error
	// Stats returns the source's counters; safe to call at any time.
	Stats() Stats
	// Close releases the sockets, programs and maps.
	Close() error
}

// Stats counts what a source captured and what it lost.
type Stats struct {
	Packets uint64 // frames read (AF_PACKET) or packets the kernel counted (eBPF)
	Bytes   uint64 // their captured bytes (AF_PACKET) or IP bytes (eBPF)
	// SocketDrops are frames the AF_PACKET rings had no room for.
	SocketDrops uint64
	// RingbufDrops are sample and flow events the eBPF ring buffer had no
	// room for: lost metadata, or counters since the last sweep.
	RingbufDrops uint64
	// MapFull counts flows the kernel could not count: the flows map
	// refused an entry, or its LRU evicted a flow user space had not
	// collected.
	MapFull uint64
	// Samples and FlowEvents are the eBPF events sent.
	Samples, FlowEvents uint64
	// Flows is the eBPF entries created; Entries the flows in the map at
	// the last sweep.
	Flows   uint64
	Entries int
}
