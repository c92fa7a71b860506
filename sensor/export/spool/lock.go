package spool

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// lockName is the file whose lock says a process has the spool open. Two
// processes on one spool (two sensors given the same directory, a second
// release on a node sharing the hostPath) would write the same segment
// numbers and the same cursor, and lose or repeat each other's records.
const lockName = "lock"

// lock takes the spool directory's lock, which stays held until the
// returned file is closed (or the process ends, however it ends: a
// SIGKILLed sensor leaves no stale lock behind).
func lock(dir string) (*os.File, error) {
	p := filepath.Join(dir, lockName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(p)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who := "another process"
			if pid := string(bytes.TrimSpace(holder)); pid != "" {
				who = "process " + pid
			}
			return nil, fmt.Errorf("directory %s is in use by %s (each sensor needs a spool directory of its own)", dir, who)
		}
		return nil, fmt.Errorf("locking %s: %w", p, err)
	}
	// The holder's pid, for the message above; best effort.
	if err := f.Truncate(0); err == nil {
		f.WriteAt(strconv.AppendInt(nil, int64(os.Getpid()), 10), 0)
	}
	return f, nil
}
