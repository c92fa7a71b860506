package bpf

import (
	"errors"
	"os"
	"testing"

	"github.com/cilium/ebpf"
)

// loadObjects loads the programs into the kernel, or skips the test when
// the process may not (not root, or no BPF).
func loadObjects(t testing.TB, set map[string]any) *Objects {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading eBPF programs needs root (CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON)")
	}
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range set {
		if err := spec.Variables[name].Set(v); err != nil {
			t.Fatalf("setting %s: %v", name, err)
		}
	}
	spec.Maps["flows"].MaxEntries = 1 << 16
	spec.Maps["events"].MaxEntries = 1 << 20
	var objs Objects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.Fatalf("verifier: %+v", ve)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	return &objs
}

func TestLoad(t *testing.T) {
	objs := loadObjects(t, nil)
	info, err := objs.Ingress.Info()
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := info.VerifiedInstructions(); ok {
		t.Logf("ingress: %d instructions verified", n)
	}
}
