package sqlite

import (
	"context"
	"time"

	"github.com/heraldhq/herald"
)

// pruneChunk bounds each delete transaction, so publishes queue behind retention for
// milliseconds, not for the whole sweep.
const pruneChunk = 1000

// Prune removes notifications older than MaxAge or beyond the newest MaxPerStream of their
// stream, and the read, archive and seen marks and idempotency keys that no longer matter, in
// short transactions. What to delete is found on the read pool; the writer only runs small
// indexed deletes.
func (s *Store) Prune(ctx context.Context, r herald.Retention) (total int64, err error) {
	// No resume is answered from memory while notifications may be going (window.go).
	s.read.window.beginPrune()
	defer func() { s.read.window.endPrune(total > 0 || err != nil) }()
	if r.MaxAge > 0 {
		n, err := s.pruneAge(ctx, micros(time.Now().Add(-r.MaxAge)))
		total += n
		if err != nil {
			return total, err
		}
	}
	if r.MaxPerStream > 0 {
		n, err := s.pruneStreams(ctx, r.MaxPerStream)
		total += n
		if err != nil {
			return total, err
		}
	}
	// Broadcasts go oldest first, so every read or archive mark below the oldest kept broadcast
	// is orphaned.
	var oldest, oldestAny int64
	if err := s.reader.QueryRowContext(ctx, `SELECT coalesce(min(id), 9223372036854775807) FROM notifications
		WHERE stream = ''`).Scan(&oldest); err != nil {
		return total, unavailable(err)
	}
	for _, table := range []string{"broadcast_reads", "broadcast_archives"} {
		if _, err := s.pruneLoop(ctx, `DELETE FROM `+table+` WHERE (user_id, notification_id) IN (
			SELECT user_id, notification_id FROM `+table+` WHERE notification_id < ? LIMIT ?)`, oldest, pruneChunk); err != nil {
			return total, err
		}
	}
	// A seen mark below every id kept says nothing: what is kept and what comes later is above
	// it either way, and a user without a mark has seen nothing.
	if err := s.reader.QueryRowContext(ctx, `SELECT coalesce(min(id), 9223372036854775807) FROM notifications`).Scan(&oldestAny); err != nil {
		return total, unavailable(err)
	}
	if _, err := s.pruneLoop(ctx, `DELETE FROM user_marks WHERE user_id IN (
		SELECT user_id FROM user_marks WHERE seen_up_to < ? LIMIT ?)`, oldestAny, pruneChunk); err != nil {
		return total, err
	}
	if r.IdempotencyTTL > 0 {
		cutoff := micros(time.Now().Add(-r.IdempotencyTTL))
		if _, err := s.pruneLoop(ctx, `DELETE FROM idempotency WHERE (scope, key) IN (
			SELECT scope, key FROM idempotency WHERE created_at < ? LIMIT ?)`, cutoff, pruneChunk); err != nil {
			return total, err
		}
	}
	return total, nil
}

// pruneAge removes the notifications older than cutoff. Ids grow with time, so the old ones are
// a prefix by id: it walks from the start and stops at the first young one. Only ever removing a
// prefix keeps every stream's kept part contiguous, even if the clock stepped back at some point.
func (s *Store) pruneAge(ctx context.Context, cutoff int64) (int64, error) {
	var total int64
	for {
		rows, err := s.reader.QueryContext(ctx, `SELECT id, created_at FROM notifications ORDER BY id LIMIT ?`, pruneChunk)
		if err != nil {
			return total, unavailable(err)
		}
		var last int64
		n, young := 0, false
		for rows.Next() {
			var id, created int64
			if err := rows.Scan(&id, &created); err != nil {
				rows.Close()
				return total, unavailable(err)
			}
			if created >= cutoff {
				young = true
				break
			}
			last, n = id, n+1
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return total, unavailable(err)
		}
		if n == 0 {
			return total, nil
		}
		res, err := s.writer.ExecContext(ctx, `DELETE FROM notifications WHERE id <= ?`, last)
		if err != nil {
			return total, unavailable(err)
		}
		deleted, _ := res.RowsAffected()
		total += deleted
		if young || n < pruneChunk {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// pruneStreams keeps the newest max notifications of each stream. The streams over the limit are
// found with one index probe each on the read pool; each is then trimmed by (stream, seq).
func (s *Store) pruneStreams(ctx context.Context, max int) (int64, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT s.stream, s.seq - ?1 FROM streams s
		WHERE s.seq > ?1 AND EXISTS (SELECT 1 FROM notifications n WHERE n.stream = s.stream AND n.seq <= s.seq - ?1)`, max)
	if err != nil {
		return 0, unavailable(err)
	}
	type trim struct {
		stream string
		upto   int64
	}
	var trims []trim
	for rows.Next() {
		var t trim
		if err := rows.Scan(&t.stream, &t.upto); err != nil {
			rows.Close()
			return 0, unavailable(err)
		}
		trims = append(trims, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, unavailable(err)
	}
	var total int64
	for _, t := range trims {
		n, err := s.pruneLoop(ctx, `DELETE FROM notifications WHERE id IN (
			SELECT id FROM notifications WHERE stream = ? AND seq <= ? LIMIT ?)`, t.stream, t.upto, pruneChunk)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (s *Store) pruneLoop(ctx context.Context, query string, args ...any) (int64, error) {
	var total int64
	for {
		res, err := s.writer.ExecContext(ctx, query, args...)
		if err != nil {
			return total, unavailable(err)
		}
		n, _ := res.RowsAffected()
		total += n
		if n < pruneChunk {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}
