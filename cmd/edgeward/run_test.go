package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor"
	"github.com/edgeward/edgeward/sensor/flowtable"
)

// failingWriter fails every write, as a full disk does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// TestRunAlertsSurviveFlowsWriteError runs the local job with a flows
// file that cannot be written (-flows on a full disk): the alerts, the
// run's primary output, must all still be written, and the error
// reported.
func TestRunAlertsSurviveFlowsWriteError(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "r.yml"), []byte(`
- rule: rdp
  title: RDP
  severity: medium
  category: remote_access
  match: dst.port == 3389
`), 0o644)
	pf := pipelineFlags{rules: listFlag{filepath.Join(dir, "r.yml")}, noBuiltin: true}
	p, enr, err := pf.build(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enr.Close()
	const n = 600 // more than a batch
	t0 := time.Unix(1_800_000_000, 0)
	capture := func(_ context.Context, _ sensor.Config, emit flowtable.Emit) (sensor.Stats, error) {
		for i := range n {
			emit(&flow.Record{Proto: "tcp", ID: fmt.Sprintf("f%d", i), Start: t0.Add(time.Duration(i) * time.Second), End: t0.Add(time.Duration(i)*time.Second + time.Millisecond),
				Src: flow.Endpoint{IP: netip.MustParseAddr("10.0.0.5"), Port: uint16(40000 + i)}, Dst: flow.Endpoint{IP: netip.MustParseAddr("192.0.2.7"), Port: 3389}})
		}
		return sensor.Stats{Packets: n}, nil
	}
	var alerts bytes.Buffer
	job := localJob{pipe: p, capture: capture, alerts: &alerts, flows: failingWriter{}, stderr: &bytes.Buffer{}, progress: "never"}
	res, err := job.run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Errorf("run error %v, want the flows file's", err)
	}
	if got := strings.Count(alerts.String(), "\n"); got != n || res.alerts != n {
		t.Errorf("%d alert lines written, %d counted; want %d", got, res.alerts, n)
	}
}

// TestRunReportPathCheckedFirst: a --report path that cannot be written
// fails the run before the capture is read, not after a long capture.
func TestRunReportPathCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	pcap := filepath.Join(dir, "s.pcap")
	if code, _, e := runCmd("synth", "-o", pcap, "-flows", "50"); code != 0 {
		t.Fatalf("synth: %d %s", code, e)
	}
	bad := filepath.Join(dir, "no", "such", "dir", "report.html")
	code, _, e := runCmd("run", "-r", pcap, "--report", bad)
	if code != 1 || !strings.Contains(e, bad) || strings.Contains(e, "packets") {
		t.Errorf("code %d stderr %q; want 1, the path named, and no capture read", code, e)
	}
}
