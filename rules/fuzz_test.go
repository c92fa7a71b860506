package rules

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary rule files through the YAML parser and the CEL
// compiler; it must report diagnostics, never panic or hang.
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{"testdata/good", "testdata/bad"} {
		files, _ := filepath.Glob(dir + "/*.yml")
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("- rule: x\n  title: t\n  severity: low\n  category: c\n  match: dst.port == 1\n"))
	s, err := NewSchema()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "r.yml")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		set, ds := load([]string{p}, Options{Schema: s})
		for _, d := range ds {
			if d.File == "" {
				t.Errorf("diagnostic without a file: %v", d)
			}
		}
		if len(ds) == 0 && set != nil {
			set.RunTests()
		}
	})
}
