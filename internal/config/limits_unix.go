//go:build unix

package config

import "syscall"

// defaultMaxConnections keeps 1024 descriptors of the open-file limit for the store, the bus,
// publishers' connections and the listener; Go raises the soft limit to the hard one at start.
func defaultMaxConnections() int {
	lim := OpenFileLimit()
	if lim == 0 {
		return 0
	}
	return max(64, lim-1024)
}

// OpenFileLimit is the process's soft limit of open files (which Go raised to the hard limit at
// start), or 0 when it is unknown or so large it bounds nothing.
func OpenFileLimit() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return 0
	}
	return int(lim.Cur)
}
