package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald"
)

// queuePushes writes the group's outbox rows, one per notification and subscription of its
// user, in the group's transaction: a committed notification has its pushes queued, durably,
// or it is not committed. A broadcast (only ever queued with push "always") goes to every
// subscription.
func queuePushes(ctx context.Context, tx pgx.Tx, ids []int64, users []string, immediate []bool, bcasts []int64, now time.Time, delay time.Duration) error {
	if len(ids) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO herald_push_outbox (notification_id, user_id, subscription_id, immediate, due_at, created_at)
			SELECT t.id, s.user_id, s.id, t.imm, CASE WHEN t.imm THEN $4::timestamptz ELSE $5::timestamptz END, $4::timestamptz
			FROM unnest($1::bigint[], $2::text[], $3::bool[]) AS t(id, user_id, imm)
			JOIN herald_push_subscriptions s ON s.user_id = t.user_id`, ids, users, immediate, now, now.Add(delay)); err != nil {
			return err
		}
	}
	if len(bcasts) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO herald_push_outbox (notification_id, user_id, subscription_id, immediate, due_at, created_at)
			SELECT b, s.user_id, s.id, true, $2, $2 FROM unnest($1::bigint[]) AS b CROSS JOIN herald_push_subscriptions s`, bcasts, now); err != nil {
			return err
		}
	}
	return nil
}

// AddPushSubscription registers a browser's subscription, taking it over from another user if
// the browser had one (its endpoint is the browser's, whoever signed in last). The user's
// subscriptions are counted under a transaction-scoped advisory lock of the user, so two
// concurrent registrations cannot both pass the limit.
func (s *Store) AddPushSubscription(ctx context.Context, sub herald.PushSubscription, max int) (bool, error) {
	created := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, keyLock("push-subscriptions", sub.User)); err != nil {
			return err
		}
		var id int64
		var owner string
		err := tx.QueryRow(ctx, `SELECT id, user_id FROM herald_push_subscriptions WHERE endpoint = $1 FOR UPDATE`, sub.Endpoint).Scan(&id, &owner)
		switch {
		case err == nil && owner == sub.User:
			_, err := tx.Exec(ctx, `UPDATE herald_push_subscriptions SET p256dh = $1, auth = $2 WHERE id = $3`, sub.P256DH, sub.Auth, id)
			return err
		case err == nil:
			if err := deleteSubscription(ctx, tx, id); err != nil {
				return err
			}
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		if max > 0 {
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM herald_push_subscriptions WHERE user_id = $1`, sub.User).Scan(&n); err != nil {
				return err
			}
			if n >= max {
				return herald.Errorf(herald.ETOOLARGE, "a user has at most %d push subscriptions; remove one first", max)
			}
		}
		tag, err := tx.Exec(ctx, `INSERT INTO herald_push_subscriptions (user_id, endpoint, p256dh, auth, created_at)
			VALUES ($1, $2, $3, $4, now()) ON CONFLICT (endpoint) DO NOTHING`, sub.User, sub.Endpoint, sub.P256DH, sub.Auth)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			// Another user's registration of the same browser committed first.
			return herald.Errorf(herald.ECONFLICT, "this endpoint was registered concurrently; try again")
		}
		created = true
		return nil
	})
	return created, storeErr(err)
}

// storeErr passes Herald's errors through and reports any other as the store being unavailable.
func storeErr(err error) error {
	var he *herald.Error
	if err == nil || errors.As(err, &he) {
		return err
	}
	return unavailable(err)
}

// deleteSubscription removes a subscription and its pending pushes.
func deleteSubscription(ctx context.Context, tx pgx.Tx, id int64) error {
	if _, err := tx.Exec(ctx, `DELETE FROM herald_push_outbox WHERE subscription_id = $1`, id); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `DELETE FROM herald_push_subscriptions WHERE id = $1`, id)
	return err
}

// DeletePushSubscription removes user's subscription of endpoint and its pending pushes.
func (s *Store) DeletePushSubscription(ctx context.Context, user, endpoint string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `SELECT id FROM herald_push_subscriptions WHERE user_id = $1 AND endpoint = $2 FOR UPDATE`, user, endpoint).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return herald.Errorf(herald.ENOTFOUND, "no push subscription with this endpoint")
		} else if err != nil {
			return err
		}
		return deleteSubscription(ctx, tx, id)
	})
	return storeErr(err)
}

// PushSubscriptions lists user's subscriptions, oldest first.
func (s *Store) PushSubscriptions(ctx context.Context, user string) ([]herald.PushSubscription, error) {
	rows, err := s.pool.Query(ctx, `SELECT endpoint, p256dh, auth, created_at FROM herald_push_subscriptions WHERE user_id = $1 ORDER BY id`, user)
	if err != nil {
		return nil, unavailable(err)
	}
	out := []herald.PushSubscription{}
	for rows.Next() {
		sub := herald.PushSubscription{User: user}
		if err := rows.Scan(&sub.Endpoint, &sub.P256DH, &sub.Auth, &sub.CreatedAt); err != nil {
			rows.Close()
			return nil, unavailable(err)
		}
		sub.CreatedAt = sub.CreatedAt.UTC()
		out = append(out, sub)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}

// ClaimPushes takes the due pushes with FOR UPDATE SKIP LOCKED, so that nodes claiming at the
// same moment take different ones, and moves their due time to the end of the lease.
func (s *Store) ClaimPushes(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]herald.PushJob, error) {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	claim := hex.EncodeToString(b[:])
	rows, err := s.pool.Query(ctx, `WITH due AS (
			SELECT id FROM herald_push_outbox WHERE due_at <= $1 ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
		), claimed AS (
			UPDATE herald_push_outbox o SET due_at = $3, claim = $4, attempts = o.attempts + 1
			FROM due WHERE o.id = due.id
			RETURNING o.id, o.notification_id, o.user_id, o.subscription_id, o.immediate, o.attempts - 1 AS attempts, o.created_at
		)
		SELECT c.id, c.notification_id, c.user_id, c.immediate, c.attempts, c.created_at, s.endpoint, s.p256dh, s.auth, s.created_at
		FROM claimed c JOIN herald_push_subscriptions s ON s.id = c.subscription_id ORDER BY c.id`,
		now, limit, now.Add(lease), claim)
	if err != nil {
		return nil, unavailable(err)
	}
	var jobs []herald.PushJob
	for rows.Next() {
		j := herald.PushJob{Claim: claim}
		if err := rows.Scan(&j.ID, &j.Notification, &j.User, &j.Immediate, &j.Attempts, &j.CreatedAt,
			&j.Subscription.Endpoint, &j.Subscription.P256DH, &j.Subscription.Auth, &j.Subscription.CreatedAt); err != nil {
			rows.Close()
			return nil, unavailable(err)
		}
		j.CreatedAt, j.Subscription.CreatedAt, j.Subscription.User = j.CreatedAt.UTC(), j.Subscription.CreatedAt.UTC(), j.User
		jobs = append(jobs, j)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return jobs, nil
}

// FinishPushes removes the pushes its claim still holds, in one statement.
func (s *Store) FinishPushes(ctx context.Context, claim string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM herald_push_outbox WHERE id = ANY($1::bigint[]) AND claim = $2`, ids, claim); err != nil {
		return unavailable(err)
	}
	return nil
}

// RetryPush sets the due time of a push its claim still holds.
func (s *Store) RetryPush(ctx context.Context, id int64, claim string, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE herald_push_outbox SET due_at = $1 WHERE id = $2 AND claim = $3`, at, id, claim); err != nil {
		return unavailable(err)
	}
	return nil
}

// PushOutboxStats counts the outbox.
func (s *Store) PushOutboxStats(ctx context.Context) (herald.PushOutboxStats, error) {
	var st herald.PushOutboxStats
	var oldest *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT COUNT(*), MIN(created_at) FROM herald_push_outbox`).Scan(&st.Pending, &oldest); err != nil {
		return st, unavailable(err)
	}
	if oldest != nil {
		st.Oldest = oldest.UTC()
	}
	return st, nil
}

// MarkPresent upserts the users' presence times in one statement, keeping the later of the
// stored and the given, in the order of the users (so concurrent nodes never deadlock).
func (s *Store) MarkPresent(ctx context.Context, present map[string]time.Time) error {
	if len(present) == 0 {
		return nil
	}
	users := make([]string, 0, len(present))
	times := make([]time.Time, 0, len(present))
	for u, at := range present {
		users, times = append(users, u), append(times, at)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO herald_push_presence (user_id, seen_at)
		SELECT u, t FROM unnest($1::text[], $2::timestamptz[]) AS x(u, t) ORDER BY u
		ON CONFLICT (user_id) DO UPDATE SET seen_at = GREATEST(herald_push_presence.seen_at, EXCLUDED.seen_at)`, users, times); err != nil {
		return unavailable(err)
	}
	return nil
}

// PrunePresence removes at most limit presence rows older than before, in one statement (the
// table has no index on the time: it is scanned, which the sender does a few times an hour).
func (s *Store) PrunePresence(ctx context.Context, before time.Time, limit int) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM herald_push_presence WHERE user_id IN
		(SELECT user_id FROM herald_push_presence WHERE seen_at < $1 LIMIT $2)`, before, limit)
	if err != nil {
		return 0, unavailable(err)
	}
	return tag.RowsAffected(), nil
}

// LastPresent reads user's presence time.
func (s *Store) LastPresent(ctx context.Context, user string) (time.Time, error) {
	var at time.Time
	err := s.pool.QueryRow(ctx, `SELECT seen_at FROM herald_push_presence WHERE user_id = $1`, user).Scan(&at)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, unavailable(err)
	}
	return at.UTC(), nil
}
