package appid

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/edgeward/edgeward/internal/corpus"
	"github.com/edgeward/edgeward/sensor/tlsmeta"
)

// corpusFlow is one flow of a capture turned into an Input the way the
// flow table will: first and second payload of each direction.
type corpusFlow struct {
	key string // "tcp a:p b:p", endpoints sorted, to compare with nDPI
	in  Input
}

func flowKey(proto string, a, b netip.AddrPort) string {
	x, y := a.String(), b.String()
	if x > y {
		x, y = y, x
	}
	return proto + " " + x + " " + y
}

func segment(data []byte, starts []int, i int) []byte {
	if i >= len(starts) {
		return nil
	}
	end := len(data)
	if i+1 < len(starts) {
		end = starts[i+1]
	}
	return data[starts[i]:end]
}

func corpusFlows(t *testing.T, dir, id string) []corpusFlow {
	t.Helper()
	pkts := corpus.ReadCapture(t, filepath.Join(dir, "pcaps", id))
	var out []corpusFlow
	for _, s := range corpus.TCPStreams(pkts) {
		f := corpusFlow{key: flowKey("tcp", s.Client, s.Server), in: Input{
			Proto: TCP, ClientPort: s.Client.Port(), ServerPort: s.Server.Port(),
			ClientFirst: segment(s.C2S, s.C2SStarts, 0), ClientSecond: segment(s.C2S, s.C2SStarts, 1),
			ServerFirst: segment(s.S2C, s.S2CStarts, 0), ServerSecond: segment(s.S2C, s.S2CStarts, 1),
		}}
		var ch tlsmeta.ClientHello
		if len(s.C2S) > 0 && s.C2S[0] == 0x16 && ch.ParseStream(s.C2S) == nil {
			f.in.SNI, f.in.ALPN = ch.ServerName, ch.ALPN
		}
		out = append(out, f)
	}
	type ukey struct{ a, b netip.AddrPort }
	byKey := map[ukey]int{}
	for _, d := range corpus.UDPDatagrams(pkts) {
		i, fwd := byKey[ukey{d.Src, d.Dst}]
		j, rev := byKey[ukey{d.Dst, d.Src}]
		switch {
		case fwd:
			f := &out[i].in
			if f.ClientSecond == nil && f.ClientFirst != nil {
				f.ClientSecond = d.Payload
			}
		case rev:
			f := &out[j].in
			if f.ServerFirst == nil {
				f.ServerFirst = d.Payload
			} else if f.ServerSecond == nil {
				f.ServerSecond = d.Payload
			}
		default:
			byKey[ukey{d.Src, d.Dst}] = len(out)
			out = append(out, corpusFlow{key: flowKey("udp", d.Src, d.Dst), in: Input{
				Proto: UDP, ClientPort: d.Src.Port(), ServerPort: d.Dst.Port(), ClientFirst: d.Payload,
			}})
		}
	}
	return out
}

func corpusIdentifier(t *testing.T) *Identifier {
	t.Helper()
	id, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestCorpusRemoteAccess compares with nDPI's labels (expected/*.ndpi.out,
// and Zeek's for the RDP-UDP and RFB captures): every flow nDPI names gets
// our app, and no other flow of the capture gets a label of these
// categories.
func TestCorpusRemoteAccess(t *testing.T) {
	dir := corpus.Dir(t)
	id := corpusIdentifier(t)
	tests := []struct {
		capture string
		want    map[string]string // flow key -> app
	}{
		{"ndpi-rdp.pcap", map[string]string{
			"tcp 172.16.2.185:52494 192.168.2.142:3389": "rdp",
		}},
		{"zeek-rdpeudp-handshake-success.pcap", map[string]string{
			"udp [::1]:3389 [::1]:61291": "rdp",
		}},
		{"zeek-rfb-vncmac.pcap", map[string]string{
			"tcp 192.168.2.115:52351 192.168.2.16:5900": "vnc",
			"tcp 192.168.2.115:52352 192.168.2.16:5900": "vnc",
			"tcp 192.168.2.115:52353 192.168.2.16:5900": "vnc",
		}},
		{"ndpi-ssh.pcap", map[string]string{
			"tcp 172.16.238.168:22 172.16.238.1:58395": "ssh",
			"tcp 127.0.0.1:58496 127.0.0.1:8000":       "ssh",
		}},
		{"ndpi-wireguard.pcap", map[string]string{
			"udp 139.162.192.157:51820 192.168.0.14:36116": "wireguard",
			"udp 10.9.0.1:43462 10.9.0.2:51820":            "wireguard",
		}},
		{"ndpi-openvpn.pcap", map[string]string{
			"udp 139.59.151.137:13680 192.168.43.18:13680": "openvpn",
			"tcp 10.181.235.122:39772 10.251.71.30:1194":   "openvpn",
			"udp 3.111.166.78:51146 85.134.13.165:1194":    "openvpn",
			"tcp 192.168.1.77:60140 46.101.231.218:443":    "openvpn",
			"udp 139.59.151.137:13680 192.168.43.12:41507": "openvpn",
			"tcp 127.0.0.1:36138 127.0.0.1:443":            "openvpn",
			"udp 107.161.86.131:443 192.168.12.156:41133":  "openvpn",
			"udp 192.168.12.156:37383 217.138.197.43:1234": "openvpn",
			"udp 10.0.2.15:60201 69.197.143.179:443":       "openvpn",
			"udp 166.161.181.18:443 192.168.75.18:60201":   "openvpn",
		}},
		{"ndpi-socks.pcap", map[string]string{
			"tcp 10.180.156.185:53535 10.180.156.249:1080": "socks",
			"tcp 10.180.156.185:53534 10.180.156.249:1080": "socks",
			"tcp 10.180.156.185:53533 10.180.156.249:1080": "socks",
			"tcp 10.0.0.1:1637 10.0.0.2:21477":             "socks",
		}},
		{"ndpi-http_connect.pcap", map[string]string{
			"tcp 192.168.1.103:1714 192.168.1.146:8080": "http_connect",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.capture, func(t *testing.T) {
			seen := map[string]bool{}
			for _, f := range corpusFlows(t, dir, tt.capture) {
				r := id.Identify(&f.in)
				want, listed := tt.want[f.key]
				if listed {
					seen[f.key] = true
					if r.App != want || r.Source != SourcePayload {
						t.Errorf("%s: got %+v, want %s from the payload", f.key, r, want)
					}
					continue
				}
				if r.App != "" && r.Source != SourcePort {
					t.Errorf("%s: got %+v, want no label (nDPI has none)", f.key, r)
				}
			}
			for k := range tt.want {
				if !seen[k] {
					t.Errorf("flow %s not found in the capture", k)
				}
			}
		})
	}
}

// TestCorpusBrowsing: ordinary web, QUIC and DNS traffic gets no
// remote-access, tunnel, VPN, proxy or anonymizer label at all.
func TestCorpusBrowsing(t *testing.T) {
	dir := corpus.Dir(t)
	id := corpusIdentifier(t)
	for _, capture := range []string{
		"zeek-wikipedia.pcap", "ndpi-chrome.pcap", "ndpi-443-curl.pcap",
		"zeek-quic-chromium-api-cirrus-com.pcap", "ndpi-1kxun.pcap", "ndpi-dns.pcap",
	} {
		t.Run(capture, func(t *testing.T) {
			flows := corpusFlows(t, dir, capture)
			if len(flows) == 0 {
				t.Fatal("no flows read")
			}
			for _, f := range flows {
				if r := id.Identify(&f.in); r.App != "" {
					t.Errorf("%s (sni %q): got %+v, want no label", f.key, f.in.SNI, r)
				}
			}
		})
	}
}

// TestCorpusDump prints every corpus flow's result with -v and
// -run CorpusDump; it asserts nothing.
func TestCorpusDump(t *testing.T) {
	if !testing.Verbose() {
		t.Skip("diagnostic; run with -v -run CorpusDump")
	}
	dir := corpus.Dir(t)
	id := corpusIdentifier(t)
	var lines []string
	for _, e := range corpus.Manifest(t, dir) {
		for _, f := range corpusFlows(t, dir, e.ID) {
			if r := id.Identify(&f.in); r.App != "" {
				lines = append(lines, fmt.Sprintf("%s\t%s\t%s/%s/%s", e.ID, f.key, r.App, r.Source, r.Category))
			}
		}
	}
	sort.Strings(lines)
	t.Log("\n" + strings.Join(lines, "\n"))
}
