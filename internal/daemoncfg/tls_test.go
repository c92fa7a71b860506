package daemoncfg

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeward/edgeward/internal/config"
)

// writeCert writes a self-signed certificate and its key as PEM.
func writeCert(t *testing.T, dir, name string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func loadPipeline(t *testing.T, yaml string) config.Errors {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var p Pipeline
	l, err := config.New("pipeline", &p)
	if err != nil {
		t.Fatal(err)
	}
	err = l.Load([]string{"--config", path}, func(string) (string, bool) { return "", false })
	var es config.Errors
	if err != nil && !errors.As(err, &es) {
		t.Fatal(err)
	}
	return es
}

// A client certificate that does not go with its key is a problem of the
// file that says so, reported with where cert_file and key_file were set.
func TestTLSKeyPairProblemSaysWhere(t *testing.T) {
	dir := t.TempDir()
	certA, _ := writeCert(t, dir, "a")
	_, keyB := writeCert(t, dir, "b")
	es := loadPipeline(t, "kafka:\n  tls:\n    enabled: true\n    cert_file: "+certA+"\n    key_file: "+keyB+"\n")
	if len(es) != 1 {
		t.Fatalf("got %d problems, want 1:\n%v", len(es), es)
	}
	if !strings.Contains(es[0].Where, "pipeline.yaml:") {
		t.Errorf("problem %q does not say where: Where %q", es[0], es[0].Where)
	}
}

// A CA file without certificates is reported with the other problems at
// start-up, not later when the Kafka connection is built.
func TestTLSBadCAReportedAtOnce(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("not PEM\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	es := loadPipeline(t, "kafka:\n  tls:\n    enabled: true\n    ca_file: "+ca+"\n")
	if len(es) != 1 || !strings.Contains(es[0].Error(), "no PEM certificates") || !strings.Contains(es[0].Where, "pipeline.yaml:4:") {
		t.Errorf("got %d problems, want the CA file's, at pipeline.yaml:4:\n%v", len(es), es)
	}
}

// A missing certificate file is one problem, not two.
func TestTLSMissingCertOnce(t *testing.T) {
	dir := t.TempDir()
	_, key := writeCert(t, dir, "a")
	es := loadPipeline(t, "kafka:\n  tls:\n    enabled: true\n    cert_file: "+filepath.Join(dir, "nope.crt")+"\n    key_file: "+key+"\n")
	if len(es) != 1 {
		t.Errorf("got %d problems, want 1:\n%v", len(es), es)
	}
}
