package builtin_test

import (
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/rules"
	"github.com/edgeward/edgeward/sensor/appid"
)

// fired evaluates recs in order with set and returns the ids of the rules
// that opened an alert, one entry per alert.
func fired(t *testing.T, set *rules.Set, recs ...*flow.Record) []string {
	t.Helper()
	e := rules.NewEngine(set, rules.EngineConfig{})
	var ids []string
	emit := func(a *rules.Alert) {
		if a.TypeUID == 200401 {
			ids = append(ids, a.FindingInfo.Analytic.UID)
		}
	}
	var in rules.Input
	for _, r := range recs {
		in.Reset(r)
		e.Evaluate(&in, emit)
	}
	e.Flush(emit)
	return ids
}

var t0 = time.Date(2025, 1, 1, 15, 0, 0, 0, time.UTC)

func outbound(at time.Duration, device, dst string, port uint16, app, source, category string) *flow.Record {
	return &flow.Record{
		Start: t0.Add(at), End: t0.Add(at + time.Minute), DurationS: 60, Proto: "tcp", Direction: "outbound",
		Src:    flow.Endpoint{IP: netip.MustParseAddr(device), Port: 50000, Bytes: 5000},
		Dst:    flow.Endpoint{IP: netip.MustParseAddr(dst), Port: port, Bytes: 50000},
		Device: &flow.Device{IP: netip.MustParseAddr(device)},
		App:    app, AppSource: source, AppCategory: category,
	}
}

// TestRadminWebsite: the sensor names a TLS connection to radmin.com
// "radmin" on its SNI, and the pack must not call a visit to the vendor's
// website an RDP/VNC/Radmin session with the internet (high).
func TestRadminWebsite(t *testing.T) {
	id, err := appid.New()
	if err != nil {
		t.Fatal(err)
	}
	r := id.Identify(&appid.Input{Proto: appid.TCP, ClientPort: 50000, ServerPort: 443, SNI: "www.radmin.com"})
	if r.App != "radmin" || r.Source != appid.SourceSNI {
		t.Fatalf("appid on www.radmin.com: %+v", r)
	}
	rec := outbound(0, "10.10.0.30", "203.0.113.92", 443, r.App, string(r.Source), r.Category)
	rec.Dst.Name = "www.radmin.com"
	if got := fired(t, loadPack(t), rec); len(got) > 0 {
		t.Errorf("a visit to www.radmin.com raised %v", got)
	}
}

// TestMultipleToolsAllowedPeer: RDP to a jump host listed in
// remote_access_allowed_cidrs raises nothing on its own, and must not
// make one AnyDesk session "several remote-access tools" (high).
func TestMultipleToolsAllowedPeer(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/site.yml", []byte("- list: remote_access_allowed_cidrs\n  items: [203.0.113.0/28]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := rules.Load([]string{dir}, packOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	rdp := outbound(0, "10.10.0.21", "203.0.113.5", 3389, "rdp", "payload", "remote_access")
	if got := fired(t, set, rdp); len(got) > 0 {
		t.Fatalf("rdp to an allowed jump host raised %v", got)
	}
	any := outbound(time.Hour, "10.10.0.21", "192.0.2.10", 443, "anydesk", "cert", "remote_access")
	if got := fired(t, set, rdp, any); slices.Contains(got, "remote_access.multiple_tools") {
		t.Errorf("rdp to an allowed jump host and anydesk raised %v", got)
	}
}

// TestSoftEtherOneVPNFinding: one SoftEther session is one VPN finding, as
// a consumer service's WireGuard is (vpn.yml's tests): SoftEther is in
// both consumer_vpn_apps and vpn_protocol_apps.
func TestSoftEtherOneVPNFinding(t *testing.T) {
	rec := outbound(0, "10.10.0.12", "198.51.100.123", 443, "softether", "sni", "vpn")
	rec.Dst.Name = "public-vpn-123.opengw.net.vpngate.net"
	if got := fired(t, loadPack(t), rec); len(got) != 1 {
		t.Errorf("one softether session raised %v, want one vpn finding", got)
	}
}
