package bpf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGenerated regenerates the objects and bindings with gen.sh into a
// temporary directory and requires them to equal the committed ones, byte
// for byte: the committed files are what the sources and Debian's clang
// produce. It skips without clang (apt-get install clang llvm libbpf-dev
// linux-libc-dev).
func TestGenerated(t *testing.T) {
	for _, tool := range []string{"clang", "llvm-strip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: cannot check that gen.sh reproduces the committed objects", tool)
		}
	}
	if _, err := os.Stat("/usr/include/bpf/bpf_helpers.h"); err != nil {
		t.Skip("libbpf-dev not installed: cannot check that gen.sh reproduces the committed objects")
	}
	dir := t.TempDir()
	out, err := exec.Command("bash", "gen.sh", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("gen.sh: %v\n%s", err, out)
	}
	for _, name := range []string{"capture_bpfel.go", "capture_bpfel.o"} {
		want, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what gen.sh generates from capture.c and edgeward.h: run go generate ./bpf and commit the result", name)
		}
	}
}
