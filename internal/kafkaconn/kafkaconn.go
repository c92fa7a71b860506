// Package kafkaconn holds the Kafka connection settings both daemons share
// (brokers, TLS, SASL), as configuration (package config tags) and as the
// kafka-go Transport and Dialer built from them.
package kafkaconn

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/edgeward/edgeward/internal/config"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Config is the connection part of a daemon's kafka section; embed it
// with yaml:",inline".
type Config struct {
	Brokers []string `yaml:"brokers" env:"BROKERS" flag:"brokers" default:"127.0.0.1:9092" help:"Kafka bootstrap brokers, host:port, comma-separated"`
	TLS     TLS      `yaml:"tls"`
	SASL    SASL     `yaml:"sasl"`
}

// TLS configures TLS to the brokers.
type TLS struct {
	Enabled            bool   `yaml:"enabled" help:"connect to the brokers with TLS"`
	CAFile             string `yaml:"ca_file" help:"CA certificates (PEM) that sign the brokers' certificates; default: the system's"`
	CertFile           string `yaml:"cert_file" help:"client certificate (PEM), for brokers that require one"`
	KeyFile            string `yaml:"key_file" help:"the client certificate's private key (PEM)"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" help:"accept any broker certificate (tests only: it allows interception)"`
}

// SASL configures SASL authentication.
type SASL struct {
	Mechanism    string        `yaml:"mechanism" enum:"|plain|scram-sha-256|scram-sha-512" help:"SASL mechanism; empty for none"`
	Username     string        `yaml:"username" help:"SASL user"`
	PasswordFile string        `yaml:"password_file" help:"file holding the SASL password (one trailing newline is ignored); preferred to password"`
	Password     config.Secret `yaml:"password" help:"the SASL password itself, when no password_file"`
}

// Check implements config.Checker.
func (c *Config) Check(report func(key, msg string)) {
	if len(c.Brokers) == 0 {
		report("brokers", "at least one broker is needed")
	}
	for _, b := range c.Brokers {
		host, port, err := net.SplitHostPort(b)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			report("brokers", fmt.Sprintf("%q is not host:port", b))
		}
	}
}

// Check implements config.Checker.
func (t *TLS) Check(report func(key, msg string)) {
	if !t.Enabled {
		if t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.InsecureSkipVerify {
			report("enabled", "TLS files or options are set but TLS is not enabled (set enabled: true)")
		}
		return
	}
	pair := t.CertFile != "" && t.KeyFile != ""
	if (t.CertFile == "") != (t.KeyFile == "") {
		report("cert_file", "cert_file and key_file go together")
	}
	exists := map[string]bool{}
	for _, kf := range [][2]string{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
		if kf[1] == "" {
			continue
		}
		if _, err := os.Stat(kf[1]); err != nil {
			report(kf[0], err.Error())
			continue
		}
		exists[kf[0]] = true
	}
	// Files that exist are read now, so that what is wrong in them is
	// reported with the other problems and where it was set, not when
	// the connection is built. A missing one was reported above.
	if exists["ca_file"] {
		if _, err := t.rootCAs(); err != nil {
			report("ca_file", err.Error())
		}
	}
	if pair && exists["cert_file"] && exists["key_file"] {
		if _, err := t.clientCert(); err != nil {
			report("cert_file", err.Error())
		}
	}
}

// Check implements config.Checker.
func (s *SASL) Check(report func(key, msg string)) {
	if s.Mechanism == "" {
		if s.Username != "" || s.PasswordFile != "" || s.Password != "" {
			report("mechanism", "SASL credentials are set but no mechanism (plain, scram-sha-256 or scram-sha-512)")
		}
		return
	}
	if s.Username == "" {
		report("username", "needed with a SASL mechanism")
	}
	switch {
	case s.PasswordFile != "" && s.Password != "":
		report("password", "set password_file or password, not both")
	case s.PasswordFile == "" && s.Password == "":
		report("password_file", "a SASL mechanism needs a password (password_file, or password)")
	case s.PasswordFile != "":
		if _, err := os.ReadFile(s.PasswordFile); err != nil {
			report("password_file", err.Error())
		}
	}
}

// Config returns the TLS configuration, or nil when TLS is off.
func (t TLS) Config() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in, documented as tests only
	if t.CAFile != "" {
		pool, err := t.rootCAs()
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := t.clientCert()
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// rootCAs loads the CA certificates of ca_file.
func (t TLS) rootCAs() (*x509.CertPool, error) {
	pem, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, fmt.Errorf("kafka tls.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("kafka tls.ca_file %s: no PEM certificates in it", t.CAFile)
	}
	return pool, nil
}

// clientCert loads the client certificate and its key.
func (t TLS) clientCert() (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kafka tls.cert_file/key_file: %w", err)
	}
	return cert, nil
}

// Authenticator returns the SASL mechanism, or nil for none. It reads the
// password file.
func (s SASL) Authenticator() (sasl.Mechanism, error) {
	if s.Mechanism == "" {
		return nil, nil
	}
	pass := s.Password.Reveal()
	if s.PasswordFile != "" {
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("kafka sasl.password_file: %w", err)
		}
		pass = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	}
	switch s.Mechanism {
	case "plain":
		return plain.Mechanism{Username: s.Username, Password: pass}, nil
	case "scram-sha-256":
		return scram.Mechanism(scram.SHA256, s.Username, pass)
	case "scram-sha-512":
		return scram.Mechanism(scram.SHA512, s.Username, pass)
	}
	return nil, fmt.Errorf("kafka sasl.mechanism %q: want plain, scram-sha-256 or scram-sha-512", s.Mechanism)
}

// Transport returns a kafka-go transport (for Writer and Client) with the
// TLS and SASL settings.
func (c Config) Transport(clientID string) (*kafka.Transport, error) {
	tc, err := c.TLS.Config()
	if err != nil {
		return nil, err
	}
	m, err := c.SASL.Authenticator()
	if err != nil {
		return nil, err
	}
	return &kafka.Transport{TLS: tc, SASL: m, ClientID: clientID, DialTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second}, nil
}

// Dialer returns a kafka-go dialer (for Reader) with the TLS and SASL
// settings.
func (c Config) Dialer(clientID string) (*kafka.Dialer, error) {
	tc, err := c.TLS.Config()
	if err != nil {
		return nil, err
	}
	m, err := c.SASL.Authenticator()
	if err != nil {
		return nil, err
	}
	return &kafka.Dialer{TLS: tc, SASLMechanism: m, ClientID: clientID, Timeout: 5 * time.Second, DualStack: true}, nil
}
