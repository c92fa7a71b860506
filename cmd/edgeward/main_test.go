package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeward/edgeward/flow"
)

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestHelpAndUnknown(t *testing.T) {
	code, out, _ := runCmd("help")
	if code != 0 || !strings.Contains(out, "flows") || !strings.Contains(out, "synth") {
		t.Errorf("help: code %d output %q", code, out)
	}
	if code, _, errOut := runCmd("nope"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: code %d stderr %q", code, errOut)
	}
}

func TestSynthThenFlows(t *testing.T) {
	dir := t.TempDir()
	pcap, truth, out := filepath.Join(dir, "s.pcap"), filepath.Join(dir, "s.truth"), filepath.Join(dir, "s.jsonl")
	if code, _, e := runCmd("synth", "-o", pcap, "-truth", truth, "-flows", "200"); code != 0 {
		t.Fatalf("synth: %d %s", code, e)
	}
	code, _, e := runCmd("flows", "-r", pcap, "-o", out)
	if code != 0 || !strings.Contains(e, "packets,") || !strings.Contains(e, "packets/s") {
		t.Fatalf("flows: code %d stderr %q", code, e)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r flow.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Schema != flow.Schema {
			t.Fatalf("line %d: %v %q", n+1, err, sc.Text())
		}
		n++
	}
	if n < 190 {
		t.Errorf("%d records from 200 synthetic flows", n)
	}
}

func TestFlowsErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pcap")
	os.WriteFile(junk, []byte("not a capture at all"), 0o644)
	if code, _, e := runCmd("flows", "-r", junk); code != 1 || !strings.Contains(e, "not a pcap or pcapng file") {
		t.Errorf("junk: code %d stderr %q", code, e)
	}
	if code, _, _ := runCmd("flows"); code != 2 {
		t.Errorf("no -r: code %d, want 2", code)
	}
}

func TestRulesLintAndTest(t *testing.T) {
	good, bad := filepath.Join("..", "..", "rules", "testdata", "good"), filepath.Join("..", "..", "rules", "testdata", "bad")
	if code, _, e := runCmd("rules", "test", good); code != 0 || !strings.Contains(e, "0 failed") {
		t.Errorf("rules test good: code %d stderr %q", code, e)
	}
	if code, out, _ := runCmd("rules", "lint", good); code != 0 || out != "" {
		t.Errorf("rules lint good: code %d output %q", code, out)
	}
	code, out, _ := runCmd("rules", "lint", bad)
	if code != 1 || !strings.Contains(out, "bad/duplicate.yml:6:9: rule dup already defined") {
		t.Errorf("rules lint bad: code %d output %q", code, out)
	}
	if code, _, _ := runCmd("rules", "nope", good); code != 2 {
		t.Errorf("unknown subcommand: code %d", code)
	}
}

// TestStrayArgument checks that an argument the capture commands do not
// take is named, not reported as "<nil>".
func TestStrayArgument(t *testing.T) {
	for _, cmd := range []string{"run", "flows"} {
		code, _, e := runCmd(cmd, "-r", "capture.pcap", "extra")
		if code != 2 || strings.Contains(e, "<nil>") || !strings.Contains(e, `unexpected argument "extra"`) {
			t.Errorf("%s with a stray argument: code %d stderr %q", cmd, code, e)
		}
	}
}
