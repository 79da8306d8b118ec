// Package app builds a whole Herald server from a Config and runs it until its context ends.
// The binary, and the tests that start real servers in-process, both go through here.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"regexp"
	"sync"
	"syscall"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/auth"
	amqpbus "github.com/heraldhq/herald/internal/bus/amqp"
	natsbus "github.com/heraldhq/herald/internal/bus/nats"
	redisbus "github.com/heraldhq/herald/internal/bus/redis"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/httpapi"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/listener"
	"github.com/heraldhq/herald/internal/metrics"
	"github.com/heraldhq/herald/internal/store/postgres"
	"github.com/heraldhq/herald/internal/store/sqlite"
	"github.com/heraldhq/herald/web"
)

// App is one Herald node.
type App struct {
	cfg config.Config
	log *slog.Logger

	Store   herald.Store
	Hub     *hub.Hub
	API     *httpapi.API
	Metrics *metrics.Metrics

	auth     interface{ Describe() []any } // nil in dev mode
	stop     []func()                      // closers of what New started, run by Run or on failure
	srv      *http.Server
	ln       *listener.Listener
	pprofLn  net.Listener // nil unless --pprof-addr
	tls      bool
	readyBus herald.Bus // the bus /readyz checks; nil for a single node, or with --readyz-bus=false
	cluster  *cluster   // nil for a single node
	push     *webPush   // nil unless Web Push is configured

	// metricsLn and metricsSrv serve /metrics, /healthz and /readyz; nil unless --metrics-addr.
	metricsLn  *listener.Listener
	metricsSrv *http.Server
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
	a := &App{cfg: cfg, log: log}
	ok := false
	defer func() {
		if !ok {
			a.close()
		}
	}()
	authn, err := NewAuthenticator(cfg, log)
	if err != nil {
		return nil, err
	}
	if c, isCloser := authn.(interface{ Close() }); isCloser {
		a.stop = append(a.stop, c.Close)
	}
	if d, isDescriber := authn.(interface{ Describe() []any }); isDescriber {
		a.auth = d
	}
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("tls-cert/tls-key: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		a.tls = true
	}

	// The hub reads gaps from the store, and the store reports commits to the hub (and, in a
	// cluster, to the bus); nothing is committed before the server runs, so both can be set
	// after the store opens.
	var h *hub.Hub
	var cl *cluster
	onCommit := func(ns []herald.Notification) {
		if cl != nil {
			cl.committed(ns) // through the bus, in the bus's order
			return
		}
		h.Publish(ns)
	}
	store, err := openStore(ctx, cfg, onCommit)
	if err != nil {
		return nil, err
	}
	a.stop = append(a.stop, func() { store.Close() })
	a.Metrics = metrics.New()
	a.Metrics.BuildInfo(cfg.Version)
	a.Store = a.Metrics.InstrumentStore(store)
	if a.push, err = newWebPush(cfg, a.Store, a.Metrics, log); err != nil {
		return nil, err
	}
	h = hub.New(hub.Options{
		Presence:   a.push.hubPresence(),
		QueueSize:  cfg.QueueSize,
		MaxPerUser: cfg.MaxConnectionsPerUser,
		MaxTotal:   cfg.MaxConnections,
		Source:     a.Store,
		Logger:     log,

		BufferBytes: cfg.StreamBuffer,
	})
	a.Hub = h
	if cfg.Clustered() {
		var b herald.Bus
		if b, err = openBus(ctx, cfg, log); err != nil {
			return nil, err
		}
		if cfg.ReadyzBus {
			a.readyBus = b
		}
		cl = newCluster(b, store.Identity(), h, log, a.Metrics, cfg.ResyncInterval, cfg.BusSettle)
		a.cluster = cl
		a.stop = append(a.stop, cl.stop) // also closes the bus
	}
	a.Metrics.CounterFunc("herald_hub_queue_overflows_total",
		"Times a stream's queue of live events overflowed (the stream then catches up from the store, or is dropped if its client stopped reading).",
		func() float64 { return float64(h.Stats().Overflows) })
	a.Metrics.CounterFunc("herald_hub_gap_repairs_total",
		"Times the hub read missing notifications of a stream from the store (events that arrived out of order and whose predecessors did not follow).",
		func() float64 { return float64(h.Stats().Repairs) })
	a.stop = append(a.stop, h.Close)
	onState := func(sc herald.StateChange) { h.Notify(sc.User, hub.NewControl(httpapi.StateFrame(sc))) }
	if cl != nil {
		onState = cl.stateChanged // every node's streams of the user
	}
	inflight := httpapi.NewInflight(cfg.MaxPublishInflight, httpapi.DefaultInflightWait)
	a.Metrics.GaugeFunc("herald_publish_inflight_notifications",
		"Notifications that publish requests being committed hold now, against --max-publish-inflight.",
		func() float64 { return float64(inflight.Held()) })
	var apiStore herald.Store = a.Store
	if cl != nil {
		apiStore = announcer{Store: a.Store, commit: cl.committed} // retries announce again (announce.go)
	}
	a.API = httpapi.New(httpapi.Options{
		Push:           a.push.apiOptions(),
		OnState:        onState,
		Store:          apiStore,
		Hub:            h,
		Auth:           authn,
		Logger:         log,
		Metrics:        a.Metrics,
		Bus:            a.readyBus, // a nil interface when there is no bus, or it is not to count
		Limiter:        httpapi.NewLimiter(cfg.PublishRate, cfg.PublishBurst),
		Inflight:       inflight,
		CORSOrigins:    cfg.CORSOriginList(),
		MaxHeaderBytes: cfg.MaxHeaderBytes,
		NoPark:         !cfg.ParkStreams,
		Hosts:          hostPolicy(cfg),
		MetricsOnAPI:   cfg.MetricsOnAPI(),
		Heartbeat:      cfg.Heartbeat,
		WriteTimeout:   cfg.WriteTimeout,
		Retry:          cfg.Retry,
		ReplayPage:     cfg.ReplayPage,
		MaxBody:        cfg.MaxBody,
		MaxBatchBody:   cfg.MaxBatchBody,
		MaxPayload:     cfg.MaxPayload,
		MaxRecipients:  cfg.MaxRecipients,
		MaxBatch:       cfg.MaxBatch,

		MaxRequestRecipients: cfg.MaxRequestRecipients,
		MaxPreferenceRules:   cfg.MaxPreferenceRules,
		// Every node's streams of the user reload the user's rules: through the bus in a
		// cluster, which calls PreferencesChanged on each node.
		OnPreferences: func(user string) {
			if cl != nil {
				cl.preferencesChanged(user)
				return
			}
			a.API.PreferencesChanged(user)
		},
		TopicLimits:   herald.TopicLimits{MaxSubscribers: cfg.MaxTopicSubscribers, MaxTopics: cfg.MaxUserTopics},
		SelfSubscribe: cfg.SelfSubscribePrefixes(),
	})
	if cl != nil {
		cl.prefs = a.API
	}
	handler, err := a.API.Handler()
	if err != nil {
		return nil, err
	}
	if cfg.Web {
		page, err := web.New(web.Config{Dev: !cfg.AuthEnabled(), Cookie: cfg.AuthCookie, Push: cfg.PushEnabled()})
		if err != nil {
			return nil, err
		}
		// The page's few paths go to it; everything else, and every other method, to the API.
		mux := http.NewServeMux()
		for _, p := range web.Paths {
			if p == "/" {
				p = "/{$}"
			}
			mux.Handle("GET "+p, page)
		}
		mux.Handle("/", handler)
		handler = mux
	}
	handler = a.API.GuardHost(handler) // the page too: it is what a rebinding attack would load first
	// The API's connections are held under a limit below the open-file limit, so that the store,
	// the bus and the metrics listener always find a descriptor (see config.FDReserve).
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, listenError("addr", cfg.Addr, err)
	}
	var refusal []byte
	if tlsConfig == nil {
		refusal = listener.Refusal503()
	}
	a.ln = listener.New(ln, listener.Options{Name: "api", Max: cfg.ConnectionLimit(), FirstRequest: cfg.FirstRequestTimeout,
		Refusal: refusal, Logger: log, Metrics: a.Metrics})
	if cfg.PprofAddr != "" {
		if a.pprofLn, err = net.Listen("tcp", cfg.PprofAddr); err != nil {
			return nil, listenError("pprof-addr", cfg.PprofAddr, err)
		}
		a.stop = append(a.stop, func() { a.pprofLn.Close() })
	}
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s (metrics-addr): %w", cfg.MetricsAddr, err)
		}
		// A limit of its own, counted in the reserve the API's limit leaves: probes get through
		// however many connections the API holds, and the API's clients cannot crowd them out.
		a.metricsLn = listener.New(mln, listener.Options{Name: "metrics", Max: config.MetricsConnections,
			FirstRequest: cfg.FirstRequestTimeout, Refusal: listener.Refusal503(), Logger: log, Metrics: a.Metrics})
		a.stop = append(a.stop, func() { a.metricsLn.Close() })
		a.metricsSrv = &http.Server{
			Handler:           a.metricsLn.Handler(a.API.GuardHost(a.API.OpsHandler())),
			ConnState:         a.metricsLn.ConnState,
			ConnContext:       a.metricsLn.ConnContext,
			ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			ReadTimeout:       cfg.ReadTimeout,
			WriteTimeout:      cfg.WriteTimeout, // no streams here: every answer is short
			IdleTimeout:       cfg.IdleTimeout,
			MaxHeaderBytes:    cfg.MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
	}
	a.srv = &http.Server{
		Handler:           a.ln.Handler(handler),
		ConnState:         a.ln.ConnState,
		ConnContext:       a.ln.ConnContext,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		// Twice the configured limit, so that the API, not Go's plain-text answer, refuses the
		// headers between the two with a JSON 431.
		MaxHeaderBytes: 2 * cfg.MaxHeaderBytes,
		// No WriteTimeout: it would cut every stream. Streams set a deadline per write instead.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	// Open streams never go idle, so Shutdown alone would wait for them until its deadline.
	a.srv.RegisterOnShutdown(h.Close)
	ok = true
	return a, nil
}

// hostPolicy is the Host headers a dev-mode server answers (see httpapi.HostPolicy); nil with
// auth, where a rebound name gains an attacker nothing without a credential.
func hostPolicy(cfg config.Config) *httpapi.HostPolicy {
	if cfg.AuthEnabled() {
		return nil
	}
	return &httpapi.HostPolicy{Names: cfg.AllowedHostList(), AnyIP: cfg.Insecure}
}

// openStore opens the store cfg names; onCommit receives every commit.
func openStore(ctx context.Context, cfg config.Config, onCommit herald.CommitFunc) (herald.Store, error) {
	switch cfg.StoreKind() {
	case "postgres":
		s, err := postgres.Open(ctx, cfg.Store, postgres.Options{OnCommit: onCommit, PushDelay: cfg.PushDelay, NoPush: !cfg.PushEnabled()})
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", cfg.RedactedStore(), err)
		}
		return s, nil
	default:
		path, _ := cfg.SQLitePath()
		// Without a bus no other node can share the file (docs/operations.md), so this process
		// sees every commit and may answer resumes from memory.
		s, err := sqlite.Open(ctx, path, sqlite.Options{Sync: sqlite.Sync(cfg.SQLiteSync), OnCommit: onCommit,
			SoleWriter: cfg.BusKind() == "memory", PushDelay: cfg.PushDelay, NoPush: !cfg.PushEnabled()})
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return s, nil
	}
}

// openBus opens the bus cfg names; nil for "memory", where the store alone links the nodes.
func openBus(ctx context.Context, cfg config.Config, log *slog.Logger) (herald.Bus, error) {
	var b herald.Bus
	var err error
	switch cfg.BusKind() {
	case "redis":
		b, err = redisbus.Open(ctx, cfg.Bus, redisbus.Options{Channel: cfg.BusChannel, Logger: log})
	case "nats":
		b, err = natsbus.Open(ctx, cfg.Bus, natsbus.Options{Subject: cfg.BusChannel, Logger: log})
	case "amqp":
		b, err = amqpbus.Open(ctx, cfg.Bus, amqpbus.Options{Channel: cfg.BusChannel, Logger: log})
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open bus %s: %w", cfg.RedactedBus(), err)
	}
	return b, nil
}

// close releases what New started, last first.
func (a *App) close() {
	if a.ln != nil {
		a.ln.Close()
	}
	for i := len(a.stop) - 1; i >= 0; i-- {
		a.stop[i]()
	}
	a.stop = nil
}

// NewAuthenticator returns the authenticator cfg describes: JWTs and API keys, or dev mode when
// no credential is configured. It reads the secret, key and PEM files.
func NewAuthenticator(cfg config.Config, log *slog.Logger) (httpapi.Authenticator, error) {
	if !cfg.AuthEnabled() {
		return auth.Dev{}, nil
	}
	ac := auth.Config{
		JWKSURL:      cfg.JWKSURL,
		JWKSRefresh:  cfg.JWKSRefresh,
		Issuer:       cfg.JWTIssuer,
		Audience:     cfg.JWTAudience,
		Leeway:       cfg.JWTLeeway,
		PublishScope: cfg.PublishScope,
		Cookie:       cfg.AuthCookie,
		QueryToken:   cfg.AllowQueryToken,
		Logger:       log,
	}
	secret, err := cfg.ReadJWTSecret()
	if err != nil {
		return nil, err
	}
	if secret != "" {
		ac.Secret = []byte(secret)
	}
	if cfg.JWTPublicKeys != "" {
		b, err := os.ReadFile(cfg.JWTPublicKeys)
		if err != nil {
			return nil, fmt.Errorf("jwt-public-keys: %w", err)
		}
		if ac.PublicKeys, err = auth.ParsePublicKeys(b); err != nil {
			return nil, fmt.Errorf("jwt-public-keys %s: %w", cfg.JWTPublicKeys, err)
		}
	}
	keys, err := auth.ParseKeys(cfg.PublisherKeys, false)
	if err != nil {
		return nil, keysError("publisher-keys", false, err)
	}
	if cfg.PublisherKeyFile != "" {
		b, err := os.ReadFile(cfg.PublisherKeyFile)
		if err != nil {
			return nil, fmt.Errorf("publisher-key-file: %w", err)
		}
		fileKeys, err := auth.ParseKeys(string(b), true)
		if err != nil {
			return nil, keysError("publisher-key-file "+cfg.PublisherKeyFile, true, err)
		}
		keys = append(keys, fileKeys...)
	}
	ac.Keys = keys
	a, err := auth.New(ac)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// keysLine is how auth.ParseKeys starts its errors.
var keysLine = regexp.MustCompile(`^publisher keys, line (\d+): `)

// keysError says which setting publisher keys that do not parse came from. auth.ParseKeys counts
// lines ("publisher keys, line 2: …"): that helps in a file, not in a flag, which has one.
func keysError(setting string, file bool, err error) error {
	m := keysLine.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("%s: %w", setting, err)
	}
	reason := err.Error()[len(m[0]):]
	if !file && m[1] == "1" {
		return fmt.Errorf("%s: %s", setting, reason)
	}
	return fmt.Errorf("%s, line %s: %s", setting, m[1], reason)
}

// listenError says why the listener of a setting could not open. An address in use is the usual
// reason, and the net package says it in words that repeat the address.
func listenError(setting, addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s %s is in use: another herald, or another program, listens there", setting, addr)
	}
	return fmt.Errorf("%s %s: %w", setting, addr, err)
}

// Addr is the address the server listens on (useful with port 0).
func (a *App) Addr() string { return a.ln.Addr().String() }

// MetricsAddr is the address of the metrics listener (--metrics-addr), or "" without one.
func (a *App) MetricsAddr() string {
	if a.metricsLn == nil {
		return ""
	}
	return a.metricsLn.Addr().String()
}

// URL is the base URL of the server.
func (a *App) URL() string {
	if a.tls {
		return "https://" + a.Addr()
	}
	return "http://" + a.Addr()
}

// Run serves until ctx ends, then shuts down: it stops accepting, closes the streams, lets
// in-flight publishes finish (within ShutdownTimeout) and closes the store.
func (a *App) Run(ctx context.Context) error {
	a.log.Info("herald listening", "url", a.URL(), "store", a.cfg.RedactedStore(), "bus", a.cfg.RedactedBus(),
		"max_connections", a.cfg.MaxConnections, "max_tcp_connections", a.cfg.ConnectionLimit(),
		"open_file_limit", config.OpenFileLimit(), "fd_reserve", a.cfg.FDReserve().Total())
	if a.cfg.StoreKind() == "postgres" && a.cfg.BusKind() == "memory" {
		a.log.Warn("the store is shared but there is no bus: commits of other nodes reach this node's streams only at the periodic resync",
			"resync_interval", a.cfg.ResyncInterval)
	}
	if a.cluster != nil {
		a.cluster.start()
	}
	if a.auth != nil {
		a.log.Info("auth: subscribers need a token, publishers a key or a token with the publish scope", a.auth.Describe()...)
	} else {
		a.log.Warn("dev mode: no auth configured; anyone who can reach the port may publish and read any feed (?user=), so only loopback is allowed without --insecure",
			"loopback", config.Loopback(a.cfg.Addr))
		hosts := "localhost, loopback addresses"
		if a.cfg.Insecure {
			hosts = "localhost, any IP address"
		}
		for _, n := range a.cfg.AllowedHostList() {
			hosts += ", " + n
		}
		a.log.Info("dev mode: answering only these Host names, against DNS rebinding (others get 403; --allowed-hosts adds names)", "hosts", hosts)
	}
	if !a.tls && !config.Loopback(a.cfg.Addr) {
		a.log.Warn("serving plain HTTP on a non-loopback address: put a TLS-terminating proxy in front, or set --tls-cert and --tls-key, so tokens do not cross the network in the clear")
	}

	if a.pprofLn != nil {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		psrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go psrv.Serve(a.pprofLn) // ends when close() closes the listener
		a.log.Info("pprof listening", "url", "http://"+a.pprofLn.Addr().String()+"/debug/pprof/")
	}

	// The metrics listener's goroutine is Run's: it ends when Run shuts metricsSrv down, after
	// the API (probes see /readyz turn 503 through the drain), and Run waits for it.
	metricsDone := make(chan struct{})
	if a.metricsSrv != nil {
		go func() {
			defer close(metricsDone)
			if err := a.metricsSrv.Serve(a.metricsLn); !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("metrics listener failed; /metrics, /healthz and /readyz are no longer served there", "err", err)
			}
		}()
		a.log.Info("metrics listening", "url", "http://"+a.MetricsAddr()+"/metrics", "health", "http://"+a.MetricsAddr()+"/healthz")
	} else {
		close(metricsDone)
	}
	switch {
	case a.cfg.MetricsOnAPI():
		a.log.Info("metrics served on the API port", "url", a.URL()+"/metrics")
	case a.metricsSrv == nil:
		a.log.Warn("metrics are not served: with auth on, /metrics is off the API port; set --metrics-addr (or --metrics-public)")
	}

	serveErr := make(chan error, 1)
	go func() {
		if a.tls {
			serveErr <- a.srv.ServeTLS(a.ln, "", "")
			return
		}
		serveErr <- a.srv.Serve(a.ln)
	}()

	a.push.start(a.cfg, a.log)
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
		a.drain()
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
	if a.metricsSrv != nil {
		if serr := a.metricsSrv.Shutdown(sctx); serr != nil {
			a.metricsSrv.Close()
		}
	}
	<-metricsDone
	stopPrune()
	wg.Wait()
	a.push.stop() // before the store closes; a push it held is sent by any node after its lease
	if a.cluster != nil {
		a.cluster.stop() // before the store closes: a resync reads it
	}
	a.Hub.Close()
	a.API.Close() // parked streams: the hub ended them; this stops their goroutines
	if cerr := a.Store.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close store: %w", cerr))
	}
	a.close()
	if err == nil {
		a.log.Info("stopped")
	}
	return err
}

// drain turns /readyz to 503, refuses new streams, and closes the open ones spread over the drain
// window, while publishes and inbox requests are still served (a load balancer needs a moment to
// notice readiness). It returns when the streams are gone, or a little after the window.
func (a *App) drain() {
	n := a.Hub.Stats().Subscriptions
	a.log.Info("draining: new streams refused, open ones closing", "streams", n, "window", a.cfg.DrainWindow)
	start := time.Now()
	select {
	case <-a.Hub.Drain(a.cfg.DrainWindow):
		a.log.Info("drained", "streams", n, "took", time.Since(start).Round(time.Millisecond))
	case <-time.After(a.cfg.DrainWindow + a.cfg.WriteTimeout + time.Second):
		// A handler stuck in a write is bounded by the write timeout; this is a second guard.
		a.log.Warn("drain window over with streams still open; shutting down", "open", a.Hub.Stats().Subscriptions)
	}
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
