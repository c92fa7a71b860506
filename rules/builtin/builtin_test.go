package builtin_test

import (
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/edgeward/edgeward/pipeline"
	"github.com/edgeward/edgeward/rules"
	"github.com/edgeward/edgeward/rules/builtin"
)

func packOptions(t testing.TB) rules.Options {
	t.Helper()
	s, err := pipeline.Schema()
	if err != nil {
		t.Fatal(err)
	}
	return rules.Options{Schema: s, Builtin: builtin.FS()}
}

func loadPack(t testing.TB) *rules.Set {
	t.Helper()
	set, err := rules.Load(nil, packOptions(t))
	if err != nil {
		t.Fatalf("loading the built-in pack: %v", err)
	}
	return set
}

// TestPackTests runs every in-file test of the embedded pack; each rule
// must have a positive and a negative test.
func TestPackTests(t *testing.T) {
	res, err := rules.Test(nil, packOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	pos, neg := map[string]int{}, map[string]int{}
	for _, r := range res {
		t.Run(r.Rule+"/"+r.Name, func(t *testing.T) {
			if !r.Pass {
				t.Error(r)
			}
		})
		if !strings.HasPrefix(r.File, rules.BuiltinPrefix) {
			t.Errorf("%s: test file not named %s...", r, rules.BuiltinPrefix)
		}
		if r.Positive() {
			pos[r.Rule]++
		} else {
			neg[r.Rule]++
		}
	}
	for _, r := range loadPack(t).Rules() {
		if pos[r.ID] == 0 || neg[r.ID] == 0 {
			t.Errorf("rule %s has %d positive and %d negative tests; it needs both", r.ID, pos[r.ID], neg[r.ID])
		}
	}
}

// TestPackRules: the ids the demo, the docs and users' overrides rely on
// exist, and every rule is documented in docs/rules-builtin.md.
func TestPackRules(t *testing.T) {
	want := []string{
		"remote_access.anydesk", "remote_access.teamviewer", "remote_access.rustdesk",
		"remote_access.rustdesk_selfhosted", "remote_access.chrome_remote_desktop", "remote_access.rmm",
		"remote_access.internet_rdp_vnc", "remote_access.internet_ssh", "remote_access.lan_session",
		"remote_access.multiple_tools", "remote_access.long_session",
		"tunnel.mesh_vpn", "tunnel.reverse_tunnel",
		"ipkvm.device_on_lan", "ipkvm.cloud_service",
		"vpn.consumer_vpn", "vpn.protocol_non_corporate",
		"proxy.anonymizer", "proxy.lan_proxy",
		"geo_egress.watchlist_hosting",
		"laptop_farm.shared_egress_ip", "laptop_farm.egress_country_mismatch", "laptop_farm.site_mismatch",
		"laptop_farm.impossible_travel", "laptop_farm.egress_anonymizer", "laptop_farm.off_hours",
	}
	set := loadPack(t)
	var got []string
	for _, r := range set.Rules() {
		got = append(got, r.ID)
		if !r.Enabled || r.Mode != "alert" {
			t.Errorf("rule %s: enabled=%v mode=%s; the pack ships every rule enabled in alert mode", r.ID, r.Enabled, r.Mode)
		}
		if !strings.HasPrefix(r.ID, r.Category+".") {
			t.Errorf("rule %s: category %s is not its id's prefix", r.ID, r.Category)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("rule ids\n got %q\nwant %q", got, want)
	}
	doc, err := os.ReadFile("../../docs/rules-builtin.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range want {
		if !strings.Contains(string(doc), "\n### `"+id+"`\n") {
			t.Errorf("docs/rules-builtin.md has no section ### `%s`", id)
		}
	}
}

// TestPackSources: each rule cites a public source in the comment block
// right before it, or (for a file's rules that share them) in the file's
// header comment; each list file names its sources.
func TestPackSources(t *testing.T) {
	cites := func(c string) bool {
		for _, w := range []string{"ATT&CK", "PSA", "RFC", "docs", "Source", ".com", ".org"} {
			if strings.Contains(c, w) {
				return true
			}
		}
		return false
	}
	ents, err := fs.ReadDir(builtin.FS(), ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := fs.ReadFile(builtin.FS(), e.Name())
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		comment := func(end int) string { // the # block ending before line end
			var c []string
			for j := end - 1; j >= 0 && strings.HasPrefix(lines[j], "#"); j-- {
				c = append(c, lines[j])
			}
			return strings.Join(c, " ")
		}
		header := ""
		for _, l := range lines {
			if !strings.HasPrefix(l, "#") {
				break
			}
			header += l + " "
		}
		if strings.HasSuffix(e.Name(), ".txt") && !strings.Contains(header, "Source") {
			t.Errorf("%s: a list file's header names the sources of its entries", e.Name())
		}
		for i, l := range lines {
			if id, ok := strings.CutPrefix(l, "- rule: "); ok && !cites(comment(i)) && !cites(header) {
				t.Errorf("%s:%d: rule %s cites no source in a comment", e.Name(), i+1, id)
			}
		}
	}
}

// TestOverrideWatchlist: a user list replaces the built-in one of the same
// name; the built-in rules then use it.
func TestOverrideWatchlist(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/site.yml", []byte("- list: watchlist_countries\n  items: [BY]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := packOptions(t)
	set, err := rules.Load([]string{dir}, opts)
	if err != nil {
		t.Fatal(err)
	}
	g := set.Guards()["geo_egress.watchlist_hosting"]
	if !slices.Contains(g, "dst.geo.country=BY") {
		t.Errorf("watchlist_hosting guards %q, want the user's list", g)
	}
	// The built-in tests still run against the shipped list and pass.
	res, err := rules.Test([]string{dir}, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.Pass {
			t.Error(r)
		}
	}
}

// TestPackGuards: every rule is reached through the engine's index, with
// a guard that admits few flows (not only direction or proto), except the
// two laptop_farm aggregates that count every remote device's flows (the
// flows with an egress address); and every rule is evaluated natively,
// without CEL.
func TestPackGuards(t *testing.T) {
	remoteOnly := []string{"laptop_farm.impossible_travel", "laptop_farm.shared_egress_ip"}
	set := loadPack(t)
	byID := map[string]*rules.Rule{}
	for _, r := range set.Rules() {
		byID[r.ID] = r
	}
	for id, g := range set.Guards() {
		unguarded := slices.Equal(g, []string{"present(egress.ip)"})
		if unguarded != slices.Contains(remoteOnly, id) {
			t.Errorf("rule %s: guards %q", id, g)
		}
		if !byID[id].Native() {
			t.Errorf("rule %s is evaluated with CEL; write it with native checks (docs/rules.md, Performance)", id)
		}
		selective := unguarded
		for _, c := range g {
			if !strings.HasPrefix(c, "direction=") && !strings.HasPrefix(c, "proto=") {
				selective = true
			}
		}
		if !selective {
			t.Errorf("rule %s has only guards that admit most flows: %q", id, g)
		}
	}
}
