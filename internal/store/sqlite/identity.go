package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store"
)

// readIdentity reads the store's identity from its meta table.
func readIdentity(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) (herald.Identity, error) {
	rows, err := q.QueryContext(ctx, `SELECT key, value FROM meta`)
	if err != nil {
		return herald.Identity{}, fmt.Errorf("sqlite: read identity: %w", err)
	}
	defer rows.Close()
	meta := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return herald.Identity{}, fmt.Errorf("sqlite: read identity: %w", err)
		}
		meta[k] = v
	}
	if err := rows.Err(); err != nil {
		return herald.Identity{}, fmt.Errorf("sqlite: read identity: %w", err)
	}
	id, err := store.IdentityOf(meta)
	if err != nil {
		return id, fmt.Errorf("sqlite: %w", err)
	}
	return id, nil
}

// Identity returns the store's identity as read when it was opened.
func (s *Store) Identity() herald.Identity { return s.identity }

// NewEpoch starts a new epoch: cursors and page positions issued before are answered as of
// another history from now on. Run it on a store restored from a backup that was not written by
// Herald (or restored a second time), before any server opens it: a running server keeps the
// epoch it read at start.
func (s *Store) NewEpoch(ctx context.Context) (herald.Identity, error) {
	if err := newEpoch(ctx, s.writer); err != nil {
		return herald.Identity{}, err
	}
	id, err := readIdentity(ctx, s.writer)
	if err != nil {
		return id, err
	}
	s.identity = id
	s.read.window.clear() // positions of the old history need not be served from memory
	return id, nil
}

func newEpoch(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: new epoch: %w", err)
	}
	defer tx.Rollback()
	// sqlite_sequence holds the largest id ever given (AUTOINCREMENT), which may be above the
	// largest kept; every id of the new epoch is greater than it.
	var since int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'notifications'), 0)`).Scan(&since); err != nil {
		return fmt.Errorf("sqlite: new epoch: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE meta SET value = CASE key WHEN 'epoch' THEN ? ELSE ? END WHERE key IN ('epoch', 'epoch_since')`,
		store.NewEpoch(), fmt.Sprint(since)); err != nil {
		return fmt.Errorf("sqlite: new epoch: %w", err)
	}
	// The history the restore replaced went on giving ids after since; clients may hold some.
	// The new epoch's ids start far above them, so an old id names nothing rather than another
	// notification.
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO sqlite_sequence (rowid, name, seq)
		VALUES ((SELECT rowid FROM sqlite_sequence WHERE name = 'notifications'), 'notifications', ?)`, since+store.EpochIDGap); err != nil {
		return fmt.Errorf("sqlite: new epoch: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: new epoch: %w", err)
	}
	return nil
}

// EpochStart returns where the current epoch begins in user's feed.
func (s *Store) EpochStart(ctx context.Context, user string) (herald.Cursor, error) {
	return store.EpochStart(user, s.identity.Since, func(stream string) (uint64, error) {
		return s.epochStart(ctx, stream, s.identity.Since)
	})
}

func (s *Store) epochStart(ctx context.Context, stream string, since int64) (uint64, error) {
	// Ids grow with sequence numbers within a stream: walking the stream backwards passes this
	// epoch's notifications (few, after a restore) and stops at the last one before it.
	var seq uint64
	err := s.reader.QueryRowContext(ctx, `SELECT seq FROM notifications INDEXED BY notifications_stream_seq
		WHERE stream = ? AND id <= ? ORDER BY seq DESC LIMIT 1`, stream, since).Scan(&seq)
	if err == nil {
		return seq, nil
	}
	if err != sql.ErrNoRows {
		return 0, unavailable(err)
	}
	// Nothing of before is kept (retention): the epoch starts before the first one kept, or at
	// the head when nothing is kept at all.
	err = s.reader.QueryRowContext(ctx, `SELECT seq - 1 FROM notifications INDEXED BY notifications_stream_seq
		WHERE stream = ? ORDER BY seq LIMIT 1`, stream).Scan(&seq)
	if err == sql.ErrNoRows {
		err = s.reader.QueryRowContext(ctx, `SELECT COALESCE((SELECT seq FROM streams WHERE stream = ?), 0)`, stream).Scan(&seq)
	}
	if err != nil {
		return 0, unavailable(err)
	}
	return seq, nil
}
