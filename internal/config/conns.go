package config

import (
	"net/url"
	"runtime"
	"strconv"
)

// MetricsConnections is how many connections the metrics listener (--metrics-addr) holds at
// once: scrapers and probes need a few, and a fixed bound keeps them out of the API's share of
// the open-file limit, and the API's connections out of theirs.
const MetricsConnections = 32

// minConnections is the least connection limit worth starting with: fewer would be refusing
// requests at the first burst of traffic.
const minConnections = 16

// FDReserve is the part of the open-file limit kept from the API's connections, by what holds
// it. The figures are upper bounds of what each part opens, so that connections at the limit
// never leave the store, the bus or the metrics listener without a descriptor.
type FDReserve struct {
	// Process: standard streams, the listeners, the Go runtime's poller, cgroup and /proc files
	// read by the runtime and the process metrics, log files, SQLite's temporary files.
	Process int
	// Outgoing: JWKS fetches and DNS lookups.
	Outgoing int
	// Parking: an epoll and an event descriptor per shard of parked streams.
	Parking int
	// Store: SQLite opens the database and its WAL per connection (the writer and the reader
	// pool) plus one shared-memory file; PostgreSQL uses its pool.
	Store int
	// Bus: Redis's pool and its subscription; one connection (and its replacement while it
	// reconnects) for NATS and RabbitMQ.
	Bus int
	// Metrics: the metrics listener's connections (MetricsConnections), with --metrics-addr.
	Metrics int
}

// Total is the whole reserve.
func (r FDReserve) Total() int {
	return r.Process + r.Outgoing + r.Parking + r.Store + r.Bus + r.Metrics
}

// FDReserve is what the store, bus and listeners c configures may open besides the API's
// connections. It mirrors the stores' and buses' own defaults: the SQLite reader pool of
// max(4, GOMAXPROCS), PostgreSQL's pool of 16 (or pool_max_conns in the URL), go-redis's pool of
// 10 per GOMAXPROCS (or pool_size in the URL).
func (c *Config) FDReserve() FDReserve {
	procs := runtime.GOMAXPROCS(0)
	r := FDReserve{Process: 24, Outgoing: 8, Parking: 2 * max(2, procs)}
	switch c.StoreKind() {
	case "postgres":
		r.Store = urlInt(c.Store, "pool_max_conns", 16)
	default:
		r.Store = 2*(max(4, procs)+1) + 1
	}
	switch c.BusKind() {
	case "redis":
		r.Bus = urlInt(c.Bus, "pool_size", 10*procs) + 1
	case "nats", "amqp":
		r.Bus = 2
	}
	if c.MetricsAddr != "" {
		r.Metrics = MetricsConnections
	}
	return r
}

// urlInt is the positive integer query parameter name of rawURL, or def.
func urlInt(rawURL, name string, def int) int {
	u, err := url.Parse(rawURL)
	if err != nil {
		return def
	}
	n, err := strconv.Atoi(u.Query().Get(name))
	if err != nil || n <= 0 {
		return def
	}
	return n
}

// ConnectionLimit is how many connections the API's listener holds at once:
// --max-tcp-connections, or by default the open-file limit less FDReserve; 0 (no limit) when
// the open-file limit is unknown or unbounded.
func (c *Config) ConnectionLimit() int {
	if c.MaxTCPConnections > 0 {
		return c.MaxTCPConnections
	}
	lim := OpenFileLimit()
	if lim == 0 {
		return 0
	}
	return max(0, lim-c.FDReserve().Total())
}

// validateConnections checks that the connection limit fits the open-file limit with the
// reserve kept, and leaves room above the stream limit for publishes and health checks.
func (c *Config) validateConnections(bad func(string, ...any)) {
	if c.FirstRequestTimeout <= 0 {
		bad("first-request-timeout must be positive, not %s", c.FirstRequestTimeout)
	}
	if c.MaxTCPConnections < 0 {
		bad("max-tcp-connections must not be negative")
		return
	}
	if c.MaxTCPConnections > 0 && c.MaxTCPConnections < minConnections {
		bad("max-tcp-connections must be at least %d, not %d", minConnections, c.MaxTCPConnections)
		return
	}
	if lim := OpenFileLimit(); lim > 0 {
		reserve := c.FDReserve().Total()
		switch room := lim - reserve; {
		case c.MaxTCPConnections > room:
			bad("max-tcp-connections %d does not fit the open-file limit: %d descriptors less %d kept for the store, bus "+
				"and metrics listener leave %d; raise the limit (ulimit -n, LimitNOFILE=, the container's nofile) or lower it",
				c.MaxTCPConnections, lim, reserve, room)
			return
		case c.MaxTCPConnections == 0 && room < minConnections:
			bad("the open-file limit %d leaves %d connections once %d descriptors are kept for the store, bus and metrics "+
				"listener; raise it (ulimit -n, LimitNOFILE=, the container's nofile) to at least %d",
				lim, max(0, room), reserve, reserve+1024)
			return
		}
	}
	if n := c.ConnectionLimit(); n > 0 && c.MaxConnections >= n {
		bad("max-connections (%d streams) must be below the connection limit (%d, --max-tcp-connections), so that "+
			"publishes and health checks find a connection while streams are at their limit", c.MaxConnections, n)
	}
}
