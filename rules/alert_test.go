package rules

import (
	"encoding/json"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
)

// ocsfIntroduced is the OCSF release that added each attribute the alerts
// use after 1.0 (CHANGELOG.md of ocsf/ocsf-schema): an alert that declares
// an earlier metadata.version carries attributes its schema does not
// have, which an OCSF validator rejects.
var ocsfIntroduced = map[string]string{
	"is_alert": "1.4.0", // detection_finding, #1178
	"evidences.connection_info.community_uid": "1.4.0", // network_connection_info, #1202
	"finding_info.attacks.sub_technique":      "1.1.0",
}

// ocsfPaths lists the attribute paths of a decoded alert, arrays flattened.
func ocsfPaths(prefix string, v any, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			out[p] = true
			if k != "data" && k != "unmapped" {
				ocsfPaths(p, e, out)
			}
		}
	case []any:
		for _, e := range x {
			ocsfPaths(prefix, e, out)
		}
	}
}

func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range min(len(as), len(bs)) {
		x, _ := strconv.Atoi(as[i])
		y, _ := strconv.Atoi(bs[i])
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}

// foldedAlerts runs a suppressed rule over three flows of one host and
// flushes: a Create and the Update that closes it.
func foldedAlerts(t *testing.T, tags string) []*Alert {
	t.Helper()
	set := loadRule(t, "- rule: r\n  title: R\n  severity: high\n  category: c\n  match: proto == \"tcp\"\n"+
		"  suppress: {key: [src.ip], for: 10m}\n"+tags)
	e := NewEngine(set, EngineConfig{})
	var got []*Alert
	emit := func(a *Alert) { got = append(got, a) }
	t0 := time.Unix(1_800_000_000, 0)
	for i, at := range []time.Duration{0, 2 * time.Minute, time.Minute} {
		rec := &flow.Record{
			ID: "f" + strconv.Itoa(i), CommunityID: "1:c" + strconv.Itoa(i), Proto: "tcp", Direction: "outbound",
			Start: t0.Add(at - 30*time.Second), End: t0.Add(at),
			Src: flow.Endpoint{IP: netip.MustParseAddr("10.0.0.5"), Port: 50000}, Dst: flow.Endpoint{IP: netip.MustParseAddr("192.0.2.7"), Port: 443},
			Device: &flow.Device{ID: "LT-1", Hostname: "lt-1", IP: netip.MustParseAddr("10.0.0.5")},
		}
		e.Evaluate(&Input{Record: rec}, emit)
	}
	e.Flush(emit)
	if len(got) != 2 || got[0].ActivityID != ActivityCreate || got[1].ActivityID != ActivityUpdate {
		t.Fatalf("got %d alerts, want a Create and an Update", len(got))
	}
	return got
}

// TestAlertAttributesInDeclaredOCSFVersion: every attribute an alert
// carries exists in the OCSF version its metadata.version declares.
func TestAlertAttributesInDeclaredOCSFVersion(t *testing.T) {
	for _, a := range foldedAlerts(t, "  tags: [attack.t1021.001]\n") {
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		paths := map[string]bool{}
		ocsfPaths("", m, paths)
		declared := m["metadata"].(map[string]any)["version"].(string)
		for p, since := range ocsfIntroduced {
			if paths[p] && versionLess(declared, since) {
				t.Errorf("%s: %s is OCSF %s, but the alert declares metadata.version %s", a.ActivityName, p, since, declared)
			}
		}
	}
}

// TestAlertSubTechnique: an attack.tNNNN.NNN tag is an ATT&CK
// sub-technique: OCSF puts it in attack.sub_technique, with its parent
// technique in attack.technique (technique.uid T1021.001 is no technique).
func TestAlertSubTechnique(t *testing.T) {
	b, err := json.Marshal(attacks([]string{"attack.t1219", "attack.T1021.001", "laptop_farm"}))
	if err != nil {
		t.Fatal(err)
	}
	const want = `[{"technique":{"uid":"T1219"}},{"technique":{"uid":"T1021"},"sub_technique":{"uid":"T1021.001"}}]`
	if string(b) != want {
		t.Errorf("attacks %s\nwant       %s", b, want)
	}
}

// TestAlertUpdateCarriesFinalState: the Update that closes a finding has
// the Create's uid and the folded count, last_seen_time, end_time and
// time; a late flow that started earlier moves first_seen_time and
// start_time back; the Create as emitted is not changed by the folds.
func TestAlertUpdateCarriesFinalState(t *testing.T) {
	got := foldedAlerts(t, "")
	c, u := got[0], got[1]
	t0 := time.Unix(1_800_000_000, 0)
	if u.FindingInfo.UID != c.FindingInfo.UID || u.FindingInfo.UID == "" {
		t.Errorf("uids %q, %q: want one finding", c.FindingInfo.UID, u.FindingInfo.UID)
	}
	if c.Count != 1 || u.Count != 3 {
		t.Errorf("counts %d, %d: want 1 then 3", c.Count, u.Count)
	}
	last := t0.Add(2 * time.Minute).UnixMilli()
	if u.FindingInfo.LastSeenTime != last || u.EndTime != last || u.Time != last {
		t.Errorf("update last_seen %d end %d time %d, want %d", u.FindingInfo.LastSeenTime, u.EndTime, u.Time, last)
	}
	first := t0.Add(-30 * time.Second).UnixMilli()
	if u.FindingInfo.FirstSeenTime != first || u.StartTime != first {
		t.Errorf("update first_seen %d start %d, want %d", u.FindingInfo.FirstSeenTime, u.StartTime, first)
	}
	if c.Time != t0.UnixMilli() || c.EndTime != t0.UnixMilli() || len(c.Evidences) != 1 {
		t.Errorf("create changed by the folds: time %d end %d, %d evidences", c.Time, c.EndTime, len(c.Evidences))
	}
	if u.TypeUID != classUID*100+ActivityUpdate || u.ActivityName != "Update" || u.TypeName != "Detection Finding: Update" {
		t.Errorf("update type %d %q %q", u.TypeUID, u.ActivityName, u.TypeName)
	}
}

// TestAlertJSONWithNonFiniteOutput: a flow record whose duration_s is not
// finite (the binary wire format carries any float64) still gives an
// alert that encodes as JSON, as the record's own JSON does (null): the
// built-in geo rule outputs duration_s, and an alert that does not encode
// is dropped by the pipeline.
func TestAlertJSONWithNonFiniteOutput(t *testing.T) {
	set := loadRule(t, "- rule: r\n  title: R\n  severity: high\n  category: c\n  match: proto == \"tcp\"\n"+
		"  output: [duration_s, src.ip]\n")
	e := NewEngine(set, EngineConfig{})
	for _, d := range []float64{math.Inf(1), math.NaN()} {
		ts := time.Unix(1_800_000_000, 0)
		rec := &flow.Record{ID: "f", Proto: "tcp", Start: ts, End: ts, DurationS: d, Src: flow.Endpoint{IP: netip.MustParseAddr("10.0.0.5")}}
		n := 0
		e.Evaluate(&Input{Record: rec}, func(a *Alert) {
			n++
			if _, err := json.Marshal(a); err != nil {
				t.Errorf("duration_s %v: the alert does not encode: %v", d, err)
			}
		})
		if n != 1 {
			t.Errorf("duration_s %v: %d alerts, want 1", d, n)
		}
	}
}
