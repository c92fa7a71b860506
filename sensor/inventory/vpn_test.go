package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Remote devices known only by their VPN identity load, and are found by
// it; a VPN peer name claimed twice is reported where.
func TestVPNIdentities(t *testing.T) {
	tests := []struct{ name, src string }{
		{"inv.csv", `id,owner,vpn_peers,wireguard_public_key
LT-0101,a.kim@example.com,a.kim;kim-laptop,
LT-0102,b.lee@example.com,,hVpC6lN+qwrIyKj0M/6/H7M7ofsMx7e8rUMeh9Bg1kg=
LT-0103,c.ng@example.com,a.kim,
`},
		{"inv.yaml", `devices:
  - id: LT-0101
    owner: a.kim@example.com
    vpn_peers: [a.kim, kim-laptop]
  - id: LT-0102
    owner: b.lee@example.com
    wireguard_public_key: hVpC6lN+qwrIyKj0M/6/H7M7ofsMx7e8rUMeh9Bg1kg=
  - id: LT-0103
    owner: c.ng@example.com
    vpn_peer: a.kim
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := Parse(tc.name, []byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), `vpn peer "a.kim" already belongs to device "LT-0101"`) {
				t.Errorf("error %v, want the duplicate vpn peer reported", err)
			}
			if tab.Len() != 2 {
				t.Fatalf("%d devices loaded, want 2", tab.Len())
			}
			if d := tab.ByVPNPeer("kim-laptop"); d == nil || d.ID != "LT-0101" {
				t.Errorf("ByVPNPeer(kim-laptop) = %v", d)
			}
			if d := tab.ByWireGuardKey("hVpC6lN+qwrIyKj0M/6/H7M7ofsMx7e8rUMeh9Bg1kg="); d == nil || d.ID != "LT-0102" {
				t.Errorf("ByWireGuardKey = %v", d)
			}
			if d := tab.ByID("LT-0102"); d == nil || d.Owner != "b.lee@example.com" {
				t.Errorf("ByID = %v", d)
			}
			if tab.ByID("LT-0103") != nil || tab.ByVPNPeer("nobody") != nil {
				t.Error("a skipped device or an unknown peer was found")
			}
		})
	}
	var nilTable *Table
	if nilTable.ByID("x") != nil || nilTable.ByVPNPeer("x") != nil {
		t.Error("a nil table found something")
	}
}

func TestStoreVPNLookups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inv.csv")
	if err := os.WriteFile(path, []byte("id,vpn_peers\nLT-1,a.kim\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if s.ByVPNPeer("a.kim") == nil || s.ByID("LT-1") == nil || s.ByWireGuardKey("x") != nil {
		t.Error("Store lookups disagree with its table")
	}
}
