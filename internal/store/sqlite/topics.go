package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// Subscribe adds users to topic's subscribers in one transaction on the writer connection, so a
// topic publish (also written there) sees all of them or none.
func (s *Store) Subscribe(ctx context.Context, topic string, users []string) (int64, error) {
	return s.changeSubscribers(ctx, `INSERT INTO topic_subscribers (topic, user_id, created_at) VALUES (?, ?, ?)
		ON CONFLICT (topic, user_id) DO NOTHING`, topic, users, micros(time.Now()))
}

// Unsubscribe removes users from topic's subscribers in one transaction.
func (s *Store) Unsubscribe(ctx context.Context, topic string, users []string) (int64, error) {
	return s.changeSubscribers(ctx, `DELETE FROM topic_subscribers WHERE topic = ? AND user_id = ?`, topic, users)
}

// changeSubscribers runs q once per user (topic, user, extra...) with one prepared statement in
// one transaction, and returns the rows it changed.
func (s *Store) changeSubscribers(ctx context.Context, q, topic string, users []string, extra ...any) (int64, error) {
	if len(users) == 0 {
		return 0, nil
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, unavailable(err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, q)
	if err != nil {
		return 0, unavailable(err)
	}
	defer st.Close()
	var n int64
	args := append([]any{topic, ""}, extra...)
	for _, u := range users {
		args[1] = u
		res, err := st.ExecContext(ctx, args...)
		if err != nil {
			return 0, unavailable(err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return 0, unavailable(err)
		}
		n += k
	}
	if err := tx.Commit(); err != nil {
		return 0, unavailable(err)
	}
	return n, nil
}

// TopicSubscribers pages topic's subscribers by the primary key.
func (s *Store) TopicSubscribers(ctx context.Context, topic, after string, limit int) ([]string, error) {
	return s.strings(ctx, `SELECT user_id FROM topic_subscribers WHERE topic = ? AND user_id > ? ORDER BY user_id LIMIT ?`, topic, after, limit)
}

// UserTopics lists user's topics by the user index.
func (s *Store) UserTopics(ctx context.Context, user string) ([]string, error) {
	return s.strings(ctx, `SELECT topic FROM topic_subscribers WHERE user_id = ? ORDER BY topic`, user)
}

// DeleteTopic removes every subscription to topic.
func (s *Store) DeleteTopic(ctx context.Context, topic string) (int64, error) {
	res, err := s.writer.ExecContext(ctx, `DELETE FROM topic_subscribers WHERE topic = ?`, topic)
	if err != nil {
		return 0, unavailable(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, unavailable(err)
	}
	return n, nil
}

// strings reads one text column on the reader pool. It never returns nil, so an empty list
// encodes as [] rather than null.
func (s *Store) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	return scanStrings(rows)
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, unavailable(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}
