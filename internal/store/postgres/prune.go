package postgres

import (
	"context"
	"time"

	"github.com/heraldhq/herald"
)

// pruneChunk bounds each delete statement, so publishes never queue behind a whole sweep.
const pruneChunk = 1000

// Prune removes notifications older than MaxAge or beyond the newest MaxPerStream of their
// stream, the read and archive marks of removed broadcasts, seen marks that no longer matter,
// and expired idempotency keys, in short statements. Several nodes may prune at once: each
// statement stands alone, and deleting what another node deleted first deletes nothing.
func (s *Store) Prune(ctx context.Context, r herald.Retention) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	var total int64
	if r.MaxAge > 0 {
		n, err := s.pruneAge(ctx, time.Now().Add(-r.MaxAge))
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
	for _, table := range []string{"herald_broadcast_reads", "herald_broadcast_archives"} {
		if _, err := s.loop(ctx, `DELETE FROM `+table+` WHERE (user_id, notification_id) IN (
			SELECT user_id, notification_id FROM `+table+`
			WHERE notification_id < (SELECT coalesce(min(id), 9223372036854775807) FROM herald_notifications WHERE stream = '')
			LIMIT $1)`, pruneChunk); err != nil {
			return total, err
		}
	}
	// A seen mark below every id kept says nothing: what is kept and what comes later is above
	// it either way, and a user without a mark has seen nothing.
	if _, err := s.loop(ctx, `DELETE FROM herald_user_marks WHERE user_id IN (
		SELECT user_id FROM herald_user_marks
		WHERE seen_up_to < (SELECT coalesce(min(id), 9223372036854775807) FROM herald_notifications)
		LIMIT $1)`, pruneChunk); err != nil {
		return total, err
	}
	if r.IdempotencyTTL > 0 {
		if _, err := s.loop(ctx, `DELETE FROM herald_idempotency WHERE (scope, key) IN (
			SELECT scope, key FROM herald_idempotency WHERE created_at < $2 LIMIT $1)`,
			pruneChunk, time.Now().Add(-r.IdempotencyTTL)); err != nil {
			return total, err
		}
	}
	return total, nil
}

// pruneAge removes the notifications older than cutoff. Ids grow with commit time, so the old
// ones are a prefix by id: each step looks at the next chunk of ids and deletes up to the first
// young one. Only ever removing a prefix keeps every stream's kept part contiguous.
func (s *Store) pruneAge(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		rows, err := s.pool.Query(ctx, `SELECT id, created_at FROM herald_notifications ORDER BY id LIMIT $1`, pruneChunk)
		if err != nil {
			return total, unavailable(err)
		}
		var last int64
		n, young := 0, false
		for rows.Next() {
			var id int64
			var created time.Time
			if err := rows.Scan(&id, &created); err != nil {
				rows.Close()
				return total, unavailable(err)
			}
			if !created.Before(cutoff) {
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
		tag, err := s.pool.Exec(ctx, `DELETE FROM herald_notifications WHERE id <= $1`, last)
		if err != nil {
			return total, unavailable(err)
		}
		total += tag.RowsAffected()
		if young || n < pruneChunk {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// pruneStreams keeps the newest max notifications of each stream.
func (s *Store) pruneStreams(ctx context.Context, max int) (int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT s.stream, s.seq - $1 FROM herald_streams s
		WHERE s.seq > $1 AND EXISTS (SELECT 1 FROM herald_notifications n WHERE n.stream = s.stream AND n.seq <= s.seq - $1)`, max)
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
		n, err := s.loop(ctx, `DELETE FROM herald_notifications WHERE id IN (
			SELECT id FROM herald_notifications WHERE stream = $2 AND seq <= $3 LIMIT $1)`, pruneChunk, t.stream, t.upto)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// loop runs a chunked delete (whose first parameter is the chunk size) until a chunk is short.
func (s *Store) loop(ctx context.Context, query string, args ...any) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, query, args...)
		if err != nil {
			return total, unavailable(err)
		}
		n := tag.RowsAffected()
		total += n
		if n < pruneChunk {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}
