package bpf

import (
	"github.com/cilium/ebpf"
)

// The ABI types, generated from edgeward.h (see gen.sh): aliases, so the C
// structs stay the only definition.
type (
	// Key is a flow's canonical key (struct ew_key).
	Key = captureEwKey
	// Dir is what one endpoint of a flow sent (struct ew_dir).
	Dir = captureEwDir
	// Flow is a flow's counters in the flows map (struct ew_flow).
	Flow = captureEwFlow
	// Event is a ring-buffer event's header (struct ew_event).
	Event = captureEwEvent
	// Sample is a sample event: the header and the frame's first bytes.
	Sample = captureEwSample
	// Stats is one CPU's counters (struct ew_stats), indexed by Counter.
	Stats = captureEwStats
	// Counter indexes Stats.N (enum ew_counter).
	Counter = captureEwCounter
	// Objects are the loaded programs and maps.
	Objects = captureObjects
	// Specs are the programs, maps and variables before loading.
	Specs = captureSpecs
)

// Event kinds (enum ew_event_kind).
const (
	EventSample = uint32(captureEwEventKindEW_EVENT_SAMPLE)
	EventFlow   = uint32(captureEwEventKindEW_EVENT_FLOW)
)

// Counters (enum ew_counter).
const (
	CounterPackets      = captureEwCounterEW_C_PACKETS
	CounterBytes        = captureEwCounterEW_C_BYTES
	CounterNotIP        = captureEwCounterEW_C_NOT_IP
	CounterBad          = captureEwCounterEW_C_BAD
	CounterFlows        = captureEwCounterEW_C_FLOWS
	CounterRestarts     = captureEwCounterEW_C_RESTARTS
	CounterSamples      = captureEwCounterEW_C_SAMPLES
	CounterFlowEvents   = captureEwCounterEW_C_FLOW_EVENTS
	CounterRingbufDrops = captureEwCounterEW_C_RINGBUF_DROPS
	CounterMapFull      = captureEwCounterEW_C_MAP_FULL
	NumCounters         = int(captureEwCounterEW_C_MAX)
)

// SnapMax is the most frame bytes a sample carries (EW_SNAP_MAX).
const SnapMax = len(captureEwSample{}.Data)

// LoadSpec returns the collection spec of the programs, for setting the
// variables (idle_ns, active_ns, sample_packets, sample_bytes, raw_ip) and
// map sizes before loading it with spec.LoadAndAssign(&Objects{}, opts).
func LoadSpec() (*ebpf.CollectionSpec, error) { return loadCapture() }
