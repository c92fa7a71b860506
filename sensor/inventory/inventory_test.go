package inventory

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func ids(t *Table) []string {
	var out []string
	for _, d := range t.Devices() {
		out = append(out, d.ID)
	}
	return out
}

func TestLoadFixtures(t *testing.T) {
	tests := []struct {
		file    string
		wantIDs []string
		// wantErrs are "line:col" (col 0 when unknown) and a substring of
		// the message, in file order.
		wantErrs []string
	}{
		{file: "good.csv", wantIDs: []string{"LT-0042", "LT-0043", "SRV-0007"}},
		{file: "good.yaml", wantIDs: []string{"LT-0042", "LT-0043", "SRV-0007"}},
		{
			file:    "bad.csv",
			wantIDs: []string{"LT-1", "LT-7"},
			wantErrs: []string{
				"10:68 10 fields, but the header names 9", // reported while reading, before validation
				"4:26 assigned_country \"ZZ\"",
				"5:29 home_timezone \"Mars/Olympus_Mons\"",
				"6:43 mac \"zz:a6:32:00:00:04\"",
				"7:1 mac dc:a6:32:00:00:01 already belongs to device \"LT-1\" (bad.csv:3)",
				"8:1 device \"LT-6\" has no macs",
				"11:1 duplicate id \"LT-1\"",
				"12:69 wireguard_public_key",
				"13:62 hostname \"bad!host\"",
				"14:68 ip \"10.0.0.300\"",
				"15:30 home_timezone \"Local\"",
				"16:44 mac \"01:00:5e:00:00:01\" is a zero or multicast",
			},
		},
		{
			file:    "bad.yaml",
			wantIDs: []string{"LT-1", "LT-7"},
			wantErrs: []string{
				"17:5 unknown key \"colour\"",
				"25:12 owner: want a single value",
				"27:5 a device must be a mapping",
				"9:23 assigned_country \"ZZ\"",
				"12:20 home_timezone \"Mars/Olympus_Mons\"",
				"15:31 mac \"zz:a6:32:00:00:04\"",
				"19:5 device has no id",
				"28:5 hostname \"lt-1\" already belongs to device \"LT-1\" (bad.yaml:3)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			tab, err := Parse(tt.file, src)
			if tab == nil {
				t.Fatalf("Parse loaded nothing: %v", err)
			}
			if got := ids(tab); !slices.Equal(got, tt.wantIDs) {
				t.Errorf("loaded %q, want %q", got, tt.wantIDs)
			}
			var es Errors
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("unexpected errors:\n%v", err)
				}
				return
			}
			if !errors.As(err, &es) {
				t.Fatalf("err = %v, want Errors", err)
			}
			var got []string
			for _, e := range es {
				got = append(got, e.Error())
			}
			if len(es) != len(tt.wantErrs) {
				t.Fatalf("got %d errors, want %d:\n%s", len(es), len(tt.wantErrs), strings.Join(got, "\n"))
			}
			for i, want := range tt.wantErrs {
				where, msg, _ := strings.Cut(want, " ")
				prefix := tt.file + ":" + where + ": "
				if !strings.HasPrefix(got[i], prefix) || !strings.Contains(got[i], msg) {
					t.Errorf("error %d = %q, want prefix %q containing %q", i, got[i], prefix, msg)
				}
			}
		})
	}
}

func TestFatal(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"x.txt", "id\n", "must end in .csv"},
		{"x.csv", "", "no header row"},
		{"x.csv", "id,colour\n", "x.csv:1:4: unknown column \"colour\""},
		{"x.csv", "owner\n", "no id column"},
		{"x.yaml", "devices: [\n", "x.yaml:"},
		{"x.yaml", "hosts: []\n", "want a top-level \"devices:\" list"},
		{"x.yaml", "devices: 3\n", "must be a list"},
		// An empty file, as an empty CSV, is most likely one being
		// rewritten: an error, so that a reload keeps the inventory.
		{"x.yaml", "", "the file is empty"},
		{"x.yaml", "# nothing\n", "the file is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" "+tt.want, func(t *testing.T) {
			tab, err := Parse(tt.name, []byte(tt.src))
			if tab != nil || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse = %v, %v; want nil and an error containing %q", tab, err, tt.want)
			}
		})
	}
	for _, empty := range []string{"devices:\n", "devices: []\n"} {
		if tab, err := Parse("x.yaml", []byte(empty)); err != nil || tab.Len() != 0 {
			t.Errorf("Parse(%q) = %v, %v; want an empty table", empty, tab, err)
		}
	}
}

func TestMatch(t *testing.T) {
	for _, file := range []string{"good.csv", "good.yaml"} {
		tab, err := LoadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name     string
			mac      [6]byte
			hostname string
			ip       string
			wantID   string
			wantBy   MatchedBy
		}{
			{"mac", [6]byte{0xdc, 0xa6, 0x32, 1, 2, 3}, "", "", "LT-0042", ByMAC},
			{"second mac, dashed in file", [6]byte{0x3c, 0x22, 0xfb, 0, 0, 2}, "", "", "LT-0043", ByMAC},
			{"mac beats hostname and ip", [6]byte{0xdc, 0xa6, 0x32, 1, 2, 3}, "laptop-43", "10.9.0.7", "LT-0042", ByMAC},
			{"unknown mac falls through to hostname", [6]byte{2, 0, 0, 0, 0, 1}, "laptop-43", "10.1.2.42", "LT-0043", ByHostname},
			{"hostname beats ip", [6]byte{}, "LAPTOP-42.corp.example.com.", "10.9.0.7", "LT-0042", ByHostname},
			{"short query, fqdn in file", [6]byte{}, "Laptop-42", "", "LT-0042", ByHostname},
			{"fqdn query, short in file", [6]byte{}, "laptop-43.corp.example.com", "", "LT-0043", ByHostname},
			{"same device in two domains", [6]byte{}, "build-7", "", "SRV-0007", ByHostname},
			{"ip", [6]byte{}, "printer-1", "10.1.2.42", "LT-0042", ByIP},
			{"ipv6", [6]byte{}, "", "fd00::7", "SRV-0007", ByIP},
			{"ipv4-mapped ipv6", [6]byte{}, "", "::ffff:10.9.0.7", "SRV-0007", ByIP},
			{"nothing", [6]byte{2, 0, 0, 0, 0, 1}, "printer-1", "10.1.2.99", "", NoMatch},
		}
		for _, tt := range tests {
			t.Run(file+"/"+tt.name, func(t *testing.T) {
				var ip netip.Addr
				if tt.ip != "" {
					ip = netip.MustParseAddr(tt.ip)
				}
				d, by := tab.Match(tt.mac, tt.hostname, ip)
				var id string
				if d != nil {
					id = d.ID
				}
				if id != tt.wantID || by != tt.wantBy {
					t.Errorf("Match = %q by %v, want %q by %v", id, by, tt.wantID, tt.wantBy)
				}
			})
		}
		d := tab.ByWireGuardKey("hVpC6lN+qwrIyKj0M/6/H7M7ofsMx7e8rUMeh9Bg1kg=")
		if d == nil || d.ID != "SRV-0007" {
			t.Errorf("%s: ByWireGuardKey = %v, want SRV-0007", file, d)
		}
		d, _ = tab.Match([6]byte{0x3c, 0x22, 0xfb, 0, 0, 1}, "", netip.Addr{})
		if d.AssignedCountry != "US" || d.Location == nil || d.Location.String() != "America/New_York" || d.Owner != "bob@example.com" || d.AssignedSite != "NYC-2" {
			t.Errorf("%s: LT-0043 = %+v", file, d)
		}
	}
}

func TestShortNameAmbiguous(t *testing.T) {
	src := "id,hostnames\nA,pc-1.a.example\nB,pc-1.b.example\n"
	tab, err := Parse("x.csv", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if d := tab.ByHostname("pc-1"); d != nil {
		t.Errorf("ByHostname(pc-1) = %s, want no match: two devices share the short name", d.ID)
	}
	if d := tab.ByHostname("PC-1.b.example"); d == nil || d.ID != "B" {
		t.Errorf("ByHostname(PC-1.b.example) = %v, want B", d)
	}
}

func TestMatchAllocs(t *testing.T) {
	tab, err := LoadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("10.9.0.7")
	allocs := testing.AllocsPerRun(1000, func() {
		tab.Match([6]byte{0xdc, 0xa6, 0x32, 1, 2, 3}, "", ip)
		tab.Match([6]byte{}, "LAPTOP-43.Corp.Example.com", ip)
		tab.Match([6]byte{}, "unknown-host", ip)
	})
	if allocs != 0 {
		t.Errorf("Match allocates %.1f times per run, want 0", allocs)
	}
}

func TestStoreReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inventory.csv")
	write := func(content string) {
		// Write-then-rename, as editors and config management do.
		tmp := filepath.Join(dir, ".inventory.csv.tmp")
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write("id,macs\nA,dc:a6:32:00:00:01\n")
	var reloads atomic.Int32
	s, err := NewStore(Config{Path: path, Debounce: 20 * time.Millisecond, OnReload: func(*Table, error) { reloads.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	runStore(t, s)
	time.Sleep(50 * time.Millisecond) // let the watcher start

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	macB := [6]byte{0xdc, 0xa6, 0x32, 0, 0, 2}

	old := s.Table()
	write("id,macs\nA,dc:a6:32:00:00:01\nB,dc:a6:32:00:00:02\nC,not-a-mac\n")
	waitFor("B to load", func() bool { d, _ := s.Match(macB, "", netip.Addr{}); return d != nil && d.ID == "B" })
	if old.Len() != 1 {
		t.Errorf("the old table changed under a reader: %d devices", old.Len())
	}
	if n := s.Table().Len(); n != 2 {
		t.Errorf("after reload %d devices, want 2 (C skipped)", n)
	}

	// A file that does not parse keeps the previous inventory.
	n := reloads.Load()
	write("colour\nred\n")
	waitFor("the failed reload", func() bool { return reloads.Load() > n })
	if d, _ := s.Match(macB, "", netip.Addr{}); d == nil {
		t.Error("a broken file replaced the inventory")
	}

	// In-place writes are seen too.
	if err := os.WriteFile(path, []byte("id,macs\nD,dc:a6:32:00:00:04\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor("D to load", func() bool { return s.Table().Len() == 1 && s.Table().Devices()[0].ID == "D" })
}

func BenchmarkMatch(b *testing.B) {
	tab, err := LoadFile("testdata/good.yaml")
	if err != nil {
		b.Fatal(err)
	}
	ip := netip.MustParseAddr("10.9.0.7")
	for _, c := range []struct {
		name string
		mac  [6]byte
		host string
	}{
		{"mac", [6]byte{0xdc, 0xa6, 0x32, 1, 2, 3}, ""},
		{"hostname", [6]byte{}, "LAPTOP-43.corp.example.com"},
		{"ip-after-misses", [6]byte{2, 0, 0, 0, 0, 1}, "unknown.corp.example.com"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tab.Match(c.mac, c.host, ip)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"good.csv", "bad.csv", "good.yaml", "bad.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(filepath.Ext(name) == ".csv", b)
	}
	f.Fuzz(func(t *testing.T, csv bool, src []byte) {
		name := "f.yaml"
		if csv {
			name = "f.csv"
		}
		tab, err := Parse(name, src)
		if tab == nil && err == nil {
			t.Fatal("nil table without an error")
		}
		if tab != nil {
			tab.Match([6]byte{1}, "x.y", netip.IPv4Unspecified())
		}
	})
}
