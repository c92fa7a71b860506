package live_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/edgeward/edgeward/sensor/live"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// tcFilter is one filter on an interface's clsact hook, as the kernel
// lists it.
type tcFilter struct {
	dir          string // ingress or egress
	pref, handle uint32
	kind, name   string
	prog         int // the bpf program's id
}

func (f tcFilter) String() string {
	return fmt.Sprintf("%s pref %d handle %#x %s %s id %d", f.dir, f.pref, f.handle, f.kind, f.name, f.prog)
}

// tcFilters lists the filters (not the classifier heads, handle 0) on both
// hooks of dev.
func tcFilters(t *testing.T, dev string) []tcFilter {
	t.Helper()
	l, err := netlink.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	var all []tcFilter
	for dir, parent := range map[string]uint32{"ingress": netlink.HANDLE_MIN_INGRESS, "egress": netlink.HANDLE_MIN_EGRESS} {
		fs, err := netlink.FilterList(l, parent)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			a := f.Attrs()
			if a.Handle == 0 {
				continue
			}
			tf := tcFilter{dir: dir, pref: uint32(a.Priority), handle: a.Handle, kind: f.Type()}
			if b, ok := f.(*netlink.BpfFilter); ok {
				tf.name, tf.prog = b.Name, b.Id
			}
			all = append(all, tf)
		}
	}
	slices.SortFunc(all, func(a, b tcFilter) int { return strings.Compare(a.String(), b.String()) })
	return all
}

// ours returns the filters edgeward names as its own.
func ours(fs []tcFilter) []tcFilter {
	var o []tcFilter
	for _, f := range fs {
		if strings.HasPrefix(f.name, "edgeward-") {
			o = append(o, f)
		}
	}
	return o
}

// without returns fs less the filters in drop.
func without(fs, drop []tcFilter) []tcFilter {
	return slices.DeleteFunc(slices.Clone(fs), func(f tcFilter) bool { return slices.Contains(drop, f) })
}

func openClsact(t *testing.T, dev string) *live.EBPF {
	t.Helper()
	eb, err := live.OpenEBPF(live.EBPFConfig{Interface: dev, Clsact: true, SweepInterval: 50 * time.Millisecond, MaxFlows: 1024, RingBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	if eb.Attach() != "clsact" {
		t.Fatalf("attached with %s", eb.Attach())
	}
	return eb
}

// TestClsactTwoCaptures: a second clsact capture on the interface (say
// `edgeward flows --mode ebpf` next to the sensor) gets filters of its
// own; both count, and closing the second leaves the first's filters.
func TestClsactTwoCaptures(t *testing.T) {
	n := newTestNet(t)
	a := openClsact(t, n.host)
	defer a.Close()
	fa := ours(tcFilters(t, n.host))
	b := openClsact(t, n.host)
	defer b.Close()
	fb := without(ours(tcFilters(t, n.host)), fa)
	t.Logf("first capture's filters %v, second's %v", fa, fb)
	if len(fa) != 2 || len(fb) != 2 {
		t.Fatalf("filters of the first capture %v, of the second %v; want two each", fa, fb)
	}
	udpTo(t, n.peerIP+":9", 10)
	if pa, pb := a.Stats().Packets, b.Stats().Packets; pa < 10 || pb < 10 {
		t.Errorf("10 datagrams sent; the first capture counted %d packets, the second %d", pa, pb)
	}
	b.Close()
	if got := ours(tcFilters(t, n.host)); !slices.Equal(got, fa) {
		t.Errorf("after the second capture closed, edgeward's filters are %v; want the first's, %v", got, fa)
	}
	before := a.Stats().Packets
	udpTo(t, n.peerIP+":9", 10)
	if got := a.Stats().Packets - before; got < 10 {
		t.Errorf("after the second capture closed, the first counted %d packets of 10 datagrams", got)
	}
}

// addForeign adds a clsact filter of another tool: a bpf program that
// lets every packet through, named other, at ingress pref 1 handle 1.
func addForeign(t *testing.T, dev string) *ebpf.Program {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, License: "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Return()}}) // TC_ACT_UNSPEC
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	l, err := netlink.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.FilterAdd(&netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: l.Attrs().Index, Parent: netlink.HANDLE_MIN_INGRESS, Handle: 1, Priority: 1, Protocol: unix.ETH_P_ALL},
		Fd:          prog.FD(), Name: "other", DirectAction: true,
	}); err != nil {
		t.Fatal(err)
	}
	return prog
}

// TestClsactLeavesOthersFilters: other tools' filters, a bpf one at pref 1
// handle 1 (where edgeward used to replace it) and a u32 one at pref 2,
// are there unchanged while edgeward captures and after it closes.
func TestClsactLeavesOthersFilters(t *testing.T) {
	n := newTestNet(t)
	run(t, "tc", "qdisc", "add", "dev", n.host, "clsact")
	addForeign(t, n.host)
	// IPv6 only (disabled on the pair): a match on IPv4 would accept the
	// packets before a filter after it sees them.
	run(t, "tc", "filter", "add", "dev", n.host, "ingress", "pref", "2", "protocol", "ipv6", "u32", "match", "u32", "0", "0")
	run(t, "tc", "filter", "add", "dev", n.host, "egress", "pref", "1", "protocol", "ipv6", "u32", "match", "u32", "0", "0")
	others := tcFilters(t, n.host)
	eb := openClsact(t, n.host)
	got := tcFilters(t, n.host)
	if mine := ours(got); len(mine) != 2 || !slices.Equal(without(got, mine), others) {
		t.Errorf("while capturing: filters %v; want the others' %v unchanged, and two of edgeward's", got, others)
	}
	udpTo(t, n.peerIP+":9", 10)
	if p := eb.Stats().Packets; p < 10 {
		t.Errorf("10 datagrams sent, %d packets counted", p)
	}
	eb.Close()
	if got := tcFilters(t, n.host); !slices.Equal(got, others) {
		t.Errorf("after Close: filters %v; want the others' %v", got, others)
	}
}

// clsactChildEnv names the interface TestClsactChild captures on.
const clsactChildEnv = "EDGEWARD_TEST_CLSACT_CHILD"

// TestClsactChild is not a test: startChild runs the test binary with it,
// as another edgeward process, which opens a clsact capture, says so and
// waits for its standard input to close or to be killed.
func TestClsactChild(t *testing.T) {
	dev := os.Getenv(clsactChildEnv)
	if dev == "" {
		t.Skip("run by the clsact tests as another process")
	}
	eb := openClsact(t, dev)
	defer eb.Close()
	fmt.Println("attached")
	bufio.NewReader(os.Stdin).ReadString('\n')
}

// startChild starts TestClsactChild on dev and returns it once attached.
func startChild(t *testing.T, dev string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestClsactChild$", "-test.v")
	cmd.Env = append(os.Environ(), clsactChildEnv+"="+dev)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if sc.Text() == "attached" {
			go func() {
				for sc.Scan() {
				}
			}()
			return cmd
		}
	}
	t.Fatalf("the child capture did not attach")
	return nil
}

// TestClsactStaleFilters: the filters of an edgeward killed with SIGKILL
// stay on the interface, running its programs for nobody. The next capture
// on the interface removes them, and only them: not those of another
// edgeward process still capturing.
func TestClsactStaleFilters(t *testing.T) {
	n := newTestNet(t)
	killed := startChild(t, n.host)
	stale := ours(tcFilters(t, n.host))
	startChild(t, n.host) // stays running
	running := without(ours(tcFilters(t, n.host)), stale)
	if len(stale) != 2 || len(running) != 2 {
		t.Fatalf("filters of the first process %v, of the second %v; want two each", stale, running)
	}
	killed.Process.Kill()
	killed.Wait()
	if got := ours(tcFilters(t, n.host)); len(without(got, stale)) != len(got)-2 {
		t.Fatalf("after SIGKILL: %v; want the killed process's filters %v left behind", got, stale)
	}
	eb := openClsact(t, n.host)
	defer eb.Close()
	got := ours(tcFilters(t, n.host))
	mine := without(without(got, stale), running)
	t.Logf("filters after the next start: %v", got)
	for _, f := range stale {
		if slices.Contains(got, f) {
			t.Errorf("the killed process's filter %v is still there", f)
		}
	}
	for _, f := range running {
		if !slices.Contains(got, f) {
			t.Errorf("the running process's filter %v was removed", f)
		}
	}
	if len(mine) != 2 {
		t.Errorf("new capture's filters %v; want two", mine)
	}
}

// TestClsactFilterRemoved: when another program removes the capture's
// filters, Run ends with an error that says so, instead of counting
// nothing from then on.
func TestClsactFilterRemoved(t *testing.T) {
	n := newTestNet(t)
	eb := openClsact(t, n.host)
	defer eb.Close()
	done, cancel := runSource(t, eb)
	defer cancel()
	time.Sleep(100 * time.Millisecond)
	for _, f := range ours(tcFilters(t, n.host)) {
		if f.dir == "ingress" {
			run(t, "tc", "filter", "del", "dev", n.host, f.dir, "pref", fmt.Sprint(f.pref), "handle", fmt.Sprint(f.handle), "bpf")
		}
	}
	select {
	case err := <-done:
		t.Logf("Run: %v", err)
		if err == nil || !strings.Contains(err.Error(), "removed") {
			t.Errorf("Run after the ingress filter was removed: %v; want an error that says so", err)
		}
	case <-time.After(3 * time.Second):
		t.Errorf("Run still going 3 s after its ingress filter was removed")
	}
}
