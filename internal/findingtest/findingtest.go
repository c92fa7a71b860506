// Package findingtest folds alerts into findings and compares two sets of
// them, for the tests that check the Kafka pipeline against an in-process
// one (pipeline/consume, cmd/edgeward).
package findingtest

import (
	"encoding/json"
	"testing"

	"github.com/edgeward/edgeward/rules"
)

// Finding is the alerts of one finding uid, folded: a Create and the
// Updates after it, as a consumer of the alerts topic folds them.
type Finding struct {
	Rule  string
	Group string // the alert's group, as JSON
	Count int    // the highest count seen
}

// Fold folds alerts by finding uid.
func Fold(alerts []*rules.Alert) map[string]*Finding {
	out := map[string]*Finding{}
	for _, a := range alerts {
		f := out[a.FindingInfo.UID]
		if f == nil {
			g, _ := json.Marshal(a.Unmapped.Group)
			f = &Finding{Rule: a.FindingInfo.Analytic.UID, Group: string(g)}
			out[a.FindingInfo.UID] = f
		}
		f.Count = max(f.Count, a.Count)
	}
	return out
}

// Compare reports every finding of want that got lacks or counts
// differently, and every finding of got that want lacks; wantName says
// where want came from ("edgeward run", "in-process").
func Compare(t testing.TB, got, want map[string]*Finding, wantName string) {
	t.Helper()
	for uid, w := range want {
		switch g := got[uid]; {
		case g == nil:
			t.Errorf("finding %s of %s (group %s, count %d) lost", uid, w.Rule, w.Group, w.Count)
		case g.Count != w.Count:
			t.Errorf("finding %s of %s (group %s): count %d, %s %d", uid, w.Rule, w.Group, g.Count, wantName, w.Count)
		}
	}
	for uid, g := range got {
		if want[uid] == nil {
			t.Errorf("finding %s of %s (group %s, count %d) not raised by %s", uid, g.Rule, g.Group, g.Count, wantName)
		}
	}
}
