package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald"
)

// MarkSeen raises user's seen mark to upTo, capped at the newest id of the user's feed. One
// statement: concurrent calls, on any nodes, leave the highest mark.
//
// The newest id is that of each stream's last entry (within a stream ids grow with sequence
// numbers). Across streams, a notification may commit after one with a higher id: one of
// another stream that commits during this call can be seen without having been shown. That is
// milliseconds wide, and costs only a badge count; its read state is untouched.
func (s *Store) MarkSeen(ctx context.Context, user string, upTo int64) (int64, bool, error) {
	if err := s.check(); err != nil {
		return 0, false, err
	}
	var mark int64
	err := s.pool.QueryRow(ctx, `WITH newest AS (
			SELECT coalesce(greatest(
				(SELECT id FROM herald_notifications WHERE stream = $1 ORDER BY seq DESC LIMIT 1),
				(SELECT id FROM herald_notifications WHERE stream = '' ORDER BY seq DESC LIMIT 1)), 0) AS id)
		INSERT INTO herald_user_marks (user_id, seen_up_to)
		SELECT $1::text, CASE WHEN $2::bigint > 0 AND $2::bigint < id THEN $2::bigint ELSE id END FROM newest WHERE id > 0
		ON CONFLICT (user_id) DO UPDATE SET seen_up_to = excluded.seen_up_to
			WHERE herald_user_marks.seen_up_to < excluded.seen_up_to
		RETURNING seen_up_to`, user, upTo).Scan(&mark)
	switch {
	case err == nil:
		return mark, true, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return 0, false, unavailable(err)
	}
	// Nothing moved: the mark is as high already, or the feed is empty.
	err = s.pool.QueryRow(ctx, `SELECT seen_up_to FROM herald_user_marks WHERE user_id = $1`, user).Scan(&mark)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, false, unavailable(err)
	}
	return mark, false, nil
}

// SetArchived archives a notification for user, or brings it back to the inbox. Archiving twice
// keeps the first time.
func (s *Store) SetArchived(ctx context.Context, user string, id int64, archived bool) error {
	return s.setMark(ctx, archiveMark, user, id, archived)
}

// ArchiveRead archives every read notification and broadcast of user still in the inbox.
func (s *Store) ArchiveRead(ctx context.Context, user string) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	var total int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE herald_notifications SET archived_at = now()
			WHERE stream = $1 AND read_at IS NOT NULL AND archived_at IS NULL`, user)
		if err != nil {
			return err
		}
		total = tag.RowsAffected()
		// A read mark may outlive its broadcast until the next prune: only kept broadcasts count.
		tag, err = tx.Exec(ctx, `INSERT INTO herald_broadcast_archives (user_id, notification_id, archived_at)
			SELECT r.user_id, r.notification_id, now() FROM herald_broadcast_reads r
			JOIN herald_notifications n ON n.id = r.notification_id AND n.stream = ''
			WHERE r.user_id = $1 ON CONFLICT DO NOTHING`, user)
		if err != nil {
			return err
		}
		total += tag.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, unavailable(err)
	}
	return total, nil
}

// Counts counts user's unread and unseen notifications and broadcasts, archived ones excluded.
func (s *Store) Counts(ctx context.Context, user string) (herald.Counts, error) {
	var c herald.Counts
	if err := s.check(); err != nil {
		return c, err
	}
	err := s.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE u.id > `+markQuery+`) FROM (
		SELECT id FROM herald_notifications WHERE stream = $1 AND read_at IS NULL AND archived_at IS NULL
		UNION ALL
		SELECT n.id FROM herald_notifications n WHERE n.stream = ''
			AND NOT EXISTS (SELECT 1 FROM herald_broadcast_reads r WHERE r.user_id = $1 AND r.notification_id = n.id)
			AND NOT EXISTS (SELECT 1 FROM herald_broadcast_archives a WHERE a.user_id = $1 AND a.notification_id = n.id)
			AND NOT `+broadcastMuted+`) u`,
		user).Scan(&c.Unread, &c.Unseen)
	if err != nil {
		return c, unavailable(err)
	}
	return c, nil
}
