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
// stream, the read marks and idempotency keys that no longer matter, in short transactions.
func (s *Store) Prune(ctx context.Context, r herald.Retention) (int64, error) {
	var total int64
	if r.MaxAge > 0 {
		cutoff := micros(time.Now().Add(-r.MaxAge))
		// Ids grow with time, so the oldest notifications are a prefix by id: walk it from the
		// start and stop at the first young one instead of scanning the table.
		n, err := s.pruneLoop(ctx, `DELETE FROM notifications WHERE id IN (
			SELECT id FROM (SELECT id, created_at FROM notifications ORDER BY id LIMIT ?) WHERE created_at < ?)`,
			pruneChunk, cutoff)
		total += n
		if err != nil {
			return total, err
		}
	}
	if r.MaxPerStream > 0 {
		n, err := s.pruneLoop(ctx, `DELETE FROM notifications WHERE id IN (
			SELECT n.id FROM streams s JOIN notifications n ON n.stream = s.stream AND n.seq <= s.seq - ? LIMIT ?)`,
			r.MaxPerStream, pruneChunk)
		total += n
		if err != nil {
			return total, err
		}
	}
	// Broadcasts go oldest first, so every read mark below the oldest kept broadcast is orphaned.
	if _, err := s.writer.ExecContext(ctx, `DELETE FROM broadcast_reads WHERE notification_id <
		(SELECT coalesce(min(id), 9223372036854775807) FROM notifications WHERE stream = '')`); err != nil {
		return total, unavailable(err)
	}
	if r.IdempotencyTTL > 0 {
		cutoff := micros(time.Now().Add(-r.IdempotencyTTL))
		if _, err := s.writer.ExecContext(ctx, `DELETE FROM idempotency WHERE created_at < ?`, cutoff); err != nil {
			return total, unavailable(err)
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
