//go:build !unix

package builtin_test

import "time"

func cpuTime() (time.Duration, bool) { return 0, false }
