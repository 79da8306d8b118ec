package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Subscribe adds users to topic's subscribers in one statement: a topic publish, which reads
// the subscribers in one statement too, sees all of them or none.
func (s *Store) Subscribe(ctx context.Context, topic string, users []string) (int64, error) {
	if len(users) == 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO herald_topic_subscribers (topic, user_id)
		SELECT $1, u FROM unnest($2::text[]) AS u ORDER BY u
		ON CONFLICT (topic, user_id) DO NOTHING`, topic, users)
	if err != nil {
		return 0, unavailable(err)
	}
	return tag.RowsAffected(), nil
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
