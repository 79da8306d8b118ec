package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald"
)

// Subscribe adds users to topic's subscribers in one statement: a topic publish, which reads
// the subscribers in one statement too, sees all of them or none. The limits are checked in the
// same transaction, after the insert, under advisory locks of the topic and of each user: two
// subscribes that could pass a limit together (to one topic, or of one user) run one after the
// other. Every subscribe takes its locks in one order (the topic's, then the users', sorted), so
// two never wait for each other; a publish takes none of them.
func (s *Store) Subscribe(ctx context.Context, topic string, users []string, lim herald.TopicLimits) (int64, error) {
	if len(users) == 0 {
		return 0, nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, unavailable(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if lim.MaxSubscribers > 0 || lim.MaxTopics > 0 {
		var lockUsers []string
		if lim.MaxTopics > 0 {
			lockUsers = users
		}
		// Class 1 is a topic, 2 a user: a two-key advisory lock never meets the one-key
		// locks of idempotency keys.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(c, h) FROM (
				SELECT 1 AS c, hashtext($1) AS h WHERE $3
				UNION SELECT 2, hashtext(u) FROM unnest($2::text[]) AS u) AS l
			ORDER BY c, h`, topic, lockUsers, lim.MaxSubscribers > 0); err != nil {
			return 0, unavailable(err)
		}
	}
	rows, err := tx.Query(ctx, `INSERT INTO herald_topic_subscribers (topic, user_id)
		SELECT $1, u FROM unnest($2::text[]) AS u ORDER BY u
		ON CONFLICT (topic, user_id) DO NOTHING RETURNING user_id`, topic, users)
	if err != nil {
		return 0, unavailable(err)
	}
	added, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, unavailable(err)
	}
	if len(added) > 0 && lim.MaxSubscribers > 0 {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM herald_topic_subscribers WHERE topic = $1 LIMIT $2) AS t`,
			topic, lim.MaxSubscribers+1).Scan(&n); err != nil {
			return 0, unavailable(err)
		}
		if n > lim.MaxSubscribers {
			return 0, herald.TopicFull(topic, lim.MaxSubscribers)
		}
	}
	if len(added) > 0 && lim.MaxTopics > 0 {
		var over string
		err := tx.QueryRow(ctx, `SELECT u FROM unnest($1::text[]) AS u
			WHERE (SELECT count(*) FROM (SELECT 1 FROM herald_topic_subscribers WHERE user_id = u LIMIT $2) AS t) > $3
			ORDER BY u LIMIT 1`, added, lim.MaxTopics+1, lim.MaxTopics).Scan(&over)
		switch {
		case err == nil:
			return 0, herald.TooManyTopics(over, lim.MaxTopics)
		case !errors.Is(err, pgx.ErrNoRows):
			return 0, unavailable(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, unavailable(err)
	}
	return int64(len(added)), nil
}

// CountSubscribers counts topic's subscribers by the primary key, at most max+1.
func (s *Store) CountSubscribers(ctx context.Context, topic string, max int) (int64, error) {
	var limit *int // NULL: no limit
	if max > 0 {
		l := max + 1
		limit = &l
	}
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM herald_topic_subscribers WHERE topic = $1 LIMIT $2) AS t`, topic, limit).Scan(&n); err != nil {
		return 0, unavailable(err)
	}
	return n, nil
}

// Unsubscribe removes users from topic's subscribers in one statement.
func (s *Store) Unsubscribe(ctx context.Context, topic string, users []string) (int64, error) {
	if len(users) == 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM herald_topic_subscribers WHERE topic = $1 AND user_id = ANY($2::text[])`, topic, users)
	if err != nil {
		return 0, unavailable(err)
	}
	return tag.RowsAffected(), nil
}

// TopicSubscribers pages topic's subscribers by the primary key (in the "C" collation: byte
// order, as in SQLite).
func (s *Store) TopicSubscribers(ctx context.Context, topic, after string, limit int) ([]string, error) {
	return s.strings(ctx, `SELECT user_id FROM herald_topic_subscribers
		WHERE topic = $1 AND user_id > $2 ORDER BY user_id LIMIT $3`, topic, after, limit)
}

// UserTopics lists user's topics by the user index.
func (s *Store) UserTopics(ctx context.Context, user string) ([]string, error) {
	return s.strings(ctx, `SELECT topic FROM herald_topic_subscribers WHERE user_id = $1 ORDER BY topic`, user)
}

// DeleteTopic removes every subscription to topic.
func (s *Store) DeleteTopic(ctx context.Context, topic string) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM herald_topic_subscribers WHERE topic = $1`, topic)
	if err != nil {
		return 0, unavailable(err)
	}
	return tag.RowsAffected(), nil
}

// strings reads one text column. It never returns nil, so an empty list encodes as [].
func (s *Store) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, unavailable(err)
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}
