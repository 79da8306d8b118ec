// Package postgres is Herald's store for a cluster: any number of nodes share one PostgreSQL
// database.
//
// Correct ordering across nodes rests on one rule: an Append takes the row lock of every stream
// it writes (an upsert of the stream's head) before anything else and holds it to commit, in a
// fixed order. Sequence numbers are therefore gap-free, a lower one can never commit after a
// higher one of the same stream, and ids, taken after the locks, grow with sequence numbers
// within a stream. A reader that sees sequence n of a stream has seen everything before it.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store"
)

var _ herald.Store = (*Store)(nil)

// migrations/NNNN_name.sql are applied in order, each in its own transaction that also records
// its version in herald_schema_version, under an advisory lock so that nodes starting together
// migrate once.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Options configure a Store.
type Options struct {
	// OnCommit, when set, receives the notifications of every commit (see herald.CommitFunc).
	OnCommit herald.CommitFunc
	// PushDelay is how long after its commit a fallback push (herald.PushDefault) becomes due;
	// 0: at once.
	PushDelay time.Duration
	// NoPush queues no pushes: Web Push is off, and subscriptions registered while it was on
	// would otherwise fill the outbox with pushes nobody sends.
	NoPush bool
}

// Store is a herald.Store on PostgreSQL.
type Store struct {
	pool   *pgxpool.Pool
	opts   Options
	closed atomic.Bool
	group  *store.GroupCommit
	// identity is read at open; NewEpoch changes it.
	identity herald.Identity
}

// Open connects to the database at url (a postgres:// URL; pool settings such as
// pool_max_conns may be given in it) and brings its schema up to date.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, herald.Errorf(herald.EINVALID, "postgres: %v", redactErr(err))
	}
	if !strings.Contains(url, "pool_max_conns") {
		// Publishes hold a connection for a commit's round trips; the default (the number of
		// CPUs) would queue them on a small machine whose database is elsewhere.
		cfg.MaxConns = 16
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", redactErr(err))
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", redactErr(err))
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	identity, err := readIdentity(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{pool: pool, opts: opts, identity: identity}
	s.group = store.NewGroupCommit(maxGroup, s.commitGroup, opts.OnCommit)
	return s, nil
}

// redactErr keeps a password in a connection string out of an error message.
func redactErr(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("invalid connection string: " + pe.Unwrap().Error())
	}
	return err
}

// migrationLock is the advisory lock migrations run under.
const migrationLock = 0x6865726164 // "herald"

func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := store.Migrations(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	for _, m := range ms {
		if err := apply(ctx, pool, m, len(ms)); err != nil {
			return err
		}
	}
	return nil
}

// apply runs one migration unless the database has it, and refuses a database newer than this
// build.
func apply(ctx context.Context, pool *pgxpool.Pool, m store.Migration, newest int) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("postgres: migrate: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS herald_schema_version (version INT NOT NULL)`); err != nil {
			return fmt.Errorf("postgres: migrate: %w", err)
		}
		var version int
		err := tx.QueryRow(ctx, `SELECT version FROM herald_schema_version`).Scan(&version)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if _, err := tx.Exec(ctx, `INSERT INTO herald_schema_version VALUES (0)`); err != nil {
				return fmt.Errorf("postgres: migrate: %w", err)
			}
		case err != nil:
			return fmt.Errorf("postgres: migrate: %w", err)
		}
		switch {
		case version > newest:
			return herald.Errorf(herald.EINVALID, "postgres: database schema version %d is newer than this Herald understands (%d)", version, newest)
		case version >= m.Version:
			return nil
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("postgres: migration %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE herald_schema_version SET version = $1`, m.Version); err != nil {
			return fmt.Errorf("postgres: migration %s: %w", m.Name, err)
		}
		return nil
	})
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return herald.Errorf(herald.EUNAVAILABLE, "store is closed")
	}
	if err := s.pool.Ping(ctx); err != nil {
		return unavailable(err)
	}
	return nil
}

// Close lets the appends in flight finish, stops the writer loop and closes the pool.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.group.Close()
	s.pool.Close()
	return nil
}

// unavailable is every failure of the database: the caller may retry, here or on another node.
func unavailable(err error) error {
	return &herald.Error{Code: herald.EUNAVAILABLE, Message: "store unavailable", Err: err}
}

// check refuses work on a closed store: pgx would otherwise block on a closed pool or panic.
func (s *Store) check() error {
	if s.closed.Load() {
		return herald.Errorf(herald.EUNAVAILABLE, "store is closed")
	}
	return nil
}

// retryable reports whether a transaction failed for a reason a retry can overcome.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01": // serialization failure, deadlock detected
			return true
		}
	}
	return false
}

// keyLock is the advisory lock of an idempotency key: one request at a time resolves a key.
func keyLock(scope, key string) int64 {
	h := fnv.New64a()
	h.Write([]byte(scope))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return int64(h.Sum64())
}
