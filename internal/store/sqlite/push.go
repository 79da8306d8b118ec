package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"time"

	"github.com/heraldhq/herald"
)

// pushRange is a run of ids one or more consecutive drafts of a group wrote, all queued for
// Web Push the same way. The writer is the only one that assigns ids, so a draft's
// notifications have consecutive ids, and so do consecutive drafts' of one transaction.
type pushRange struct {
	lo, hi    int64
	broadcast bool
	immediate bool
}

// pushRange records a draft's ids for queuePushes, merged with the previous draft's when they
// follow each other and are queued alike, so that a group of ordinary publishes costs one
// statement.
func (w *txWriter) pushRange(lo, hi int64, broadcast, immediate bool) {
	if n := len(w.pushes); n > 0 && !broadcast {
		last := &w.pushes[n-1]
		if !last.broadcast && last.immediate == immediate && last.hi+1 == lo {
			last.hi = hi
			return
		}
	}
	w.pushes = append(w.pushes, pushRange{lo, hi, broadcast, immediate})
}

// queuePushes writes the group's outbox rows, one per notification and subscription of its
// user, in the group's transaction: a committed notification has its pushes queued, durably,
// or it is not committed. A broadcast (only ever queued with push "always") goes to every
// subscription.
func (w *txWriter) queuePushes(delay time.Duration) error {
	for _, r := range w.pushes {
		due := w.now
		if !r.immediate {
			due = due.Add(delay)
		}
		var err error
		if r.broadcast {
			_, err = w.tx.ExecContext(w.ctx, `INSERT INTO push_outbox (notification_id, user_id, subscription_id, immediate, due_at, created_at)
				SELECT ?, s.user_id, s.id, 1, ?, ? FROM push_subscriptions s`, r.lo, micros(due), micros(w.now))
		} else {
			_, err = w.tx.ExecContext(w.ctx, `INSERT INTO push_outbox (notification_id, user_id, subscription_id, immediate, due_at, created_at)
				SELECT n.id, n.stream, s.id, ?, ?, ? FROM notifications n JOIN push_subscriptions s ON s.user_id = n.stream
				WHERE n.id BETWEEN ? AND ?`, r.immediate, micros(due), micros(w.now), r.lo, r.hi)
		}
		if err != nil {
			return unavailable(err)
		}
	}
	return nil
}

// AddPushSubscription registers a browser's subscription, taking it over from another user if
// the browser had one (its endpoint is the browser's, whoever signed in last).
func (s *Store) AddPushSubscription(ctx context.Context, sub herald.PushSubscription, max int) (bool, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return false, unavailable(err)
	}
	defer tx.Rollback()
	var id int64
	var owner string
	err = tx.QueryRowContext(ctx, `SELECT id, user_id FROM push_subscriptions WHERE endpoint = ?`, sub.Endpoint).Scan(&id, &owner)
	switch {
	case err == nil && owner == sub.User:
		if _, err := tx.ExecContext(ctx, `UPDATE push_subscriptions SET p256dh = ?, auth = ? WHERE id = ?`, sub.P256DH, sub.Auth, id); err != nil {
			return false, unavailable(err)
		}
		return false, commit(tx)
	case err == nil:
		if err := deleteSubscription(ctx, tx, id); err != nil {
			return false, err
		}
	case !errors.Is(err, sql.ErrNoRows):
		return false, unavailable(err)
	}
	if max > 0 {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM push_subscriptions WHERE user_id = ?`, sub.User).Scan(&n); err != nil {
			return false, unavailable(err)
		}
		if n >= max {
			return false, herald.Errorf(herald.ETOOLARGE, "a user has at most %d push subscriptions; remove one first", max)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, created_at) VALUES (?, ?, ?, ?, ?)`,
		sub.User, sub.Endpoint, sub.P256DH, sub.Auth, micros(time.Now())); err != nil {
		return false, unavailable(err)
	}
	return true, commit(tx)
}

func commit(tx *sql.Tx) error {
	if err := tx.Commit(); err != nil {
		return unavailable(err)
	}
	return nil
}

// deleteSubscription removes a subscription and its pending pushes.
func deleteSubscription(ctx context.Context, tx *sql.Tx, id int64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM push_outbox WHERE subscription_id = ?`, id); err != nil {
		return unavailable(err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM push_subscriptions WHERE id = ?`, id); err != nil {
		return unavailable(err)
	}
	return nil
}

// DeletePushSubscription removes user's subscription of endpoint and its pending pushes.
func (s *Store) DeletePushSubscription(ctx context.Context, user, endpoint string) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(err)
	}
	defer tx.Rollback()
	var id int64
	err = tx.QueryRowContext(ctx, `SELECT id FROM push_subscriptions WHERE user_id = ? AND endpoint = ?`, user, endpoint).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return herald.Errorf(herald.ENOTFOUND, "no push subscription with this endpoint")
	case err != nil:
		return unavailable(err)
	}
	if err := deleteSubscription(ctx, tx, id); err != nil {
		return err
	}
	return commit(tx)
}

// PushSubscriptions lists user's subscriptions, oldest first.
func (s *Store) PushSubscriptions(ctx context.Context, user string) ([]herald.PushSubscription, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT endpoint, p256dh, auth, created_at FROM push_subscriptions WHERE user_id = ? ORDER BY id`, user)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	out := []herald.PushSubscription{}
	for rows.Next() {
		sub := herald.PushSubscription{User: user}
		var created int64
		if err := rows.Scan(&sub.Endpoint, &sub.P256DH, &sub.Auth, &created); err != nil {
			return nil, unavailable(err)
		}
		sub.CreatedAt = fromMicros(created)
		out = append(out, sub)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}

// newClaim returns a token no other claim has.
func newClaim() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// ClaimPushes moves the due pushes' due time to the end of the lease under a new claim token,
// then reads them back by the token, in one transaction on the writer.
func (s *Store) ClaimPushes(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]herald.PushJob, error) {
	claim := newClaim()
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, unavailable(err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE push_outbox SET due_at = ?, claim = ?, attempts = attempts + 1
		WHERE id IN (SELECT id FROM push_outbox WHERE due_at <= ? ORDER BY due_at, id LIMIT ?)`,
		micros(now.Add(lease)), claim, micros(now), limit)
	if err != nil {
		return nil, unavailable(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, unavailable(err)
	} else if n == 0 {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT o.id, o.notification_id, o.user_id, o.immediate, o.attempts - 1, o.created_at,
		s.endpoint, s.p256dh, s.auth, s.created_at
		FROM push_outbox o JOIN push_subscriptions s ON s.id = o.subscription_id WHERE o.claim = ? ORDER BY o.id`, claim)
	if err != nil {
		return nil, unavailable(err)
	}
	var jobs []herald.PushJob
	for rows.Next() {
		j := herald.PushJob{Claim: claim}
		var created, subCreated int64
		if err := rows.Scan(&j.ID, &j.Notification, &j.User, &j.Immediate, &j.Attempts, &created,
			&j.Subscription.Endpoint, &j.Subscription.P256DH, &j.Subscription.Auth, &subCreated); err != nil {
			rows.Close()
			return nil, unavailable(err)
		}
		j.CreatedAt, j.Subscription.CreatedAt, j.Subscription.User = fromMicros(created), fromMicros(subCreated), j.User
		jobs = append(jobs, j)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return jobs, commit(tx)
}

// FinishPushes removes the pushes its claim still holds, in one transaction.
func (s *Store) FinishPushes(ctx context.Context, claim string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `DELETE FROM push_outbox WHERE id = ? AND claim = ?`)
	if err != nil {
		return unavailable(err)
	}
	defer st.Close()
	for _, id := range ids {
		if _, err := st.ExecContext(ctx, id, claim); err != nil {
			return unavailable(err)
		}
	}
	return commit(tx)
}

// RetryPush sets the due time of a push its claim still holds.
func (s *Store) RetryPush(ctx context.Context, id int64, claim string, at time.Time) error {
	if _, err := s.writer.ExecContext(ctx, `UPDATE push_outbox SET due_at = ? WHERE id = ? AND claim = ?`, micros(at), id, claim); err != nil {
		return unavailable(err)
	}
	return nil
}

// PushOutboxStats counts the outbox.
func (s *Store) PushOutboxStats(ctx context.Context) (herald.PushOutboxStats, error) {
	var st herald.PushOutboxStats
	var oldest sql.NullInt64
	if err := s.reader.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM push_outbox`).Scan(&st.Pending, &oldest); err != nil {
		return st, unavailable(err)
	}
	if oldest.Valid {
		st.Oldest = fromMicros(oldest.Int64)
	}
	return st, nil
}

// MarkPresent upserts the users' presence times, keeping the later of the stored and the given.
func (s *Store) MarkPresent(ctx context.Context, present map[string]time.Time) error {
	if len(present) == 0 {
		return nil
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO push_presence (user_id, seen_at) VALUES (?, ?)
		ON CONFLICT (user_id) DO UPDATE SET seen_at = max(seen_at, excluded.seen_at)`)
	if err != nil {
		return unavailable(err)
	}
	defer st.Close()
	for u, at := range present {
		if _, err := st.ExecContext(ctx, u, micros(at)); err != nil {
			return unavailable(err)
		}
	}
	return commit(tx)
}

// PrunePresence removes at most limit presence rows older than before, in one short write
// (the table has no index on the time: it is scanned, which the sender does a few times an hour).
func (s *Store) PrunePresence(ctx context.Context, before time.Time, limit int) (int64, error) {
	res, err := s.writer.ExecContext(ctx, `DELETE FROM push_presence WHERE user_id IN
		(SELECT user_id FROM push_presence WHERE seen_at < ? LIMIT ?)`, micros(before), limit)
	if err != nil {
		return 0, unavailable(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, unavailable(err)
	}
	return n, nil
}

// LastPresent reads user's presence time.
func (s *Store) LastPresent(ctx context.Context, user string) (time.Time, error) {
	var at int64
	err := s.reader.QueryRowContext(ctx, `SELECT seen_at FROM push_presence WHERE user_id = ?`, user).Scan(&at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, unavailable(err)
	}
	return fromMicros(at), nil
}
