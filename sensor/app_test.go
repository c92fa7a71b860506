package sensor_test

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/edgeward/edgeward/internal/corpus"
)

// ndpiApp maps nDPI's application labels to edgeward's app ids.
var ndpiApp = map[string]string{
	"RDP": "rdp", "VNC": "vnc", "SSH": "ssh", "WireGuard": "wireguard", "OpenVPN": "openvpn",
	"SOCKS": "socks", "HTTP_Connect": "http_connect",
}

var ndpiLine = regexp.MustCompile(`^\s*\d+\s+(TCP|UDP) (\S+):(\d+) <?-> (\S+):(\d+) .*?\[proto: [\d.]+/([\w.]+)\]`)

// TestCorpusApps: on the remote-access, VPN and proxy captures every flow
// nDPI labels RDP, VNC, SSH, WireGuard, OpenVPN, SOCKS or HTTP CONNECT gets
// the same app; browsing, DNS, HTTP and QUIC captures get no app of a
// remote-access, tunnel, VPN, proxy, IP-KVM or anonymizer category.
func TestCorpusApps(t *testing.T) {
	dir := corpus.Dir(t)
	for _, id := range []string{"ndpi-rdp.pcap", "zeek-rdpeudp-handshake-success.pcap", "zeek-rfb-vncmac.pcap", "ndpi-ssh.pcap",
		"ndpi-wireguard.pcap", "ndpi-openvpn.pcap", "ndpi-socks.pcap", "ndpi-http_connect.pcap"} {
		t.Run(id, func(t *testing.T) {
			recs, _, err := readAll(t, filepath.Join(dir, "pcaps", id))
			if err != nil {
				t.Fatal(err)
			}
			apps := map[tuple][]string{}
			for _, r := range recs {
				k, _ := tupleOf(r.Proto, r.Src.IP.String(), int(r.Src.Port), r.Dst.IP.String(), int(r.Dst.Port))
				apps[k] = append(apps[k], r.App)
			}
			want := map[tuple]string{}
			if f, err := os.Open(filepath.Join(dir, "expected", id+".ndpi.out")); err == nil {
				sc := bufio.NewScanner(f)
				for sc.Scan() {
					m := ndpiLine.FindStringSubmatch(sc.Text())
					if m == nil {
						continue
					}
					label := m[6][strings.LastIndexByte(m[6], '.')+1:]
					if a, ok := ndpiApp[label]; ok || ndpiApp[strings.Split(m[6], ".")[0]] != "" {
						if !ok {
							a = ndpiApp[strings.Split(m[6], ".")[0]]
						}
						p1, _ := strconv.Atoi(m[3])
						p2, _ := strconv.Atoi(m[5])
						k, _ := tupleOf(strings.ToLower(m[1]), m[2], p1, m[4], p2)
						want[k] = a
					}
				}
				f.Close()
			}
			if id == "zeek-rfb-vncmac.pcap" || id == "zeek-rdpeudp-handshake-success.pcap" { // Zeek captures: every flow is the protocol
				for k := range apps {
					want[k] = map[string]string{"zeek-rfb-vncmac.pcap": "vnc", "zeek-rdpeudp-handshake-success.pcap": "rdp"}[id]
				}
			}
			if len(want) == 0 {
				t.Fatal("no labelled flows to compare")
			}
			for k, a := range want {
				got := apps[k]
				if len(got) == 0 || got[0] != a {
					t.Errorf("%v: app %q, want %q", k, got, a)
				}
			}
		})
	}
	alarming := map[string]bool{"remote_access": true, "tunnel": true, "vpn": true, "proxy": true, "ipkvm": true, "anonymizer": true}
	for _, id := range []string{"zeek-wikipedia.pcap", "ndpi-chrome.pcap", "ndpi-443-curl.pcap", "zeek-quic-chromium-api-cirrus-com.pcap",
		"ndpi-quic-29.pcap", "ndpi-1kxun.pcap", "ndpi-dns.pcap", "zeek-http-get.pcap", "ndpi-http_ipv6.pcap", "ja4-tls12.pcap",
		"ndpi-tls_2_reasms.pcapng", "zeek-tls-chrome-1250-x25519-kyber.pcap", "ndpi-dingtalk.pcap"} {
		t.Run(id, func(t *testing.T) {
			recs, _, err := readAll(t, filepath.Join(dir, "pcaps", id))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if alarming[r.AppCategory] {
					t.Errorf("%s:%d -> %s:%d labelled %s (%s, from %s)", r.Src.IP, r.Src.Port, r.Dst.IP, r.Dst.Port, r.App, r.AppCategory, r.AppSource)
				}
			}
		})
	}
}
