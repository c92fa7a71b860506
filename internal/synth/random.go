package synth

import (
	"io"
	"iter"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Config parameterizes the random traffic mix of a small company's
// Internet gateway.
type Config struct {
	Seed     uint64
	Flows    int           // number of flows; default 1000
	Duration time.Duration // flow starts spread over this; default 10m
	Epoch    time.Time     // first flow start; default 2025-01-06T09:00:00Z
	Hosts    int           // client machines; default Flows/200 within [8, 2000]
}

func (c Config) withDefaults() Config {
	if c.Flows <= 0 {
		c.Flows = 1000
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Minute
	}
	if c.Epoch.IsZero() {
		c.Epoch = time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC)
	}
	if c.Hosts <= 0 {
		c.Hosts = min(max(c.Flows/200, 8), 2000)
	}
	return c
}

// Generate renders the random mix for cfg: pcap (nanosecond) to pcap and
// truth records to truth, which may be nil.
func Generate(cfg Config, pcap io.Writer, truth io.Writer) (Stats, error) {
	return Render(RandomFlows(cfg), pcap, truth, Options{Seed: cfg.Seed})
}

// Random returns the random mix for cfg as a slice, in start order.
func Random(cfg Config) []Flow {
	return slices.Collect(RandomFlows(cfg))
}

// RandomFlows yields the random mix for cfg in start order without holding
// it in memory. The same cfg always yields the same flows.
func RandomFlows(cfg Config) iter.Seq[Flow] {
	cfg = cfg.withDefaults()
	return func(yield func(Flow) bool) {
		g := newGenerator(cfg)
		slot := float64(cfg.Duration) / float64(cfg.Flows)
		for i := 0; i < cfg.Flows; i++ {
			// One start per slot keeps the sequence sorted while still
			// spreading starts uniformly.
			at := cfg.Epoch.Add(time.Duration((float64(i) + g.r.Float64()) * slot))
			if !yield(g.flow(at)) {
				return
			}
		}
	}
}

type host struct {
	mac      MAC
	v4       netip.Addr
	v6       netip.Addr // invalid if IPv4-only
	vlan     []uint16
	browser  int // index into browsers
	nextPort uint16
	portLo   uint16
	// icmpUntil keeps one ping per host at a time: echo flows carry no
	// ports, so two overlapping pings to one target would be one flow.
	icmpUntil time.Time
}

type service struct {
	name   string
	v4, v6 netip.Addr
	quic   bool
	rtt    time.Duration
}

type generator struct {
	r        *rand.Rand
	gateway  MAC
	hosts    []host
	services []service
	resolver [2]netip.Addr // v4, v6
}

// Provider prefixes so server addresses look like the clouds and CDNs
// that really host these names.
var providers = map[string][2]string{
	"google":     {"142.250.0.0/15", "2a00:1450:4001::/48"},
	"microsoft":  {"52.96.0.0/12", "2603:1026::/32"},
	"cloudflare": {"104.16.0.0/13", "2606:4700::/32"},
	"aws":        {"52.0.0.0/11", "2600:1f18::/32"},
	"akamai":     {"23.32.0.0/11", "2a02:26f0::/32"},
	"fastly":     {"151.101.0.0/16", "2a04:4e42::/32"},
	"github":     {"140.82.112.0/20", ""},
	"meta":       {"157.240.0.0/16", "2a03:2880::/32"},
	"other":      {"185.60.0.0/14", ""},
}

var serviceCatalog = []struct {
	name, provider string
	quic           bool
}{
	{"www.google.com", "google", true}, {"mail.google.com", "google", true},
	{"drive.google.com", "google", true}, {"docs.google.com", "google", true},
	{"www.youtube.com", "google", true}, {"i.ytimg.com", "google", true},
	{"fonts.gstatic.com", "google", true}, {"update.googleapis.com", "google", true},
	{"outlook.office365.com", "microsoft", false}, {"login.microsoftonline.com", "microsoft", false},
	{"teams.microsoft.com", "microsoft", false}, {"graph.microsoft.com", "microsoft", false},
	{"contoso.sharepoint.com", "microsoft", false}, {"www.bing.com", "microsoft", false},
	{"slack.com", "aws", false}, {"edgeapi.slack.com", "aws", false},
	{"zoom.us", "aws", false}, {"api.notion.com", "cloudflare", true},
	{"github.com", "github", false}, {"api.github.com", "github", false},
	{"objects.githubusercontent.com", "fastly", false}, {"www.salesforce.com", "akamai", false},
	{"app.hubspot.com", "cloudflare", true}, {"www.dropbox.com", "other", false},
	{"contoso.atlassian.net", "aws", false}, {"api.openai.com", "cloudflare", true},
	{"chatgpt.com", "cloudflare", true}, {"www.linkedin.com", "akamai", false},
	{"www.facebook.com", "meta", true}, {"static.xx.fbcdn.net", "meta", true},
	{"www.amazon.com", "aws", false}, {"s3.amazonaws.com", "aws", false},
	{"d3c33hcgiwev3.cloudfront.net", "aws", true}, {"cdn.jsdelivr.net", "fastly", false},
	{"api.segment.io", "aws", false}, {"browser-intake-datadoghq.com", "aws", false},
	{"www.wikipedia.org", "other", false}, {"api.stripe.com", "aws", false},
	{"relay-7b2c9d41.net.anydesk.com", "other", false}, {"www.reddit.com", "fastly", true},
}

// ClientHello profiles resembling common clients; SNI and ALPN are filled
// per flow.
var browsers = []TLSSpec{
	{ // Chromium
		GREASE: true, ALPN: []string{"h2", "http/1.1"},
	},
	{ // Firefox
		CipherSuites: []uint16{0x1301, 0x1303, 0x1302, 0xc02b, 0xc02f, 0xcca9, 0xcca8, 0xc02c, 0xc030,
			0xc00a, 0xc009, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035},
		Extensions:          []uint16{0, 23, 65281, 10, 11, 35, 16, 5, 34, 51, 43, 13, 45, 28, 27, 65037},
		SupportedGroups:     []uint16{29, 23, 24, 25, 256, 257},
		SignatureAlgorithms: []uint16{0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0203, 0x0201},
		ALPN:                []string{"h2", "http/1.1"},
	},
	{ // Safari
		GREASE: true,
		CipherSuites: []uint16{0x1301, 0x1302, 0x1303, 0xc02c, 0xc02b, 0xcca9, 0xc030, 0xc02f, 0xcca8,
			0xc00a, 0xc009, 0xc014, 0xc013, 0x009d, 0x009c, 0x0035, 0x002f, 0xc008, 0xc012, 0x000a},
		Extensions:      []uint16{0, 23, 65281, 10, 11, 16, 5, 13, 18, 51, 45, 43, 27, 21},
		SupportedGroups: []uint16{29, 23, 24, 25},
		ALPN:            []string{"h2", "http/1.1"},
	},
}

var tools = []TLSSpec{
	{ // curl with OpenSSL 3
		CipherSuites: []uint16{0x1302, 0x1303, 0x1301, 0xc02c, 0xc030, 0x009f, 0xcca9, 0xcca8, 0xccaa,
			0xc02b, 0xc02f, 0x009e, 0xc024, 0xc028, 0x006b, 0xc023, 0xc027, 0x0067, 0xc00a, 0xc014,
			0x0039, 0xc009, 0xc013, 0x0033, 0x009d, 0x009c, 0x003d, 0x003c, 0x0035, 0x002f, 0x00ff},
		Extensions:      []uint16{0, 11, 10, 35, 16, 22, 23, 13, 43, 45, 51},
		SupportedGroups: []uint16{29, 23, 30, 25, 24},
		PointFormats:    []uint8{0, 1, 2},
		ALPN:            []string{"h2", "http/1.1"},
	},
	{ // Python urllib3, no ALPN
		Extensions:      []uint16{0, 11, 10, 35, 22, 23, 13, 43, 45, 51},
		SupportedGroups: []uint16{29, 23, 30, 25, 24},
		PointFormats:    []uint8{0, 1, 2},
	},
	{ // Java 8, TLS 1.2 only
		CipherSuites: []uint16{0xc02c, 0xc02b, 0xc030, 0xcca9, 0xcca8, 0xc02f, 0x009f, 0xccaa, 0x00a3,
			0x009e, 0x00a2, 0xc024, 0xc028, 0xc023, 0xc027, 0x006b, 0x006a, 0x0067, 0x0040, 0xc00a,
			0xc014, 0xc009, 0xc013, 0x0039, 0x0038, 0x0033, 0x0032, 0x009d, 0x009c, 0x003d, 0x003c,
			0x0035, 0x002f, 0x00ff},
		Extensions:      []uint16{0, 5, 10, 11, 13, 50, 23, 65281},
		SupportedGroups: []uint16{23, 24, 25, 29, 30},
	},
	{ // Go net/http
		CipherSuites: []uint16{0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc009, 0xc013, 0xc00a,
			0xc014, 0x009c, 0x009d, 0x002f, 0x0035, 0x1301, 0x1302, 0x1303},
		Extensions:      []uint16{0, 5, 10, 11, 13, 65281, 18, 16, 43, 51},
		SupportedGroups: []uint16{29, 23, 24, 25},
		ALPN:            []string{"h2", "http/1.1"},
	},
}

var userAgents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
}

var plainHTTP = []struct{ host, path, ua string }{
	{"ocsp.digicert.com", "/MFEwTzBNMEswSTAJBgUrDgMCGgUABBQ", "Microsoft-CryptoAPI/10.0"},
	{"ctldl.windowsupdate.com", "/msdownload/update/v3/static/trustedr/en/authrootstl.cab", "Microsoft-CryptoAPI/10.0"},
	{"connectivitycheck.gstatic.com", "/generate_204", ""},
	{"detectportal.firefox.com", "/canonical.html", ""},
	{"archive.ubuntu.com", "/ubuntu/dists/noble-updates/InRelease", "Debian APT-HTTP/1.3 (2.7.14)"},
	{"intranet.corp.example", "/wiki/Main_Page", ""},
}

var ouis = [][3]byte{{0x3c, 0x22, 0xfb}, {0xa4, 0x83, 0xe7}, {0xe4, 0x54, 0xe8}, {0x8c, 0x16, 0x45}, {0x00, 0x50, 0x56}, {0xf4, 0x8e, 0x38}}

func newGenerator(cfg Config) *generator {
	g := &generator{r: rand.New(rand.NewPCG(cfg.Seed, 0x6564676577617264))} // "edgeward"
	r := g.r
	g.gateway = MAC{0x00, 0x1b, 0x21, byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}
	g.resolver = [2]netip.Addr{netip.MustParseAddr("10.0.0.53"), netip.MustParseAddr("fd12:3456:789a::53")}
	vlan20, vlan30, qinq := []uint16{20}, []uint16{30}, []uint16{100, 30}
	for i := 0; i < cfg.Hosts; i++ {
		h := host{browser: pick(r, []float64{0.6, 0.25, 0.15})}
		o := ouis[r.IntN(len(ouis))]
		h.mac = MAC{o[0], o[1], o[2], byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}
		n := uint32(i + 10)
		switch pick(r, []float64{0.8, 0.1, 0.06, 0.04}) {
		case 0:
			h.v4 = netip.AddrFrom4([4]byte{10, 0, byte(n >> 8), byte(n)})
		case 1:
			h.v4, h.vlan = netip.AddrFrom4([4]byte{192, 168, 20, byte(n)}), vlan20
		case 2:
			h.v4, h.vlan = netip.AddrFrom4([4]byte{10, 30, byte(n >> 8), byte(n)}), vlan30
		default:
			h.v4, h.vlan = netip.AddrFrom4([4]byte{10, 30, byte(n >> 8), byte(n)}), qinq
		}
		if r.Float64() < 0.3 {
			a := [16]byte{0xfd, 0x12, 0x34, 0x56, 0x78, 0x9a, 0, 1}
			putRandom(a[8:], r)
			h.v6 = netip.AddrFrom16(a)
		}
		if r.IntN(2) == 0 {
			h.portLo = 49152 // Windows
		} else {
			h.portLo = 32768 // Linux
		}
		h.nextPort = h.portLo + uint16(r.IntN(10000))
		g.hosts = append(g.hosts, h)
	}
	for _, s := range serviceCatalog {
		p := providers[s.provider]
		sv := service{name: s.name, quic: s.quic, v4: randomIn(r, p[0])}
		if p[1] != "" {
			sv.v6 = randomIn(r, p[1])
		}
		sv.rtt = time.Duration(g.logUniform(4, 120) * float64(time.Millisecond))
		g.services = append(g.services, sv)
	}
	return g
}

func putRandom(b []byte, r *rand.Rand) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

// randomIn picks an address in prefix, avoiding the network address.
func randomIn(r *rand.Rand, prefix string) netip.Addr {
	p := netip.MustParsePrefix(prefix)
	a := p.Addr().AsSlice()
	for i := p.Bits(); i < len(a)*8; i++ {
		if r.IntN(2) == 1 {
			a[i/8] |= 0x80 >> (i % 8)
		}
	}
	a[len(a)-1] |= 1
	addr, _ := netip.AddrFromSlice(a)
	return addr
}

// pick returns an index with the given relative weights.
func pick(r *rand.Rand, weights []float64) int {
	var total float64
	for _, w := range weights {
		total += w
	}
	x := r.Float64() * total
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

func (g *generator) logUniform(lo, hi float64) float64 {
	return lo * math.Pow(hi/lo, g.r.Float64())
}

// sizeLogNormal is a heavy-tailed byte count with the given median.
func (g *generator) sizeLogNormal(median, sigma float64, limit int) int {
	return min(int(median*math.Exp(sigma*g.r.NormFloat64())), limit)
}

func (g *generator) exchanges() int {
	n := 1
	for n < 20 && g.r.Float64() < 0.35 {
		n++
	}
	return n
}

func (g *generator) port(h *host) uint16 {
	p := h.nextPort
	h.nextPort++
	if h.nextPort < h.portLo || h.nextPort == 0 {
		h.nextPort = h.portLo
	}
	return p
}

// Kinds and their share of flows.
var kindWeights = []float64{
	TLS: 0.45, QUIC: 0.10, DNS: 0.25, HTTP: 0.05, TCPGeneric: 0.07, UDPGeneric: 0.06, ICMPEcho: 0.02,
}

func (g *generator) flow(at time.Time) Flow {
	r := g.r
	h := &g.hosts[r.IntN(len(g.hosts))]
	f := Flow{
		Start: at, Kind: Kind(pick(r, kindWeights)),
		ClientMAC: h.mac, ServerMAC: g.gateway, VLAN: h.vlan,
	}
	if f.Kind == ICMPEcho && at.Before(h.icmpUntil) {
		f.Kind = DNS
	}
	v6 := h.v6.IsValid() && r.Float64() < 0.4
	client := h.v4
	if v6 {
		client = h.v6
	}
	sport := g.port(h)
	svc := &g.services[r.IntN(len(g.services))]
	server := svc.v4
	if v6 {
		if svc.v6.IsValid() {
			server = svc.v6
		} else {
			client, v6 = h.v4, false
		}
	}
	f.RTT = svc.rtt + time.Duration(r.Int64N(int64(2*time.Millisecond)))
	f.Exchanges = g.exchanges()
	f.RequestBytes = g.sizeLogNormal(400, 1.0, 1<<20)
	f.ResponseBytes = g.sizeLogNormal(4000, 1.5, 20<<20)
	f.End = End(pick(r, []float64{0.8, 0.1, 0.1}))

	switch f.Kind {
	case TLS:
		spec := browsers[h.browser]
		if r.Float64() < 0.2 {
			spec = tools[r.IntN(len(tools))]
		}
		if spec.GREASE && spec.SupportedGroups == nil && r.Float64() < 0.5 {
			spec.SupportedGroups = []uint16{groupX25519MLKEM768, groupX25519, groupSecp256r1, groupSecp384r1}
		}
		spec.SNI = svc.name
		spec.SplitClientHello = r.Float64() < 0.03
		f.TLS = &spec
		port := uint16(443)
		if svc.name == "relay-7b2c9d41.net.anydesk.com" {
			port, spec.ALPN = 6568, nil
		}
		f.Client, f.Server = netip.AddrPortFrom(client, sport), netip.AddrPortFrom(server, port)
	case QUIC:
		if !svc.quic {
			svc = &g.services[0]
			server = svc.v4
			if v6 {
				server = svc.v6
			}
		}
		spec := TLSSpec{SNI: svc.name, ALPN: []string{"h3"}, GREASE: h.browser != 1}
		f.TLS = &spec
		q := QUICSpec{Version: QUICv1, LargeHello: r.Float64() < 0.3}
		if r.Float64() < 0.05 {
			q.Version = QUICDraft29
		}
		f.QUIC = &q
		f.Client, f.Server = netip.AddrPortFrom(client, sport), netip.AddrPortFrom(server, 443)
	case DNS:
		f.Exchanges, f.RTT = 1, time.Duration(200+r.IntN(800))*time.Microsecond
		resolver := g.resolver[0]
		if v6 {
			resolver = g.resolver[1]
		}
		f.Client, f.Server = netip.AddrPortFrom(client, sport), netip.AddrPortFrom(resolver, 53)
		f.DNS = g.dnsSpec(svc)
	case HTTP:
		p := plainHTTP[r.IntN(len(plainHTTP))]
		ua := p.ua
		if ua == "" {
			ua = userAgents[h.browser]
		}
		f.HTTP = &HTTPSpec{Host: p.host, Path: p.path, UserAgent: ua}
		f.RequestBytes = 0
		if p.host == "intranet.corp.example" {
			server, f.RTT = netip.AddrFrom4([4]byte{10, 0, 5, 10}), time.Millisecond
			client = h.v4
		}
		f.Client, f.Server = netip.AddrPortFrom(client, sport), netip.AddrPortFrom(server, 80)
	case TCPGeneric:
		// SSH, SMB and RDP to internal servers.
		port := []uint16{22, 445, 3389}[r.IntN(3)]
		f.RTT = time.Duration(200+r.IntN(1500)) * time.Microsecond
		f.Client = netip.AddrPortFrom(h.v4, sport)
		f.Server = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 1, byte(20 + r.IntN(10))}), port)
	case UDPGeneric:
		switch r.IntN(3) {
		case 0: // NTP
			f.Exchanges, f.RequestBytes, f.ResponseBytes = 1, 48, 48
			f.Client, f.Server = netip.AddrPortFrom(h.v4, sport), netip.AddrPortFrom(netip.AddrFrom4([4]byte{162, 159, 200, 1}), 123)
		case 1: // syslog, one way
			f.ResponseBytes = 0
			f.RequestBytes = min(f.RequestBytes, 1200)
			f.Client, f.Server = netip.AddrPortFrom(h.v4, sport), netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 1, 5}), 514)
		default: // video call media
			f.Exchanges = 5 + r.IntN(60)
			f.RequestBytes, f.ResponseBytes = 200+r.IntN(1000), 200+r.IntN(1000)
			f.Client, f.Server = netip.AddrPortFrom(h.v4, sport), netip.AddrPortFrom(randomIn(r, "170.114.0.0/16"), 8801)
		}
	case ICMPEcho:
		f.Exchanges, f.RequestBytes = 1+r.IntN(4), 56
		dst := []netip.Addr{netip.AddrFrom4([4]byte{8, 8, 8, 8}), netip.AddrFrom4([4]byte{1, 1, 1, 1}), server}[r.IntN(3)]
		if dst.Is6() != client.Is6() {
			dst = netip.AddrFrom4([4]byte{8, 8, 8, 8})
			client = h.v4
		}
		f.Client, f.Server = netip.AddrPortFrom(client, 0), netip.AddrPortFrom(dst, 0)
		h.icmpUntil = at.Add(time.Duration(f.Exchanges+2) * time.Second)
	}
	return f
}

func (g *generator) dnsSpec(svc *service) *DNSSpec {
	r := g.r
	d := &DNSSpec{Name: svc.name}
	switch pick(r, []float64{0.6, 0.3, 0.1}) {
	case 0:
		d.Type = TypeA
	case 1:
		d.Type = TypeAAAA
	default:
		d.Type = TypeHTTPS
	}
	if r.Float64() < 0.04 {
		// Typos and dead telemetry endpoints.
		d.Name, d.RCode = "telemetry-"+prefix(svc.name, 12)+".invalid", 3
		return d
	}
	ttl := uint32(30 + r.IntN(3600))
	owner := svc.name
	if r.Float64() < 0.3 {
		target := "edge-" + prefix(owner, 10) + ".cdn.example.net"
		d.Answers = append(d.Answers, DNSAnswer{Target: target, TTL: ttl})
	}
	switch d.Type {
	case TypeA:
		d.Answers = append(d.Answers, DNSAnswer{Addr: svc.v4, TTL: ttl})
	case TypeAAAA:
		if svc.v6.IsValid() {
			d.Answers = append(d.Answers, DNSAnswer{Addr: svc.v6, TTL: ttl})
		}
	}
	return d
}

// prefix shortens a host name to at most n bytes without a trailing dot.
func prefix(name string, n int) string {
	return strings.TrimRight(name[:min(len(name), n)], ".")
}
