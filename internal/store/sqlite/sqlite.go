// Package sqlite is Herald's embedded store: one file, no server, durable on commit.
//
// SQLite allows one writer at a time, so the store owns exactly one writer connection and feeds
// it through a group-commit loop: publishes that arrive while a commit is being made to disk are
// committed together by the next one, which is what lets many concurrent publishers share each
// fsync. Reads use a separate pool of read-only connections, which WAL lets run beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

var _ herald.Store = (*Store)(nil)

// migrations/NNNN_name.sql are applied in order; PRAGMA user_version holds the number of the
// last one applied, so a database is upgraded in place and one from a newer Herald is refused.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// schemaVersion is the number of the newest migration.
var schemaVersion = len(mustMigrations())

type migration struct {
	version int
	name    string
	stmts   []string
}

func mustMigrations() []migration {
	ms, err := loadMigrations()
	if err != nil {
		panic(err) // the files are embedded: a bad one fails every test
	}
	return ms
}

func loadMigrations() ([]migration, error) {
	files, err := store.Migrations(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	var ms []migration
	for _, f := range files {
		// The driver runs one statement at a time.
		m := migration{version: f.Version, name: f.Name}
		for _, stmt := range strings.Split(f.SQL, ";\n") {
			if strings.TrimSpace(stripComments(stmt)) != "" {
				m.stmts = append(m.stmts, stmt)
			}
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func stripComments(sql string) string {
	var b strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// Sync is SQLite's synchronous setting for the WAL.
type Sync string

const (
	// SyncFull fsyncs the WAL on every commit: an acknowledged publish survives power loss.
	SyncFull Sync = "full"
	// SyncNormal fsyncs only at checkpoints: an acknowledged publish survives a crash of Herald
	// (kill -9) but the last commits may be lost if the machine loses power.
	SyncNormal Sync = "normal"
)

// Options configure a Store.
type Options struct {
	// Sync is the durability of a commit; SyncFull when empty.
	Sync Sync
	// MaxGroup bounds the notifications one group commit writes; 4096 when zero.
	MaxGroup int
	// Readers is the size of the read pool; at least 4 when zero.
	Readers int
	// OnCommit, when set, is called by the writer loop after each durable commit with the new
	// notifications in commit (= id) order. It runs before the commit's publishers are answered.
	OnCommit herald.CommitFunc
	// SoleWriter says this process is the only one writing the file (no other Herald node
	// shares it): every commit then passes through this store, and resumes may be answered
	// from the recent window of each stream (window.go). Off, every resume reads the file.
	SoleWriter bool
	// PushDelay is how long after its commit a fallback push (herald.PushDefault) becomes due;
	// 0: at once.
	PushDelay time.Duration
	// NoPush queues no pushes: Web Push is off, and subscriptions registered while it was on
	// would otherwise fill the outbox with pushes nobody sends.
	NoPush bool
}

// Store is a herald.Store on a SQLite file.
type Store struct {
	writer *sql.DB // exactly one connection
	stmts  writerStmts
	reader *sql.DB
	read   readerStmts
	closed atomic.Bool
	opts   Options
	// identity is read at open; NewEpoch changes it.
	identity herald.Identity
	// mayMute is false while no user of the file has any mute rule, as far as this process
	// knows: always true unless Options.SoleWriter (another process could add rules). Every
	// stream that opens reads its user's rules (Preferences), and in a reconnect storm those
	// reads, nearly all finding nothing, were a quarter of the server's CPU.
	mayMute atomic.Bool

	group *store.GroupCommit
}

// Open opens (creating if needed) the database at path and starts its writer loop.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, herald.Errorf(herald.EINVALID, "sqlite: empty database path")
	}
	if opts.Sync == "" {
		opts.Sync = SyncFull
	}
	if opts.Sync != SyncFull && opts.Sync != SyncNormal {
		return nil, herald.Errorf(herald.EINVALID, "sqlite: sync must be %q or %q, not %q", SyncFull, SyncNormal, opts.Sync)
	}
	if opts.MaxGroup <= 0 {
		opts.MaxGroup = 4096
	}
	if opts.Readers <= 0 {
		opts.Readers = max(4, runtime.GOMAXPROCS(0))
	}

	// Pragmas go in the DSN so that every connection the pool opens gets them.
	pragmas := []string{"busy_timeout(10000)", "foreign_keys(OFF)", "journal_mode(WAL)", "synchronous(" + string(opts.Sync) + ")"}
	dsn := func(extra ...string) string {
		q := url.Values{}
		for _, p := range append(pragmas, extra...) {
			q.Add("_pragma", p)
		}
		return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	}
	// _txlock=immediate takes the write lock at BEGIN, so a transaction never fails half way for
	// lack of it; with a single writer connection there is no one to wait for but checkpoints.
	//
	// The writer gets a larger page cache, and checkpoints the WAL every 10000 pages instead of
	// 1000: a batch to many users touches a different index leaf per recipient, and with the
	// defaults most of a large commit's time went to re-reading pages and checkpointing.
	writer, err := sql.Open("sqlite", dsn("cache_size(-32768)", "wal_autocheckpoint(10000)")+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)

	if err := migrate(ctx, writer); err != nil {
		writer.Close()
		return nil, err
	}

	identity, err := readIdentity(ctx, writer)
	if err != nil {
		writer.Close()
		return nil, err
	}

	reader, err := sql.Open("sqlite", dsn("query_only(1)"))
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	reader.SetMaxOpenConns(opts.Readers)
	reader.SetMaxIdleConns(opts.Readers)

	s := &Store{
		writer:   writer,
		reader:   reader,
		opts:     opts,
		identity: identity,
	}
	if err := s.stmts.prepare(ctx, writer); err != nil {
		reader.Close()
		writer.Close()
		return nil, err
	}
	if err := s.read.prepare(ctx, reader); err != nil {
		s.stmts.close()
		reader.Close()
		writer.Close()
		return nil, err
	}
	onCommit := opts.OnCommit
	if opts.SoleWriter {
		onCommit = s.read.window.wrap(onCommit) // window.go
		var some bool
		if err := reader.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM mutes)`).Scan(&some); err != nil {
			s.read.close()
			s.stmts.close()
			reader.Close()
			writer.Close()
			return nil, fmt.Errorf("sqlite: read preferences: %w", err)
		}
		s.mayMute.Store(some)
		// Nobody writes the file until the commit loop below starts: the windows can be filled
		// from it as if this store had made those commits (warm.go).
		if _, err := s.read.window.warm(ctx, reader); err != nil {
			s.read.close()
			s.stmts.close()
			reader.Close()
			writer.Close()
			return nil, err
		}
	} else {
		s.read.window.off = true
		s.mayMute.Store(true)
	}
	s.group = store.NewGroupCommit(opts.MaxGroup, s.commitGroup, onCommit)
	return s, nil
}

// migrate applies the migrations the database has not seen, each in its own transaction with
// the version it reaches, so an interrupted upgrade resumes where it stopped.
func migrate(ctx context.Context, db *sql.DB) error {
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("sqlite: read schema version: %w", err)
	}
	if version > schemaVersion {
		return herald.Errorf(herald.EINVALID, "sqlite: database schema version %d is newer than this Herald understands (%d)", version, schemaVersion)
	}
	for _, m := range mustMigrations()[version:] {
		if err := apply(ctx, db, m); err != nil {
			return fmt.Errorf("sqlite: migration %s: %w", m.name, err)
		}
	}
	return nil
}

func apply(ctx context.Context, db *sql.DB, m migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, stmt := range m.stmts {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version)); err != nil {
		return err
	}
	return tx.Commit()
}

// Ping checks that both pools can reach the database.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.reader.PingContext(ctx); err != nil {
		return unavailable(err)
	}
	return nil
}

// Close waits for in-flight appends, stops the group-commit loop and closes the database.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.group.Close()
	s.stmts.close()
	return errors.Join(s.read.close(), s.reader.Close(), s.writer.Close())
}

func unavailable(err error) error {
	return &herald.Error{Code: herald.EUNAVAILABLE, Message: "store unavailable", Err: err}
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
