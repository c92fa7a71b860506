//go:build unix

package consume

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time the process has used, so that a benchmark on a
// busy machine can report what a flow costs a core, not the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
