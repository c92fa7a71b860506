package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

// TestDemo runs the whole demo (synthesis, sensor, enrichment, the
// built-in pack, report) and requires every story element to raise its
// rules, alerts about egress to name the egress address and country, and
// the benign background to raise nothing.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo synthesizes a day of traffic; skipped with -short")
	}
	dir := t.TempDir()
	res, err := runDemoScenario(context.Background(), dir, 1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	res.print(&out)
	t.Log("\n" + out.String())
	for i := range res.sc.Story {
		e := &res.sc.Story[i]
		for _, id := range e.Rules {
			as := res.fired(e, id)
			if len(as) == 0 {
				t.Errorf("%s: %s did not fire", e.Name, id)
				continue
			}
			if e.EgressIP == "" || !strings.HasPrefix(id, "laptop_farm.") {
				continue
			}
			named := false
			for _, a := range as {
				if fmt.Sprint(a.Unmapped.Output["egress.ip"]) == e.EgressIP && fmt.Sprint(a.Unmapped.Output["egress.geo.country"]) == e.Country {
					named = true
				}
			}
			if !named {
				t.Errorf("%s: %s alerts do not name egress %s (%s): %s", e.Name, id, e.EgressIP, e.Country, describe(as[0]))
			}
		}
	}
	for _, a := range res.unexpected() {
		t.Errorf("alert on background traffic: %s %s", a.FindingInfo.Analytic.UID, describe(a))
	}
	if fi, err := os.Stat(res.reported); err != nil || fi.Size() < 10000 {
		t.Errorf("report %s: %v", res.reported, err)
	}
}
