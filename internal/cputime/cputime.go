// Package cputime reads the CPU time the process has used, so that
// benchmarks on a shared machine can report their own cost (flows per
// CPU-second) rather than the wall clock.
package cputime

import "time"

// Now is the user + system CPU time of the whole process (every thread,
// the garbage collector included); zero where the platform cannot say,
// which callers treat as "no CPU figure".
func Now() time.Duration { return process() }
