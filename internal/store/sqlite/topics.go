package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/heraldhq/herald"
)

// Subscribe adds users to topic's subscribers in one transaction on the writer connection, so a
// topic publish (also written there) sees all of them or none. The limits are checked in that
// transaction, after the inserts: the writer connection serializes every subscription change,
// so no other can pass them at the same time.
func (s *Store) Subscribe(ctx context.Context, topic string, users []string, lim herald.TopicLimits) (int64, error) {
	return s.changeSubscribers(ctx, `INSERT INTO topic_subscribers (topic, user_id, created_at) VALUES (?, ?, ?)
		ON CONFLICT (topic, user_id) DO NOTHING`, topic, users, func(tx *sql.Tx, added []string) error {
		return checkTopicLimits(ctx, tx, topic, added, lim)
	}, micros(time.Now()))
}

// checkTopicLimits is the conflict of a subscribe that took topic or one of the users it added
// past lim. Counts read at most one more than the limit: a topic of 100,000 costs no more.
func checkTopicLimits(ctx context.Context, tx *sql.Tx, topic string, added []string, lim herald.TopicLimits) error {
	if len(added) == 0 {
		return nil
	}
	if lim.MaxSubscribers > 0 {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM topic_subscribers WHERE topic = ? LIMIT ?)`,
			topic, lim.MaxSubscribers+1).Scan(&n); err != nil {
			return unavailable(err)
		}
		if n > lim.MaxSubscribers {
			return herald.TopicFull(topic, lim.MaxSubscribers)
		}
	}
	if lim.MaxTopics > 0 {
		st, err := tx.PrepareContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM topic_subscribers WHERE user_id = ? LIMIT ?)`)
		if err != nil {
			return unavailable(err)
		}
		defer st.Close()
		for _, u := range added {
			var n int
			if err := st.QueryRowContext(ctx, u, lim.MaxTopics+1).Scan(&n); err != nil {
				return unavailable(err)
			}
			if n > lim.MaxTopics {
				return herald.TooManyTopics(u, lim.MaxTopics)
			}
		}
	}
	return nil
}

// Unsubscribe removes users from topic's subscribers in one transaction.
func (s *Store) Unsubscribe(ctx context.Context, topic string, users []string) (int64, error) {
	return s.changeSubscribers(ctx, `DELETE FROM topic_subscribers WHERE topic = ? AND user_id = ?`, topic, users, nil)
}

// changeSubscribers runs q once per user (topic, user, extra...) with one prepared statement in
// one transaction, then check (when set) with the users it changed, and returns how many.
func (s *Store) changeSubscribers(ctx context.Context, q, topic string, users []string, check func(*sql.Tx, []string) error, extra ...any) (int64, error) {
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
	var changed []string
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
		if k > 0 {
			changed = append(changed, u)
		}
	}
	if check != nil {
		if err := check(tx, changed); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, unavailable(err)
	}
	return int64(len(changed)), nil
}

// CountSubscribers counts topic's subscribers by the primary key, at most max+1.
func (s *Store) CountSubscribers(ctx context.Context, topic string, max int) (int64, error) {
	limit := -1 // SQLite: no limit
	if max > 0 {
		limit = max + 1
	}
	var n int64
	if err := s.reader.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM topic_subscribers WHERE topic = ? LIMIT ?)`, topic, limit).Scan(&n); err != nil {
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
