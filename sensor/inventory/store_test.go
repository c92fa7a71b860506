package inventory

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeward/edgeward/internal/syncbuf"
)

// TestStoreReportsSkipped: NewStore returns the devices it skipped, with
// file:line, to its caller and logs nothing; Run logs those of each
// reload, with file:line.
func TestStoreReportsSkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inv.csv")
	if err := os.WriteFile(path, []byte("id,macs\nA,dc:a6:32:00:00:01\nB,not-a-mac\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	s, err := NewStore(Config{Path: path, Debounce: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	var es Errors
	if s == nil || !errors.As(err, &es) || len(es) != 1 || !strings.Contains(err.Error(), "inv.csv:3:") {
		t.Fatalf("NewStore = %v, %v; want a store and the skipped device at inv.csv:3", s, err)
	}
	if s.ByID("A") == nil {
		t.Error("the good device was not served")
	}
	if logs.String() != "" {
		t.Errorf("NewStore logged what it returned:\n%s", logs.String())
	}

	runStore(t, s)
	time.Sleep(50 * time.Millisecond) // let the watcher start
	if err := os.WriteFile(path, []byte("id,macs\nA,dc:a6:32:00:00:01\nC,dc:a6:32:00:00:03\nD,dc:a6:32:00:00:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The table is swapped in before the skipped devices are logged.
	deadline := time.Now().Add(5 * time.Second)
	for s.ByID("C") == nil || !strings.Contains(logs.String(), "inventory loaded") {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the reload; log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if l := logs.String(); !strings.Contains(l, "skipped inventory device") || !strings.Contains(l, "inv.csv:4:") {
		t.Errorf("reload did not log the skipped device at inv.csv:4:\n%s", l)
	}
}

// TestStoreLoadsAtStart: a change made between NewStore and Run is loaded
// when Run starts watching, without waiting for another change.
func TestStoreLoadsAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inv.csv")
	if err := os.WriteFile(path, []byte("id,macs\nA,dc:a6:32:00:00:01\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(Config{Path: path, Debounce: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("id,macs\nA,dc:a6:32:00:00:01\nB,dc:a6:32:00:00:02\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runStore(t, s)
	deadline := time.Now().Add(5 * time.Second)
	for s.ByID("B") == nil {
		if time.Now().After(deadline) {
			t.Fatal("the change made before Run was not loaded when the watch started")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runStore runs s until the test ends, failing it if Run returns an error.
func runStore(t *testing.T, s *Store) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}
