package report

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/rules"
)

// The fixture is a small company's working day: two inventoried laptops
// (one remote behind the corporate VPN), an unknown Raspberry Pi on the
// LAN, ordinary SaaS traffic and the remote-access traffic that the
// alerts are about.

var day = time.Date(2025, 3, 4, 8, 0, 0, 0, time.UTC)

type dest struct {
	ip      string
	port    uint16
	name    string
	country string
	asn     uint32
	org     string
}

var saas = []dest{
	{"142.250.74.46", 443, "www.google.com", "US", 15169, "Google LLC"},
	{"52.97.146.162", 443, "outlook.office365.com", "IE", 8075, "Microsoft Corporation"},
	{"13.107.42.14", 443, "teams.microsoft.com", "NL", 8075, "Microsoft Corporation"},
	{"104.16.132.229", 443, "cdn.example.net", "US", 13335, "Cloudflare, Inc."},
	{"3.120.181.40", 443, "api.salesforce.com", "DE", 16509, "Amazon.com, Inc."},
	{"18.66.15.70", 443, "d1.cloudfront.net", "DE", 16509, "Amazon.com, Inc."},
	{"140.82.121.4", 443, "github.com", "DE", 36459, "GitHub, Inc."},
	{"151.101.1.69", 443, "slack.com", "US", 54113, "Fastly, Inc."},
}

var (
	alice = &flow.Device{
		IP: netip.MustParseAddr("10.20.1.42"), MAC: flow.MAC{0x3c, 0x22, 0xfb, 0x10, 0x42, 0x01},
		Vendor: "Apple, Inc.", Hostname: "fin-lt-0142", ID: "FIN-0142", Owner: "alice.martin@example.com",
		AssignedSite: "paris", AssignedCountry: "FR", MatchedBy: "mac",
	}
	bob = &flow.Device{
		IP: netip.MustParseAddr("10.99.0.17"), Hostname: "eng-lt-0217", ID: "ENG-0217",
		Owner: "bob.nguyen@example.com", AssignedSite: "remote", AssignedCountry: "US", MatchedBy: "ip",
	}
	pi = &flow.Device{
		IP: netip.MustParseAddr("10.20.1.77"), MAC: flow.MAC{0xd8, 0x3a, 0xdd, 0x07, 0x77, 0x01},
		Vendor: "Raspberry Pi Trading Ltd", Hostname: "pikvm",
	}
	bobEgress = &flow.Egress{IP: netip.MustParseAddr("223.104.3.19"), Port: 51820, Source: "wireguard", Peer: "bX9f...Q2w="}
)

// rng is a tiny deterministic generator (the fixture must not change
// between Go releases, as math/rand's streams may).
type rng uint64

func (r *rng) next(n int) int {
	*r = *r*6364136223846793005 + 1442695040888963407
	return int(uint64(*r)>>33) % n
}

func record(n int, dev *flow.Device, d dest, start time.Time, dur time.Duration, out, in uint64) *flow.Record {
	rec := &flow.Record{
		Schema: flow.Schema, ID: fmt.Sprintf("%016x", 0xe0000000+n), CommunityID: fmt.Sprintf("1:fixture%07d=", n),
		Start: start, End: start.Add(dur), DurationS: dur.Seconds(), EndReason: flow.EndFIN, Proto: "tcp",
		Src:       flow.Endpoint{IP: dev.IP, Port: uint16(49152 + n%16000), Packets: out/900 + 1, Bytes: out, Hostname: dev.Hostname},
		Dst:       flow.Endpoint{IP: netip.MustParseAddr(d.ip), Port: d.port, Packets: in/1200 + 1, Bytes: in, Name: d.name, NameSource: "sni"},
		Direction: "outbound", Sensor: &flow.Sensor{ID: "gw-par-1", Site: "paris"}, Device: dev,
		TCP: &flow.TCP{SrcFlags: flow.FlagSYN | flow.FlagACK | flow.FlagPSH | flow.FlagFIN, DstFlags: flow.FlagSYN | flow.FlagACK | flow.FlagPSH | flow.FlagFIN, History: "ShADadFf"},
	}
	if d.name != "" {
		rec.TLS = &flow.TLS{SNI: d.name, Version: "1.3", JA4: "t13d1516h2_8daaf6152771_02713d6af862"}
	}
	if dev == bob {
		rec.Egress = bobEgress
	}
	return rec
}

func info(d dest, dev *flow.Device) FlowInfo {
	fi := FlowInfo{DstCountry: d.country, DstASN: d.asn, DstASOrg: d.org}
	if dev == bob {
		fi.EgressCountry = "CN"
	}
	return fi
}

// fixture feeds a report with a day of flows and the alerts they raised,
// in the order a pipeline would: each alert right after its flow, updates
// when their findings close.
func fixture() *Report {
	r := New()
	g := rng(42)
	devs := []*flow.Device{alice, bob, pi}
	n := 0
	// Background: 600 SaaS flows over nine hours, busier mid-morning and
	// mid-afternoon.
	for i := range 600 {
		h := float64(i) / 600 * 9
		t := day.Add(time.Duration(h * float64(time.Hour))).Add(time.Duration(g.next(60)) * time.Second)
		dev := devs[g.next(2)] // the Pi has no business traffic
		d := saas[g.next(len(saas))]
		out := uint64(800 + g.next(20000))
		in := uint64(2000 + g.next(400000))
		if g.next(10) == 0 {
			in *= 40 // the odd download
		}
		n++
		rec := record(n, dev, d, t, time.Duration(1+g.next(120))*time.Second, out, in)
		r.Flow(rec, info(d, dev))
	}

	anydesk := dest{"195.181.174.201", 6568, "relay-6cd1c5a1.net.anydesk.com", "DE", 60068, "Datacamp Limited"}
	tailscale := dest{"199.165.136.101", 41641, "derp12.tailscale.com", "US", 64236, "Tailscale Inc"}
	kvmCloud := dest{"45.83.223.51", 443, "cloud.pikvm.org", "RU", 210644, "Aeza International Ltd"}
	chinaVPN := dest{"47.246.49.7", 443, "cdn.letsvpn.world", "HK", 45102, "Alibaba (US) Technology Co., Ltd."}

	// AnyDesk on Alice's laptop, repeatedly through the afternoon: one
	// finding, twelve detections folded in, the first five kept.
	var ad []*flow.Record
	for i := range 12 {
		n++
		rec := record(n, alice, anydesk, day.Add(5*time.Hour+time.Duration(i)*11*time.Minute), 9*time.Minute, uint64(180000+i*5000), uint64(2400000+i*90000))
		rec.App, rec.AppSource, rec.AppCategory = "anydesk", "sni", "remote_access"
		r.Flow(rec, info(anydesk, alice))
		ad = append(ad, rec)
		if i == 0 {
			r.Alert(alert("remote_access.anydesk", "AnyDesk remote-control session", "high", "remote_access",
				"An AnyDesk session was relayed through AnyDesk's servers: someone outside the company may be controlling this laptop.",
				[]string{"attack.t1219"}, ad[:1], 1, 1, map[string]any{"dst.geo.country": "DE", "app": "anydesk", "tls.sni": anydesk.name}))
		}
	}

	// Tailscale mesh VPN from Alice's laptop.
	n++
	ts := record(n, alice, tailscale, day.Add(2*time.Hour+17*time.Minute), 48*time.Minute, 2100000, 1900000)
	ts.Proto, ts.TCP, ts.TLS = "udp", nil, nil
	ts.App, ts.AppSource, ts.AppCategory = "tailscale", "port", "vpn"
	r.Flow(ts, info(tailscale, alice))
	r.Alert(alert("vpn.mesh", "Mesh VPN client on a managed laptop", "medium", "vpn",
		"Tailscale, ZeroTier and similar mesh VPNs give a remote party a path into the LAN that bypasses the corporate VPN.",
		[]string{"attack.t1133", "attack.t1572"}, []*flow.Record{ts}, 1, 1, map[string]any{"app": "tailscale"}))

	// The unknown Raspberry Pi phones home to an IP-KVM cloud service.
	var kv []*flow.Record
	for i := range 3 {
		n++
		rec := record(n, pi, kvmCloud, day.Add(1*time.Hour+time.Duration(i)*2*time.Hour+23*time.Minute), 3*time.Hour, 880000, 41000000)
		rec.App, rec.AppSource, rec.AppCategory = "pikvm", "sni", "ipkvm"
		r.Flow(rec, info(kvmCloud, pi))
		kv = append(kv, rec)
	}
	r.Alert(alert("ipkvm.pikvm", "IP-KVM device on the corporate LAN", "critical", "ipkvm",
		"A PiKVM/TinyPilot-class device is reachable from the internet: a laptop attached to it can be driven remotely without any software on the laptop.",
		[]string{"attack.t1200", "attack.t1219"}, kv[:1], 1, 1, map[string]any{"device.vendor": "Raspberry Pi Trading Ltd", "dst.geo.country": "RU"}))
	r.Alert(alert("ipkvm.pikvm", "IP-KVM device on the corporate LAN", "critical", "ipkvm",
		"A PiKVM/TinyPilot-class device is reachable from the internet: a laptop attached to it can be driven remotely without any software on the laptop.",
		[]string{"attack.t1200", "attack.t1219"}, kv, 3, 2, map[string]any{"device.vendor": "Raspberry Pi Trading Ltd", "dst.geo.country": "RU"}))

	// Bob's remote laptop reaches the corporate VPN from China, though his
	// inventory says United States, and uses a consumer VPN on top.
	n++
	vpn := record(n, bob, chinaVPN, day.Add(3*time.Hour+2*time.Minute), 2*time.Hour, 3400000, 52000000)
	vpn.App, vpn.AppSource, vpn.AppCategory = "letsvpn", "sni", "vpn"
	r.Flow(vpn, info(chinaVPN, bob))
	r.Alert(alert("geo_egress.home_country", "Remote laptop egresses outside its home country", "critical", "geo_egress",
		"The device's VPN session comes from a country other than the one it is assigned to: a classic sign of a laptop farm.",
		[]string{"attack.t1078"}, []*flow.Record{vpn}, 1, 1, map[string]any{"egress.geo.country": "CN", "device.assigned_country": "US"}))
	r.Alert(alert("vpn.consumer", "Consumer VPN provider", "low", "vpn",
		"", nil, []*flow.Record{vpn}, 1, 1, map[string]any{"app": "letsvpn", "tls.sni": chinaVPN.name}))

	// The AnyDesk finding closes at the end of the day with its count.
	r.Alert(alert("remote_access.anydesk", "AnyDesk remote-control session", "high", "remote_access",
		"An AnyDesk session was relayed through AnyDesk's servers: someone outside the company may be controlling this laptop.",
		[]string{"attack.t1219"}, ad[:5], 12, 2, map[string]any{"dst.geo.country": "DE", "app": "anydesk", "tls.sni": anydesk.name}))

	// A rule being trialled in shadow mode.
	n++
	ng := record(n, alice, dest{"3.125.209.94", 443, "tunnel.eu.ngrok.com", "DE", 16509, "Amazon.com, Inc."}, day.Add(7*time.Hour+40*time.Minute), 20*time.Minute, 90000, 120000)
	ng.App, ng.AppSource, ng.AppCategory = "ngrok", "sni", "tunnel"
	r.Flow(ng, FlowInfo{DstCountry: "DE", DstASN: 16509, DstASOrg: "Amazon.com, Inc."})
	a := alert("tunnel.ngrok", "Reverse tunnel service", "medium", "tunnel", "", []string{"attack.t1572"}, []*flow.Record{ng}, 1, 1, nil)
	a.IsAlert, a.Unmapped.Mode = false, "shadow"
	r.Alert(a)
	return r
}

var fixtureMeta = Meta{
	Title:     "Paris office — daily edge report",
	Generated: time.Date(2025, 3, 5, 6, 0, 0, 0, time.UTC),
	Inputs:    []string{"gw-par-1-2025-03-04.pcapng"},
	SensorID:  "gw-par-1",
	Site:      "paris",
	Version:   "v0.4.0",
}

var sevIDs = map[string]int{"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
var sevTitles = map[string]string{"info": "Informational", "low": "Low", "medium": "Medium", "high": "High", "critical": "Critical"}

// alert builds an alert as the rules engine emits it (activity 1 Create
// or 2 Update), with recs as its evidence.
func alert(ruleID, title, sev, category, desc string, tags []string, recs []*flow.Record, count, activity int, output map[string]any) *rules.Alert {
	first, last := recs[0].Start, recs[len(recs)-1].Start
	a := &rules.Alert{
		ActivityID: activity, ActivityName: map[int]string{1: "Create", 2: "Update"}[activity],
		CategoryUID: 2, CategoryName: "Findings", ClassUID: 2004, ClassName: "Detection Finding",
		TypeUID: 200400 + activity, SeverityID: sevIDs[sev], Severity: sevTitles[sev],
		StatusID: 1, Status: "New", IsAlert: true,
		Time: last.UnixMilli(), StartTime: first.UnixMilli(), EndTime: last.UnixMilli(), Count: count,
		Message: title,
		FindingInfo: rules.FindingInfo{
			UID: fmt.Sprintf("%032x", len(ruleID)*7919+int(first.Unix())), Title: title, Desc: desc,
			Types:         []string{category},
			Analytic:      rules.Analytic{UID: ruleID, Name: title, TypeID: 1, Type: "Rule"},
			FirstSeenTime: first.UnixMilli(), LastSeenTime: last.UnixMilli(),
		},
		Unmapped: rules.AlertDetails{Mode: "alert", Output: output, Tags: tags},
	}
	for _, t := range tags {
		a.FindingInfo.Attacks = append(a.FindingInfo.Attacks, rules.Attack{Technique: rules.Technique{UID: "T" + t[len("attack.t"):]}})
	}
	for _, rec := range recs {
		a.Evidences = append(a.Evidences, rules.Evidence{
			SrcEndpoint:    rules.Endpoint{IP: rec.Src.IP.String(), Port: int(rec.Src.Port)},
			DstEndpoint:    rules.Endpoint{IP: rec.Dst.IP.String(), Port: int(rec.Dst.Port)},
			ConnectionInfo: rules.ConnectionInfo{ProtocolName: rec.Proto, UID: rec.ID, CommunityUID: rec.CommunityID},
			Data:           rec.AppendJSON(nil),
		})
	}
	if d := recs[0].Device; d != nil {
		a.Device = &rules.Device{UID: d.ID, Hostname: d.Hostname, IP: d.IP.String(), TypeID: 3}
	}
	return a
}
