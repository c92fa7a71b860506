package main

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/syncbuf"
	"github.com/edgeward/edgeward/internal/synth"
	"github.com/edgeward/edgeward/sensor"
)

// TestInventoryReload: the sensor commands serve the inventory from a
// reloading store. Rewriting the file between two reads of a capture
// changes the device the laptop's flow is attributed to, and bad lines are
// reported with file:line, at start by config and on reload in the log.
func TestInventoryReload(t *testing.T) {
	dir := t.TempDir()
	invPath := filepath.Join(dir, "inventory.csv")
	write := func(content string) {
		t.Helper()
		tmp := filepath.Join(dir, ".inventory.csv.tmp") // write, then rename over, as config management does
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, invPath); err != nil {
			t.Fatal(err)
		}
	}
	write("id,owner,macs\nLT-A,alice@example.com,dc:a6:32:01:02:03\nLT-X,nobody@example.com,not-a-mac\n")

	pcap := filepath.Join(dir, "laptop.pcap")
	out, err := os.Create(pcap)
	if err != nil {
		t.Fatal(err)
	}
	laptop := synth.Flow{Start: time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC), Kind: synth.TLS,
		Client: netip.MustParseAddrPort("10.1.2.3:50000"), Server: netip.MustParseAddrPort("198.51.100.7:443"),
		ClientMAC: synth.MAC{0xdc, 0xa6, 0x32, 0x01, 0x02, 0x03}, ServerMAC: synth.MAC{0x00, 0x1b, 0x21, 0xaa, 0xbb, 0xcc},
		TLS: &synth.TLSSpec{SNI: "www.example.com"}, RequestBytes: 200, ResponseBytes: 2000}
	if _, err := synth.Render(slices.Values([]synth.Flow{laptop}), out, nil, synth.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}

	var logs syncbuf.Buffer
	sf := sensorFlags{inv: invPath, log: slog.New(slog.NewTextHandler(&logs, nil))}
	cfg, err := sf.config()
	if cfg == nil {
		t.Fatal(err)
	}
	if err == nil || !strings.Contains(err.Error(), "inventory.csv:3:") {
		t.Errorf("config warning %v, want the bad device at inventory.csv:3", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stop := sf.followSessions(ctx)
	defer stop()

	device := func() string {
		t.Helper()
		var id string
		if _, err := sensor.ReadFile(ctx, pcap, *cfg, func(r *flow.Record) {
			if r.Device != nil {
				id = r.Device.ID
			}
		}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	if got := device(); got != "LT-A" {
		t.Fatalf("device %q before the change, want LT-A", got)
	}

	time.Sleep(50 * time.Millisecond) // let the watcher start
	write("id,owner,macs\nLT-B,bob@example.com,dc:a6:32:01:02:03\nLT-C,carol@example.com,dc:a6:32:01:02:04\nLT-Y,nobody@example.com,dc:a6:32:01:02\n")
	deadline := time.Now().Add(5 * time.Second)
	for got := device(); got != "LT-B"; got = device() {
		if time.Now().After(deadline) {
			t.Fatalf("device still %q after the inventory changed; log:\n%s", got, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for !strings.Contains(logs.String(), "inventory loaded") { // logged after the swap
		if time.Now().After(deadline) {
			t.Fatalf("reload not logged:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if l := logs.String(); !strings.Contains(l, "inventory.csv:4:") {
		t.Errorf("the reload's bad device at inventory.csv:4 was not logged:\n%s", l)
	}
}
