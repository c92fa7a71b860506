//go:build unix

package builtin_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user + system) the process has used, so that a
// benchmark on a shared machine reports its own cost, not the wall clock.
func cpuTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
