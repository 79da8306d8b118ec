// Package apptest runs a whole Herald in process, on a real loopback listener and a real SQLite
// file, for the tests of packages outside internal/app (which has a richer harness of its own).
package apptest

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/config"
)

// Config is the default configuration on 127.0.0.1:0 with a fresh SQLite file, no drain
// window and a one-second heartbeat.
func Config(t testing.TB) config.Config {
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.Store = "sqlite:" + filepath.Join(t.TempDir(), "h.db")
	cfg.SQLiteSync = "normal" // tests do not need power-loss durability
	cfg.DrainWindow, cfg.Heartbeat = 0, time.Second
	return cfg
}

// Server is a running Herald.
type Server struct {
	*app.App
	URL  string
	stop func()
}

// Start runs Herald with cfg until Stop or the end of the test.
func Start(t testing.TB, cfg config.Config) *Server {
	t.Helper()
	a, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("start Herald: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	s := &Server{App: a, URL: a.URL()}
	s.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Herald stopped with an error: %v", err)
			}
		})
	}
	t.Cleanup(s.stop)
	return s
}

// Stop stops the server and waits for it to finish. It may be called more than once.
func (s *Server) Stop() { s.stop() }
