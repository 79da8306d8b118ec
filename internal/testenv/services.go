package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Defaults of the services on a development machine and in CI; HERALD_TEST_POSTGRES and
// HERALD_TEST_REDIS override them.
const (
	DefaultPostgres = "postgres://127.0.0.1:5432/test?sslmode=disable"
	DefaultRedis    = "redis://127.0.0.1:6379/0"
)

// Name returns a fresh, lower-case identifier with prefix: for a schema, a channel, a key
// prefix, so that tests never see each other's data and may run in parallel.
func Name(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// Postgres returns the URL of a PostgreSQL database whose search_path is a new, empty schema of
// this test's own, dropped when the test ends. It skips (fails in CI) without a server.
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv("HERALD_TEST_POSTGRES")
	if base == "" {
		base = DefaultPostgres
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	Need(t, err == nil, "PostgreSQL is not reachable at %s (%v); start it, or set HERALD_TEST_POSTGRES", redact(base), err)
	defer conn.Close(context.Background())
	schema := Name("herald_test")
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("HERALD_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Redis returns the URL of a Redis server. It skips (fails in CI) without one.
func Redis(t testing.TB) string {
	t.Helper()
	return reachable(t, "HERALD_TEST_REDIS", DefaultRedis, "Redis")
}

func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxx")
			return u.String()
		}
	}
	return strings.TrimSpace(s)
}

// DefaultNATS and DefaultRabbitMQ are the brokers on a development machine and in CI;
// HERALD_TEST_NATS and HERALD_TEST_RABBITMQ override them.
const (
	DefaultNATS     = "nats://127.0.0.1:4222"
	DefaultRabbitMQ = "amqp://guest:guest@127.0.0.1:5672/"
)

// NATS returns the URL of a NATS server. It skips (fails in CI) without one.
func NATS(t testing.TB) string {
	t.Helper()
	return reachable(t, "HERALD_TEST_NATS", DefaultNATS, "NATS")
}

// RabbitMQ returns the URL of a RabbitMQ server. It skips (fails in CI) without one.
func RabbitMQ(t testing.TB) string {
	t.Helper()
	return reachable(t, "HERALD_TEST_RABBITMQ", DefaultRabbitMQ, "RabbitMQ")
}

func reachable(t testing.TB, env, def, what string) string {
	t.Helper()
	u := os.Getenv(env)
	if u == "" {
		u = def
	}
	p, err := url.Parse(u)
	if err == nil {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", p.Host, 2*time.Second); err == nil {
			c.Close()
		}
	}
	Need(t, err == nil, "%s is not reachable at %s (%v); start it, or set %s", what, redact(u), err, env)
	return u
}

// CloseRabbitMQConnections closes, on the broker's side, the connections whose client named
// itself name (the Herald bus names its connections "herald:<channel>"): what a broker restart
// or a network cut does to them, without disturbing anyone else's. It runs rabbitmqctl, so the
// broker must be on this machine.
func CloseRabbitMQConnections(t testing.TB, name string) {
	t.Helper()
	_, err := exec.LookPath("rabbitmqctl")
	Need(t, err == nil, "rabbitmqctl is not installed (the outage test closes connections with it)")
	// The CLI reaches the broker through Erlang distribution, which on a busy machine now and
	// then gives up at once (exit status 69, "unavailable") while the broker serves everyone
	// else: asked again it answers. A few tries, each a full CLI run of about a second.
	var out []byte
	for try := 1; ; try++ {
		var stderr strings.Builder
		cmd := exec.Command("rabbitmqctl", "-q", "list_connections", "pid", "client_properties")
		cmd.Stderr = &stderr
		if out, err = cmd.Output(); err == nil {
			break
		}
		if try == 5 {
			t.Errorf("rabbitmqctl list_connections, %d tries: %v: %s", try, err, strings.TrimSpace(stderr.String()))
			return
		}
	}
	closed := 0
	for _, line := range strings.Split(string(out), "\n") {
		pid, props, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if ok && strings.Contains(props, `{"connection_name","`+name+`"}`) {
			if err := exec.Command("rabbitmqctl", "-q", "close_connection", pid, "test: cut").Run(); err == nil {
				closed++
			}
		}
	}
	if closed == 0 {
		t.Errorf("no connection named %s to close", name)
	}
}
