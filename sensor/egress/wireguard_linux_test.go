//go:build linux

package egress_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor"
	"github.com/edgeward/edgeward/sensor/egress"
	"github.com/edgeward/edgeward/sensor/identity"
	"github.com/edgeward/edgeward/sensor/inventory"
)

// Names this test owns; leftovers of a killed run are removed by them.
const (
	nsPrefix = "ewegress-"
	nsGW     = nsPrefix + "gw"   // the corporate VPN gateway, where the sensor runs
	nsHome   = nsPrefix + "home" // the facilitator's home, where the laptop sits
	wgGW     = "ewegw0"
	wgHome   = "ewehome0"
	uapiDir  = "/var/run/wireguard"
)

// Addresses in 198.18.0.0/15 (RFC 2544 benchmarking space): outer ones on
// the veth pair between the namespaces, inner ones in the tunnel.
var (
	gwOuter    = netip.MustParseAddr("198.18.0.1")
	homeOuter  = netip.MustParseAddr("198.18.0.2") // the "residential IP"
	homeOuter2 = netip.MustParseAddr("198.18.0.3") // where the laptop roams to
	gwInner    = netip.MustParseAddr("198.19.0.1")
	homeInner  = netip.MustParseAddr("198.19.0.2")
	tunnelNet  = netip.MustParsePrefix("198.19.0.0/24")
)

const (
	gwPort   = 51820
	homePort = 41414
	echoPort = 9000
)

// TestWireGuardEgress is the end-to-end proof: real WireGuard session
// state (wireguard-go, read through wgctrl over its UAPI socket) becomes
// egress.ip on the sensor's flows of the laptop's tunnel address, captured
// from the gateway's WireGuard interface. The laptop then roams to another
// outer address: later flows carry the new one, earlier ones keep theirs.
func TestWireGuardEgress(t *testing.T) {
	requireNetns(t)
	removeLeftovers(t)
	t.Cleanup(func() { removeLeftovers(t) })

	gwKey, homeKey := privateKey(t), privateKey(t)
	for _, ns := range []string{nsGW, nsHome} {
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "-n", nsGW, "link", "add", "vgw", "type", "veth", "peer", "name", "vhome", "netns", nsHome)
	run(t, "ip", "-n", nsGW, "addr", "add", gwOuter.String()+"/24", "dev", "vgw")
	run(t, "ip", "-n", nsHome, "addr", "add", homeOuter.String()+"/24", "dev", "vhome")
	run(t, "ip", "-n", nsGW, "link", "set", "vgw", "up")
	run(t, "ip", "-n", nsHome, "link", "set", "vhome", "up")

	startWireGuardGo(t, nsGW, wgGW)
	startWireGuardGo(t, nsHome, wgHome)
	wg, err := wgctrl.New()
	if err != nil {
		t.Fatalf("wgctrl: %v", err)
	}
	defer wg.Close()
	configure(t, wg, wgGW, wgtypes.Config{PrivateKey: &gwKey, ListenPort: ptr(gwPort), Peers: []wgtypes.PeerConfig{
		{PublicKey: homeKey.PublicKey(), AllowedIPs: []net.IPNet{ipNet(netip.PrefixFrom(homeInner, 32))}},
	}})
	homePeer := []wgtypes.PeerConfig{{PublicKey: gwKey.PublicKey(), Endpoint: net.UDPAddrFromAddrPort(netip.AddrPortFrom(gwOuter, gwPort)),
		AllowedIPs: []net.IPNet{ipNet(tunnelNet)}}}
	configure(t, wg, wgHome, wgtypes.Config{PrivateKey: &homeKey, ListenPort: ptr(homePort), Peers: homePeer})
	run(t, "ip", "-n", nsGW, "addr", "add", gwInner.String()+"/24", "dev", wgGW)
	run(t, "ip", "-n", nsHome, "addr", "add", homeInner.String()+"/24", "dev", wgHome)
	run(t, "ip", "-n", nsGW, "link", "set", wgGW, "up")
	run(t, "ip", "-n", nsHome, "link", "set", wgHome, "up")

	capture := startCapture(t, nsGW, wgGW)
	startEcho(t, nsGW, netip.AddrPortFrom(gwInner, echoPort))

	store := egress.NewStore(egress.StoreConfig{Skew: -1}) // exact ranges: no tolerance to hide behind
	poller := egress.NewWireGuard(wg, wgGW, store, nil)
	poll := func() {
		t.Helper()
		if err := poller.Poll(time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	poll() // no handshake yet: no session
	if store.Len() != 0 {
		t.Fatalf("%d sessions before any handshake", store.Len())
	}

	// The laptop talks through the tunnel from its home address.
	port1 := exchange(t, nsHome, netip.AddrPortFrom(gwInner, echoPort))
	poll()

	// It moves to another address and reconnects (a new handshake). The
	// gateway refuses a peer's handshakes closer than 20ms apart as a
	// flood: let a moment pass, as a move would.
	time.Sleep(100 * time.Millisecond)
	run(t, "ip", "-n", nsHome, "addr", "del", homeOuter.String()+"/24", "dev", "vhome")
	run(t, "ip", "-n", nsHome, "addr", "add", homeOuter2.String()+"/24", "dev", "vhome")
	configure(t, wg, wgHome, wgtypes.Config{ReplacePeers: true, Peers: homePeer})
	port2 := exchange(t, nsHome, netip.AddrPortFrom(gwInner, echoPort))
	poll()

	pcapPath := capture.stop(t)
	inv, err := inventory.Parse("inv.csv", []byte("id,owner,assigned_country,wireguard_public_key\nLT-FARM-01,a.kim@example.com,US,"+homeKey.PublicKey().String()+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := sensor.Config{Identity: identity.Config{Internal: []netip.Prefix{tunnelNet}, Inventory: inv, Sessions: store}}
	want := map[uint16]netip.Addr{port1: homeOuter, port2: homeOuter2}
	seen := map[uint16]bool{}
	_, err = sensor.ReadFile(context.Background(), pcapPath, cfg, func(r *flow.Record) {
		if r.Src.IP != homeInner {
			return
		}
		wantIP, ok := want[r.Src.Port]
		if !ok {
			return
		}
		seen[r.Src.Port] = true
		e := r.Egress
		if e == nil {
			t.Errorf("flow %s:%d -> %s:%d at %s has no egress; sessions %+v", r.Src.IP, r.Src.Port, r.Dst.IP, r.Dst.Port,
				r.Start.Format(time.StampMicro), store.Sessions(homeInner))
			return
		}
		if e.IP != wantIP || e.Port != homePort || e.Source != egress.SourceWireGuard || e.Peer != homeKey.PublicKey().String() {
			t.Errorf("flow from port %d: egress %+v, want %s:%d from wireguard, peer %s", r.Src.Port, *e, wantIP, homePort, homeKey.PublicKey())
		}
		if d := r.Device; d == nil || d.ID != "LT-FARM-01" || d.MatchedBy != "vpn" || d.AssignedCountry != "US" {
			t.Errorf("device %+v, want LT-FARM-01 matched by vpn", d)
		}
		t.Logf("flow %s:%d -> %s:%d: egress.ip %s, device %s", r.Src.IP, r.Src.Port, r.Dst.IP, r.Dst.Port, e.IP, r.Device.ID)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 {
		t.Errorf("flows from the laptop's two exchanges seen: %v (capture %s)", seen, pcapPath)
	}
}

// requireNetns skips, saying why, unless this test can build its network.
func requireNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create network namespaces and a WireGuard interface")
	}
	for _, tool := range []string{"ip", "wireguard-go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s not found (Debian packages iproute2 and wireguard-go)", tool)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("skipping: no TUN device for wireguard-go: %v", err)
	}
}

// removeLeftovers deletes what a run of this test may have left: the
// UAPI sockets (wireguard-go exits when its socket is removed) and the
// namespaces, by name.
func removeLeftovers(t *testing.T) {
	for _, name := range []string{wgGW, wgHome} {
		os.Remove(filepath.Join(uapiDir, name+".sock"))
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if name, _, _ := strings.Cut(strings.TrimSpace(line), " "); strings.HasPrefix(name, nsPrefix) {
			if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
				t.Logf("removing namespace %s: %v: %s", name, err, out)
			}
		}
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func privateKey(t *testing.T) wgtypes.Key {
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ptr[T any](v T) *T { return &v }

func ipNet(p netip.Prefix) net.IPNet {
	return net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func configure(t *testing.T, wg *wgctrl.Client, iface string, cfg wgtypes.Config) {
	t.Helper()
	if err := wg.ConfigureDevice(iface, cfg); err != nil {
		t.Fatalf("configuring %s: %v", iface, err)
	}
}

// startWireGuardGo runs wireguard-go in the foreground inside ns and waits
// for its UAPI socket; the process is killed (by its pid) at cleanup.
func startWireGuardGo(t *testing.T, ns, iface string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "wireguard-go", "-f", iface)
	cmd.Env = append(os.Environ(), "LOG_LEVEL=verbose") // printed when the test fails
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting wireguard-go: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("wireguard-go %s output:\n%s", iface, out.String())
		}
	})
	sock := filepath.Join(uapiDir, iface+".sock")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return
		}
		select {
		case <-exited:
			t.Fatalf("wireguard-go %s exited:\n%s", iface, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("wireguard-go %s: no UAPI socket %s after 5s:\n%s", iface, sock, out.String())
		}
	}
}

// inNetns runs fn on a thread switched into namespace ns; sockets fn
// opens stay in ns after it returns.
func inNetns(t *testing.T, ns string, fn func() error) error {
	t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open(filepath.Join("/var/run/netns", ns))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering namespace %s: %w", ns, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: it dies with this goroutine instead of
		// running other code in the wrong namespace.
		t.Fatalf("leaving namespace %s: %v", ns, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// startEcho answers UDP datagrams at addr inside ns.
func startEcho(t *testing.T, ns string, addr netip.AddrPort) {
	t.Helper()
	var pc net.PacketConn
	err := inNetns(t, ns, func() (err error) {
		pc, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		t.Fatalf("echo server: %v", err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
}

// exchange sends datagrams from a new socket inside ns to the echo server
// until one comes back (the first may wait for the handshake), and
// returns the socket's port.
func exchange(t *testing.T, ns string, to netip.AddrPort) uint16 {
	t.Helper()
	var c *net.UDPConn
	err := inNetns(t, ns, func() (err error) {
		c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(to))
		return err
	})
	if err != nil {
		t.Fatalf("dialing through the tunnel: %v", err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	for try := range 48 { // 12s: a lost handshake is retried after 5s
		if _, err := c.Write([]byte(fmt.Sprintf("hello %d", try))); err != nil {
			t.Fatalf("sending through the tunnel: %v", err)
		}
		c.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		if _, err := c.Read(buf); err == nil {
			// A few more, so the flow has packets both ways after the handshake.
			for i := range 3 {
				c.Write([]byte(fmt.Sprintf("more %d", i)))
				c.SetReadDeadline(time.Now().Add(time.Second))
				c.Read(buf)
			}
			return uint16(c.LocalAddr().(*net.UDPAddr).Port)
		}
	}
	var diag strings.Builder
	for _, args := range [][]string{{"wg", "show", "all"}, {"ip", "-n", nsHome, "addr"}, {"ip", "-n", nsHome, "route"}, {"ip", "-n", nsGW, "addr"}} {
		out, _ := exec.Command(args[0], args[1:]...).CombinedOutput()
		fmt.Fprintf(&diag, "$ %s\n%s", strings.Join(args, " "), out)
	}
	t.Fatalf("no answer through the tunnel from %s\n%s", to, diag.String())
	return 0
}

// capture reads every packet of one interface with an AF_PACKET socket
// opened inside the namespace, and writes them to a pcap at stop.
type capture struct {
	fd      int
	done    atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	packets []packet
	err     error
}

type packet struct {
	ts   time.Time
	data []byte
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func startCapture(t *testing.T, ns, iface string) *capture {
	t.Helper()
	c := &capture{fd: -1}
	err := inNetns(t, ns, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		c.fd = fd
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	})
	if err != nil {
		if c.fd >= 0 {
			unix.Close(c.fd)
		}
		t.Fatalf("capturing on %s: %v", iface, err)
	}
	tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
	if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.halt() })
	c.wg.Go(func() {
		buf := make([]byte, 65536)
		for !c.done.Load() {
			n, _, err := unix.Recvfrom(c.fd, buf, 0)
			ts := time.Now()
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				c.mu.Lock()
				c.err = err
				c.mu.Unlock()
				return
			}
			c.mu.Lock()
			c.packets = append(c.packets, packet{ts, append([]byte(nil), buf[:n]...)})
			c.mu.Unlock()
		}
	})
	return c
}

func (c *capture) halt() {
	if c.done.Swap(true) {
		return
	}
	c.wg.Wait()
	unix.Close(c.fd)
}

// stop ends the capture and writes it as a raw-IP pcap with nanosecond
// timestamps.
func (c *capture) stop(t *testing.T) string {
	t.Helper()
	c.halt()
	if c.err != nil {
		t.Fatalf("capture: %v", c.err)
	}
	path := filepath.Join(t.TempDir(), "wg.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65536, layers.LinkTypeRaw); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.packets {
		ci := gopacket.CaptureInfo{Timestamp: p.ts, CaptureLength: len(p.data), Length: len(p.data)}
		if err := w.WritePacket(ci, p.data); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("captured %d packets on %s", len(c.packets), wgGW)
	return path
}
