package enrich

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// An AS number's prefix is case-insensitive for classify ("As13335" is an
// asn entry), so the number set must accept it too, not skip the entry.
func TestIntelASNPrefixAnyCase(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "asns.txt")
	writeFile(t, list, "As13335\naS64500\n")
	e, logs := newEnricher(t, Config{Intel: []string{list}})
	st := e.state.Load()
	if st.intel.skipped != 0 {
		t.Errorf("skipped %d entries:\n%s", st.intel.skipped, logs)
	}
	for _, n := range []uint32{13335, 64500} {
		if got := st.intel.matchASN(n); got != "asns" {
			t.Errorf("AS%d matches %q, want asns", n, got)
		}
	}
}

// A configured intel list file that goes away after start-up keeps the
// list in use, as a database that goes away does, and says why.
func TestIntelMissingAtReloadKeepsList(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "tor-exits.txt")
	writeFile(t, list, "192.0.2.1\n")
	e, logs := newEnricher(t, Config{Intel: []string{list}, Debounce: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	rec := flowRec("10.0.0.1", "192.0.2.1")
	get := func() Result {
		var r Result
		e.Enrich(rec, &r)
		return r
	}
	if r := get(); r.Intel.IP != "tor-exits" {
		t.Fatalf("before: %+v", r)
	}
	time.Sleep(100 * time.Millisecond) // the reload at start
	if err := os.Remove(list); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused reload to be logged", func() bool { // the last thing it does
		return strings.Contains(logs.String(), "keeping the lists in use")
	})
	if r := get(); r.Intel.IP != "tor-exits" {
		t.Errorf("after the list file went away: intel.ip %q, want tor-exits (kept)", r.Intel.IP)
	}
	if n := testutil.ToFloat64(e.m.reloads.WithLabelValues(roleIntel, "ok")); n != 0 {
		t.Errorf("intel reloads ok = %v, want 0: nothing was reloaded", n)
	}
	if n := testutil.ToFloat64(e.m.reloads.WithLabelValues(roleIntel, "error")); n == 0 {
		t.Errorf("intel reload errors = 0 after a refused reload")
	}
}
