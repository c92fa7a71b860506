package quicmeta

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/edgeward/edgeward/sensor/tlsmeta"
)

// corpusDir locates the shared capture corpus, or skips the test.
func corpusDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("EDGEWARD_CORPUS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "corpus")
	}
	if _, err := os.Stat(filepath.Join(dir, "manifest.jsonl")); err != nil {
		t.Skipf("capture corpus not found at %s (set EDGEWARD_CORPUS to its directory): %v", dir, err)
	}
	return dir
}

type manifestEntry struct {
	ID           string `json:"id"`
	File         string `json:"file"`
	ExpectedHere struct {
		Tshark struct {
			QUICClientHellos int      `json:"quic_client_hellos"`
			SNI              []string `json:"tls_sni"`
			JA3              []string `json:"ja3"`
		} `json:"tshark_4_0"`
	} `json:"expected_here"`
}

func readManifest(t testing.TB, dir string) map[string]manifestEntry {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "manifest.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]manifestEntry{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		var e manifestEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("manifest.jsonl:%d: %v", line, err)
		}
		out[e.ID] = e
	}
	return out
}

type udpDatagram struct {
	src, dst netip.AddrPort
	payload  []byte
}

// readUDP returns every UDP datagram of a pcap or pcapng file (chosen by
// magic number: several corpus files carry the wrong extension).
func readUDP(t testing.TB, path string) []udpDatagram {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var src interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var lt layers.LinkType
	if bytes.HasPrefix(data, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		ng, err := pcapgo.NewNgReader(bytes.NewReader(data), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		src, lt = ng, ng.LinkType()
	} else {
		pr, err := pcapgo.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		src, lt = pr, pr.LinkType()
	}
	var out []udpDatagram
	for n := 1; ; n++ {
		data, _, err := src.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Logf("%s: packet %d: %v (keeping earlier packets)", filepath.Base(path), n, err)
			break
		}
		pkt := gopacket.NewPacket(data, lt, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
		udp, ok := pkt.TransportLayer().(*layers.UDP)
		if !ok {
			continue
		}
		var s, d netip.Addr
		switch ip := pkt.NetworkLayer().(type) {
		case *layers.IPv4:
			s, _ = netip.AddrFromSlice(ip.SrcIP.To4())
			d, _ = netip.AddrFromSlice(ip.DstIP.To4())
		case *layers.IPv6:
			s, _ = netip.AddrFromSlice(ip.SrcIP)
			d, _ = netip.AddrFromSlice(ip.DstIP)
		default:
			continue
		}
		out = append(out, udpDatagram{
			src:     netip.AddrPortFrom(s, uint16(udp.SrcPort)),
			dst:     netip.AddrPortFrom(d, uint16(udp.DstPort)),
			payload: udp.Payload,
		})
	}
	return out
}

type quicResult struct {
	src, dst netip.AddrPort
	version  uint32
	sni      string
	ja3      string
	ja4      string
	packets  int // client Initials it took
}

// parseQUICFlows feeds each UDP flow's datagrams to one Assembler.
func parseQUICFlows(t *testing.T, dgs []udpDatagram) []quicResult {
	type flowState struct {
		a       Assembler
		src     netip.AddrPort
		dst     netip.AddrPort
		packets int
	}
	flows := map[string]*flowState{}
	var order []string
	for _, d := range dgs {
		k := d.src.String() + ">" + d.dst.String()
		f := flows[k]
		if f == nil {
			f = &flowState{src: d.src, dst: d.dst}
			flows[k] = f
			order = append(order, k)
		}
		if f.a.Done() {
			continue
		}
		err := f.a.AddDatagram(d.payload)
		switch {
		case err == nil, errors.Is(err, ErrNeedMore):
			f.packets++
		case errors.Is(err, ErrNotQUIC), errors.Is(err, ErrDecrypt), errors.Is(err, ErrNoInitial), errors.Is(err, ErrUnsupportedVersion):
			// Not a client Initial: other UDP, server Initials, 1-RTT.
		default:
			t.Errorf("%s: %v", k, err)
		}
	}
	var out []quicResult
	for _, k := range order {
		f := flows[k]
		if !f.a.Done() {
			continue
		}
		out = append(out, quicResult{
			src: f.src, dst: f.dst, version: f.a.Version,
			sni: f.a.Hello.ServerName, ja3: f.a.Hello.JA3Hash(), ja4: f.a.Hello.JA4(tlsmeta.QUIC),
			packets: f.packets,
		})
	}
	return out
}

var ndpiUDPFlowRE = regexp.MustCompile(`^\s*\d+\s+UDP\s+(\S+)\s+<->\s+(\S+)\s.*\[JA4: ([^\]]+)\]`)

func TestCorpusQUICInitials(t *testing.T) {
	dir := corpusDir(t)
	manifest := readManifest(t, dir)
	tests := []struct {
		id          string
		wantVersion uint32
	}{
		{"zeek-quic-chromium-api-cirrus-com.pcap", Version1},
		{"ndpi-quic-29.pcap", VersionDraft29},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			e, ok := manifest[tc.id]
			if !ok {
				t.Fatalf("%s not in manifest", tc.id)
			}
			got := parseQUICFlows(t, readUDP(t, filepath.Join(dir, e.File)))
			if len(got) == 0 {
				t.Fatal("no ClientHello reassembled")
			}
			var snis, ja3s []string
			for _, r := range got {
				t.Logf("%v -> %v version %#x initials %d sni=%q ja3=%s ja4=%s", r.src, r.dst, r.version, r.packets, r.sni, r.ja3, r.ja4)
				if r.version != tc.wantVersion {
					t.Errorf("version %#x, want %#x", r.version, tc.wantVersion)
				}
				snis = append(snis, r.sni)
				ja3s = append(ja3s, r.ja3)
			}
			th := e.ExpectedHere.Tshark
			for _, want := range th.SNI {
				if !slices.Contains(snis, want) {
					t.Errorf("tshark SNI %q not found in %q", want, snis)
				}
			}
			for _, want := range th.JA3 {
				if !slices.Contains(ja3s, want) {
					t.Errorf("tshark JA3 %s not found in %q", want, ja3s)
				}
			}
			data, err := os.ReadFile(filepath.Join(dir, "expected", tc.id+".ndpi.out"))
			if err != nil {
				return // no nDPI reference for this capture
			}
			for i, line := range strings.Split(string(data), "\n") {
				m := ndpiUDPFlowRE.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				a, b := netip.MustParseAddrPort(m[1]), netip.MustParseAddrPort(m[2])
				found := false
				for _, r := range got {
					if !(r.src == a && r.dst == b || r.src == b && r.dst == a) {
						continue
					}
					if r.ja4 == m[3] {
						found = true
					}
					// nDPI (4.11-dev) prints the first two characters of the
					// first ALPN instead of its first and last ones: "h3-29"
					// gives "h3" there and "h9" by the FoxIO spec. Everything
					// else must match.
					if len(r.ja4) == len(m[3]) && r.ja4[:8] == m[3][:8] && r.ja4[10:] == m[3][10:] &&
						r.ja4[8:10] == "h9" && m[3][8:10] == "h3" {
						t.Logf("%s.ndpi.out:%d: nDPI ALPN quirk: reference %s, spec %s", tc.id, i+1, m[3], r.ja4)
						found = true
					}
				}
				if !found {
					t.Errorf("%s.ndpi.out:%d: JA4 %s not computed", tc.id, i+1, m[3])
				}
			}
		})
	}
}
