// Package app builds a whole Herald server from a Config and runs it until its context ends.
// The binary, and the tests that start real servers in-process, both go through here.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/httpapi"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/store/sqlite"
)

// App is one Herald node.
type App struct {
	cfg config.Config
	log *slog.Logger

	Store herald.Store
	Hub   *hub.Hub
	API   *httpapi.API

	srv *http.Server
	ln  net.Listener
}

// NewLogger returns the logger cfg asks for, writing to w.
func NewLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// New opens the store and the listener. Nothing is served until Run.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The hub reads gaps from the store, and the store reports commits to the hub; nothing is
	// committed before the server runs, so the hub can be set after the store opens.
	var h *hub.Hub
	path, _ := cfg.SQLitePath()
	store, err := sqlite.Open(ctx, path, sqlite.Options{
		Sync:     sqlite.Sync(cfg.SQLiteSync),
		OnCommit: func(ns []herald.Notification) { h.Publish(ns) },
	})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	h = hub.New(hub.Options{
		QueueSize:  cfg.QueueSize,
		MaxPerUser: cfg.MaxConnectionsPerUser,
		Source:     store,
		Logger:     log,
	})
	api := httpapi.New(httpapi.Options{
		Store:         store,
		Hub:           h,
		Identity:      httpapi.DevIdentity{},
		Logger:        log,
		Heartbeat:     cfg.Heartbeat,
		WriteTimeout:  cfg.WriteTimeout,
		Retry:         cfg.Retry,
		ReplayPage:    cfg.ReplayPage,
		MaxBody:       cfg.MaxBody,
		MaxBatchBody:  cfg.MaxBatchBody,
		MaxPayload:    cfg.MaxPayload,
		MaxRecipients: cfg.MaxRecipients,
		MaxBatch:      cfg.MaxBatch,
	})
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		h.Close()
		store.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		// No WriteTimeout: it would cut every stream. Streams set a deadline per write instead.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	// Open streams never go idle, so Shutdown alone would wait for them until its deadline.
	srv.RegisterOnShutdown(h.Close)
	return &App{cfg: cfg, log: log, Store: store, Hub: h, API: api, srv: srv, ln: ln}, nil
}

// Addr is the address the server listens on (useful with port 0).
func (a *App) Addr() string { return a.ln.Addr().String() }

// URL is the base URL of the server.
func (a *App) URL() string { return "http://" + a.Addr() }

// Run serves until ctx ends, then shuts down: it stops accepting, closes the streams, lets
// in-flight publishes finish (within ShutdownTimeout) and closes the store.
func (a *App) Run(ctx context.Context) error {
	a.log.Info("herald listening", "url", a.URL(), "store", a.cfg.Store, "sqlite_sync", a.cfg.SQLiteSync)
	a.log.Warn("dev mode: no auth configured; anyone who can reach the port may publish and read any feed (?user=), so only loopback is allowed without --insecure",
		"loopback", config.Loopback(a.cfg.Addr))

	serveErr := make(chan error, 1)
	go func() { serveErr <- a.srv.Serve(a.ln) }()

	var wg sync.WaitGroup
	pruneCtx, stopPrune := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.prune(pruneCtx)
	}()

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("serve: %w", err)
	}
	a.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if serr := a.srv.Shutdown(sctx); serr != nil {
		a.log.Warn("shutdown timed out; closing the remaining connections", "err", serr)
		a.srv.Close()
	}
	stopPrune()
	wg.Wait()
	a.Hub.Close()
	if cerr := a.Store.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close store: %w", cerr))
	}
	if err == nil {
		a.log.Info("stopped")
	}
	return err
}

// prune enforces retention every PruneInterval until ctx ends.
func (a *App) prune(ctx context.Context) {
	r := herald.Retention{MaxAge: a.cfg.RetentionAge, MaxPerStream: a.cfg.RetentionMax, IdempotencyTTL: a.cfg.IdempotencyTTL}
	t := time.NewTicker(a.cfg.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		n, err := a.Store.Prune(ctx, r)
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Warn("retention: prune failed", "err", err)
		case n > 0:
			a.log.Info("retention: pruned", "notifications", n, "took", time.Since(start).Round(time.Millisecond))
		}
	}
}
