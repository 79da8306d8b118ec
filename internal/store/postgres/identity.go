package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store"
)

func readIdentity(ctx context.Context, q querier) (herald.Identity, error) {
	rows, err := q.Query(ctx, `SELECT key, value FROM herald_meta`)
	if err != nil {
		return herald.Identity{}, fmt.Errorf("postgres: read identity: %w", err)
	}
	meta := map[string]string{}
	var k, v string
	if _, err := pgx.ForEachRow(rows, []any{&k, &v}, func() error { meta[k] = v; return nil }); err != nil {
		return herald.Identity{}, fmt.Errorf("postgres: read identity: %w", err)
	}
	id, err := store.IdentityOf(meta)
	if err != nil {
		return id, fmt.Errorf("postgres: %w", err)
	}
	return id, nil
}

// Identity returns the store's identity as read when it was opened.
func (s *Store) Identity() herald.Identity { return s.identity }

// NewEpoch starts a new epoch: cursors and page positions issued before are answered as of
// another history from now on. Run it after restoring the database from a backup (pg_restore, a
// snapshot, point-in-time recovery), with every node stopped: a running node keeps the epoch it
// read at start.
func (s *Store) NewEpoch(ctx context.Context) (herald.Identity, error) {
	if err := s.check(); err != nil {
		return herald.Identity{}, err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Every id of the new epoch is greater than the sequence's last value, which may be
		// above the largest id kept. The advisory lock keeps two runs from interleaving.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return err
		}
		var since int64
		if err := tx.QueryRow(ctx, `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM herald_notification_ids`).Scan(&since); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE herald_meta SET value = CASE key WHEN 'epoch' THEN $1 ELSE $2 END
			WHERE key IN ('epoch', 'epoch_since')`, store.NewEpoch(), strconv.FormatInt(since, 10)); err != nil {
			return err
		}
		// The replaced history went on giving ids after since; clients may hold some. The new
		// epoch's ids start far above them, so an old id names nothing rather than another one.
		_, err := tx.Exec(ctx, `SELECT setval('herald_notification_ids', $1)`, since+store.EpochIDGap)
		return err
	})
	if err != nil {
		return herald.Identity{}, fmt.Errorf("postgres: new epoch: %w", err)
	}
	id, err := readIdentity(ctx, s.pool)
	if err != nil {
		return id, err
	}
	s.identity = id
	return id, nil
}

// EpochStart returns where the current epoch begins in user's feed.
func (s *Store) EpochStart(ctx context.Context, user string) (herald.Cursor, error) {
	if err := s.check(); err != nil {
		return herald.Cursor{}, err
	}
	return store.EpochStart(user, s.identity.Since, func(stream string) (uint64, error) {
		return s.epochStart(ctx, stream, s.identity.Since)
	})
}

func (s *Store) epochStart(ctx context.Context, stream string, since int64) (uint64, error) {
	// Ids grow with sequence numbers within a stream: walking the stream backwards passes this
	// epoch's notifications (few, after a restore) and stops at the last one before it. When
	// nothing of before is kept (retention), the epoch starts before the first one kept, or at
	// the head when nothing is kept at all.
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT COALESCE(
		(SELECT seq FROM herald_notifications WHERE stream = $1 AND id <= $2 ORDER BY seq DESC LIMIT 1),
		(SELECT seq - 1 FROM herald_notifications WHERE stream = $1 ORDER BY seq LIMIT 1),
		(SELECT seq FROM herald_streams WHERE stream = $1),
		0)`, stream, since).Scan(&seq)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, unavailable(err)
	}
	return uint64(seq), nil
}
