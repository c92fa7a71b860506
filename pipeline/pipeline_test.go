package pipeline_test

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/geofixture"
	"github.com/edgeward/edgeward/pipeline"
	"github.com/edgeward/edgeward/pipeline/enrich"
	"github.com/edgeward/edgeward/rules"
)

const testRules = `
- rule: watchlist_hosting
  title: Hosting network in a watch-listed country
  severity: high
  category: geo_egress
  match: dst.geo.country in ["CN", "RU"] && dst.anon.hosting
  output: [dst.geo.country, dst.as.org]
- rule: egress_country
  title: Egress country differs from the assigned one
  severity: high
  category: laptop_farm
  match: egress.geo.country != device.assigned_country
  output: [egress.ip, egress.geo.country]
- rule: intel_domain
  title: Intel domain
  severity: medium
  category: remote_access
  match: intel.domain == "bad"
`

func TestProcessMapsEnrichmentOntoRules(t *testing.T) {
	dir := t.TempDir()
	nets := []geofixture.Network{
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Country: "RU", ASN: 64500, ASOrg: "Hosting LLC", Hosting: true},
		{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Country: "GB", ASN: 64501, ASOrg: "Home ISP", ResidentialProxy: false},
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: "US", ASN: 64502, ASOrg: "SaaS Inc"},
	}
	for name, write := range map[string]func(string, []geofixture.Network) error{
		"geo.mmdb": geofixture.WriteCountry, "asn.mmdb": geofixture.WriteASN, "anon.mmdb": geofixture.WriteAnon,
	} {
		if err := write(filepath.Join(dir, name), nets); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "bad.txt"), []byte("evil.example\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(testRules), 0o644)
	enr, err := enrich.New(enrich.Config{GeoIP: filepath.Join(dir, "geo.mmdb"), ASN: filepath.Join(dir, "asn.mmdb"),
		Anon: filepath.Join(dir, "anon.mmdb"), Intel: []string{filepath.Join(dir, "bad.txt")}})
	if err != nil {
		t.Fatal(err)
	}
	defer enr.Close()
	set := loadRules(t, filepath.Join(dir, "rules.yml"))
	p, err := pipeline.New(pipeline.Config{Rules: set, Enrich: enr})
	if err != nil {
		t.Fatal(err)
	}
	dev := &flow.Device{IP: netip.MustParseAddr("10.99.0.11"), ID: "LT-0042", AssignedCountry: "US"}
	rec := func(dst, name string, egress string) *flow.Record {
		r := &flow.Record{Proto: "tcp", Start: time.Unix(1_800_000_000, 0), End: time.Unix(1_800_000_060, 0),
			Src: flow.Endpoint{IP: dev.IP, Port: 50000}, Dst: flow.Endpoint{IP: netip.MustParseAddr(dst), Port: 443, Name: name},
			Device: dev}
		if egress != "" {
			r.Egress = &flow.Egress{IP: netip.MustParseAddr(egress), Source: "feed"}
		}
		return r
	}
	cases := []struct {
		name string
		rec  *flow.Record
		want []string
	}{
		{"hosting in RU", rec("198.51.100.7", "", ""), []string{"watchlist_hosting"}},
		{"SaaS in US", rec("192.0.2.7", "", ""), nil},
		{"egress from GB for a US laptop", rec("192.0.2.7", "", "203.0.113.50"), []string{"egress_country"}},
		{"egress from US", rec("192.0.2.7", "", "192.0.2.99"), nil},
		{"intel domain", rec("192.0.2.7", "x.evil.example", ""), []string{"intel_domain"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			var alerts []*rules.Alert
			p.Process(c.rec, func(a *rules.Alert) { got = append(got, a.FindingInfo.Analytic.UID); alerts = append(alerts, a) })
			if len(got) != len(c.want) || (len(got) > 0 && got[0] != c.want[0]) {
				t.Fatalf("alerts %v, want %v", got, c.want)
			}
			for _, a := range alerts {
				if a.Device == nil || a.Device.UID != "LT-0042" {
					t.Errorf("alert device %+v, want LT-0042", a.Device)
				}
			}
		})
	}
}

// TestAlertsAreOCSFDetectionFindings checks the alerts the pipeline emits
// against what OCSF 1.4 requires of a Detection Finding and of the objects
// it uses: the base event's required attributes, type_uid, severity,
// times in milliseconds, finding_info.uid, and in each evidence's
// connection_info the required direction_id, from the flow's direction, and
// the flow's id and Community ID as uid and community_uid.
func TestAlertsAreOCSFDetectionFindings(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(`
- rule: any_https
  title: HTTPS
  severity: low
  category: test
  match: dst.port == 443
`), 0o644)
	set := loadRules(t, filepath.Join(dir, "rules.yml"))
	p, err := pipeline.New(pipeline.Config{Rules: set})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		direction string
		wantID    int
	}{{"outbound", 2}, {"inbound", 1}, {"internal", 3}, {"external", 99}, {"", 0}} {
		rec := &flow.Record{Proto: "tcp", ID: "r-" + c.direction, Start: time.Unix(1_800_000_000, 0), End: time.Unix(1_800_000_060, 0),
			Src: flow.Endpoint{IP: netip.MustParseAddr("10.0.0.5"), Port: 50000}, Dst: flow.Endpoint{IP: netip.MustParseAddr("192.0.2.7"), Port: 443},
			Direction: c.direction, CommunityID: "1:cid-" + c.direction}
		var got []map[string]any
		p.Process(rec, func(a *rules.Alert) {
			b, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			got = append(got, m)
		})
		if len(got) != 1 {
			t.Fatalf("direction %q: %d alerts, want 1", c.direction, len(got))
		}
		a := got[0]
		for _, k := range []string{"activity_id", "category_uid", "class_uid", "type_uid", "severity_id", "time", "metadata", "finding_info"} {
			if _, ok := a[k]; !ok {
				t.Errorf("direction %q: no %s", c.direction, k)
			}
		}
		if a["class_uid"] != 2004.0 || a["category_uid"] != 2.0 || a["type_uid"] != 2004*100+a["activity_id"].(float64) {
			t.Errorf("direction %q: class %v category %v type %v", c.direction, a["class_uid"], a["category_uid"], a["type_uid"])
		}
		if a["time"] != float64(rec.End.UnixMilli()) || a["severity_id"] != 2.0 || a["severity"] != "Low" {
			t.Errorf("direction %q: time %v severity %v %v", c.direction, a["time"], a["severity_id"], a["severity"])
		}
		if fi := a["finding_info"].(map[string]any); fi["uid"] == "" || fi["title"] != "HTTPS" {
			t.Errorf("direction %q: finding_info %v", c.direction, fi)
		}
		ci := a["evidences"].([]any)[0].(map[string]any)["connection_info"].(map[string]any)
		if id, ok := ci["direction_id"]; !ok || id != float64(c.wantID) {
			t.Errorf("direction %q: connection_info %v, want direction_id %d (required by OCSF)", c.direction, ci, c.wantID)
		}
		if ci["uid"] != rec.ID || ci["community_uid"] != rec.CommunityID { // OCSF network_connection_info
			t.Errorf("direction %q: connection_info %v, want uid %q and community_uid %q", c.direction, ci, rec.ID, rec.CommunityID)
		}
	}
}

// loadRules loads a rules file with the pipeline's schema.
func loadRules(t *testing.T, path string) *rules.Set {
	t.Helper()
	schema, err := pipeline.Schema()
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Load([]string{path}, rules.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	return set
}
