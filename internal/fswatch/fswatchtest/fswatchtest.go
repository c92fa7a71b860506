// Package fswatchtest changes watched files the way deployments do, for
// the tests of the packages that reload them.
package fswatchtest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// ConfigMap is a directory updated the way the kubelet updates a
// ConfigMap volume: each visible file is a link through ..data to a
// timestamped directory, and an update writes a new such directory and
// renames a new ..data_tmp link over ..data, so that only hidden names
// change.
type ConfigMap struct {
	Dir     string
	updates int
}

// Update writes files (name -> contents) as the volume's next version.
// The first update also makes the visible links.
func (c *ConfigMap) Update(t testing.TB, files map[string]string) {
	t.Helper()
	c.updates++
	name := fmt.Sprintf("..2026_11_21_10_00_00.%d", c.updates)
	v := filepath.Join(c.Dir, name)
	if err := os.Mkdir(v, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, body := range files {
		if err := os.WriteFile(filepath.Join(v, f), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(name, filepath.Join(c.Dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(c.Dir, "..data_tmp"), filepath.Join(c.Dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if c.updates > 1 {
		return
	}
	for f := range files {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(c.Dir, f)); err != nil {
			t.Fatal(err)
		}
	}
}
