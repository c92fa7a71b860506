package builtin_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/corpus"
	"github.com/edgeward/edgeward/rules"
	"github.com/edgeward/edgeward/sensor"
)

// severityMedium is OCSF severity_id 3.
const severityMedium = 3

// TestCorpus runs the shared capture corpus through the sensor (its
// default configuration, as `edgeward flows` has it: RFC 1918, ULA and
// link-local prefixes are internal) and the built-in pack, without
// enrichment databases, and checks each capture's alerts.
//
// Most corpus captures are private-to-private or loopback traffic, where a
// corporate gateway sensor sees a session that does not cross the
// boundary. The pack flags remote-desktop, SSH and proxy sessions inside
// the network (or between two non-corporate hosts) at low severity
// (remote_access.lan_session, proxy.lan_proxy) and reserves medium and
// high for sessions that cross the boundary (remote_access.internet_*,
// vpn.protocol_non_corporate, proxy.anonymizer). So:
//
//   - the remote-access, VPN and proxy captures each raise alerts, all of
//     the capture's category;
//   - every other capture (browsing, DNS, HTTP, QUIC, TLS, DHCP, tunnels,
//     damaged files) raises nothing of severity medium or above.
func TestCorpus(t *testing.T) {
	dir := corpus.Dir(t)
	set := loadPack(t)
	want := map[string]struct {
		category string
		rules    []string // rules that must be among those that fired
	}{
		"ndpi-rdp.pcap":                       {"remote_access", []string{"remote_access.lan_session"}},
		"zeek-rdpeudp-handshake-success.pcap": {"remote_access", []string{"remote_access.lan_session"}},
		"zeek-rfb-vncmac.pcap":                {"remote_access", []string{"remote_access.lan_session"}},
		"ndpi-ssh.pcap":                       {"remote_access", []string{"remote_access.lan_session"}},
		"ndpi-wireguard.pcap":                 {"vpn", []string{"vpn.protocol_non_corporate"}},
		"ndpi-openvpn.pcap":                   {"vpn", []string{"vpn.protocol_non_corporate"}},
		"ndpi-socks.pcap":                     {"proxy", []string{"proxy.lan_proxy"}},
		"ndpi-http_connect.pcap":              {"proxy", []string{"proxy.lan_proxy"}},
	}
	seen := map[string]bool{}
	for _, m := range corpus.Manifest(t, dir) {
		t.Run(m.ID, func(t *testing.T) {
			alerts := runCapture(t, set, filepath.Join(dir, m.File))
			w, remote := want[m.ID]
			seen[m.ID] = remote
			if !remote {
				for _, a := range alerts {
					if a.SeverityID >= severityMedium {
						t.Errorf("%s alert on a capture without remote access: %s", a.Severity, describe(a))
					}
				}
				return
			}
			var fired []string
			for _, a := range alerts {
				if cat := a.FindingInfo.Types[0]; cat != w.category {
					t.Errorf("alert of category %s, want only %s: %s", cat, w.category, describe(a))
				}
				fired = append(fired, a.FindingInfo.Analytic.UID)
			}
			for _, r := range w.rules {
				if !slices.Contains(fired, r) {
					t.Errorf("rule %s did not fire (fired: %v)", r, fired)
				}
			}
		})
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("capture %s is not in the corpus manifest", id)
		}
	}
}

// runCapture reads a capture and returns the alerts the pack raises on its
// flows (creations and the updates of folded ones, after a flush).
func runCapture(t *testing.T, set *rules.Set, path string) []*rules.Alert {
	t.Helper()
	e := rules.NewEngine(set, rules.EngineConfig{})
	var alerts []*rules.Alert
	emit := func(a *rules.Alert) { alerts = append(alerts, a) }
	var in rules.Input
	_, err := sensor.ReadFile(context.Background(), path, sensor.Config{}, func(r *flow.Record) {
		in.Reset(r)
		e.Evaluate(&in, emit)
	})
	if err != nil {
		// Damaged captures report where; their earlier flows still count.
		t.Logf("reading: %v", err)
	}
	e.Flush(emit)
	return alerts
}

func describe(a *rules.Alert) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s)", a.FindingInfo.Analytic.UID, a.Severity)
	for _, ev := range a.Evidences {
		fmt.Fprintf(&b, " %s:%d->%s:%d", ev.SrcEndpoint.IP, ev.SrcEndpoint.Port, ev.DstEndpoint.IP, ev.DstEndpoint.Port)
	}
	return b.String()
}
