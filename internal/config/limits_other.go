//go:build !unix

package config

func defaultMaxConnections() int { return 0 }

// OpenFileLimit is 0: the system has no limit of open files this package can read.
func OpenFileLimit() int { return 0 }
