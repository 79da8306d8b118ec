package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/heraldhq/herald"
)

// newestQuery is the newest id of a user's feed (?1), 0 when it is empty. Within a stream ids
// grow with sequence numbers, so each stream's newest is the last entry of its index.
const newestQuery = `SELECT max(
	coalesce((SELECT id FROM notifications WHERE stream = ?1 ORDER BY seq DESC LIMIT 1), 0),
	coalesce((SELECT id FROM notifications WHERE stream = '' ORDER BY seq DESC LIMIT 1), 0))`

// MarkSeen raises user's seen mark to upTo, capped at the newest id of the user's feed.
func (s *Store) MarkSeen(ctx context.Context, user string, upTo int64) (int64, bool, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, unavailable(err)
	}
	defer tx.Rollback()
	var newest, mark int64
	if err := tx.QueryRowContext(ctx, newestQuery, user).Scan(&newest); err != nil {
		return 0, false, unavailable(err)
	}
	err = tx.QueryRowContext(ctx, `SELECT seen_up_to FROM user_marks WHERE user_id = ?`, user).Scan(&mark)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, false, unavailable(err)
	}
	target := newest
	if upTo > 0 && upTo < newest {
		target = upTo
	}
	if target <= mark {
		return mark, false, nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO user_marks (user_id, seen_up_to) VALUES (?, ?)
		ON CONFLICT (user_id) DO UPDATE SET seen_up_to = excluded.seen_up_to`, user, target); err != nil {
		return 0, false, unavailable(err)
	}
	if err := tx.Commit(); err != nil {
		return 0, false, unavailable(err)
	}
	return target, true, nil
}

// SetArchived archives a notification for user, or brings it back to the inbox. Archiving twice
// keeps the first time.
func (s *Store) SetArchived(ctx context.Context, user string, id int64, archived bool) error {
	return s.setMark(ctx, archiveMark, user, id, archived)
}

// ArchiveRead archives every read notification and broadcast of user still in the inbox.
func (s *Store) ArchiveRead(ctx context.Context, user string) (int64, error) {
	now := micros(time.Now())
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, unavailable(err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE notifications SET archived_at = ?
		WHERE stream = ? AND read_at IS NOT NULL AND archived_at IS NULL`, now, user)
	if err != nil {
		return 0, unavailable(err)
	}
	unicast, _ := res.RowsAffected()
	// A read mark may outlive its broadcast until the next prune: only kept broadcasts count.
	res, err = tx.ExecContext(ctx, `INSERT INTO broadcast_archives (user_id, notification_id, archived_at)
		SELECT r.user_id, r.notification_id, ? FROM broadcast_reads r
		JOIN notifications n ON n.id = r.notification_id AND n.stream = ''
		WHERE r.user_id = ? ON CONFLICT DO NOTHING`, now, user)
	if err != nil {
		return 0, unavailable(err)
	}
	broadcast, _ := res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, unavailable(err)
	}
	return unicast + broadcast, nil
}

// Counts counts user's unread and unseen notifications and broadcasts, archived ones and
// muted broadcasts excluded.
func (s *Store) Counts(ctx context.Context, user string) (herald.Counts, error) {
	var c herald.Counts
	err := s.reader.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(u.id > `+markQuery+`), 0) FROM (
		SELECT id FROM notifications WHERE stream = ?1 AND read_at IS NULL AND archived_at IS NULL
		UNION ALL
		SELECT n.id FROM notifications n WHERE n.stream = ''
			AND NOT EXISTS (SELECT 1 FROM broadcast_reads r WHERE r.user_id = ?1 AND r.notification_id = n.id)
			AND NOT EXISTS (SELECT 1 FROM broadcast_archives a WHERE a.user_id = ?1 AND a.notification_id = n.id)
			AND NOT `+broadcastMuted+`) u`,
		user).Scan(&c.Unread, &c.Unseen)
	if err != nil {
		return c, unavailable(err)
	}
	return c, nil
}
