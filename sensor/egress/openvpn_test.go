package egress

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// describe renders a parse for the golden files.
func describe(st *OpenVPNStatus, err error) string {
	var b strings.Builder
	if st == nil {
		fmt.Fprintf(&b, "error: %v\n", err)
		return b.String()
	}
	fmt.Fprintf(&b, "version %d, time %s, complete %v\n", st.Version, fmtTime(st.Time), st.Complete)
	for _, s := range st.Sessions {
		fmt.Fprintf(&b, "session %s from %s peer %q since %s last %s active %v\n", s.Inner, s.Outer, s.Peer, fmtTime(s.FirstSeen), fmtTime(s.LastSeen), s.Active)
	}
	var es Errors
	if errors.As(err, &es) {
		for _, e := range es {
			fmt.Fprintf(&b, "skipped %s:%d: %v\n", filepath.Base(e.File), e.Line, e.Err)
		}
	} else if err != nil {
		fmt.Fprintf(&b, "error: %v\n", err)
	}
	return b.String()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func TestParseOpenVPNStatusGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "openvpn-*.status"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no status files in testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := describe(ParseOpenVPNStatus(file, src, time.UTC))
			golden := strings.TrimSuffix(file, ".status") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s:\n%s", file, golden, got)
			}
		})
	}
}

func TestParseOpenVPNStatusRejects(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"empty", "\n\n", "empty OpenVPN status file"},
		{"client status", "OpenVPN STATISTICS\nUpdated,2026-11-20 13:05:00\nEND\n", "x:1: an OpenVPN client's status file"},
		{"something else", "\nid,owner\n", "x:2: not an OpenVPN status file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := ParseOpenVPNStatus("x", []byte(tc.src), nil)
			if st != nil || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, %v; want an error containing %q", st, err, tc.want)
			}
		})
	}
}

// TestOpenVPNLoad: reads of a status file rewritten as clients come and
// go open and close sessions; a read that raced a rewrite changes nothing.
func TestOpenVPNLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "openvpn-status.log")
	const header = "TITLE,OpenVPN 2.6.3\nTIME,%s,0\nHEADER,CLIENT_LIST,Common Name,Real Address,Virtual Address,Virtual IPv6 Address,Bytes Received,Bytes Sent,Connected Since,Connected Since (time_t),Username,Client ID,Peer ID,Data Channel Cipher\n"
	client := func(cn, real, virtual, since string) string {
		return fmt.Sprintf("CLIENT_LIST,%s,%s,%s,,1,1,%s,,UNDEF,1,1,AES-256-GCM\n", cn, real, virtual, since)
	}
	status := func(at string, clients ...string) string {
		// TIME's time_t is 0 in these files: the text form is used, in UTC.
		return strings.Replace(fmt.Sprintf(header, at), ",0\n", "\n", 1) + strings.Join(clients, "") + "END\n"
	}
	store := NewStore(StoreConfig{Skew: -1})
	o := NewOpenVPN(path, store, time.UTC, nil)
	a := netip.MustParseAddr("10.8.0.6")
	lookup := func(addr netip.Addr, h, m int) string {
		s, ok := store.Lookup(addr, at(h, m))
		if !ok {
			return ""
		}
		return s.Peer + "@" + s.Outer.String()
	}

	writeFile(t, path, status("2026-11-20 11:00:00", client("a.kim", "203.0.113.50:51820", "10.8.0.6", "2026-11-20 10:30:00")))
	if err := o.Load(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, status("2026-11-20 11:01:00", client("a.kim", "203.0.113.50:51820", "10.8.0.6", "2026-11-20 10:30:00")))
	if err := o.Load(); err != nil {
		t.Fatal(err)
	}
	// a.kim reconnects from another address and gets 10.8.0.10; b.lee gets 10.8.0.6.
	writeFile(t, path, status("2026-11-20 11:02:00",
		client("a.kim", "198.51.100.7:40112", "10.8.0.10", "2026-11-20 11:01:30"),
		client("b.lee", "192.0.2.44:1194", "10.8.0.6", "2026-11-20 11:01:45")))
	if err := o.Load(); err != nil {
		t.Fatal(err)
	}
	// A read in the middle of a rewrite.
	writeFile(t, path, strings.TrimSuffix(status("2026-11-20 11:03:00"), "END\n"))
	if err := o.Load(); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Load of a file without END: %v, want ErrIncomplete", err)
	}
	for _, tc := range []struct {
		addr netip.Addr
		h, m int
		want string
	}{
		{a, 10, 45, "a.kim@203.0.113.50:51820"},
		{a, 11, 1, "a.kim@203.0.113.50:51820"}, // the last read that showed it
		{a, 11, 1, "a.kim@203.0.113.50:51820"},
		{a, 11, 5, "b.lee@192.0.2.44:1194"},
		{netip.MustParseAddr("10.8.0.10"), 11, 59, "a.kim@198.51.100.7:40112"}, // the incomplete read closed nothing
	} {
		if got := lookup(tc.addr, tc.h, tc.m); got != tc.want {
			t.Errorf("%s at %d:%02d: %q, want %q", tc.addr, tc.h, tc.m, got, tc.want)
		}
	}
	if st := o.Stats(); st.Loads != 3 || st.Incomplete != 1 || st.Sessions != 2 {
		t.Errorf("stats %+v", st)
	}

	// Everyone disconnects.
	writeFile(t, path, status("2026-11-20 11:04:00"))
	if err := o.Load(); err != nil {
		t.Fatal(err)
	}
	if got := lookup(netip.MustParseAddr("10.8.0.10"), 11, 3); got != "" {
		t.Errorf("10.8.0.10 after the disconnect: %q", got)
	}
	if got := lookup(netip.MustParseAddr("10.8.0.10"), 11, 2); got == "" {
		t.Error("10.8.0.10 while connected: no session")
	}
}

func FuzzParseOpenVPNStatus(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "openvpn-*.status"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseOpenVPNStatus("fuzz", b, time.UTC)
		if st == nil && err == nil {
			t.Fatal("no status and no error")
		}
		if st == nil {
			return
		}
		for _, s := range st.Sessions {
			if !s.Inner.IsValid() || !s.Outer.Addr().IsValid() || s.Source != SourceOpenVPN {
				t.Fatalf("invalid session %+v", s)
			}
		}
	})
}
