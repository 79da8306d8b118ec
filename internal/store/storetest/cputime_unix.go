//go:build unix

package storetest

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time the process has used, user and system: what a benchmark costs on a
// shared machine, where wall time counts the other tenants too.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
