package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRulesBuiltin: --builtin loads the embedded pack, alone or under user
// paths that override it, and its diagnostics name user files by path.
func TestRulesBuiltin(t *testing.T) {
	if code, _, e := runCmd("rules", "test", "--builtin"); code != 0 || !strings.Contains(e, " 0 failed") {
		t.Errorf("rules test --builtin: code %d stderr %q", code, e)
	}
	if code, out, _ := runCmd("rules", "lint", "--builtin"); code != 0 || out != "" {
		t.Errorf("rules lint --builtin: code %d output %q", code, out)
	}
	// The pack as files on disk is the same pack.
	if code, _, e := runCmd("rules", "test", filepath.Join("..", "..", "rules", "builtin")); code != 0 || !strings.Contains(e, " 0 failed") {
		t.Errorf("rules test rules/builtin: code %d stderr %q", code, e)
	}
	dir := t.TempDir()
	override := "- list: watchlist_countries\n  items: [BY]\n" +
		"- rule: remote_access.anydesk\n  title: AnyDesk\n  severity: low\n  category: remote_access\n  match: app == \"anydesk\"\n" +
		"  tests:\n    - {name: anydesk, flow: {app: anydesk}, expect: match}\n"
	if err := os.WriteFile(filepath.Join(dir, "site.yml"), []byte(override), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, e := runCmd("rules", "test", "--builtin", dir); code != 0 || !strings.Contains(e, " 0 failed") {
		t.Errorf("rules test --builtin DIR: code %d stderr %q", code, e)
	}
	// Flags after the paths count too.
	if code, out, e := runCmd("rules", "test", dir, "--builtin", "-v"); code != 0 || !strings.Contains(e, " 0 failed") || !strings.Contains(out, "anydesk") {
		t.Errorf("rules test DIR --builtin -v: code %d stdout %q stderr %q", code, out, e)
	}
	if code, out, _ := runCmd("rules", "lint", "--builtin", dir); code != 0 || out != "" {
		t.Errorf("rules lint --builtin DIR: code %d output %q", code, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "dup.yml"), []byte("- list: watchlist_countries\n  items: [CN]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCmd("rules", "lint", "--builtin", dir)
	if code != 1 || !strings.Contains(out, "list watchlist_countries already defined at "+filepath.Join(dir, "dup.yml")) {
		t.Errorf("a name twice in the user layer: code %d output %q", code, out)
	}
}

// A directory without rule files (the wrong directory, files named
// *.yml.tmpl) is a problem for lint and test, not "no problems": nothing
// was checked.
func TestRulesEmptyDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "site.yml.tmpl"), []byte("- rule: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"lint", "test"} {
		code, out, e := runCmd("rules", sub, dir)
		if code != 1 || !strings.Contains(out, dir+": no rule files") {
			t.Errorf("rules %s EMPTYDIR: code %d stdout %q stderr %q, want 1 and the directory named", sub, code, out, e)
		}
	}
	// With --builtin too: the user's directory is still empty.
	if code, out, _ := runCmd("rules", "lint", "--builtin", dir); code != 1 || !strings.Contains(out, dir+": no rule files") {
		t.Errorf("rules lint --builtin EMPTYDIR: code %d stdout %q", code, out)
	}
}
