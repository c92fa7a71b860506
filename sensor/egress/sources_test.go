package egress

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOpenAndRun(t *testing.T) {
	dir := t.TempDir()
	feed := filepath.Join(dir, "sessions.jsonl")
	writeFile(t, feed, contractLine+"\n"+`{"inner":"10.99.0.12"}`+"\n")
	status := filepath.Join(dir, "openvpn-status.log")
	src, err := os.ReadFile(filepath.Join("testdata", "openvpn-v3.status"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, status, string(src))

	s, err := Open(Config{Feeds: []string{feed}, OpenVPNStatus: []string{status}})
	var es Errors
	if s == nil || !errors.As(err, &es) || len(es) != 1 || !strings.Contains(es[0].Error(), "sessions.jsonl:2: \"outer\"") {
		t.Fatalf("Open: %v, %v; want the sources and the feed's bad line 2", s, err)
	}
	defer s.Close()
	// 1 feed session, 4 OpenVPN sessions.
	if n := s.Store().Len(); n != 5 {
		t.Errorf("%d sessions after Open, want 5", n)
	}
	if got, ok := s.Store().Lookup(netip.MustParseAddr("10.8.0.10"), time.Date(2026, 11, 20, 13, 0, 0, 0, time.UTC)); !ok || got.Peer != "b.lee" || got.Source != SourceOpenVPN {
		t.Errorf("OpenVPN session: %+v %v", got, ok)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	appendFile(t, feed, `{"inner":"10.99.0.13","outer":"198.51.100.13","first_seen":"2026-11-20T13:00:00Z"}`+"\n")
	waitFor(t, "the appended feed line", func() bool { return s.Store().Len() == 6 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// A status file caught in a rewrite does not stop the sensor: Run reads it
// once it is complete.
func TestOpenIncompleteStatus(t *testing.T) {
	s, err := Open(Config{OpenVPNStatus: []string{filepath.Join("testdata", "openvpn-v2-incomplete.status")}})
	if s == nil || !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Open = %v, %v; want the sources and ErrIncomplete", s, err)
	}
	s.Close()
}

func TestOpenFails(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing feed", Config{Feeds: []string{missing}}, "session feed"},
		{"missing status file", Config{OpenVPNStatus: []string{missing}}, "OpenVPN status"},
		{"not a status file", Config{OpenVPNStatus: []string{filepath.Join("testdata", "openvpn-v2.golden")}}, "not an OpenVPN status file"},
		{"no such WireGuard interface", Config{WireGuard: []string{"ewnosuch0"}}, "WireGuard interface ewnosuch0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(tc.cfg)
			if s != nil || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open = %v, %v; want no sources and an error containing %q", s, err, tc.want)
			}
		})
	}
}
