package kafkaconn

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go/sasl/plain"
)

func problems(c Config) []string {
	var out []string
	report := func(prefix string) func(k, m string) {
		return func(k, m string) { out = append(out, prefix+k+": "+m) }
	}
	c.Check(report(""))
	c.TLS.Check(report("tls."))
	c.SASL.Check(report("sasl."))
	slices.Sort(out)
	return out
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	for _, tc := range []struct {
		name string
		c    Config
		want []string
	}{
		{"plain", Config{Brokers: []string{"k1:9092", "[::1]:9093"}}, nil},
		{"no brokers", Config{}, []string{"brokers: at least one broker is needed"}},
		{"bad broker", Config{Brokers: []string{"k1", ":9092", "k:0"}}, []string{`brokers: ":9092" is not host:port`, `brokers: "k1" is not host:port`, `brokers: "k:0" is not host:port`}},
		{"tls off with files", Config{Brokers: []string{"k:1"}, TLS: TLS{CAFile: "/x"}}, []string{"tls.enabled: TLS files or options are set but TLS is not enabled (set enabled: true)"}},
		{"tls missing files", Config{Brokers: []string{"k:1"}, TLS: TLS{Enabled: true, CAFile: filepath.Join(dir, "nope"), CertFile: pw}},
			[]string{"tls.ca_file: stat " + filepath.Join(dir, "nope") + ": no such file or directory", "tls.cert_file: cert_file and key_file go together"}},
		{"sasl without password", Config{Brokers: []string{"k:1"}, SASL: SASL{Mechanism: "plain", Username: "u"}}, []string{"sasl.password_file: a SASL mechanism needs a password (password_file, or password)"}},
		{"sasl both", Config{Brokers: []string{"k:1"}, SASL: SASL{Mechanism: "scram-sha-256", Username: "u", Password: "p", PasswordFile: pw}}, []string{"sasl.password: set password_file or password, not both"}},
		{"sasl no mechanism", Config{Brokers: []string{"k:1"}, SASL: SASL{Username: "u"}}, []string{"sasl.mechanism: SASL credentials are set but no mechanism (plain, scram-sha-256 or scram-sha-512)"}},
		{"sasl file missing", Config{Brokers: []string{"k:1"}, SASL: SASL{Mechanism: "plain", PasswordFile: filepath.Join(dir, "nope")}},
			[]string{"sasl.password_file: open " + filepath.Join(dir, "nope") + ": no such file or directory", "sasl.username: needed with a SASL mechanism"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := problems(tc.c); !slices.Equal(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestAuthenticator(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("s3cret\r\n"), 0o600)
	m, err := SASL{Mechanism: "plain", Username: "u", PasswordFile: pw}.Authenticator()
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := m.(plain.Mechanism); !ok || p.Password != "s3cret" || p.Username != "u" {
		t.Errorf("plain: %#v", m)
	}
	for _, mech := range []string{"scram-sha-256", "scram-sha-512"} {
		m, err := SASL{Mechanism: mech, Username: "u", Password: "p"}.Authenticator()
		if err != nil || !strings.EqualFold(m.Name(), mech) {
			t.Errorf("%s: %v %v", mech, m, err)
		}
	}
	if m, err := (SASL{}).Authenticator(); m != nil || err != nil {
		t.Errorf("none: %v %v", m, err)
	}
	if _, err := (SASL{Mechanism: "gssapi"}).Authenticator(); err == nil {
		t.Error("gssapi accepted")
	}
}

func TestTLSConfig(t *testing.T) {
	if c, err := (TLS{}).Config(); c != nil || err != nil {
		t.Errorf("off: %v %v", c, err)
	}
	bad := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(bad, []byte("not PEM"), 0o600)
	if _, err := (TLS{Enabled: true, CAFile: bad}).Config(); err == nil || !strings.Contains(err.Error(), "no PEM certificates") {
		t.Errorf("bad CA: %v", err)
	}
	c, err := (TLS{Enabled: true}).Config()
	if err != nil || c.RootCAs != nil || c.InsecureSkipVerify {
		t.Errorf("system roots: %+v %v", c, err)
	}
	tr, err := Config{Brokers: []string{"k:1"}, TLS: TLS{Enabled: true}}.Transport("x")
	if err != nil || tr.TLS == nil || tr.ClientID != "x" {
		t.Errorf("transport: %+v %v", tr, err)
	}
	d, err := Config{Brokers: []string{"k:1"}, SASL: SASL{Mechanism: "plain", Username: "u", Password: "p"}}.Dialer("x")
	if err != nil || d.SASLMechanism == nil || d.TLS != nil {
		t.Errorf("dialer: %+v %v", d, err)
	}
}
