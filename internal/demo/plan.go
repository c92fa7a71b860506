package demo

import (
	"net/netip"

	"github.com/edgeward/edgeward/internal/geofixture"
	"github.com/edgeward/edgeward/internal/synth"
)

// The office network. The gateway is the sensor, the corporate VPN
// server, the DHCP server and the DNS resolver, so everything below
// passes through it.
var (
	officeLAN = netip.MustParsePrefix("10.10.0.0/16")
	vpnPool   = netip.MustParsePrefix("10.99.0.0/24")
	gateway   = netip.MustParseAddr("10.10.0.1")
	printer   = netip.MustParseAddr("10.10.0.40")

	gatewayMAC = synth.MAC{0x00, 0x1b, 0x21, 0x3a, 0x5c, 0x01} // Intel
)

// Story addresses, in documentation space (RFC 5737) so nobody's real
// address is cast as a laptop farm; the demo databases place them.
var (
	farmEgress   = netip.MustParseAddr("203.0.113.50") // US residential, shared by LT-0101 and LT-0102
	londonEgress = netip.MustParseAddr("203.0.113.77") // GB residential, LT-0042
	tsPeer       = netip.MustParseAddr("203.0.113.200")
	astrillAPI   = netip.MustParseAddr("198.51.100.10")
	astrillNode  = netip.MustParseAddr("198.51.100.21")
	rustdeskHost = netip.MustParseAddr("198.51.100.70")
	proxyCN      = netip.MustParseAddr("198.51.100.140")
	proxyRU      = netip.MustParseAddr("198.51.100.211")
	tsControl    = netip.MustParseAddr("192.0.2.10")
	tsDERP       = netip.MustParseAddr("192.0.2.20")
	anydeskBoot  = netip.MustParseAddr("192.0.2.130")
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// networks is what the demo GeoIP, ASN and anonymizer databases say.
// Background destinations are real providers' ranges with their real
// countries and AS numbers; story networks live in documentation space
// with documentation AS numbers (RFC 5398).
var networks = []geofixture.Network{
	{Prefix: pfx("142.250.0.0/15"), Country: "US", ASN: 15169, ASOrg: "Google LLC"},
	{Prefix: pfx("52.96.0.0/14"), Country: "IE", ASN: 8075, ASOrg: "Microsoft Corporation"},
	{Prefix: pfx("52.112.0.0/14"), Country: "IE", ASN: 8075, ASOrg: "Microsoft Corporation"},
	{Prefix: pfx("20.190.128.0/18"), Country: "US", ASN: 8075, ASOrg: "Microsoft Corporation"},
	{Prefix: pfx("20.112.0.0/12"), Country: "US", ASN: 8075, ASOrg: "Microsoft Corporation"},
	{Prefix: pfx("13.107.0.0/16"), Country: "US", ASN: 8075, ASOrg: "Microsoft Corporation"},
	{Prefix: pfx("23.32.0.0/11"), Country: "US", ASN: 20940, ASOrg: "Akamai International B.V."},
	{Prefix: pfx("3.208.0.0/12"), Country: "US", ASN: 14618, ASOrg: "Amazon.com, Inc."},
	{Prefix: pfx("3.120.0.0/14"), Country: "DE", ASN: 16509, ASOrg: "Amazon.com, Inc."},
	{Prefix: pfx("170.114.0.0/16"), Country: "US", ASN: 30103, ASOrg: "Zoom Video Communications, Inc"},
	{Prefix: pfx("140.82.112.0/20"), Country: "US", ASN: 36459, ASOrg: "GitHub, Inc."},
	{Prefix: pfx("104.16.0.0/13"), Country: "US", ASN: 13335, ASOrg: "Cloudflare, Inc."},
	{Prefix: pfx("162.159.0.0/16"), Country: "US", ASN: 13335, ASOrg: "Cloudflare, Inc."},
	{Prefix: pfx("17.0.0.0/8"), Country: "US", ASN: 714, ASOrg: "Apple Inc."},
	{Prefix: pfx("162.125.0.0/16"), Country: "US", ASN: 19679, ASOrg: "Dropbox, Inc."},
	{Prefix: pfx("151.101.0.0/16"), Country: "US", ASN: 54113, ASOrg: "Fastly, Inc."},
	{Prefix: pfx("13.110.0.0/16"), Country: "US", ASN: 14340, ASOrg: "Salesforce.com, Inc."},
	{Prefix: pfx("192.229.128.0/17"), Country: "US", ASN: 15133, ASOrg: "Edgecast Inc."},
	{Prefix: pfx("208.80.152.0/22"), Country: "US", ASN: 14907, ASOrg: "Wikimedia Foundation Inc."},

	{Prefix: pfx("203.0.113.0/26"), Country: "US", ASN: 64496, ASOrg: "Hudson Valley Broadband"},
	{Prefix: pfx("203.0.113.64/26"), Country: "GB", ASN: 64497, ASOrg: "Thames Home Broadband Ltd"},
	{Prefix: pfx("203.0.113.128/26"), Country: "US", ASN: 64498, ASOrg: "Lakeside Fiber"},
	{Prefix: pfx("203.0.113.192/26"), Country: "US", ASN: 64499, ASOrg: "Prairie Wireless"},
	{Prefix: pfx("198.51.100.0/26"), Country: "US", ASN: 64500, ASOrg: "Astrill Systems Corp", VPN: true},
	{Prefix: pfx("198.51.100.64/26"), Country: "DE", ASN: 64501, ASOrg: "Fernhost GmbH", Hosting: true},
	{Prefix: pfx("198.51.100.128/26"), Country: "CN", ASN: 64502, ASOrg: "Qianhai Cloud Network Ltd", Hosting: true, PublicProxy: true},
	{Prefix: pfx("198.51.100.192/26"), Country: "RU", ASN: 64503, ASOrg: "Volga DataCenter LLC", Hosting: true, PublicProxy: true},
	{Prefix: pfx("192.0.2.0/25"), Country: "US", ASN: 64504, ASOrg: "Tailscale Inc."},
	{Prefix: pfx("192.0.2.128/25"), Country: "DE", ASN: 64505, ASOrg: "philandro Software GmbH"},
}

// service is a destination of background traffic.
type service struct {
	name string
	addr netip.Addr
	quic bool // also reached over QUIC
}

func svc(name, addr string, quic bool) service {
	return service{name: name, addr: netip.MustParseAddr(addr), quic: quic}
}

// Background destinations: browsing and SaaS.
var webServices = []service{
	svc("www.google.com", "142.250.80.36", true),
	svc("mail.google.com", "142.250.80.37", true),
	svc("docs.google.com", "142.250.80.46", true),
	svc("drive.google.com", "142.250.81.14", true),
	svc("www.youtube.com", "142.250.81.78", true),
	svc("fonts.gstatic.com", "142.250.80.99", true),
	svc("outlook.office365.com", "52.96.110.2", false),
	svc("login.microsoftonline.com", "20.190.151.6", false),
	svc("teams.microsoft.com", "52.113.194.132", false),
	svc("graph.microsoft.com", "20.190.151.68", false),
	svc("contoso.sharepoint.com", "13.107.136.9", false),
	svc("www.bing.com", "13.107.21.200", false),
	svc("www.linkedin.com", "13.107.42.14", false),
	svc("app.slack.com", "3.211.40.93", false),
	svc("edgeapi.slack.com", "3.215.22.11", false),
	svc("zoom.us", "170.114.52.2", false),
	svc("github.com", "140.82.112.3", false),
	svc("api.github.com", "140.82.112.6", false),
	svc("contoso.my.salesforce.com", "13.110.54.12", false),
	svc("www.dropbox.com", "162.125.1.18", false),
	svc("api.notion.com", "104.18.22.110", false),
	svc("chatgpt.com", "104.18.32.47", true),
	svc("www.nytimes.com", "151.101.1.164", false),
	svc("www.wikipedia.org", "208.80.154.224", false),
	svc("contoso-eu.s3.eu-central-1.amazonaws.com", "3.121.6.180", false),
}

var (
	slackSocket = svc("wss-primary.slack.com", "3.223.22.40", false)
	zoomMedia   = svc("zoom.us", "170.114.10.75", false)
	ntpServer   = svc("time.cloudflare.com", "162.159.200.1", false)

	windowsUpdate = []service{
		svc("fe3cr.delivery.mp.microsoft.com", "20.114.59.183", false),
		svc("dl.delivery.mp.microsoft.com", "23.45.232.99", false),
	}
	macUpdate = []service{
		svc("gdmf.apple.com", "17.171.47.71", false),
		svc("swcdn.apple.com", "17.253.83.133", false),
	}
	// Plain-HTTP checks operating systems make on their own.
	httpChecks = []struct {
		service
		path, ua string
	}{
		{svc("ocsp.digicert.com", "192.229.211.108", false), "/MFEwTzBNMEswSTAJBgUrDgMCGgUABBQ", "Microsoft-CryptoAPI/10.0"},
		{svc("connectivitycheck.gstatic.com", "142.250.80.67", false), "/generate_204", ""},
		{svc("captive.apple.com", "17.253.85.200", false), "/hotspot-detect.html", "CaptiveNetworkSupport-481.0.1 wispr"},
	}
)
