package sensor_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/corpus"
	"github.com/edgeward/edgeward/sensor"
	"github.com/edgeward/edgeward/sensor/identity"
	"github.com/edgeward/edgeward/sensor/inventory"
)

// TestDHCPHostnameToInventory: a host's DHCP exchange names it, and its
// later flow is attributed to the inventory device with that hostname.
func TestDHCPHostnameToInventory(t *testing.T) {
	dir := corpus.Dir(t)
	inv, err := inventory.Parse("inv.csv", []byte("id,owner,assigned_site,assigned_country,hostnames\nLT-7,carol,PIT-1,US,btest.is.cool\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := sensor.Config{Identity: identity.Config{Internal: []netip.Prefix{netip.MustParsePrefix("128.2.0.0/16")}, Inventory: inv}}
	var found bool
	_, err = sensor.ReadFile(context.Background(), filepath.Join(dir, "pcaps", "zeek-dhcp.pcap"), cfg, func(r *flow.Record) {
		if r.Src.IP.String() != "128.2.6.189" {
			return
		}
		d := r.Device
		if d == nil || d.ID != "LT-7" || d.MatchedBy != "hostname" || d.Hostname != "btest.is.cool" || d.MAC.String() != "90:b1:1c:99:49:29" {
			t.Errorf("device %+v", d)
		}
		found = true
	})
	if err != nil || !found {
		t.Fatalf("err %v, flow from the DHCP client found: %v", err, found)
	}
}
