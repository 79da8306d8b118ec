// Package config reads Herald's settings once, from flags, HERALD_* environment variables and an
// optional config file (in that order of precedence), and validates them before anything starts.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"
)

// Config is every setting of the server. Defaults are in Default.
type Config struct {
	Addr     string
	Insecure bool

	Store      string // sqlite:PATH
	SQLiteSync string // full | normal
	Bus        string // memory

	Heartbeat       time.Duration
	WriteTimeout    time.Duration
	ShutdownTimeout time.Duration
	Retry           time.Duration
	QueueSize       int
	// ReplayPage is how many notifications a replay reads per store query; not a flag, since only
	// tests have reason to change it (0: the API's default).
	ReplayPage int

	RetentionAge   time.Duration
	RetentionMax   int
	PruneInterval  time.Duration
	IdempotencyTTL time.Duration

	MaxConnectionsPerUser int
	MaxBody               int64
	MaxBatchBody          int64
	MaxPayload            int64
	MaxRecipients         int
	MaxBatch              int

	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int

	LogFormat string // text | json
	LogLevel  string // debug | info | warn | error
}

// Default returns the settings of a server started with no configuration: dev mode on loopback
// with an embedded SQLite file in the working directory.
func Default() Config {
	return Config{
		Addr:                  "127.0.0.1:8080",
		Store:                 "sqlite:herald.db",
		SQLiteSync:            "full",
		Bus:                   "memory",
		Heartbeat:             15 * time.Second,
		WriteTimeout:          10 * time.Second,
		ShutdownTimeout:       10 * time.Second,
		Retry:                 2 * time.Second,
		QueueSize:             256,
		RetentionAge:          30 * 24 * time.Hour,
		RetentionMax:          1000,
		PruneInterval:         time.Minute,
		IdempotencyTTL:        24 * time.Hour,
		MaxConnectionsPerUser: 16,
		MaxBody:               1 << 20,
		MaxBatchBody:          16 << 20,
		MaxPayload:            64 << 10,
		MaxRecipients:         1000,
		MaxBatch:              1000,
		ReadHeaderTimeout:     10 * time.Second,
		ReadTimeout:           30 * time.Second,
		IdleTimeout:           120 * time.Second,
		MaxHeaderBytes:        64 << 10,
		LogFormat:             "text",
		LogLevel:              "info",
	}
}

// FlagSet returns the flags of the serve command, bound to c (pre-filled with defaults).
func (c *Config) FlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address; without auth only a loopback address is allowed")
	fs.BoolVar(&c.Insecure, "insecure", c.Insecure, "allow a non-loopback address without auth (anyone may read any feed)")
	fs.StringVar(&c.Store, "store", c.Store, "store: sqlite:PATH")
	fs.StringVar(&c.SQLiteSync, "sqlite-sync", c.SQLiteSync, "SQLite durability: full (survives power loss) or normal (survives a crash of Herald)")
	fs.StringVar(&c.Bus, "bus", c.Bus, "bus between nodes: memory (single node)")
	fs.DurationVar(&c.Heartbeat, "heartbeat", c.Heartbeat, "interval of heartbeat comments on idle streams")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "deadline of each write to a stream; a client slower than this is dropped")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long shutdown waits for in-flight requests")
	fs.DurationVar(&c.Retry, "retry", c.Retry, "reconnection delay suggested to SSE clients")
	fs.IntVar(&c.QueueSize, "queue-size", c.QueueSize, "events buffered per stream before it counts as a slow consumer")
	fs.DurationVar(&c.RetentionAge, "retention", c.RetentionAge, "delete notifications older than this (0: keep regardless of age)")
	fs.IntVar(&c.RetentionMax, "retention-max", c.RetentionMax, "keep at most this many notifications per user and of broadcasts (0: no limit)")
	fs.DurationVar(&c.PruneInterval, "prune-interval", c.PruneInterval, "how often retention is enforced")
	fs.DurationVar(&c.IdempotencyTTL, "idempotency-ttl", c.IdempotencyTTL, "how long idempotency keys are remembered")
	fs.IntVar(&c.MaxConnectionsPerUser, "max-connections-per-user", c.MaxConnectionsPerUser, "open streams per user on this node (0: no limit)")
	fs.Int64Var(&c.MaxBody, "max-body", c.MaxBody, "bytes of a publish request body")
	fs.Int64Var(&c.MaxBatchBody, "max-batch-body", c.MaxBatchBody, "bytes of a batch publish request body")
	fs.Int64Var(&c.MaxPayload, "max-payload", c.MaxPayload, "bytes of one notification's data")
	fs.IntVar(&c.MaxRecipients, "max-recipients", c.MaxRecipients, "users in one notification's \"to\"")
	fs.IntVar(&c.MaxBatch, "max-batch", c.MaxBatch, "notifications in one batch")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", c.ReadHeaderTimeout, "time to read request headers")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", c.ReadTimeout, "time to read a whole request (streams are exempt once open)")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "keep-alive idle time")
	fs.IntVar(&c.MaxHeaderBytes, "max-header-bytes", c.MaxHeaderBytes, "bytes of request headers")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.String("config", "", "config file of \"name value\" lines (flags and HERALD_* variables win)")
	return fs
}

// Parse reads args and the environment into a validated Config.
func Parse(name string, args []string, stderr io.Writer) (Config, error) {
	c := Default()
	fs := c.FlagSet(name)
	fs.SetOutput(stderr)
	err := ff.Parse(fs, args,
		ff.WithEnvVarPrefix("HERALD"),
		ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(ff.PlainParser),
	)
	if err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return c, c.Validate()
}

// Validate reports every invalid setting at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr %q: %v", c.Addr, err)
	} else if !c.Insecure && !Loopback(c.Addr) {
		bad("addr %q is not a loopback address: with no auth configured (dev mode) anyone who reaches it "+
			"could read every feed; bind to 127.0.0.1, or pass --insecure if you really mean it", c.Addr)
	}
	if _, err := c.SQLitePath(); err != nil {
		errs = append(errs, err)
	}
	if c.SQLiteSync != "full" && c.SQLiteSync != "normal" {
		bad("sqlite-sync must be full or normal, not %q", c.SQLiteSync)
	}
	if c.Bus != "memory" {
		bad("bus %q: only \"memory\" (a single node) is supported by this build", c.Bus)
	}
	positive := map[string]time.Duration{
		"heartbeat": c.Heartbeat, "write-timeout": c.WriteTimeout, "shutdown-timeout": c.ShutdownTimeout,
		"retry": c.Retry, "prune-interval": c.PruneInterval, "idempotency-ttl": c.IdempotencyTTL,
		"read-header-timeout": c.ReadHeaderTimeout, "read-timeout": c.ReadTimeout, "idle-timeout": c.IdleTimeout,
	}
	for name, d := range positive {
		if d <= 0 {
			bad("%s must be positive, not %s", name, d)
		}
	}
	if c.RetentionAge < 0 {
		bad("retention must not be negative")
	}
	if c.RetentionMax < 0 {
		bad("retention-max must not be negative")
	}
	if c.MaxConnectionsPerUser < 0 {
		bad("max-connections-per-user must not be negative")
	}
	atLeast := func(name string, v, min int64) {
		if v < min {
			bad("%s must be at least %d, not %d", name, min, v)
		}
	}
	atLeast("queue-size", int64(c.QueueSize), 1)
	atLeast("max-body", c.MaxBody, 1024)
	atLeast("max-batch-body", c.MaxBatchBody, 1024)
	atLeast("max-payload", c.MaxPayload, 4)
	atLeast("max-recipients", int64(c.MaxRecipients), 1)
	atLeast("max-batch", int64(c.MaxBatch), 1)
	atLeast("max-header-bytes", int64(c.MaxHeaderBytes), 4096)
	if c.MaxPayload > c.MaxBody {
		bad("max-payload (%d) cannot exceed max-body (%d)", c.MaxPayload, c.MaxBody)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log-format must be text or json, not %q", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level must be debug, info, warn or error, not %q", c.LogLevel)
	}
	return errors.Join(errs...)
}

// SQLitePath returns the file of a sqlite: store.
func (c *Config) SQLitePath() (string, error) {
	path, ok := strings.CutPrefix(c.Store, "sqlite:")
	path = strings.TrimPrefix(path, "//")
	switch {
	case !ok:
		return "", fmt.Errorf("store %q: only sqlite:PATH is supported by this build", c.Store)
	case path == "":
		return "", fmt.Errorf("store %q: name a file, as in sqlite:herald.db", c.Store)
	}
	return path, nil
}

// Loopback reports whether addr's host only accepts local connections.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
