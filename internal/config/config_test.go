package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

type testConn struct {
	Brokers []string `yaml:"brokers" env:"BROKERS" flag:"brokers" default:"127.0.0.1:9092" help:"Kafka brokers, host:port"`
	TLS     struct {
		Enabled bool   `yaml:"enabled" help:"use TLS"`
		CAFile  string `yaml:"ca_file" help:"CA certificates (PEM)"`
	} `yaml:"tls"`
	SASL testSASL `yaml:"sasl"`
}

type testSASL struct {
	Mechanism string `yaml:"mechanism" enum:"|plain|scram-sha-256|scram-sha-512" help:"SASL mechanism; empty for none"`
	Username  string `yaml:"username"`
	Password  Secret `yaml:"password" help:"the password; prefer password_file"`
}

func (s *testSASL) Check(report func(key, msg string)) {
	if s.Mechanism != "" && s.Username == "" {
		report("username", "needed with a SASL mechanism")
	}
}

type testConfig struct {
	SensorID string         `yaml:"sensor_id" flag:"sensor-id" help:"this sensor's id"`
	Site     string         `yaml:"site"`
	Internal []netip.Prefix `yaml:"internal" default:"10.0.0.0/8,192.168.0.0/16" help:"corporate prefixes"`
	Flow     struct {
		IdleTimeout time.Duration `yaml:"idle_timeout" default:"60s" flag:"idle-timeout"`
		MaxFlows    int           `yaml:"max_flows" default:"1000000"`
	} `yaml:"flow"`
	Kafka struct {
		testConn    `yaml:",inline"`
		Compression string `yaml:"compression" default:"lz4" enum:"none|gzip|snappy|lz4|zstd"`
	} `yaml:"kafka"`
	Spool struct {
		Dir      string `yaml:"dir" default:"/var/lib/edgeward/spool"`
		MaxBytes int64  `yaml:"max_bytes" unit:"bytes" default:"1GiB"`
	} `yaml:"spool"`
	Ratio   float64 `yaml:"ratio" env:"-"`
	Verbose bool    `yaml:"verbose" flag:"v"`
}

func (c *testConfig) Check(report func(key, msg string)) {
	if len(c.Kafka.Brokers) == 0 {
		report("kafka.brokers", "at least one broker is needed")
	}
}

func load(t *testing.T, args []string, env map[string]string) (*testConfig, *Loader, error) {
	t.Helper()
	var c testConfig
	l, err := New("test", &c)
	if err != nil {
		t.Fatal(err)
	}
	l.FlagSet().SetOutput(new(bytes.Buffer))
	err = l.Load(args, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	return &c, l, err
}

func TestDefaults(t *testing.T) {
	c, l, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Flow.IdleTimeout != time.Minute || c.Spool.MaxBytes != 1<<30 || len(c.Internal) != 2 || c.Kafka.Brokers[0] != "127.0.0.1:9092" || c.Kafka.Compression != "lz4" {
		t.Errorf("defaults: %+v", c)
	}
	if s := l.Source("flow.idle_timeout"); s != "default" {
		t.Errorf("source %q", s)
	}
}

// TestLayers checks the order: default < file < environment < flag.
func TestLayers(t *testing.T) {
	file := filepath.Join("testdata", "full.good.yml")
	c, l, err := load(t, []string{"-config", file, "-brokers", "f1:1,f2:2", "-v"},
		map[string]string{"EDGEWARD_BROKERS": "e1:1", "EDGEWARD_SITE": "env-site", "EDGEWARD_FLOW_MAX_FLOWS": "7", "EDGEWARD_RATIO": "9"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, source string
		got, want    any
	}{
		{"kafka.brokers", "--brokers", strings.Join(c.Kafka.Brokers, ","), "f1:1,f2:2"},
		{"site", "EDGEWARD_SITE", c.Site, "env-site"},
		{"flow.max_flows", "EDGEWARD_FLOW_MAX_FLOWS", c.Flow.MaxFlows, 7},
		{"flow.idle_timeout", file + ":6:17", c.Flow.IdleTimeout, 90 * time.Second},
		{"sensor_id", file + ":2:12", c.SensorID, "gw-nyc-1"},
		{"spool.max_bytes", file + ":18:39", c.Spool.MaxBytes, int64(512 << 20)},
		{"ratio", file + ":19:8", c.Ratio, 0.5}, // env:"-": EDGEWARD_RATIO is not read
		{"verbose", "--v", c.Verbose, true},
		{"kafka.sasl.password", file + ":17:15", c.Kafka.SASL.Password.Reveal(), "hunter2"},
		{"kafka.compression", "default", c.Kafka.Compression, "zstd"},
	} {
		if fmt.Sprint(tc.got) != fmt.Sprint(tc.want) {
			t.Errorf("%s = %v, want %v", tc.path, tc.got, tc.want)
		}
		if tc.path == "kafka.compression" {
			continue // set by the file, checked by value only
		}
		if s := l.Source(tc.path); s != tc.source {
			t.Errorf("%s came from %q, want %q", tc.path, s, tc.source)
		}
	}
	if l.ConfigFile() != file {
		t.Errorf("config file %q", l.ConfigFile())
	}
}

func TestGoodFiles(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.good.yml"))
	if len(files) == 0 {
		t.Fatal("no good files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, _, err := load(t, []string{"-config", f}, nil); err != nil {
				t.Errorf("%v", err)
			}
		})
	}
	c, _, _ := load(t, []string{"-config", filepath.Join("testdata", "scalars.good.yml")}, nil)
	if len(c.Kafka.Brokers) != 2 || c.Kafka.Brokers[1] != "k2:9092" || c.Flow.MaxFlows != 1000000 {
		t.Errorf("scalars: %+v", c)
	}
}

// TestBadFiles compares every error of each bad file with its golden
// file (go test -update rewrites them).
func TestBadFiles(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.bad.yml"))
	if len(files) == 0 {
		t.Fatal("no bad files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, _, err := load(t, []string{"-config", f}, nil)
			var es Errors
			if !errors.As(err, &es) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want Errors", err)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yml") + ".golden"
			if *update {
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, _ := os.ReadFile(golden)
			if got != string(want) {
				t.Errorf("errors differ from %s:\n got:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

func TestEnvAndFlagErrorsAllListed(t *testing.T) {
	_, _, err := load(t, []string{"-idle-timeout", "soon", "extra"},
		map[string]string{"EDGEWARD_FLOW_MAX_FLOWS": "x", "EDGEWARD_INTERNAL": "10.0.0.0/8,nope", "EDGEWARD_KAFKA_COMPRESSION": "brotli", "EDGEWARD_KAFKA_SASL_MECHANISM": "plain"})
	want := []string{
		`unexpected argument "extra"`,
		`EDGEWARD_INTERNAL: internal: entry 2: "nope": netip.ParsePrefix("nope"): no '/'`,
		`EDGEWARD_FLOW_MAX_FLOWS: flow.max_flows: "x" is not an integer`,
		`--idle-timeout: flow.idle_timeout: "soon" is not a duration such as 30s, 5m or 1h`,
		`EDGEWARD_KAFKA_COMPRESSION: kafka.compression: "brotli" is not one of none, gzip, snappy, lz4, zstd`,
		`kafka.sasl.username: needed with a SASL mechanism`,
	}
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("error %d:\n got %s\nwant %s", i, lines[i], want[i])
		}
	}
}

func TestMissingFile(t *testing.T) {
	_, _, err := load(t, []string{"-config", "testdata/nope.yml"}, nil)
	if err == nil || !strings.Contains(err.Error(), "--config: open testdata/nope.yml") {
		t.Errorf("err = %v", err)
	}
}

func TestHelp(t *testing.T) {
	var c testConfig
	l, _ := New("test", &c)
	var out bytes.Buffer
	l.FlagSet().SetOutput(&out)
	if err := l.Load([]string{"-h"}, nil); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, s := range []string{"-brokers value", "Kafka brokers, host:port (env EDGEWARD_BROKERS) (default 127.0.0.1:9092)", "-config string", "-v\t"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("help lacks %q:\n%s", s, out.String())
		}
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	c, l, err := load(t, []string{"-config", filepath.Join("testdata", "full.good.yml")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	log.Info("config", "config", l, "sasl", c.Kafka.SASL, "password", c.Kafka.SASL.Password)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "config", l, "all", c)
	js, _ := json.Marshal(c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), logs.String(), string(js)} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("secret printed: %s", s)
		}
	}
	if !strings.Contains(logs.String(), `"kafka.sasl.password":"REDACTED"`) || !strings.Contains(logs.String(), `"kafka.brokers":["k1:9092","k2:9092"]`) {
		t.Errorf("log of the configuration: %s", logs.String())
	}
}

func TestReference(t *testing.T) {
	got := Reference(&testConfig{})
	golden := filepath.Join("testdata", "reference.md")
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, _ := os.ReadFile(golden)
	if got != string(want) {
		t.Errorf("reference differs from %s:\n%s", golden, got)
	}
}

func TestBadStructs(t *testing.T) {
	for _, v := range []any{
		testConfig{},
		&struct {
			M map[string]string `yaml:"m"`
		}{},
		&struct {
			A string `yaml:"a"`
			B string `yaml:"a"`
		}{},
		&struct {
			D time.Duration `yaml:"d" default:"forever"`
		}{},
	} {
		if _, err := New("x", v); err == nil {
			t.Errorf("New(%T) accepted it", v)
		}
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "2KiB": 2048, "3 MiB": 3 << 20, "1GiB": 1 << 30, "5GB": 5e9, "7B": 7} {
		if got, err := parseInt(in, true, 64); err != nil || got != want {
			t.Errorf("parseInt(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"1PiB", "x", "9999999999999GiB", ""} {
		if _, err := parseInt(in, true, 64); err == nil {
			t.Errorf("parseInt(%q) accepted", in)
		}
	}
}
