package daemoncfg

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeward/edgeward/internal/config"
)

func TestSensorCheck(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // problems, "" for none
	}{
		{"live", "interface: eth1\nmode: ebpf\n", nil},
		{"file", "read: x.pcap\nspool: {dir: /tmp/s, max_bytes: 1MiB}\n", nil},
		{"no source", "site: nyc\n", []string{"read: need a capture source"}},
		{"two sources", "read: x.pcap\ninterface: eth1\n", []string{"interface: read (-r) and interface (-i) exclude each other"}},
		{"limits", "interface: eth1\nflow: {idle_timeout: 0s, max_flows: 0}\nkafka: {flows_topic: '', batch_records: 0}\nspool: {dir: '', max_bytes: 1000}\nmetrics: {listen: localhost}\n",
			[]string{"flow.idle_timeout: must be positive", "flow.max_flows: must be at least 1", "kafka.flows_topic: must not be empty",
				"kafka.batch_records: must be at least 1", "spool.dir: must not be empty", "spool.max_bytes: must be at least 1MiB", `metrics.listen: "localhost" is not host:port`}},
		{"enum", "interface: eth1\nmode: pcap\n", []string{`mode: "pcap" is not one of afpacket, ebpf`}},
		{"memory limit below 1MiB", "interface: eth1\nmemory_limit: 1000\n", []string{"memory_limit: must be 0 (none) or at least 1MiB"}},
		{"negative memory limit", "interface: eth1\nmemory_limit: -1\n", []string{"memory_limit: must be 0 (none) or at least 1MiB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sensor.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			var c Sensor
			l, err := config.New("sensor", &c)
			if err != nil {
				t.Fatal(err)
			}
			err = l.Load([]string{"--config", path}, func(string) (string, bool) { return "", false })
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected problems:\n%v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no problems, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("problems lack %q:\n%v", w, err)
				}
			}
		})
	}
}

// Every problem names where its value came from: a timeout set to 0 by a
// flag, or rules disabled in the file, must not be reported without a source.
func TestCheckProblemsSayWhere(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	var s Sensor
	l, err := config.New("sensor", &s)
	if err != nil {
		t.Fatal(err)
	}
	err = l.Load([]string{"-i", "eth1", "--idle-timeout", "0s"}, noEnv)
	var es config.Errors
	if !errors.As(err, &es) || len(es) != 1 {
		t.Fatalf("got %v, want one problem", err)
	}
	if es[0].Where != "--idle-timeout" {
		t.Errorf("idle timeout problem %q comes from %q, want --idle-timeout", es[0], es[0].Where)
	}

	path := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(path, []byte("rules:\n  builtin: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var p Pipeline
	l, err = config.New("pipeline", &p)
	if err != nil {
		t.Fatal(err)
	}
	err = l.Load([]string{"--config", path}, noEnv)
	if !errors.As(err, &es) || len(es) != 1 {
		t.Fatalf("got %v, want one problem", err)
	}
	if want := path + ":2:12"; es[0].Where != want {
		t.Errorf("no-rules problem %q comes from %q, want %s", es[0], es[0].Where, want)
	}
}

// An empty entry in a comma-separated list (a stray comma) is a mistake to
// report, not an invalid prefix to keep.
func TestEmptyListEntryReported(t *testing.T) {
	var s Sensor
	l, err := config.New("sensor", &s)
	if err != nil {
		t.Fatal(err)
	}
	err = l.Load([]string{"-i", "eth1", "--internal", "10.0.0.0/8,,192.168.0.0/16"}, func(string) (string, bool) { return "", false })
	if err == nil {
		t.Fatalf("no problem reported; internal = %v", s.Internal)
	}
	if !strings.Contains(err.Error(), "--internal") {
		t.Errorf("problem does not name the flag: %v", err)
	}
}
