package config

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestFDReserve: the reserve follows the store's and bus's pools, as their URLs size them.
func TestFDReserve(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	base := 24 + 8 + 2*max(2, procs)
	sqlite := 2*(max(4, procs)+1) + 1
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"sqlite", nil, base + sqlite},
		{"sqlite and the metrics listener", []string{"-metrics-addr", "127.0.0.1:9090"}, base + sqlite + MetricsConnections},
		{"postgres, default pool", []string{"-store", "postgres://db/herald"}, base + 16},
		{"postgres, pool_max_conns", []string{"-store", "postgres://db/herald?pool_max_conns=40"}, base + 40},
		{"redis, default pool", []string{"-bus", "redis://r:6379/0"}, base + sqlite + 10*procs + 1},
		{"redis, pool_size", []string{"-bus", "redis://r:6379/0?pool_size=7"}, base + sqlite + 8},
		{"nats", []string{"-bus", "nats://n:4222"}, base + sqlite + 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			c, err := Parse("herald", tt.args, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if got := c.FDReserve().Total(); got != tt.want {
				t.Fatalf("reserve %d (%+v), want %d", got, c.FDReserve(), tt.want)
			}
			if lim := OpenFileLimit(); lim > 0 && c.ConnectionLimit() != lim-tt.want {
				t.Fatalf("connection limit %d; open-file limit %d less %d is %d", c.ConnectionLimit(), lim, tt.want, lim-tt.want)
			}
		})
	}
}

// TestConnectionLimit: --max-tcp-connections overrides the computed limit, within the open-file
// limit less the reserve.
func TestConnectionLimit(t *testing.T) {
	lim := OpenFileLimit()
	if lim == 0 {
		t.Skip("no open-file limit to compare with")
	}
	d := Default()
	room := lim - d.FDReserve().Total()
	tests := []struct {
		name    string
		tcp     int
		wantErr bool
	}{
		{"default", 0, false},
		{"the most that fits", room, false},
		{"one more than fits", room + 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			_, err := Parse("herald", []string{"-max-tcp-connections", strconv.Itoa(tt.tcp), "-max-connections", "10"}, &bytes.Buffer{})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want an error: %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "open-file limit") {
				t.Fatalf("error %q does not name the open-file limit", err)
			}
		})
	}
}
