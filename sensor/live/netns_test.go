package live_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// testNet is a network namespace joined to the test's namespace by a veth
// pair: host stays here (the captures attach to it), peer is inside ns.
type testNet struct {
	ns         string
	host, peer string
	hostIP     string // 198.18.0.1 (RFC 2544 benchmarking range)
	peerIP     string // 198.18.0.2
}

const nsPrefix = "ewlive"

// newTestNet creates the namespace and veth pair, removing them when the
// test ends (whatever its result), after removing what an earlier run that
// crashed left behind. It skips the test without root.
func newTestNet(t *testing.T) *testNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("live capture tests need root: they create a network namespace and a veth pair, and load eBPF programs")
	}
	for _, tool := range []string{"ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install iproute2)", tool)
		}
	}
	removeLeftovers(t)
	id := os.Getpid() % 1000000
	n := &testNet{
		ns:     fmt.Sprintf("%s%d", nsPrefix, id),
		host:   fmt.Sprintf("ewl%da", id),
		peer:   fmt.Sprintf("ewl%db", id),
		hostIP: "198.18.0.1",
		peerIP: "198.18.0.2",
	}
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", n.host).Run()
		exec.Command("ip", "netns", "del", n.ns).Run()
	})
	run(t, "ip", "netns", "add", n.ns)
	run(t, "ip", "link", "add", n.host, "mtu", "9000", "type", "veth", "peer", "name", n.peer, "mtu", "9000", "netns", n.ns)
	// No IPv6 on the pair: its autoconfiguration chatter would only add
	// flows that race with the end of the test.
	os.WriteFile("/proc/sys/net/ipv6/conf/"+n.host+"/disable_ipv6", []byte("1"), 0o644)
	run(t, "ip", "netns", "exec", n.ns, "sysctl", "-qw", "net.ipv6.conf."+n.peer+".disable_ipv6=1")
	run(t, "ip", "addr", "add", n.hostIP+"/30", "dev", n.host)
	run(t, "ip", "link", "set", n.host, "up")
	run(t, "ip", "-n", n.ns, "addr", "add", n.peerIP+"/30", "dev", n.peer)
	run(t, "ip", "-n", n.ns, "link", "set", n.peer, "up")
	run(t, "ip", "-n", n.ns, "link", "set", "lo", "up")
	return n
}

// removeLeftovers deletes namespaces and links of earlier runs whose
// process is gone (a run still going keeps its own).
func removeLeftovers(t *testing.T) {
	names, _ := filepath.Glob("/var/run/netns/" + nsPrefix + "*")
	for _, p := range names {
		ns := filepath.Base(p)
		id, err := strconv.Atoi(strings.TrimPrefix(ns, nsPrefix))
		if err != nil || alive(id) {
			continue
		}
		t.Logf("removing %s, left by an earlier run", ns)
		exec.Command("ip", "netns", "del", ns).Run()
		exec.Command("ip", "link", "del", fmt.Sprintf("ewl%da", id)).Run()
	}
}

func alive(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// inNS runs f on a thread inside the namespace. Sockets f opens stay in
// the namespace and may be used from any goroutine afterwards.
func (n *testNet) inNS(t *testing.T, f func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		// The thread never leaves the namespace: it ends with this
		// goroutine because it stays locked.
		runtime.LockOSThread()
		fd, err := unix.Open("/var/run/netns/"+n.ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	if err := <-errc; err != nil {
		t.Fatalf("in namespace %s: %v", n.ns, err)
	}
}
