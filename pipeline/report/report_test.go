package report

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/rules"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.html")

func render(t testing.TB, r *Report, m Meta) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := r.WriteHTML(&b, m); err != nil {
		t.Fatalf("WriteHTML: %v", err)
	}
	return b.Bytes()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden.html")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./pipeline/report -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range max(len(gl), len(wl)) {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s differs from the output at line %d (run with -update if the change is intended):\n got: %s\nwant: %s", path, i+1, g, w)
			}
		}
	}
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name string
		r    func() *Report
		m    Meta
	}{
		{"day", fixture, fixtureMeta},
		{"empty", New, Meta{Title: "Nothing seen", Generated: fixtureMeta.Generated}},
		{"flows-only", func() *Report {
			r := New()
			for i := range 50 {
				d := saas[i%len(saas)]
				r.Flow(record(i, alice, d, day.Add(time.Duration(i)*time.Minute), time.Second, 1000, 5000), info(d, alice))
			}
			return r
		}, Meta{Generated: fixtureMeta.Generated}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := render(t, tc.r(), tc.m)
			wellFormed(t, got)
			golden(t, tc.name, got)
			if again := render(t, tc.r(), tc.m); !bytes.Equal(got, again) {
				t.Error("two renderings of the same input differ")
			}
		})
	}
}

// TestContent checks what an analyst must find in the report, whatever
// its layout.
func TestContent(t *testing.T) {
	out := string(render(t, fixture(), fixtureMeta))
	for _, want := range []string{
		"Paris office — daily edge report",
		"IP-KVM device on the corporate LAN",
		"AnyDesk remote-control session",
		"Remote laptop egresses outside its home country",
		"× 12",                     // folded count of the AnyDesk finding
		"first 5 of 12 detections", // evidence note
		"223.104.3.19",             // Bob's egress
		`<span class="cc">CN</span>China`,
		"https://attack.mitre.org/techniques/T1219/",
		"alice.martin@example.com",
		"relay-6cd1c5a1.net.anydesk.com",
		"AS60068 Datacamp Limited", // evidence enrichment
		"shadow mode",
		"Russia",
		"AS8075",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Most severe first: both criticals before the high, the high before
	// the medium, the shadow finding last.
	order := []string{"IP-KVM device on the corporate LAN", "AnyDesk remote-control session", "Mesh VPN client", "Consumer VPN provider", "Reverse tunnel service"}
	details := out[strings.Index(out, `id="details"`):]
	last := -1
	for _, s := range order {
		i := strings.Index(details, s)
		if i < last {
			t.Errorf("%q is out of order in the alert details", s)
		}
		last = i
	}
	if n := strings.Count(out, `<article class="alert`); n != 6 {
		t.Errorf("%d alert details, want 6 (updates folded into their findings)", n)
	}
}

func TestSelfContained(t *testing.T) {
	out := string(render(t, fixture(), fixtureMeta))
	for _, bad := range []string{"<link", "@import", "url(", "src=", "<img", "<iframe", "<object", "<embed", "http://"} {
		if strings.Contains(out, bad) {
			t.Errorf("report contains %q: it must not load anything", bad)
		}
	}
	// The only absolute links are to MITRE ATT&CK, which are navigation,
	// not resources.
	for s := out; ; {
		i := strings.Index(s, "https://")
		if i < 0 {
			break
		}
		if !strings.HasPrefix(s[i:], "https://attack.mitre.org/techniques/") {
			t.Errorf("unexpected absolute URL at %q", s[i:min(len(s), i+60)])
		}
		s = s[i+1:]
	}
}

// hostile is what an attacker controls on the wire: names, hostnames,
// user agents, SNI.
const hostile = `<script>alert(1)</script>"'><img src=x onerror=alert(2)>&amp;`

func TestEscaping(t *testing.T) {
	r := New()
	dev := &flow.Device{IP: netip.MustParseAddr("10.0.0.9"), Hostname: hostile, ID: hostile, Owner: hostile}
	d := dest{"198.51.100.7", 443, hostile, "ZZ", 64500, hostile}
	rec := record(1, dev, d, day, time.Second, 100, 200)
	rec.TLS.SNI = hostile
	rec.HTTP = &flow.HTTP{Method: "GET", Host: hostile, UserAgent: hostile}
	rec.App, rec.AppCategory = hostile, hostile
	rec.Src.Hostname = hostile
	r.Flow(rec, FlowInfo{DstCountry: "Z<", DstASN: 64500, DstASOrg: hostile, EgressCountry: hostile})
	a := alert("x.y", hostile, "high", hostile, hostile, []string{"attack.t1219", "attack.t<script>"}, []*flow.Record{rec}, 1, 1,
		map[string]any{hostile: hostile, "list": []any{hostile, 1.5}})
	a.Unmapped.Group = map[string]any{"src.ip": hostile}
	r.Alert(a)
	out := render(t, r, Meta{Title: hostile, Inputs: []string{hostile}, SensorID: hostile, Site: hostile, Version: hostile})
	wellFormed(t, out)
	s := string(out)
	if n := strings.Count(s, "<script"); n != 1 {
		t.Errorf("%d <script elements, want only the report's own", n)
	}
	if strings.Contains(s, "<img") || strings.Contains(s, "onerror=alert") && !strings.Contains(s, "&lt;img src=x onerror=alert(2)&gt;") {
		t.Error("an attacker-controlled tag reached the document unescaped")
	}
	if !strings.Contains(s, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the escaped SNI is not in the report")
	}
	if strings.Contains(s, `href="https://attack.mitre.org/techniques/T%3cscript`) || strings.Contains(s, "techniques/T<") {
		t.Error("a bad technique id became a link")
	}
}

// FuzzEscaping feeds arbitrary strings through every attacker-influenced
// field: the document must stay well formed and gain no element.
func FuzzEscaping(f *testing.F) {
	f.Add(hostile)
	f.Add("</style><script>x</script>")
	f.Add("\x00\xff]]><!--")
	f.Fuzz(func(t *testing.T, s string) {
		r := New()
		dev := &flow.Device{IP: netip.MustParseAddr("10.0.0.9"), Hostname: s, ID: s}
		rec := record(1, dev, dest{"198.51.100.7", 443, s, "US", 1, s}, day, time.Second, 100, 200)
		r.Flow(rec, FlowInfo{DstCountry: s, DstASN: 1, DstASOrg: s})
		r.Alert(alert("r", s, "high", s, s, nil, []*flow.Record{rec}, 1, 1, map[string]any{s: s}))
		out := render(t, r, Meta{Title: s})
		wellFormed(t, out)
		if n := bytes.Count(out, []byte("<script")); n != 1 {
			t.Errorf("%d <script elements", n)
		}
	})
}

// voidElements have no end tag.
var voidElements = map[string]bool{
	"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true, "img": true,
	"input": true, "link": true, "meta": true, "source": true, "track": true, "wbr": true,
}

// wellFormed checks that every element is closed, in order, and that the
// document has the expected skeleton. html.Parse would repair anything,
// so the check tokenizes instead.
func wellFormed(t testing.TB, doc []byte) {
	t.Helper()
	z := html.NewTokenizer(bytes.NewReader(doc))
	var stack []string
	seen := map[string]int{}
	line := 1
	for {
		tt := z.Next()
		raw := z.Raw()
		switch tt {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				t.Fatalf("line %d: %v", line, z.Err())
			}
			if len(stack) > 0 {
				t.Fatalf("unclosed elements at end of document: %v", stack)
			}
			for _, el := range []string{"html", "head", "title", "style", "body", "main", "svg", "script"} {
				if seen[el] == 0 && !(el == "svg" && seen["main"] == 0) {
					t.Errorf("document has no <%s>", el)
				}
			}
			for _, el := range []string{"html", "head", "title", "body", "main"} {
				if seen[el] > 1 {
					t.Errorf("document has %d <%s>", seen[el], el)
				}
			}
			return
		case html.StartTagToken:
			name, _ := z.TagName()
			el := string(name)
			if !inSVG(stack) { // SVG has its own <title>
				seen[el]++
			}
			if !voidElements[el] {
				stack = append(stack, el)
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			el := string(name)
			if len(stack) == 0 || stack[len(stack)-1] != el {
				t.Fatalf("line %d: </%s> closes %v", line, el, stack)
			}
			stack = stack[:len(stack)-1]
		case html.SelfClosingTagToken:
			name, _ := z.TagName()
			seen[string(name)]++
			if !inSVG(stack) && !voidElements[string(name)] {
				t.Fatalf("line %d: self-closing <%s/> outside SVG", line, name)
			}
		}
		line += bytes.Count(raw, []byte("\n"))
	}
}

func inSVG(stack []string) bool {
	for _, el := range stack {
		if el == "svg" {
			return true
		}
	}
	return false
}

func TestFold(t *testing.T) {
	recs := make([]*flow.Record, 5)
	for i := range recs {
		recs[i] = record(i, alice, saas[0], day.Add(time.Duration(i)*time.Minute), time.Second, 10, 10)
	}
	create := func() *rules.Alert { return alert("r", "T", "high", "c", "", nil, recs[:1], 1, 1, nil) }
	upd := func() *rules.Alert { return alert("r", "T", "high", "c", "", nil, recs, 7, 2, nil) }
	tests := []struct {
		name      string
		alerts    []func() *rules.Alert
		count     int
		evidence  int
		firstSeen time.Time
	}{
		{"create only", []func() *rules.Alert{create}, 1, 1, recs[0].Start},
		{"create then update", []func() *rules.Alert{create, upd}, 7, 5, recs[0].Start},
		{"update then create", []func() *rules.Alert{upd, create}, 7, 5, recs[0].Start},
		{"update alone", []func() *rules.Alert{upd}, 7, 5, recs[0].Start},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := New()
			for _, a := range tc.alerts {
				r.Alert(a())
			}
			if len(r.alerts) != 1 {
				t.Fatalf("%d findings, want 1", len(r.alerts))
			}
			for _, f := range r.alerts {
				if f.count != tc.count || len(f.evidence) != tc.evidence || !f.first.Equal(tc.firstSeen) {
					t.Errorf("count %d evidence %d first %v, want %d %d %v", f.count, len(f.evidence), f.first, tc.count, tc.evidence, tc.firstSeen)
				}
				if !f.last.Equal(recs[len(recs)-1].Start) && tc.count > 1 {
					t.Errorf("last seen %v, want %v", f.last, recs[len(recs)-1].Start)
				}
			}
		})
	}
}

// TestEvidenceEnrichment: an evidence flow gets its destination's
// enrichment whether the pipeline reports the flow before or after the
// alert.
func TestEvidenceEnrichment(t *testing.T) {
	d := saas[1]
	for _, flowFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("flow first %v", flowFirst), func(t *testing.T) {
			r := New()
			rec := record(1, alice, d, day, time.Second, 10, 10)
			a := alert("r", "T", "high", "c", "", nil, []*flow.Record{rec}, 1, 1, nil)
			if flowFirst {
				r.Flow(rec, info(d, alice))
				r.Alert(a)
			} else {
				r.Alert(a)
				r.Flow(rec, info(d, alice))
			}
			if s := string(render(t, r, Meta{})); !strings.Contains(s, "AS8075 Microsoft Corporation") || !strings.Contains(s, `<span class="cc">IE</span>`) {
				t.Error("evidence row lacks the destination's country and AS")
			}
			if r.pending != 0 {
				t.Errorf("pending %d, want 0", r.pending)
			}
		})
	}
}

// TestBadEvidence: an alert whose evidence record does not decode is still
// reported, with the OCSF endpoints.
func TestBadEvidence(t *testing.T) {
	r := New()
	a := alert("r", "Broken evidence", "medium", "c", "", nil, []*flow.Record{record(1, alice, saas[0], day, time.Second, 1, 1)}, 1, 1, nil)
	a.Evidences[0].Data = []byte(`{"start":"yesterday"}`)
	r.Alert(a)
	s := string(render(t, r, Meta{}))
	for _, want := range []string{"Broken evidence", "142.250.74.46:443", "record not decodable", "could not be decoded"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestAlertLimit(t *testing.T) {
	r := New()
	rec := record(1, alice, saas[0], day, time.Second, 1, 1)
	for i := range maxAlerts + 3 {
		a := alert("r", "T", "low", "c", "", nil, []*flow.Record{rec}, 1, 1, nil)
		a.FindingInfo.UID = fmt.Sprintf("u%d", i)
		r.Alert(a)
	}
	if len(r.alerts) != maxAlerts || r.droppedAlerts != 3 {
		t.Errorf("kept %d, dropped %d; want %d, 3", len(r.alerts), r.droppedAlerts, maxAlerts)
	}
}

func TestFlowAllocs(t *testing.T) {
	r := New()
	recs := make([]*flow.Record, 2*recentFlows)
	for i := range recs {
		d := saas[i%len(saas)]
		recs[i] = record(i, alice, d, day.Add(time.Duration(i)*time.Second), time.Second, 100, 100)
	}
	fi := info(saas[0], alice)
	for _, rec := range recs { // fill every table
		r.Flow(rec, fi)
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		r.Flow(recs[i%len(recs)], fi)
		i++
	})
	if allocs > 0 {
		t.Errorf("Flow allocates %.2f times per flow, want 0", allocs)
	}
}

// BenchmarkFlow measures Report.Flow against a baseline every flow pays
// anyway: encoding the record as JSON for export (flow.Record.AppendJSON).
func BenchmarkFlow(b *testing.B) {
	recs := make([]*flow.Record, 4*recentFlows)
	for i := range recs {
		d := saas[i%len(saas)]
		recs[i] = record(i, devsOf(i), d, day.Add(time.Duration(i)*time.Second), time.Second, 100, 100)
	}
	fis := make([]FlowInfo, len(saas))
	for i, d := range saas {
		fis[i] = info(d, alice)
	}
	b.Run("report", func(b *testing.B) {
		r := New()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r.Flow(recs[i%len(recs)], fis[i%len(fis)])
			i++
		}
	})
	b.Run("json-baseline", func(b *testing.B) {
		buf := make([]byte, 0, 4096)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			buf = recs[i%len(recs)].AppendJSON(buf[:0])
			i++
		}
	})
}

func devsOf(i int) *flow.Device { return []*flow.Device{alice, bob, pi}[i%3] }

func BenchmarkWriteHTML(b *testing.B) {
	r := fixture()
	b.ReportAllocs()
	for b.Loop() {
		if err := r.WriteHTML(io.Discard, fixtureMeta); err != nil {
			b.Fatal(err)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteError(t *testing.T) {
	err := fixture().WriteHTML(failWriter{}, fixtureMeta)
	if err == nil || !strings.Contains(err.Error(), "report: writing HTML") || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("WriteHTML to a failing writer: %v", err)
	}
}

// TestConcurrent feeds flows and alerts from several goroutines while
// rendering (run with -race).
func TestConcurrent(t *testing.T) {
	r := New()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				d := saas[i%len(saas)]
				rec := record(g*1000+i, devsOf(i), d, day.Add(time.Duration(i)*time.Second), time.Second, 10, 10)
				r.Flow(rec, info(d, devsOf(i)))
				if i%50 == 0 {
					r.Alert(alert("r", "T", "low", "c", "", nil, []*flow.Record{rec}, 1, 1, nil))
				}
			}
		})
	}
	wg.Go(func() {
		if err := r.WriteHTML(io.Discard, Meta{}); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	if r.flows != 800 {
		t.Errorf("%d flows, want 800", r.flows)
	}
}

func TestAttackURL(t *testing.T) {
	for id, want := range map[string]string{
		"T1219":     "https://attack.mitre.org/techniques/T1219/",
		"T1021.001": "https://attack.mitre.org/techniques/T1021/001/",
		"X1219":     "",
		"T":         "",
		"":          "",
		"T12a":      "",
		"T1021.x":   "",
		"T<script>": "",
	} {
		if got := attackURL(id); got != want {
			t.Errorf("attackURL(%q) = %q, want %q", id, got, want)
		}
	}
}

// TestAlertLimitCountsFindingsOnce feeds a finding beyond the limit as its
// Create and, with its folded repeats, its Update: the totals must count
// it as one alert of 7 detections, as they would below the limit.
func TestAlertLimitCountsFindingsOnce(t *testing.T) {
	r := New()
	rec := record(1, alice, saas[0], day, time.Second, 1, 1)
	for i := range maxAlerts {
		a := alert("r", "T", "low", "c", "", nil, []*flow.Record{rec}, 1, 1, nil)
		a.FindingInfo.UID = fmt.Sprintf("u%d", i)
		r.Alert(a)
	}
	create := alert("r", "T", "high", "c", "", nil, []*flow.Record{rec}, 1, 1, nil)
	create.FindingInfo.UID = "beyond"
	update := alert("r", "T", "high", "c", "", nil, []*flow.Record{rec}, 7, 2, nil)
	update.FindingInfo.UID = "beyond"
	r.Alert(create)
	r.Alert(update)
	v := r.build(Meta{})
	if v.Alerts != maxAlerts+1 || v.Detections != maxAlerts+7 {
		t.Errorf("alerts %d, detections %d; want %d, %d", v.Alerts, v.Detections, maxAlerts+1, maxAlerts+7)
	}
	for _, s := range v.Severities {
		if s.Name == "High" && s.Count != 1 {
			t.Errorf("high alerts %d, want 1", s.Count)
		}
	}
}

// TestSubTechnique: the engine maps an attack.t1021.001 tag to OCSF's
// technique T1021 and sub_technique T1021.001; the report names and links
// the sub-technique, the more precise of the two.
func TestSubTechnique(t *testing.T) {
	r := New()
	rec := record(1, &flow.Device{IP: netip.MustParseAddr("10.0.0.9")}, dest{"198.51.100.7", 3389, "", "", 0, ""}, day, time.Second, 100, 200)
	a := alert("rdp.x", "RDP", "high", "remote_access", "", nil, []*flow.Record{rec}, 1, 1, nil)
	a.FindingInfo.Attacks = []rules.Attack{{Technique: rules.Technique{UID: "T1021"}, SubTechnique: &rules.Technique{UID: "T1021.001"}}}
	r.Alert(a)
	s := string(render(t, r, Meta{}))
	if !strings.Contains(s, `<a class="tag" href="https://attack.mitre.org/techniques/T1021/001/">T1021.001</a>`) {
		t.Error("the report does not link sub-technique T1021.001")
	}
}
