package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strings"

	"github.com/heraldhq/herald"
)

// Notifications returns the notifications with the given ids, in id order; ids that name none
// are left out. A retried publish re-reads with it what its first attempt committed.
func (s *Store) Notifications(ctx context.Context, ids []int64) ([]herald.Notification, error) {
	var out []herald.Notification
	for len(ids) > 0 {
		n := min(len(ids), seqChunk)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		rows, err := s.reader.QueryContext(ctx, `SELECT `+notificationCols+` FROM notifications
			WHERE id IN (?`+strings.Repeat(`, ?`, n-1)+`)`, args...)
		if out, err = appendRows(out, rows, err); err != nil {
			return nil, err
		}
		ids = ids[n:]
	}
	sortByID(out)
	return out, nil
}

// TopicNotifications returns at most limit notifications of topic with ids in (after, upTo],
// in id order. It scans the ids' range by the primary key: the range is one publish's.
func (s *Store) TopicNotifications(ctx context.Context, topic string, after, upTo int64, limit int) ([]herald.Notification, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+notificationCols+` FROM notifications
		WHERE id > ? AND id <= ? AND topic = ? ORDER BY id LIMIT ?`, after, upTo, topic, limit)
	return appendRows(nil, rows, err)
}

// appendRows appends the notifications rows holds to ns and closes rows; err is the query's.
func appendRows(ns []herald.Notification, rows *sql.Rows, err error) ([]herald.Notification, error) {
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	for rows.Next() {
		n, err := scanNotification(rows)
		if err != nil {
			return nil, unavailable(err)
		}
		ns = append(ns, n)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return ns, nil
}

func sortByID(ns []herald.Notification) {
	slices.SortFunc(ns, func(a, b herald.Notification) int { return cmp.Compare(a.ID, b.ID) })
}
