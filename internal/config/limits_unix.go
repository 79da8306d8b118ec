//go:build unix

package config

import "syscall"

// defaultMaxConnections keeps 1024 descriptors of the open-file limit for the store, the bus,
// publishers' connections and the listener; Go raises the soft limit to the hard one at start.
func defaultMaxConnections() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return 0
	}
	return max(64, int(lim.Cur)-1024)
}
