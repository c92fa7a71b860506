package daemoncfg

import (
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
			[]string{"flow: idle_timeout and active_timeout must be positive", "flow.max_flows: must be at least 1", "kafka.flows_topic: must not be empty",
				"kafka.batch_records: must be at least 1", "spool.dir: must not be empty", "spool.max_bytes: must be at least 1MiB", `metrics.listen: "localhost" is not host:port`}},
		{"enum", "interface: eth1\nmode: pcap\n", []string{`mode: "pcap" is not one of afpacket, ebpf`}},
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
