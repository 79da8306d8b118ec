// Package config reads Herald's settings once, from flags, HERALD_* environment variables and an
// optional config file (in that order of precedence), and validates them before anything starts.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"
)

// Config is every setting of the server. Defaults are in Default.
type Config struct {
	Addr     string
	Insecure bool
	// AllowedHosts are host names a dev-mode server answers besides the loopback ones
	// (comma-separated); see AllowedHostList.
	AllowedHosts string

	Store          string // sqlite:PATH | postgres://...
	SQLiteSync     string // full | normal
	Bus            string // memory | redis://… | nats://… | amqp://…
	BusChannel     string // the channel (subject, exchange) the nodes of one cluster share
	ResyncInterval time.Duration
	// BusSettle is how long a node holds live delivery after it subscribes to the bus again,
	// before its resync, so that nodes back a little later are read in publish order.
	BusSettle time.Duration
	ReadyzBus bool // /readyz fails while the bus is unreachable

	Heartbeat       time.Duration
	WriteTimeout    time.Duration
	ShutdownTimeout time.Duration
	DrainWindow     time.Duration
	Retry           time.Duration
	QueueSize       int
	// StreamBuffer bounds the bytes one stream holds for its client (queued events and what its
	// socket has not taken); beyond it the stream catches up from the store, or, if its client
	// stopped reading, is cut as a slow consumer.
	StreamBuffer int
	// ReplayPage is how many notifications a replay reads per store query; not a flag, since only
	// tests have reason to change it (0: the API's default).
	ReplayPage int
	// Version is the build's version, set by the binary (not a flag).
	Version string

	RetentionAge   time.Duration
	RetentionMax   int
	PruneInterval  time.Duration
	IdempotencyTTL time.Duration

	MaxConnectionsPerUser int
	// ParkStreams serves idle plain-HTTP/1 streams without a goroutine each (Linux).
	ParkStreams   bool
	MaxBody       int64
	MaxBatchBody  int64
	MaxPayload    int64
	MaxRecipients int
	MaxBatch      int
	// Publish work (issue 15 §2): the users one request names, and the notifications all
	// publishes being committed hold at once (0: no limit).
	MaxRequestRecipients int
	MaxPublishInflight   int
	// MaxPreferenceRules bounds the mute rules of one user (issue 17 §3).
	MaxPreferenceRules int
	// Topics (issue 17 §3): the users one topic may have (at most MaxTopicRecipients: a
	// publish holds its fan-out in memory), the topics one user may follow, and the topic
	// prefixes subscribers may subscribe themselves to (comma-separated; empty: none).
	MaxTopicSubscribers int
	MaxUserTopics       int
	TopicSelfSubscribe  string

	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int

	LogFormat string // text | json
	LogLevel  string // debug | info | warn | error
	PprofAddr string // loopback listener for net/http/pprof; empty: off
	Web       bool   // serve the demo inbox page and herald.js at /

	// MetricsAddr is a listener of its own serving /metrics, /healthz and /readyz; empty: off.
	MetricsAddr string
	// MetricsPublic also serves /metrics on Addr when auth is on (dev mode always does).
	MetricsPublic bool

	// Authentication. Setting any credential leaves dev mode.
	JWTSecret        string // HS256 secret; prefer JWTSecretFile or the environment
	JWTSecretFile    string
	JWTPublicKeys    string // PEM file of public keys
	JWKSURL          string
	JWKSRefresh      time.Duration
	JWTIssuer        string
	JWTAudience      string
	JWTLeeway        time.Duration
	PublishScope     string
	PublisherKeys    string // comma-separated name=sha256:<hex>
	PublisherKeyFile string
	AuthCookie       string
	AllowQueryToken  bool

	CORSOrigins    string // comma-separated origins allowed to call from a browser
	PublishRate    float64
	PublishBurst   int
	MaxConnections int

	// MaxTCPConnections caps the connections open at once on Addr, whatever they carry (streams,
	// requests, nothing yet); 0: the open-file limit less FDReserve (see ConnectionLimit).
	MaxTCPConnections int
	// FirstRequestTimeout is how long a new connection has to deliver its first request's
	// header (a TLS handshake included) before it is closed.
	FirstRequestTimeout time.Duration

	TLSCert string
	TLSKey  string

	PushConfig // Web Push (push.go)
}

// MaxTopicRecipients is the most subscribers --max-topic-subscribers may allow: a topic publish
// reads them all into memory for its commit (internal/store's MaxTopicRecipients).
const MaxTopicRecipients = 100_000

var topicPrefix = regexp.MustCompile(`^[A-Za-z0-9_.:/-]{1,255}$`)

// SelfSubscribePrefixes returns the topic prefixes open to self-service (Validate checks them).
func (c *Config) SelfSubscribePrefixes() []string { return splitComma(c.TopicSelfSubscribe) }

// Default returns the settings of a server started with no configuration: dev mode on loopback
// with an embedded SQLite file in the working directory.
func Default() Config {
	return Config{
		Addr:                  "127.0.0.1:8080",
		Store:                 "sqlite:herald.db",
		SQLiteSync:            "full",
		Bus:                   "memory",
		BusChannel:            "herald",
		ResyncInterval:        10 * time.Second,
		BusSettle:             time.Second,
		ReadyzBus:             true,
		Web:                   true,
		Heartbeat:             15 * time.Second,
		WriteTimeout:          10 * time.Second,
		ShutdownTimeout:       10 * time.Second,
		DrainWindow:           10 * time.Second,
		Retry:                 2 * time.Second,
		QueueSize:             256,
		StreamBuffer:          256 << 10,
		RetentionAge:          30 * 24 * time.Hour,
		RetentionMax:          1000,
		PruneInterval:         time.Minute,
		IdempotencyTTL:        24 * time.Hour,
		MaxConnectionsPerUser: 16,
		ParkStreams:           true,
		MaxBody:               1 << 20,
		MaxBatchBody:          16 << 20,
		MaxPayload:            64 << 10,
		MaxRecipients:         1000,
		MaxBatch:              1000,
		MaxRequestRecipients:  100_000,
		MaxPublishInflight:    200_000,
		MaxPreferenceRules:    100,
		MaxTopicSubscribers:   MaxTopicRecipients,
		MaxUserTopics:         1000,
		ReadHeaderTimeout:     10 * time.Second,
		ReadTimeout:           30 * time.Second,
		IdleTimeout:           120 * time.Second,
		MaxHeaderBytes:        64 << 10,
		LogFormat:             "text",
		LogLevel:              "info",
		JWKSRefresh:           time.Hour,
		JWTLeeway:             10 * time.Second,
		PublishScope:          "herald:publish",
		AuthCookie:            "herald_token",
		MaxConnections:        defaultMaxConnections(),
		FirstRequestTimeout:   5 * time.Second,
		PushConfig:            defaultPush(),
	}
}

// AuthEnabled reports whether any credential is configured; without one the server runs in dev
// mode.
func (c *Config) AuthEnabled() bool {
	return c.JWTSecret != "" || c.JWTSecretFile != "" || c.JWTPublicKeys != "" || c.JWKSURL != "" ||
		c.PublisherKeys != "" || c.PublisherKeyFile != ""
}

// MetricsOnAPI reports whether /metrics is served on Addr: in dev mode, where everything there
// is open anyway, or when the operator asks with --metrics-public.
func (c *Config) MetricsOnAPI() bool { return !c.AuthEnabled() || c.MetricsPublic }

// CORSOriginList returns the allowed browser origins, normalized as browsers send them in the
// Origin header: lower-case scheme and host, no trailing slash. Invalid entries are left out
// (Validate reports them).
func (c *Config) CORSOriginList() []string {
	var out []string
	for _, o := range splitComma(c.CORSOrigins) {
		if n, err := normalizeOrigin(o); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// normalizeOrigin checks that o is an origin, scheme://host[:port], and returns it lower-cased.
// A "*" anywhere is refused: some CORS implementations read it as a wildcard, and with
// credentials a wildcard lets any web page read a visitor's feed.
func normalizeOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	switch {
	case strings.Contains(o, "*"):
		return "", errors.New("list origins explicitly; a wildcard would let any matching web page use a visitor's cookie")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return "", errors.New("not an origin like https://app.example.com")
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// FlagSet returns the flags of the serve command, bound to c (pre-filled with defaults).
func (c *Config) FlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address; without auth only a loopback address is allowed")
	fs.BoolVar(&c.Insecure, "insecure", c.Insecure, "allow a non-loopback address without auth (anyone may read any feed); dev mode then also answers a Host that is an IP address")
	fs.StringVar(&c.AllowedHosts, "allowed-hosts", c.AllowedHosts, "in dev mode, comma-separated host names answered besides localhost, 127.0.0.1 and [::1] (other Host headers get 403, against DNS rebinding)")
	fs.StringVar(&c.Store, "store", c.Store, "store: sqlite:PATH (one node), or postgres://… (a cluster; pool_max_conns=N in the URL sizes the pool)")
	fs.StringVar(&c.SQLiteSync, "sqlite-sync", c.SQLiteSync, "SQLite durability: full (survives power loss) or normal (survives a crash of Herald)")
	fs.StringVar(&c.Bus, "bus", c.Bus, "bus between nodes: memory (a single node), redis://…, nats://… or amqp://…")
	fs.StringVar(&c.BusChannel, "bus-channel", c.BusChannel, "bus channel the nodes of one cluster share (clusters sharing a broker need different ones)")
	fs.DurationVar(&c.ResyncInterval, "resync-interval", c.ResyncInterval, "in a cluster, how often each node compares its open streams with the store, to deliver what the bus lost")
	fs.DurationVar(&c.BusSettle, "bus-settle", c.BusSettle, "in a cluster, how long a node holds live delivery after the bus comes back before it reads what was missed, so that the commits of nodes back later are delivered in publish order (0: no wait)")
	fs.BoolVar(&c.ReadyzBus, "readyz-bus", c.ReadyzBus, "in a cluster, /readyz answers 503 while the bus is unreachable (false: nodes stay ready, delivering between nodes from the store every second)")
	fs.DurationVar(&c.Heartbeat, "heartbeat", c.Heartbeat, "interval of heartbeat comments on idle streams")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "deadline of each write to a stream; a client slower than this is dropped")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long shutdown waits for in-flight requests")
	fs.DurationVar(&c.DrainWindow, "drain-window", c.DrainWindow, "on SIGTERM, open streams are closed at random moments over this window, so their clients do not reconnect elsewhere all at once")
	fs.DurationVar(&c.Retry, "retry", c.Retry, "reconnection delay suggested to SSE clients")
	fs.IntVar(&c.QueueSize, "queue-size", c.QueueSize, "events buffered per stream before it counts as a slow consumer")
	fs.IntVar(&c.StreamBuffer, "stream-buffer", c.StreamBuffer, "bytes one stream holds for its client (queued events and what its socket has not taken); beyond it the stream reads the store, or is cut as a slow consumer if its client stopped reading")
	fs.DurationVar(&c.RetentionAge, "retention", c.RetentionAge, "delete notifications older than this (0: keep regardless of age)")
	fs.IntVar(&c.RetentionMax, "retention-max", c.RetentionMax, "keep at most this many notifications per user and of broadcasts (0: no limit)")
	fs.DurationVar(&c.PruneInterval, "prune-interval", c.PruneInterval, "how often retention is enforced")
	fs.DurationVar(&c.IdempotencyTTL, "idempotency-ttl", c.IdempotencyTTL, "how long idempotency keys are remembered")
	fs.IntVar(&c.MaxConnectionsPerUser, "max-connections-per-user", c.MaxConnectionsPerUser, "open streams per user on this node (0: no limit)")
	fs.BoolVar(&c.ParkStreams, "park-streams", c.ParkStreams, "serve idle streams over plain HTTP/1 from a few shared goroutines (epoll, Linux) instead of one goroutine each: about a tenth of the memory (false: one goroutine per stream)")
	fs.Int64Var(&c.MaxBody, "max-body", c.MaxBody, "bytes of a publish request body")
	fs.Int64Var(&c.MaxBatchBody, "max-batch-body", c.MaxBatchBody, "bytes of a batch publish request body")
	fs.Int64Var(&c.MaxPayload, "max-payload", c.MaxPayload, "bytes of one notification's data")
	fs.IntVar(&c.MaxRecipients, "max-recipients", c.MaxRecipients, "users in one notification's \"to\"")
	fs.IntVar(&c.MaxBatch, "max-batch", c.MaxBatch, "notifications in one batch")
	fs.IntVar(&c.MaxRequestRecipients, "max-request-recipients", c.MaxRequestRecipients, "users one publish or batch request names, all its notifications together (a broadcast counts one); a larger request gets 413")
	fs.IntVar(&c.MaxPreferenceRules, "max-preference-rules", c.MaxPreferenceRules, "mute rules of one user, all channels together; a larger PUT of preferences gets 413")
	fs.IntVar(&c.MaxPublishInflight, "max-publish-inflight", c.MaxPublishInflight, "notifications all publish requests being committed may hold at once; beyond it a request waits a second, then gets 503 (0: no limit)")
	fs.IntVar(&c.MaxTopicSubscribers, "max-topic-subscribers", c.MaxTopicSubscribers, fmt.Sprintf("users one topic may have; a subscribe beyond gets 409 (at most %d, and at most --max-request-recipients: one publish reaches them all)", MaxTopicRecipients))
	fs.IntVar(&c.MaxUserTopics, "max-user-topics", c.MaxUserTopics, "topics one user may be subscribed to; a subscribe beyond gets 409 (0: no limit)")
	fs.StringVar(&c.TopicSelfSubscribe, "topic-self-subscribe", c.TopicSelfSubscribe, "comma-separated topic prefixes (such as public/,status:) a subscriber may subscribe itself to, with PUT /v1/me/topics/{topic} (empty: none; leaving a topic is always allowed)")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", c.ReadHeaderTimeout, "time to read request headers")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", c.ReadTimeout, "time to read a whole request (streams are exempt once open)")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "keep-alive idle time")
	fs.IntVar(&c.MaxHeaderBytes, "max-header-bytes", c.MaxHeaderBytes, "bytes of request headers")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.BoolVar(&c.Web, "web", c.Web, "serve the demo inbox page at /, the browser client at /herald.js and the <herald-inbox> element at /herald-inbox.js")
	fs.StringVar(&c.PprofAddr, "pprof-addr", c.PprofAddr, "serve net/http/pprof on this loopback address (empty: off)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "serve /metrics, /healthz and /readyz on this address of their own, such as 127.0.0.1:9090 or an internal interface (empty: off)")
	fs.BoolVar(&c.MetricsPublic, "metrics-public", c.MetricsPublic, "with auth on, also serve /metrics on --addr, to anyone who reaches it (dev mode always does)")
	fs.StringVar(&c.JWTSecret, "jwt-secret", c.JWTSecret, "HS256 secret of subscriber and publisher tokens, at least 32 bytes (prefer HERALD_JWT_SECRET or --jwt-secret-file: flags show in process lists)")
	fs.StringVar(&c.JWTSecretFile, "jwt-secret-file", c.JWTSecretFile, "file holding the HS256 secret")
	fs.StringVar(&c.JWTPublicKeys, "jwt-public-keys", c.JWTPublicKeys, "PEM file of public keys verifying RS*/PS*, ES* and EdDSA tokens")
	fs.StringVar(&c.JWKSURL, "jwks-url", c.JWKSURL, "JSON Web Key Set URL of an identity provider (https)")
	fs.DurationVar(&c.JWKSRefresh, "jwks-refresh", c.JWKSRefresh, "how often the JWKS is fetched again (also on an unknown key id)")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", c.JWTIssuer, "required iss of tokens (empty: not checked)")
	fs.StringVar(&c.JWTAudience, "jwt-audience", c.JWTAudience, "required aud of tokens (empty: not checked)")
	fs.DurationVar(&c.JWTLeeway, "jwt-leeway", c.JWTLeeway, "clock skew allowed on exp, nbf and iat")
	fs.StringVar(&c.PublishScope, "publish-scope", c.PublishScope, "scope a token needs to publish")
	fs.StringVar(&c.PublisherKeys, "publisher-keys", c.PublisherKeys, "publisher API keys as comma-separated name=sha256:<hex> hashes (herald keygen prints one)")
	fs.StringVar(&c.PublisherKeyFile, "publisher-key-file", c.PublisherKeyFile, "file of publisher API keys, one name=sha256:<hex> or name=<key> per line")
	fs.StringVar(&c.AuthCookie, "auth-cookie", c.AuthCookie, "cookie that may carry a subscriber token (how a browser EventSource authenticates)")
	fs.BoolVar(&c.AllowQueryToken, "allow-query-token", c.AllowQueryToken, "accept a subscriber token in ?access_token= (it can leak through proxy logs and browser history)")
	fs.StringVar(&c.CORSOrigins, "cors-origins", c.CORSOrigins, "comma-separated origins allowed to call the API from a browser, with credentials")
	fs.Float64Var(&c.PublishRate, "publish-rate", c.PublishRate, "notifications a second a publisher may create, one per user (a broadcast counts one), not requests (0: no limit)")
	fs.IntVar(&c.PublishBurst, "publish-burst", c.PublishBurst, "notifications a publisher may create at once, so the most one request may create (0: twice --publish-rate)")
	fs.IntVar(&c.MaxConnections, "max-connections", c.MaxConnections, "open streams on this server; the next gets 503 (0: no limit; default: the open-file limit less 1024)")
	fs.IntVar(&c.MaxTCPConnections, "max-tcp-connections", c.MaxTCPConnections, "connections open at once on --addr, streams and idle ones alike; at the limit a new one displaces one that is not serving a request, or gets 503 (0: the open-file limit less what the store, bus and metrics listener need)")
	fs.DurationVar(&c.FirstRequestTimeout, "first-request-timeout", c.FirstRequestTimeout, "time a new connection has to send its first request's headers (TLS handshake included) before it is closed")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "certificate file (PEM) to serve HTTPS and HTTP/2")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "private key file (PEM) of --tls-cert")
	c.pushFlags(fs)
	fs.String("config", "", "config file of \"name value\" lines (flags and HERALD_* variables win)")
	return fs
}

// Parse reads args and the environment into a validated Config.
func Parse(name string, args []string, stderr io.Writer) (Config, error) {
	c := Default()
	fs := c.FlagSet(name)
	fs.SetOutput(stderr)
	if err := ParseArgs(fs, args); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// ParseArgs parses args into fs, then the HERALD_* environment and the --config file for the
// flags args did not set. Commands other than serve use it with their own flags added to
// Config's.
func ParseArgs(fs *flag.FlagSet, args []string) error {
	err := ff.Parse(fs, args,
		ff.WithEnvVarPrefix("HERALD"),
		ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(ff.PlainParser),
	)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return nil
}

// ReadJWTSecret returns the HS256 secret, from --jwt-secret or the file --jwt-secret-file names
// (without its trailing newline); "" when neither is set.
func (c *Config) ReadJWTSecret() (string, error) {
	if c.JWTSecretFile == "" {
		return c.JWTSecret, nil
	}
	b, err := os.ReadFile(c.JWTSecretFile)
	if err != nil {
		return "", fmt.Errorf("jwt-secret-file: %w", err)
	}
	secret := strings.TrimRight(string(b), "\r\n")
	if len(secret) < 32 {
		return "", fmt.Errorf("jwt-secret-file %s: the secret must be at least 32 bytes", c.JWTSecretFile)
	}
	return secret, nil
}

// Validate reports every invalid setting at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr %q: %v", c.Addr, err)
	} else if !c.AuthEnabled() && !c.Insecure && !Loopback(c.Addr) {
		bad("addr %q is not a loopback address: with no auth configured (dev mode) anyone who reaches it "+
			"could read every feed; configure auth (--jwt-secret-file, --jwt-public-keys or --jwks-url), bind to "+
			"127.0.0.1, or pass --insecure if you really mean it", c.Addr)
	}
	c.validateAuth(bad)
	c.validateHosts(bad)
	c.validateMetrics(bad)
	c.validateConnections(bad)
	c.validatePush(bad)
	switch c.StoreKind() {
	case "sqlite":
		if path, err := c.SQLitePath(); err != nil {
			errs = append(errs, err)
		} else if inMemory(path) {
			// Each of the store's connections would open a database of its own, and nothing
			// would survive a restart: an acknowledged publish must be durable.
			bad("store %q: an in-memory SQLite database is not durable; name a file, as in sqlite:herald.db", c.Store)
		} else if err := sqliteDirExists(path); err != nil {
			bad("store %q: %v", c.Store, err)
		}
	case "postgres":
		if u, err := url.Parse(c.Store); err != nil || u.Host == "" && u.Query().Get("host") == "" {
			bad("store: a postgres:// URL names a host, as in postgres://user@db.example.com/herald")
		}
	default:
		bad("store %q: use sqlite:PATH or postgres://…", redactURL(c.Store))
	}
	if c.SQLiteSync != "full" && c.SQLiteSync != "normal" {
		bad("sqlite-sync must be full or normal, not %q", c.SQLiteSync)
	}
	switch c.BusKind() {
	case "memory":
	case "redis", "nats", "amqp":
		for _, one := range strings.Split(c.Bus, ",") { // NATS takes several servers
			if u, err := url.Parse(strings.TrimSpace(one)); err != nil || u.Host == "" {
				bad("bus: a %s URL names a host, as in %s", c.BusKind(), map[string]string{
					"redis": "redis://redis.example.com:6379/0", "nats": "nats://nats.example.com:4222",
					"amqp": "amqp://user:password@rabbitmq.example.com:5672/"}[c.BusKind()])
				break
			}
		}
	default:
		bad("bus %q: use memory (a single node), redis://…, nats://… or amqp://…", redactURL(c.Bus))
	}
	if c.BusChannel == "" || strings.ContainsAny(c.BusChannel, " \t*?>") {
		bad("bus-channel %q must be a plain name", c.BusChannel)
	}
	if c.ResyncInterval <= 0 {
		bad("resync-interval must be positive, not %s", c.ResyncInterval)
	}
	if c.BusSettle < 0 || c.BusSettle > time.Minute {
		bad("bus-settle must be from 0 to 1m, not %s", c.BusSettle)
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
	atLeast("stream-buffer", int64(c.StreamBuffer), c.MaxPayload+1024) // one event of the largest payload
	atLeast("max-body", c.MaxBody, 1024)
	atLeast("max-batch-body", c.MaxBatchBody, 1024)
	atLeast("max-payload", c.MaxPayload, 4)
	atLeast("max-recipients", int64(c.MaxRecipients), 1)
	atLeast("max-batch", int64(c.MaxBatch), 1)
	atLeast("max-preference-rules", int64(c.MaxPreferenceRules), 1)
	if c.MaxRequestRecipients < c.MaxRecipients {
		bad("max-request-recipients (%d) must be at least max-recipients (%d): a notification to that many users could never be sent", c.MaxRequestRecipients, c.MaxRecipients)
	}
	if c.MaxTopicSubscribers < 1 || c.MaxTopicSubscribers > MaxTopicRecipients {
		bad("max-topic-subscribers (%d) must be from 1 to %d: a topic publish holds its recipients in memory until its commit", c.MaxTopicSubscribers, MaxTopicRecipients)
	} else if c.MaxTopicSubscribers > c.MaxRequestRecipients {
		bad("max-topic-subscribers (%d) must be at most max-request-recipients (%d): a publish to a full topic could never be sent", c.MaxTopicSubscribers, c.MaxRequestRecipients)
	}
	atLeast("max-user-topics", int64(c.MaxUserTopics), 0)
	for _, p := range splitComma(c.TopicSelfSubscribe) {
		// A prefix is the start of a topic name: of its characters, and not empty (which would
		// open every topic, private ones included, to anyone).
		if !topicPrefix.MatchString(p) {
			bad("topic-self-subscribe: %q is not the start of a topic name (1-255 characters of A-Z a-z 0-9 _ . : / -)", p)
		}
	}
	if c.MaxPublishInflight != 0 && c.MaxPublishInflight < c.MaxRequestRecipients {
		bad("max-publish-inflight (%d) must be 0 (no limit) or at least max-request-recipients (%d): the largest request allowed must fit", c.MaxPublishInflight, c.MaxRequestRecipients)
	}
	atLeast("max-header-bytes", int64(c.MaxHeaderBytes), 4096)
	if c.MaxPayload > c.MaxBody {
		bad("max-payload (%d) cannot exceed max-body (%d)", c.MaxPayload, c.MaxBody)
	}
	if c.PublishRate < 0 {
		bad("publish-rate must not be negative")
	}
	if c.PublishBurst < 0 {
		bad("publish-burst must not be negative")
	}
	if c.MaxConnections < 0 {
		bad("max-connections must not be negative")
	}
	if c.DrainWindow < 0 {
		bad("drain-window must not be negative")
	}
	if c.PprofAddr != "" {
		if _, _, err := net.SplitHostPort(c.PprofAddr); err != nil {
			bad("pprof-addr %q: %v", c.PprofAddr, err)
		} else if !Loopback(c.PprofAddr) {
			bad("pprof-addr %q must be a loopback address: profiles show the server's internals", c.PprofAddr)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls-cert and tls-key go together")
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

// hostNamePattern is a DNS name: dot-separated labels of letters, digits and inner hyphens.
var hostNamePattern = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// validateHosts checks --allowed-hosts: plain names or addresses, and only where they mean
// something.
func (c *Config) validateHosts(bad func(string, ...any)) {
	if c.AllowedHosts == "" {
		return
	}
	if c.AuthEnabled() {
		// The list restricts nothing with auth on; accepting it would suggest it does.
		bad("allowed-hosts applies only in dev mode: with auth configured every Host is answered; remove it")
		return
	}
	for _, h := range splitComma(c.AllowedHosts) {
		name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), ".")
		if _, err := netip.ParseAddr(name); err != nil && !hostNamePattern.MatchString(name) {
			bad("allowed-hosts: %q is not a host name or address (list names exactly, without a port, scheme or wildcard)", h)
		}
	}
}

// AllowedHostList returns --allowed-hosts as a dev-mode server compares them with a Host header:
// lower-case, without brackets around an IPv6 address or a trailing dot.
func (c *Config) AllowedHostList() []string {
	var out []string
	for _, h := range splitComma(c.AllowedHosts) {
		h = strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), ".")
		out = append(out, strings.ToLower(h))
	}
	return out
}

// validateMetrics checks --metrics-addr: a listener of its own, held to the same loopback rule as
// --addr in dev mode.
func (c *Config) validateMetrics(bad func(string, ...any)) {
	if c.MetricsAddr == "" {
		return
	}
	_, port, err := net.SplitHostPort(c.MetricsAddr)
	if err != nil {
		bad("metrics-addr %q: %v (use host:port, as in 127.0.0.1:9090 or :9090)", c.MetricsAddr, err)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("metrics-addr %q: the port must be a number from 0 to 65535", c.MetricsAddr)
		return
	}
	switch {
	case !c.AuthEnabled() && !c.Insecure && !Loopback(c.MetricsAddr):
		bad("metrics-addr %q is not a loopback address: with no auth configured (dev mode) Herald listens only on "+
			"loopback; bind it to 127.0.0.1, configure auth, or pass --insecure", c.MetricsAddr)
	case port != "0" && (c.MetricsAddr == c.Addr || c.MetricsAddr == c.PprofAddr):
		bad("metrics-addr %q is already the address of --addr or --pprof-addr; give it a port of its own", c.MetricsAddr)
	}
}

func (c *Config) validateAuth(bad func(string, ...any)) {
	if c.JWTSecret != "" && c.JWTSecretFile != "" {
		bad("jwt-secret and jwt-secret-file are two ways of giving one secret; use one")
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		bad("jwt-secret must be at least 32 bytes")
	}
	if c.AuthEnabled() && c.JWTSecret == "" && c.JWTSecretFile == "" && c.JWTPublicKeys == "" && c.JWKSURL == "" {
		bad("publisher keys are configured but nothing verifies subscriber tokens: set jwt-secret-file, jwt-public-keys or jwks-url")
	}
	if c.JWKSURL != "" {
		u, err := url.Parse(c.JWKSURL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			bad("jwks-url %q is not an http(s) URL", c.JWKSURL)
		case u.Scheme == "http" && !Loopback(net.JoinHostPort(u.Hostname(), "0")):
			bad("jwks-url %q must use https: keys fetched in the clear could be replaced on the way", c.JWKSURL)
		}
	}
	if c.JWKSRefresh <= 0 {
		bad("jwks-refresh must be positive, not %s", c.JWKSRefresh)
	}
	if c.JWTLeeway < 0 || c.JWTLeeway > 5*time.Minute {
		bad("jwt-leeway must be between 0 and 5m, not %s", c.JWTLeeway)
	}
	if strings.TrimSpace(c.PublishScope) == "" || strings.ContainsAny(c.PublishScope, " \t") {
		bad("publish-scope must be one word, not %q", c.PublishScope)
	}
	if c.AuthCookie == "" || strings.ContainsAny(c.AuthCookie, " \t;,=\"") {
		bad("auth-cookie %q is not a valid cookie name", c.AuthCookie)
	}
	for _, o := range splitComma(c.CORSOrigins) {
		if _, err := normalizeOrigin(o); err != nil {
			bad("cors-origins: %q: %v", o, err)
		}
	}
	if c.JWKSURL != "" && (c.JWTAudience == "" || c.JWTIssuer == "") {
		bad("jwks-url needs jwt-issuer and jwt-audience: an identity provider signs tokens for every application it serves, " +
			"and without them a token issued to another application would be accepted here")
	}
}

// StoreKind is "sqlite", "postgres", or "" for anything else.
func (c *Config) StoreKind() string {
	switch {
	case strings.HasPrefix(c.Store, "sqlite:"):
		return "sqlite"
	case strings.HasPrefix(c.Store, "postgres://"), strings.HasPrefix(c.Store, "postgresql://"):
		return "postgres"
	}
	return ""
}

// BusKind is "memory", "redis", "nats", "amqp", or "" for anything else.
func (c *Config) BusKind() string {
	switch {
	case c.Bus == "memory":
		return "memory"
	case strings.HasPrefix(c.Bus, "redis://"), strings.HasPrefix(c.Bus, "rediss://"):
		return "redis"
	case strings.HasPrefix(c.Bus, "nats://"), strings.HasPrefix(c.Bus, "tls://"):
		return "nats"
	case strings.HasPrefix(c.Bus, "amqp://"), strings.HasPrefix(c.Bus, "amqps://"):
		return "amqp"
	}
	return ""
}

// Clustered reports whether other nodes may write to the same store, so that this node must
// learn of their commits: through the bus, and the periodic resync.
func (c *Config) Clustered() bool { return c.StoreKind() == "postgres" || c.BusKind() != "memory" }

// redactURL hides the password of a URL, for messages and logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if i := strings.Index(s, "@"); i >= 0 {
			if j := strings.Index(s, "://"); j >= 0 && j < i {
				return s[:j+3] + "…@" + s[i+1:]
			}
		}
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxx")
	}
	return u.String()
}

// RedactedStore is the store setting without its password.
func (c *Config) RedactedStore() string { return redactURL(c.Store) }

// RedactedBus is the bus setting without its password.
func (c *Config) RedactedBus() string { return redactURL(c.Bus) }

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

// inMemory reports whether a SQLite path names an in-memory database rather than a file.
func inMemory(path string) bool {
	return path == ":memory:" || strings.HasPrefix(path, "file::memory:") || strings.Contains(path, "mode=memory")
}

// sqliteDirExists checks that the directory of a SQLite file exists: SQLite creates the file but
// not its directory, and fails with only "unable to open database file" when it is missing.
func sqliteDirExists(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("the directory %s does not exist (create it first)", dir)
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
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
