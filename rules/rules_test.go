package rules

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
)

// testSchema adds the enrichment fields the fixtures use.
func testSchema(t testing.TB) *Schema {
	t.Helper()
	s, err := NewSchema(
		ExtraField{Name: "dst.geo.country", Kind: KindString},
		ExtraField{Name: "dst.as.number", Kind: KindInt},
		ExtraField{Name: "dst.anon.vpn", Kind: KindBool},
	)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGoodFixtures(t *testing.T) {
	res, err := Test([]string{"testdata/good"}, Options{Schema: testSchema(t)})
	if err != nil {
		t.Fatalf("loading: %v", err)
	}
	if len(res) == 0 {
		t.Fatal("no tests ran")
	}
	for _, r := range res {
		t.Run(r.Rule+"/"+r.Name, func(t *testing.T) {
			if !r.Pass {
				t.Error(r.String())
			}
		})
	}
}

// TestBadFixtures asserts every diagnostic of every bad file, as
// prometheus does for its *.bad.yml configs.
func TestBadFixtures(t *testing.T) {
	cases := []struct {
		file string
		want []string
	}{
		{"aggregate.yml", []string{
			"testdata/bad/aggregate.yml:8:12: aggregate field: unknown field dst.nope",
			`testdata/bad/aggregate.yml:10:13: window: "10 minutes" is not a positive duration such as 30s, 10m, 1h or 1d`,
			"testdata/bad/aggregate.yml:11:22: gte must be an integer from 1 to 100000",
		}},
		{"bad_list_entry.yml", []string{
			`testdata/bad/bad_list_entry.yml:4:7: list vpn_ranges (used with cidr_in): "198.51.100.0/33" is not an IP address or CIDR`,
		}},
		{"duplicate.yml", []string{
			"testdata/bad/duplicate.yml:6:9: rule dup already defined at testdata/bad/duplicate.yml:1:9",
		}},
		{"exception.yml", []string{
			`testdata/bad/exception.yml:9:17: exception value for src.ip: "not-an-ip" is not an IP address`,
		}},
		{"keys.yml", []string{
			"testdata/bad/keys.yml:1:3: rule keys has no match",
			`testdata/bad/keys.yml:3:13: severity "urgent": want info, low, medium, high or critical`,
			`testdata/bad/keys.yml:5:3: unknown key "matchh" in rule (known: rule, title, description, severity, category, tags, enabled, mode, match, exceptions, aggregate, suppress, output, tests)`,
		}},
		{"macro_cycle.yml", []string{
			"testdata/bad/macro_cycle.yml:1:10: macro a is part of a cycle",
			"testdata/bad/macro_cycle.yml:3:10: macro b is part of a cycle",
			"testdata/bad/macro_cycle.yml:9:10: match: undeclared reference to 'a'",
		}},
		{"not_bool.yml", []string{
			"testdata/bad/not_bool.yml:5:10: match: must be a bool expression, not int",
		}},
		{"reserved.yml", []string{
			`testdata/bad/reserved.yml:1:9: list name "null" must be an identifier (letters, digits, _) and not a CEL reserved word`,
			`testdata/bad/reserved.yml:3:10: macro name "in" must be an identifier (letters, digits, _) and not a CEL reserved word`,
		}},
		{"syntax.yml", []string{
			"testdata/bad/syntax.yml:5:28: match: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}",
		}},
		{"temporal.yml", []string{
			"testdata/bad/temporal.yml:7:13: temporal rule temporal references unknown rule a_rule_that_does_not_exist",
		}},
		{"type_error.yml", []string{
			"testdata/bad/type_error.yml:7:16: match: found no matching overload for '_==_' applied to '(int, string)'",
		}},
		{"unknown_field.yml", []string{
			"testdata/bad/unknown_field.yml:5:31: match: undeclared reference to 'dst.prot' (did you mean 'dst.port'?)",
		}},
		{"unknown_list.yml", []string{
			"testdata/bad/unknown_list.yml:5:26: match: undeclared reference to 'vpn_rangez'",
		}},
		{"yaml.yml", []string{
			"testdata/bad/yaml.yml:2:10: YAML: sequence end token ']' not found",
		}},
	}
	files, _ := filepath.Glob("testdata/bad/*.yml")
	if len(files) != len(cases) {
		t.Errorf("%d bad files, %d cases: every bad file needs a case", len(files), len(cases))
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			var got []string
			for _, d := range Lint([]string{"testdata/bad/" + c.file}, Options{Schema: testSchema(t)}) {
				got = append(got, d.String())
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("diagnostics:\n got %q\nwant %q", got, c.want)
			}
			if _, err := Load([]string{"testdata/bad/" + c.file}, Options{Schema: testSchema(t)}); !errors.Is(err, ErrInvalid) {
				t.Errorf("Load error %v, want ErrInvalid", err)
			}
		})
	}
}

// TestLintAllFilesAtOnce: one call reports the problems of every file.
func TestLintAllFilesAtOnce(t *testing.T) {
	ds := Lint([]string{"testdata/bad"}, Options{Schema: testSchema(t)})
	files := map[string]bool{}
	for _, d := range ds {
		files[d.File] = true
	}
	bad, err := filepath.Glob("testdata/bad/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(bad) {
		t.Errorf("diagnostics from %d files, want %d: %v", len(files), len(bad), ds)
	}
}

func TestSchemaDerivesRecordFields(t *testing.T) {
	s := testSchema(t)
	want := map[string]Kind{
		"schema": KindString, "start": KindTimestamp, "duration_s": KindDouble, "end_reason": KindString,
		"vlan": KindIntList, "src.ip": KindIP, "src.port": KindInt, "src.mac": KindString,
		"dst.payload_bytes": KindInt, "tcp.src_flags": KindString, "tcp.history": KindString,
		"icmp.type": KindInt, "tunnel.vni": KindInt, "tunnel.src": KindIP, "dst.geo.country": KindString,
	}
	got := map[string]Kind{}
	for _, f := range s.Fields() {
		got[f.Name] = f.Kind
	}
	for name, k := range want {
		if got[name] != k {
			t.Errorf("field %s: kind %v, want %v", name, got[name], k)
		}
	}
}

// TestPlainScalarOnNextLinePosition: a plain match written on the line
// after its key is reported where the error is, not a line below.
func TestPlainScalarOnNextLinePosition(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "r.yml", `- rule: r
  title: x
  severity: low
  category: c
  match:
    proto == "tcp" &&
    dst.prot == 1
`)
	ds := Lint([]string{dir}, Options{})
	want := p + ":7:8: match: undeclared reference to 'dst.prot' (did you mean 'dst.port'?)"
	if len(ds) != 1 || ds[0].String() != want {
		t.Errorf("diagnostics %v, want %s", ds, want)
	}
}
