//go:build !unix

package config

func defaultMaxConnections() int { return 0 }
