package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A configuration file that does not parse never has its secret in the
// error, whatever the YAML problem near it.
func TestSecretNotInYAMLErrors(t *testing.T) {
	for name, src := range map[string]string{
		"unclosed quote":    "kafka:\n  sasl:\n    mechanism: plain\n    username: u\n    password: \"hunter2\n",
		"tab indent":        "kafka:\n  sasl:\n\tpassword: hunter2\n",
		"bad indent after":  "kafka:\n  sasl:\n    password: hunter2\n   username: u\n",
		"mapping in value":  "kafka:\n  sasl:\n    password: hunter2: x\n",
		"flow seq":          "kafka:\n  sasl:\n    password: [hunter2\n",
		"anchor":            "kafka:\n  sasl:\n    password: &a hunter2\n    username: *b\n",
		"dup key":           "kafka:\n  sasl:\n    password: hunter2\n    password: hunter2\n",
		"wrong type":        "kafka:\n  sasl:\n    password: {v: hunter2}\n",
		"list":              "kafka:\n  sasl:\n    password: [hunter2]\n",
		"quoted bad escape": "kafka:\n  sasl:\n    password: \"hunter2\\q\"\n",
		"doc after":         "kafka:\n  sasl:\n    password: hunter2\n---\nx: 1\n",
		"unknown key after": "kafka:\n  sasl:\n    password: hunter2\n    passwort: hunter2\n",
		"block scalar":      "kafka:\n  sasl:\n    password: |\n      hunter2\n     x: y\n",
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.yml")
			if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := load(t, []string{"-config", p}, nil)
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("secret in the error:\n%v", err)
			}
		})
	}
}
