// Package cputime reads the CPU time the process has used, so that
// benchmarks on a shared machine can report their own cost (flows per
// CPU-second) rather than the wall clock.
package cputime

import "time"

// Process is the user + system CPU time of the whole process (every
// thread, the garbage collector included); ok is false where the platform
// cannot say.
func Process() (d time.Duration, ok bool) { return process() }

// Now is Process without ok: zero where the platform cannot say, which
// callers treat as "no CPU figure".
func Now() time.Duration {
	d, _ := process()
	return d
}
