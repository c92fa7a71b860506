package rules

import (
	"encoding/json"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/edgeward/edgeward/flow"
)

// runFileTests loads one rule file and runs its in-file tests, failing on
// every test that does not pass.
func runFileTests(t *testing.T, body string) {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "r.yml", body)
	res, err := Test([]string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) == 0 {
		t.Fatal("no tests ran")
	}
	for _, r := range res {
		if !r.Pass {
			t.Error(r.String())
		}
	}
}

// TestLateFlowsInWindow: a late flow counts with the flows within the
// window of it and of the group's newest flow, and with no others, for
// each aggregate type.
func TestLateFlowsInWindow(t *testing.T) {
	runFileTests(t, `- rule: ec
  title: x
  severity: low
  category: c
  match: proto == "tcp" && dst.port == 1
  aggregate: {type: event_count, group_by: [src.ip], window: 1m, condition: {gte: 3}}
  tests:
    - name: the late flow completes a minute
      flows:
        - {at: 30s, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 1}}
        - {at: 80s, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 1}}
        - {at: 40s, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 1}}
      alerts: 1
    - name: the late flow is more than a minute before the newest
      flows:
        - {at: 30s, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 1}}
        - {at: 80s, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 1}}
        - {at: 10s, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 1}}
      alerts: 0
    - name: no minute holds three flows
      flows:
        - {at: 10m, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 1}}
        - {at: 0s, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 1}}
        - {at: 1s, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 1}}
      alerts: 0
- rule: vc
  title: x
  severity: low
  category: c
  match: proto == "tcp" && dst.port >= 10
  aggregate: {type: value_count, field: dst.port, group_by: [src.ip], window: 1m, condition: {gte: 3}}
  tests:
    - name: a late port within the window counts
      flows:
        - {at: 10m, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 10}}
        - {at: 10m1s, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 11}}
        - {at: 9m30s, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 12}}
      alerts: 1
    - name: no minute holds three ports
      flows:
        - {at: 10m, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 10}}
        - {at: 0s, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 11}}
        - {at: 1s, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 12}}
      alerts: 0
- rule: vs
  title: x
  severity: low
  category: c
  match: proto == "tcp" && dst.port == 2
  aggregate: {type: value_sum, field: src.bytes, group_by: [src.ip], window: 1m, condition: {gte: 15}}
  tests:
    - name: a late flow within the window adds
      flows:
        - {at: 10m, proto: tcp, src: {ip: 10.0.0.5, bytes: 10}, dst: {port: 2}}
        - {at: 9m30s, proto: tcp, src: {ip: 10.0.0.5, bytes: 5}, dst: {port: 2}}
      alerts: 1
    - name: one before the window does not
      flows:
        - {at: 10m, proto: tcp, src: {ip: 10.0.0.5, bytes: 10}, dst: {port: 2}}
        - {at: 0s, proto: tcp, src: {ip: 10.0.0.5, bytes: 5}, dst: {port: 2}}
      alerts: 0
- rule: a
  title: a
  severity: low
  category: c
  mode: shadow
  match: proto == "tcp" && dst.port == 3
- rule: b
  title: b
  severity: low
  category: c
  mode: shadow
  match: proto == "tcp" && dst.port == 4
- rule: both
  title: x
  severity: low
  category: c
  aggregate: {type: temporal, rules: [a, b], group_by: [src.ip], window: 1m}
  tests:
    - name: late step within the window
      flows:
        - {at: 10m, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 3}}
        - {at: 9m30s, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 4}}
      alerts: 1
    - name: late step before the window
      flows:
        - {at: 10m, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 3}}
        - {at: 0s, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 4}}
      alerts: 0
- rule: then
  title: x
  severity: low
  category: c
  aggregate: {type: temporal, rules: [a, b], ordered: true, group_by: [src.ip], window: 1m}
  tests:
    - name: in order
      flows:
        - {at: 9m30s, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 3}}
        - {at: 10m, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 4}}
      alerts: 1
    - name: the second step happened first, arriving late
      flows:
        - {at: 10m, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 3}}
        - {at: 9m30s, proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 4}}
      alerts: 0
`)
}

// TestValueSumGtDouble: {gt: 10} on a double field holds for a sum of 10.5.
func TestValueSumGtDouble(t *testing.T) {
	runFileTests(t, `- rule: vs
  title: x
  severity: low
  category: c
  match: proto == "tcp"
  aggregate: {type: value_sum, field: duration_s, group_by: [src.ip], window: 1h, condition: {gt: 10}}
  tests:
    - name: 10.5 seconds is more than 10
      flows:
        - {proto: tcp, src: {ip: 10.0.0.5}, duration_s: 10.5}
      alerts: 1
`)
}

// TestTemporalExceptions: a temporal rule's exceptions apply.
func TestTemporalExceptions(t *testing.T) {
	runFileTests(t, `- rule: a
  title: a
  severity: low
  category: c
  mode: shadow
  match: proto == "tcp" && dst.port == 1
- rule: b
  title: b
  severity: low
  category: c
  mode: shadow
  match: proto == "tcp" && dst.port == 2
- rule: seq
  title: seq
  severity: low
  category: c
  aggregate: {type: temporal, rules: [a, b], group_by: [src.ip], window: 10m}
  exceptions:
    - {name: helpdesk, fields: [src.ip], values: [10.0.9.9]}
  tests:
    - name: other hosts fire
      flows:
        - {proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 1}}
        - {proto: tcp, src: {ip: 10.0.0.5}, dst: {port: 2}}
      alerts: 1
    - name: the helpdesk host is excepted
      flows:
        - {proto: tcp, src: {ip: 10.0.9.9}, dst: {port: 1}}
        - {proto: tcp, src: {ip: 10.0.9.9}, dst: {port: 2}}
      alerts: 0
`)
}

// TestValueSumCapDropsExpiredFirst: when a value_sum group reaches its
// entry cap, an entry that has already left the window is dropped, not
// folded into a newer one where it would count for another window.
func TestValueSumCapDropsExpiredFirst(t *testing.T) {
	set := loadRule(t, "- rule: x\n  title: x\n  severity: low\n  category: c\n  match: proto == \"tcp\"\n"+
		"  aggregate: {type: value_sum, field: duration_s, group_by: [src.ip], window: 1h, condition: {gte: 1500}}\n")
	e := NewEngine(set, EngineConfig{})
	var got []int
	feed := func(at time.Duration, d float64) {
		ts := time.Unix(1700000000, 0).Add(at)
		rec := &flow.Record{Proto: "tcp", Start: ts, End: ts, DurationS: d, Src: flow.Endpoint{IP: netip.MustParseAddr("10.0.0.1")}}
		e.Evaluate(&Input{Record: rec}, func(a *Alert) { got = append(got, a.Unmapped.Value) })
	}
	feed(0, 1000)
	for range maxSumEntries - 1 {
		feed(30*time.Minute, 0)
	}
	feed(61*time.Minute, 600) // the 1000 left the window a minute ago: the sum is 600
	if len(got) != 0 {
		t.Errorf("alerts with values %v, want none", got)
	}
}

// TestAggregateMatchesCounted: matches_total counts an aggregate rule's
// matching flows, so that a shadow aggregate rule shows what it would do.
func TestAggregateMatchesCounted(t *testing.T) {
	set := loadRule(t, countRule+"  mode: shadow\n")
	e := NewEngine(set, EngineConfig{})
	for i := range 4 {
		e.Evaluate(tcpFlow(i, "tcp"), func(*Alert) {})
	}
	if got := testutil.ToFloat64(e.Metrics().matches.WithLabelValues("burst", "shadow")); got != 4 {
		t.Errorf("matches_total{rule=burst,mode=shadow} = %v, want 4", got)
	}
}

// TestEvictOldest: a rule whose state is full drops its least recently
// seen groups, the same ones on every run (map order would differ).
func TestEvictOldest(t *testing.T) {
	set := loadRule(t, "- rule: x\n  title: x\n  severity: low\n  category: c\n  match: proto == \"tcp\"\n"+
		"  aggregate: {type: event_count, group_by: [src.ip], window: 1h, condition: {gte: 2}}\n")
	for range 20 {
		e := NewEngine(set, EngineConfig{MaxGroups: 3})
		var fired []string
		feed := func(at time.Duration, host byte) {
			ts := time.Unix(1700000000, 0).Add(at)
			rec := &flow.Record{Proto: "tcp", Start: ts, End: ts, Src: flow.Endpoint{IP: netip.AddrFrom4([4]byte{10, 0, 0, host})}}
			e.Evaluate(&Input{Record: rec}, func(a *Alert) { fired = append(fired, rec.Src.IP.String()) })
		}
		feed(1*time.Minute, 1)
		feed(2*time.Minute, 2)
		feed(3*time.Minute, 3)
		feed(4*time.Minute, 4) // full: 10.0.0.1, seen first, goes
		feed(5*time.Minute, 2)
		feed(6*time.Minute, 3)
		feed(7*time.Minute, 1)
		if want := []string{"10.0.0.2", "10.0.0.3"}; !slices.Equal(fired, want) {
			t.Fatalf("fired for %v, want %v", fired, want)
		}
	}
}

// loadRule loads one rule file of the given text.
func loadRule(t *testing.T, text string) *Set {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "r.yml", text)
	set, err := Load([]string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// TestFoldLateFlowFirstSeen: a flow folded into an open alert that started
// before the alert's first flow moves the finding's first_seen_time and
// start_time back to it; the uid stays.
func TestFoldLateFlowFirstSeen(t *testing.T) {
	set := loadRule(t, "- rule: x\n  title: x\n  severity: low\n  category: c\n  match: proto == \"tcp\"\n"+
		"  suppress: {key: [src.ip], for: 1h}\n")
	e := NewEngine(set, EngineConfig{})
	var got []*Alert
	feed := func(start, end time.Duration) {
		t0 := time.Unix(1700000000, 0)
		rec := &flow.Record{Proto: "tcp", Start: t0.Add(start), End: t0.Add(end), Src: flow.Endpoint{IP: netip.MustParseAddr("10.0.0.1")}}
		e.Evaluate(&Input{Record: rec}, func(a *Alert) { got = append(got, a) })
	}
	feed(10*time.Minute, 11*time.Minute)
	feed(5*time.Minute, 6*time.Minute) // exported late
	e.Flush(func(a *Alert) { got = append(got, a) })
	if len(got) != 2 {
		t.Fatalf("%d alerts, want a Create and an Update", len(got))
	}
	want := time.Unix(1700000000, 0).Add(5 * time.Minute).UnixMilli()
	u := got[1]
	if u.FindingInfo.FirstSeenTime != want || u.StartTime != want {
		t.Errorf("update first_seen_time %d, start_time %d, want %d", u.FindingInfo.FirstSeenTime, u.StartTime, want)
	}
	if u.FindingInfo.UID != got[0].FindingInfo.UID {
		t.Errorf("update uid %s, create uid %s", u.FindingInfo.UID, got[0].FindingInfo.UID)
	}
}

// TestGroupKeyValuesDistinct: the values of a group key cannot run into
// each other or pass for an absent value, whatever bytes a client put in
// a name.
func TestGroupKeyValuesDistinct(t *testing.T) {
	set := loadRule(t, "- rule: x\n  title: x\n  severity: low\n  category: c\n  match: proto == \"tcp\"\n"+
		"  aggregate: {type: event_count, group_by: [dst.name, src.hostname], window: 1h, condition: {gte: 2}}\n")
	for _, pair := range [][2][2]string{
		{{"a\x00b", "c"}, {"a", "b\x00c"}}, // one value's NUL is not the separator
		{{"\x01absent", "c"}, {"", "c"}},   // "" stands for absent here: no dst.name
	} {
		e := NewEngine(set, EngineConfig{})
		n := 0
		for i, v := range pair {
			ts := time.Unix(1700000000, 0).Add(time.Duration(i) * time.Second)
			rec := &flow.Record{Proto: "tcp", Start: ts, End: ts, Src: flow.Endpoint{Hostname: v[1]}, Dst: flow.Endpoint{Name: v[0]}}
			e.Evaluate(&Input{Record: rec}, func(*Alert) { n++ })
		}
		if n != 0 {
			t.Errorf("groups %q and %q counted as one", pair[0], pair[1])
		}
	}
}

// TestOutputListDetached: a list in a rule's output is the alert's own. A
// pipeline decodes each record into one reused record (flow.Decoder), so
// the next record's ALPN overwrites the previous one's slice; the open
// alert's update, published later, must still say what the detection saw.
func TestOutputListDetached(t *testing.T) {
	set := loadRule(t, "- rule: x\n  title: x\n  severity: low\n  category: c\n  match: tls.sni != \"\"\n"+
		"  suppress: {key: [src.ip], for: 1h}\n  output: [tls.alpn]\n")
	e := NewEngine(set, EngineConfig{})
	var got []*Alert
	t0 := time.Unix(1700000000, 0)
	rec := &flow.Record{Proto: "tcp", Start: t0, End: t0, Src: flow.Endpoint{IP: netip.MustParseAddr("10.0.0.1")},
		TLS: &flow.TLS{SNI: "a.example", ALPN: []string{"h2", "http/1.1"}}}
	e.Evaluate(&Input{Record: rec}, func(a *Alert) { got = append(got, a) })
	rec.TLS.ALPN = append(rec.TLS.ALPN[:0], "reused", "reused") // as the Decoder reuses the slice
	rec.Start, rec.End = t0.Add(time.Minute), t0.Add(time.Minute)
	e.Evaluate(&Input{Record: rec}, func(a *Alert) { got = append(got, a) })
	e.Flush(func(a *Alert) { got = append(got, a) })
	if len(got) != 2 {
		t.Fatalf("%d alerts, want a Create and an Update", len(got))
	}
	for _, a := range got {
		b, _ := json.Marshal(a.Unmapped.Output)
		if want := `{"tls.alpn":["h2","http/1.1"]}`; string(b) != want {
			t.Errorf("activity %d: output %s, want %s", a.ActivityID, b, want)
		}
	}
}
