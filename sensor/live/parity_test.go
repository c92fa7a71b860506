package live_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/corpus"
	"github.com/edgeward/edgeward/sensor"
	"github.com/edgeward/edgeward/sensor/live"
)

// parityCaptures are corpus captures with plain Ethernet framing (VLAN
// tags allowed) and no tunnels, fragments or MPLS, where the eBPF path
// counts exactly as the decoder does (docs/deploy.md lists the rest).
var parityCaptures = []string{
	"zeek-wikipedia.pcap",                    // HTTP, DNS, NetBIOS, mDNS
	"ndpi-chrome.pcap",                       // TLS 1.3, GREASE
	"zeek-tls-chrome-1250-x25519-kyber.pcap", // a ClientHello over two segments
	"zeek-quic-chromium-api-cirrus-com.pcap", // QUIC Initial
	"ndpi-dns.pcap",                          // DNS over VLAN
	"zeek-q-in-q.pcap",                       // two VLAN tags
	"tcpdump-dns_tcp.pcap",                   // DNS over TCP
	"zeek-dhcp.pcap",                         // DHCP broadcasts
	"ndpi-ssh.pcap",                          // SSH banners
	"zeek-rfb-vncmac.pcap",                   // VNC: the server speaks first
	"ndpi-http_ipv6.pcap",                    // IPv6 HTTP, TLS, QUIC
}

// capture runs sensor.Capture on src in the background and returns a
// function that stops it and returns the records, as JSON objects.
func capture(t *testing.T, ctx context.Context, src live.Source) func() ([]map[string]any, sensor.Stats) {
	ctx, cancel := context.WithCancel(ctx)
	var (
		mu   sync.Mutex
		recs []map[string]any
		st   sensor.Stats
		err  error
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		st, err = sensor.Capture(ctx, src, sensor.Config{}, func(r *flow.Record) {
			var m map[string]any
			if err := json.Unmarshal(r.AppendJSON(nil), &m); err != nil {
				t.Errorf("record JSON: %v", err)
			}
			mu.Lock()
			recs = append(recs, m)
			mu.Unlock()
		})
	}()
	return func() ([]map[string]any, sensor.Stats) {
		cancel()
		<-done
		if err != nil {
			t.Errorf("capture: %v", err)
		}
		return recs, st
	}
}

// TestParity captures the same traffic with the eBPF programs and with an
// AF_PACKET socket on one interface and requires the same flow records
// from both: addresses and ports, per-direction packets and bytes, TCP
// flags and history, and application metadata (SNI, JA3, JA4, DNS, ...).
// Only the times differ (kernel clock against socket timestamps).
func TestParity(t *testing.T) {
	n := newTestNet(t)
	eb, err := live.OpenEBPF(live.EBPFConfig{Interface: n.host, SweepInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer eb.Close()
	af, err := live.OpenAFPacket(live.AFPacketConfig{Interface: n.host})
	if err != nil {
		t.Fatal(err)
	}
	defer af.Close()
	ctx := t.Context()
	stopEBPF := capture(t, ctx, eb)
	stopAF := capture(t, ctx, af)

	replayed := replay(t, n)
	liveTraffic(t, n)
	time.Sleep(300 * time.Millisecond) // the AF_PACKET ring hands over blocks after 50 ms

	ebRecs, ebSt := stopEBPF()
	afRecs, afSt := stopAF()
	es, as := eb.Stats(), af.Stats()
	t.Logf("ebpf (%s): %d records, %+v", eb.Attach(), len(ebRecs), es)
	t.Logf("afpacket: %d records, %+v", len(afRecs), as)
	t.Logf("replayed %d captures; ebpf table %+v; afpacket table %+v", replayed, ebSt.Table, afSt.Table)
	if es.RingbufDrops != 0 || es.MapFull != 0 || as.SocketDrops != 0 {
		t.Errorf("drops at this rate: ring buffer %d, flow map %d, socket %d", es.RingbufDrops, es.MapFull, as.SocketDrops)
	}
	if ebSt.Table.SampleMismatches != 0 {
		t.Errorf("%d samples decoded to another flow than the kernel's", ebSt.Table.SampleMismatches)
	}
	if len(afRecs) < 20 {
		t.Errorf("only %d flows captured", len(afRecs))
	}
	compareRecords(t, ebRecs, afRecs)
}

// volatileFields differ between the paths by design: times come from
// different clocks (and the record id is derived from the start time).
var volatileFields = []string{"id", "start", "end", "duration_s"}

func flowKey(m map[string]any) string {
	src, _ := m["src"].(map[string]any)
	dst, _ := m["dst"].(map[string]any)
	return fmt.Sprintf("%v %v:%v > %v:%v vlan %v", m["proto"], src["ip"], src["port"], dst["ip"], dst["port"], m["vlan"])
}

func compareRecords(t *testing.T, ebpf, afpacket []map[string]any) {
	t.Helper()
	index := func(recs []map[string]any) map[string][]map[string]any {
		out := map[string][]map[string]any{}
		for _, m := range recs {
			for _, f := range volatileFields {
				delete(m, f)
			}
			k := flowKey(m)
			out[k] = append(out[k], m)
		}
		return out
	}
	e, a := index(ebpf), index(afpacket)
	keys := map[string]bool{}
	for k := range e {
		keys[k] = true
	}
	for k := range a {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	bad := 0
	for _, k := range sorted {
		er, ar := e[k], a[k]
		if reflect.DeepEqual(er, ar) {
			continue
		}
		bad++
		if bad > 10 {
			continue
		}
		t.Errorf("flow %s:\n  ebpf:     %s\n  afpacket: %s", k, jsonOf(er), jsonOf(ar))
	}
	if bad > 0 {
		t.Errorf("%d of %d flows differ", bad, len(sorted))
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// replay sends the parity captures into the host end of the pair with
// tcpreplay, from inside the namespace, at 2000 packets per second.
func replay(t *testing.T, n *testNet) int {
	t.Helper()
	if _, err := exec.LookPath("tcpreplay"); err != nil {
		t.Log("tcpreplay not installed (apt-get install tcpreplay): comparing live traffic only")
		return 0
	}
	dir := corpus.Dir(t)
	for _, name := range parityCaptures {
		out, err := exec.Command("ip", "netns", "exec", n.ns, "tcpreplay", "-q", "--pps=2000", "-i", n.peer,
			filepath.Join(dir, "pcaps", name)).CombinedOutput()
		if err != nil {
			t.Fatalf("tcpreplay %s: %v\n%s", name, err, out)
		}
		if m := failedRE.FindSubmatch(out); m == nil || string(m[1]) != "0" {
			t.Errorf("tcpreplay %s did not send every packet:\n%s", name, out)
		}
	}
	return len(parityCaptures)
}

// liveTraffic runs TCP, UDP and TLS exchanges from this namespace to
// servers inside the test namespace.
func liveTraffic(t *testing.T, n *testNet) {
	t.Helper()
	var (
		tcpLn, tlsLn net.Listener
		udp          net.PacketConn
	)
	cert := selfSigned(t)
	n.inNS(t, func() (err error) {
		if tcpLn, err = net.Listen("tcp4", n.peerIP+":7001"); err != nil {
			return err
		}
		if udp, err = net.ListenPacket("udp4", n.peerIP+":7002"); err != nil {
			return err
		}
		tlsLn, err = tls.Listen("tcp4", n.peerIP+":7443", &tls.Config{Certificates: []tls.Certificate{cert}})
		return err
	})
	defer tcpLn.Close()
	defer udp.Close()
	defer tlsLn.Close()
	echo := func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}
	go echo(tcpLn)
	go echo(tlsLn)
	go func() {
		buf := make([]byte, 2048)
		for {
			k, addr, err := udp.ReadFrom(buf)
			if err != nil {
				return
			}
			udp.WriteTo(buf[:k], addr)
		}
	}()

	exchange := func(c net.Conn, msg []byte) {
		t.Helper()
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(msg); err != nil {
			t.Fatalf("write: %v", err)
		}
		if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	msg := []byte(strings.Repeat("edgeward parity ", 1024))
	for i := range 3 {
		c, err := net.Dial("tcp4", n.peerIP+":7001")
		if err != nil {
			t.Fatal(err)
		}
		exchange(c, msg[:1000*(i+1)])
	}
	for range 2 {
		c, err := tls.Dial("tcp4", n.peerIP+":7443", &tls.Config{ServerName: "parity.edgeward.test", InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		exchange(c, msg[:200])
	}
	for i := range 3 {
		c, err := net.Dial("udp4", n.peerIP+":7002")
		if err != nil {
			t.Fatal(err)
		}
		for range i + 1 {
			exchange(nopClose{c}, msg[:100])
		}
		c.Close()
	}
}

type nopClose struct{ net.Conn }

func (nopClose) Close() error { return nil }

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "parity.edgeward.test", Organization: []string{"edgeward"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"parity.edgeward.test"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

var failedRE = regexp.MustCompile(`Failed packets:\s+(\d+)`)
