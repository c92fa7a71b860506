package live

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// AFPacketConfig configures an AF_PACKET capture.
type AFPacketConfig struct {
	Interface string
	// Workers is the size of the fanout group (default 1). The kernel
	// spreads flows over the workers by a symmetric hash of their
	// addresses and ports, so both directions of a flow reach one worker.
	Workers int
	// Filter is a classic BPF filter in the form `tcpdump -ddd EXPR`
	// prints (a count, then one "code jt jf k" line per instruction;
	// commas may separate them), or a tcpdump expression when built with
	// -tags pcap (libpcap compiles it). Empty: every frame.
	Filter string
	// Promiscuous also captures frames not addressed to the interface
	// (a mirror port); a gateway routes what it inspects, so off by default.
	Promiscuous bool
	// RingBytes is each worker's ring size (default 32 MiB).
	RingBytes int
}

// AFPacket captures whole frames with AF_PACKET sockets. It needs
// CAP_NET_RAW to open; reading needs no capability.
type AFPacket struct {
	cfg     AFPacketConfig
	link    layers.LinkType
	socks   []*afpacket.TPacket
	packets atomic.Uint64
	bytes   atomic.Uint64
	// Close unmaps the rings that Run reads without copying, so it first
	// stops the readers: closing is their signal, running counts them.
	mu      sync.Mutex
	closing bool
	running sync.WaitGroup
	// drops are the rings' drops when Close closed them: the counter
	// stays exported (Collector) after Close and must not fall back.
	drops uint64
}

const (
	afBlockSize    = 1 << 20
	afBlockTimeout = 50 * time.Millisecond
	afPollTimeout  = 200 * time.Millisecond
)

// OpenAFPacket opens the capture sockets.
func OpenAFPacket(cfg AFPacketConfig) (*AFPacket, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.RingBytes <= 0 {
		cfg.RingBytes = 32 << 20
	}
	where := "afpacket " + cfg.Interface
	filter, err := CompileFilter(cfg.Filter, cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("%s: filter: %w", where, err)
	}
	if _, err := net.InterfaceByName(cfg.Interface); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	a := &AFPacket{cfg: cfg, link: linkType(cfg.Interface)}
	fanoutID := uint16(os.Getpid())
	for w := range cfg.Workers {
		tp, err := afpacket.NewTPacket(
			afpacket.OptInterface(cfg.Interface),
			afpacket.TPacketVersion3,
			afpacket.OptFrameSize(1<<16),
			afpacket.OptBlockSize(afBlockSize),
			afpacket.OptNumBlocks(max(cfg.RingBytes/afBlockSize, 2)),
			afpacket.OptBlockTimeout(afBlockTimeout),
			afpacket.OptPollTimeout(afPollTimeout),
		)
		if err != nil {
			a.Close()
			if errors.Is(err, os.ErrPermission) {
				return nil, fmt.Errorf("%s: opening socket %d: %w (needs CAP_NET_RAW)", where, w, err)
			}
			return nil, fmt.Errorf("%s: opening socket %d: %w", where, w, err)
		}
		a.socks = append(a.socks, tp)
		if len(filter) > 0 {
			if err := tp.SetBPF(filter); err != nil {
				a.Close()
				return nil, fmt.Errorf("%s: setting filter: %w", where, err)
			}
		}
		if cfg.Promiscuous && w == 0 {
			if err := tp.SetPromiscuous(true); err != nil {
				a.Close()
				return nil, fmt.Errorf("%s: promiscuous mode: %w", where, err)
			}
		}
		if cfg.Workers > 1 {
			if err := tp.SetFanout(afpacket.FanoutHash, fanoutID); err != nil {
				a.Close()
				return nil, fmt.Errorf("%s: fanout: %w", where, err)
			}
		}
	}
	return a, nil
}

// Workers is the fanout group's size.
func (a *AFPacket) Workers() int { return len(a.socks) }

// Run reads worker's socket into sink. After ctx is done it keeps reading
// for two block timeouts, so frames the kernel queued before the stop (in
// blocks it hands over only when full or timed out) are still counted.
func (a *AFPacket) Run(ctx context.Context, worker int, sink Sink) error {
	a.mu.Lock()
	if a.closing {
		a.mu.Unlock()
		return fmt.Errorf("afpacket %s: %w", a.cfg.Interface, net.ErrClosed)
	}
	a.running.Add(1)
	tp := a.socks[worker]
	a.mu.Unlock()
	defer a.running.Done()
	var (
		vlanBuf []byte
		n       uint
		drainBy time.Time
	)
	for {
		data, ci, err := tp.ZeroCopyReadPacketData()
		switch {
		case err == nil:
			a.packets.Add(1)
			a.bytes.Add(uint64(len(data)))
			if len(ci.AncillaryData) > 0 {
				// The kernel took the outer VLAN tag out of the frame;
				// put it back so the frame is decoded as it was on the
				// wire (costs an allocation in gopacket, only for tags).
				if v, ok := ci.AncillaryData[0].(afpacket.AncillaryVLAN); ok && len(data) >= 12 {
					vlanBuf = append(append(append(vlanBuf[:0], data[:12]...), 0x81, 0x00, byte(v.VLAN>>8), byte(v.VLAN)), data[12:]...)
					data = vlanBuf
				}
			}
			sink.Frame(data, a.link, ci.Timestamp.UnixNano())
			if n++; n&0xff != 0 {
				continue
			}
		case errors.Is(err, afpacket.ErrTimeout):
			sink.Advance(time.Now().UnixNano())
		case errors.Is(err, afpacket.ErrPoll):
			// The socket's error is ENETDOWN once the interface went
			// down or away (the kernel unhooks the socket); say which.
			return fmt.Errorf("afpacket %s: reading: %w", a.cfg.Interface, interfaceState(a.cfg.Interface, err))
		default:
			return fmt.Errorf("afpacket %s: reading: %w", a.cfg.Interface, err)
		}
		if a.stopping() {
			return nil
		}
		if drainBy.IsZero() {
			if ctx.Err() != nil {
				drainBy = time.Now().Add(2 * afBlockTimeout)
			}
		} else if time.Now().After(drainBy) {
			return nil
		}
	}
}

// interfaceState explains a poll error by the interface's state.
func interfaceState(iface string, err error) error {
	ifc, ierr := net.InterfaceByName(iface)
	switch {
	case ierr != nil:
		return fmt.Errorf("the interface is gone (%v): %w", ierr, err)
	case ifc.Flags&net.FlagUp == 0:
		return fmt.Errorf("the interface went down: %w", err)
	}
	return err
}

// Stats returns the frames read and the frames the rings dropped.
func (a *AFPacket) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Stats{Packets: a.packets.Load(), Bytes: a.bytes.Load(), SocketDrops: a.drops + a.socketDrops()}
}

// socketDrops sums the open rings' drops; a.mu held.
func (a *AFPacket) socketDrops() (n uint64) {
	for _, tp := range a.socks {
		if _, v3, err := tp.SocketStats(); err == nil {
			n += uint64(v3.Drops())
		}
	}
	return n
}

func (a *AFPacket) stopping() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closing
}

// Close stops any Run still reading (within a block timeout) and closes
// the sockets.
func (a *AFPacket) Close() error {
	a.mu.Lock()
	a.closing = true
	a.mu.Unlock()
	a.running.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.drops += a.socketDrops()
	for _, tp := range a.socks {
		tp.Close()
	}
	a.socks = nil
	return nil
}

// linkType is the interface's link layer: raw IP for devices without one
// (WireGuard, tun), else Ethernet.
func linkType(iface string) layers.LinkType {
	if rawIP(iface) {
		return layers.LinkTypeRaw
	}
	return layers.LinkTypeEthernet
}

// rawIP reports whether the interface has no link layer (ARPHRD_NONE).
func rawIP(iface string) bool {
	b, err := os.ReadFile("/sys/class/net/" + iface + "/type")
	if err != nil {
		return false
	}
	t, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return t == 65534
}

// ErrFilterSyntax means a filter is neither `tcpdump -ddd` output nor, in
// a build without libpcap, anything else edgeward can compile.
var ErrFilterSyntax = errors.New("not in `tcpdump -ddd` form; write it with tcpdump -ddd EXPR, or build with -tags pcap for tcpdump expressions")

// parseDDD reads classic BPF in the `tcpdump -ddd` form.
func parseDDD(s string) ([]bpf.RawInstruction, bool, error) {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ';' })
	if len(f) == 0 {
		return nil, false, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(f[0]))
	if err != nil {
		return nil, false, nil // not this form
	}
	if n != len(f)-1 {
		return nil, true, fmt.Errorf("count %d, but %d instructions follow", n, len(f)-1)
	}
	out := make([]bpf.RawInstruction, n)
	for i, line := range f[1:] {
		var v [4]uint64
		w := strings.Fields(line)
		if len(w) != 4 {
			return nil, true, fmt.Errorf("instruction %d: %q: want 4 numbers (code jt jf k)", i+1, line)
		}
		for j, x := range w {
			if v[j], err = strconv.ParseUint(x, 10, 32); err != nil {
				return nil, true, fmt.Errorf("instruction %d: %q: %v", i+1, line, err)
			}
		}
		if v[0] > 0xffff || v[1] > 0xff || v[2] > 0xff {
			return nil, true, fmt.Errorf("instruction %d: %q: out of range", i+1, line)
		}
		out[i] = bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])}
	}
	return out, true, nil
}
