package postgres

import (
	"context"

	"github.com/heraldhq/herald"
)

// Notifications returns the notifications with the given ids, in id order; ids that name none
// are left out. A retried publish re-reads with it what its first attempt committed.
func (s *Store) Notifications(ctx context.Context, ids []int64) ([]herald.Notification, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+notificationCols+` FROM herald_notifications
		WHERE id = ANY($1) ORDER BY id`, ids)
	return collect(rows, err, false)
}

// TopicNotifications returns at most limit notifications of topic with ids in (after, upTo],
// in id order. It scans the ids' range by the primary key: the range is one publish's.
func (s *Store) TopicNotifications(ctx context.Context, topic string, after, upTo int64, limit int) ([]herald.Notification, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+notificationCols+` FROM herald_notifications
		WHERE id > $1 AND id <= $2 AND topic = $3 ORDER BY id LIMIT $4`, after, upTo, topic, limit)
	return collect(rows, err, false)
}
