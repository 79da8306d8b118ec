package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
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
	u := os.Getenv("HERALD_TEST_REDIS")
	if u == "" {
		u = DefaultRedis
	}
	p, err := url.Parse(u)
	if err == nil {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", p.Host, 2*time.Second); err == nil {
			c.Close()
		}
	}
	Need(t, err == nil, "Redis is not reachable at %s (%v); start it, or set HERALD_TEST_REDIS", redact(u), err)
	return u
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
