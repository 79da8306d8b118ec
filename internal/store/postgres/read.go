package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store"
)

const notificationCols = `id, stream, seq, type, data, created_at, content, topic, critical`

func scanNotification(row pgx.Row, withState bool) (herald.Notification, error) {
	var n herald.Notification
	var seq, mark int64
	var data, content []byte
	var readAt, archivedAt *time.Time
	var topic *string
	dest := []any{&n.ID, &n.User, &seq, &n.Type, &data, &n.CreatedAt, &content, &topic, &n.Critical}
	if withState {
		// stateCols: the reading user's read and archive times (from the notification's row for
		// the user's own, from the per-user tables for a broadcast) and the user's seen mark.
		dest = append(dest, &readAt, &archivedAt, &mark)
	}
	if err := row.Scan(dest...); err != nil {
		return n, err
	}
	var err error
	if n.Content, err = store.ReadContent(content); err != nil {
		return n, err
	}
	n.Seq = uint64(seq)
	n.Data = data
	if topic != nil {
		n.Topic = *topic
	}
	n.CreatedAt = n.CreatedAt.UTC()
	if readAt != nil {
		n.ReadAt = readAt.UTC()
	}
	if archivedAt != nil {
		n.ArchivedAt = archivedAt.UTC()
	}
	n.Seen = withState && (n.ID <= mark || readAt != nil)
	return n, nil
}

// markQuery is the seen mark of the user $1 (0 for none), as a column of inbox reads.
const markQuery = `coalesce((SELECT seen_up_to FROM herald_user_marks WHERE user_id = $1), 0)`

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func collect(rows pgx.Rows, err error, withState bool) ([]herald.Notification, error) {
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var ns []herald.Notification
	for rows.Next() {
		n, err := scanNotification(rows, withState)
		if err != nil {
			return nil, unavailable(err)
		}
		ns = append(ns, n)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return ns, nil
}

func streamAfter(ctx context.Context, q querier, stream string, after uint64, limit int) ([]herald.Notification, error) {
	rows, err := q.Query(ctx, `SELECT `+notificationCols+` FROM herald_notifications
		WHERE stream = $1 AND seq > $2 ORDER BY seq LIMIT $3`, stream, int64(after), limit)
	return collect(rows, err, false)
}

func headsOf(ctx context.Context, q querier, streams []string) (map[string]uint64, error) {
	rows, err := q.Query(ctx, `SELECT stream, seq FROM herald_streams WHERE stream = ANY($1)`, streams)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	out := make(map[string]uint64, len(streams))
	for rows.Next() {
		var st string
		var seq int64
		if err := rows.Scan(&st, &seq); err != nil {
			return nil, unavailable(err)
		}
		out[st] = uint64(seq)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}

func cursorOf(h map[string]uint64, user string) herald.Cursor {
	return herald.Cursor{User: h[user], Broadcast: h[herald.BroadcastStream]}
}

// Stream reads one stream after seq.
func (s *Store) Stream(ctx context.Context, stream string, after uint64, limit int) ([]herald.Notification, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return streamAfter(ctx, s.pool, stream, after, limit)
}

// Heads returns the heads of user's stream and the broadcast stream.
func (s *Store) Heads(ctx context.Context, user string) (herald.Cursor, error) {
	if err := s.check(); err != nil {
		return herald.Cursor{}, err
	}
	h, err := headsOf(ctx, s.pool, []string{user, herald.BroadcastStream})
	return cursorOf(h, user), err
}

// StreamHeads returns the heads of the given streams.
func (s *Store) StreamHeads(ctx context.Context, streams []string) (map[string]uint64, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if len(streams) == 0 {
		return map[string]uint64{}, nil
	}
	return headsOf(ctx, s.pool, streams)
}

// Feed reads both of user's streams after the cursor in one snapshot, so Heads agrees with what
// was returned.
func (s *Store) Feed(ctx context.Context, user string, after herald.Cursor, limit int) (herald.FeedPage, error) {
	var page herald.FeedPage
	if err := s.check(); err != nil {
		return page, err
	}
	// One statement, one snapshot (a statement sees the database as of its start), one round
	// trip: a resume was a repeatable-read transaction of five (BEGIN, three queries, COMMIT),
	// and a reconnect storm is thousands of resumes at once.
	rows, err := s.pool.Query(ctx, feedQuery, user, int64(after.User), int64(after.Broadcast), limit)
	if err != nil {
		return page, unavailable(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			part    int
			n       herald.Notification
			seq     int64
			data    []byte
			created *time.Time
			content []byte
			topic   *string
		)
		if err := rows.Scan(&part, &n.ID, &n.User, &seq, &n.Type, &data, &created, &content, &topic, &n.Critical); err != nil {
			return page, unavailable(err)
		}
		if part == 2 {
			page.Heads = page.Heads.With(n.User, uint64(seq))
			continue
		}
		n.Seq, n.Data, n.CreatedAt = uint64(seq), data, *created
		if topic != nil {
			n.Topic = *topic
		}
		if n.Content, err = store.ReadContent(content); err != nil {
			return page, unavailable(err)
		}
		if part == 0 {
			page.User = append(page.User, n)
		} else {
			page.Broadcast = append(page.Broadcast, n)
		}
	}
	if err := rows.Err(); err != nil {
		return page, unavailable(err)
	}
	return page, nil
}

// feedQuery is Feed's statement. $1 is the user, $2 and $3 the cursor in the user's stream and
// the broadcast stream, $4 the limit of each. Its rows: part 0, the user's notifications; part
// 1, the broadcasts; part 2, the heads; each in sequence order.
const feedQuery = `(SELECT 0 AS part, ` + notificationCols + ` FROM herald_notifications
		WHERE stream = $1 AND seq > $2 ORDER BY seq LIMIT $4)
	UNION ALL (SELECT 1, ` + notificationCols + ` FROM herald_notifications
		WHERE stream = '' AND seq > $3 ORDER BY seq LIMIT $4)
	UNION ALL (SELECT 2, 0, stream, seq, '', NULL, NULL, NULL, NULL, false FROM herald_streams
		WHERE stream IN ($1, ''))
	ORDER BY part, seq`

// Inbox returns a page of user's notifications and broadcasts, newest first, with user's state
// of each. Within a stream ids grow with sequence numbers, so each stream is walked back through
// its (stream, seq) index and the two are merged by id.
func (s *Store) Inbox(ctx context.Context, user string, q herald.InboxQuery) (herald.InboxPage, error) {
	var page herald.InboxPage
	if err := s.check(); err != nil {
		return page, err
	}
	if q.Limit <= 0 {
		return page, herald.Errorf(herald.EINVALID, "inbox limit must be positive, not %d", q.Limit)
	}
	before := q.Before
	if before <= 0 {
		before = 1<<63 - 1
	}
	var types []string // nil: every type
	if len(q.Types) > 0 {
		types = q.Types
	}
	var topic *string // nil: every notification; else only the topic's, never a broadcast
	if q.Topic != "" {
		topic = &q.Topic
	}
	rows, err := s.pool.Query(ctx, `SELECT u.*, `+markQuery+` FROM (
		(SELECT n.id, n.stream, n.seq, n.type, n.data, n.created_at, n.content, n.topic, n.critical, n.read_at, n.archived_at FROM herald_notifications n
		 WHERE n.stream = $1 AND n.id < $2 AND (NOT $3 OR n.read_at IS NULL) AND ($4::text[] IS NULL OR n.type = ANY($4))
		   AND (n.archived_at IS NOT NULL) = $6 AND ($7::text IS NULL OR n.topic = $7)
		 ORDER BY n.seq DESC LIMIT $5)
		UNION ALL
		(SELECT n.id, n.stream, n.seq, n.type, n.data, n.created_at, n.content, n.topic, n.critical, r.read_at, a.archived_at FROM herald_notifications n
		 LEFT JOIN herald_broadcast_reads r ON r.user_id = $1 AND r.notification_id = n.id
		 LEFT JOIN herald_broadcast_archives a ON a.user_id = $1 AND a.notification_id = n.id
		 WHERE n.stream = '' AND n.id < $2 AND (NOT $3 OR r.read_at IS NULL) AND ($4::text[] IS NULL OR n.type = ANY($4))
		   AND (a.archived_at IS NOT NULL) = $6 AND $7::text IS NULL AND NOT `+broadcastMuted+`
		 ORDER BY n.seq DESC LIMIT $5)
		ORDER BY 1 DESC LIMIT $5) u
		ORDER BY u.id DESC`, user, before, q.UnreadOnly, types, q.Limit+1, q.Archived, topic)
	ns, err := collect(rows, err, true)
	if err != nil {
		return page, err
	}
	page.Notifications = ns
	if len(ns) > q.Limit {
		page.Notifications = ns[:q.Limit]
		page.NextBefore = ns[q.Limit-1].ID
	}
	return page, nil
}

// Get returns one of user's notifications or broadcasts with user's state of it.
func (s *Store) Get(ctx context.Context, user string, id int64) (herald.Notification, error) {
	if err := s.check(); err != nil {
		return herald.Notification{}, err
	}
	row := s.pool.QueryRow(ctx, `SELECT n.id, n.stream, n.seq, n.type, n.data, n.created_at, n.content, n.topic, n.critical,
		CASE WHEN n.stream = '' THEN r.read_at ELSE n.read_at END,
		CASE WHEN n.stream = '' THEN a.archived_at ELSE n.archived_at END, `+markQuery+`
		FROM herald_notifications n
		LEFT JOIN herald_broadcast_reads r ON n.stream = '' AND r.user_id = $1 AND r.notification_id = n.id
		LEFT JOIN herald_broadcast_archives a ON n.stream = '' AND a.user_id = $1 AND a.notification_id = n.id
		WHERE n.id = $2 AND n.stream IN ($1, '')`, user, id)
	n, err := scanNotification(row, true)
	if errors.Is(err, pgx.ErrNoRows) {
		return n, notFound(id)
	}
	if err != nil {
		return n, unavailable(err)
	}
	return n, nil
}

func notFound(id int64) error {
	return herald.Errorf(herald.ENOTFOUND, "notification %d not found", id)
}

// SetRead marks a notification read or unread for user. Marking read twice keeps the first time.
func (s *Store) SetRead(ctx context.Context, user string, id int64, read bool) error {
	return s.setMark(ctx, readMark, user, id, read)
}

// mark is a per-user state of a notification kept as a time: a column of the user's own
// notifications, and a table of per-user rows for broadcasts. Names are constants, never input.
type mark struct{ column, broadcastTable string }

var (
	readMark    = mark{"read_at", "herald_broadcast_reads"}
	archiveMark = mark{"archived_at", "herald_broadcast_archives"}
)

// setMark sets or clears m on one of user's notifications or broadcasts; setting it twice keeps
// the first time. Another user's notification is not_found, as one that does not exist.
func (s *Store) setMark(ctx context.Context, m mark, user string, id int64, on bool) error {
	if err := s.check(); err != nil {
		return err
	}
	var stream string
	err := s.pool.QueryRow(ctx, `SELECT stream FROM herald_notifications WHERE id = $1 AND stream IN ($2, '')`, id, user).Scan(&stream)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return notFound(id)
	case err != nil:
		return unavailable(err)
	}
	// Each statement below is atomic by itself; a notification pruned meanwhile only makes it
	// change nothing (and an orphaned mark is removed by the next prune).
	switch {
	case stream != herald.BroadcastStream && on:
		_, err = s.pool.Exec(ctx, `UPDATE herald_notifications SET `+m.column+` = COALESCE(`+m.column+`, now()) WHERE id = $1`, id)
	case stream != herald.BroadcastStream:
		_, err = s.pool.Exec(ctx, `UPDATE herald_notifications SET `+m.column+` = NULL WHERE id = $1`, id)
	case on:
		_, err = s.pool.Exec(ctx, `INSERT INTO `+m.broadcastTable+` (user_id, notification_id, `+m.column+`)
			SELECT $1, $2, now() WHERE EXISTS (SELECT 1 FROM herald_notifications WHERE id = $2)
			ON CONFLICT DO NOTHING`, user, id)
	default:
		_, err = s.pool.Exec(ctx, `DELETE FROM `+m.broadcastTable+` WHERE user_id = $1 AND notification_id = $2`, user, id)
	}
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// ReadAll marks all of user's notifications and broadcasts read.
func (s *Store) ReadAll(ctx context.Context, user string) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	var total int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE herald_notifications SET read_at = now() WHERE stream = $1 AND read_at IS NULL`, user)
		if err != nil {
			return err
		}
		total = tag.RowsAffected()
		tag, err = tx.Exec(ctx, `INSERT INTO herald_broadcast_reads (user_id, notification_id, read_at)
			SELECT $1, id, now() FROM herald_notifications WHERE stream = '' ON CONFLICT DO NOTHING`, user)
		if err != nil {
			return err
		}
		total += tag.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, unavailable(err)
	}
	return total, nil
}
