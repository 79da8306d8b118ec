package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store"
)

const notificationCols = `id, stream, seq, type, data, created_at, content, topic, critical`

type scanner interface{ Scan(dest ...any) error }

func scanNotification(row scanner) (herald.Notification, error) {
	var n herald.Notification
	var created int64
	var data, content []byte
	var topic sql.NullString
	if err := row.Scan(&n.ID, &n.User, &n.Seq, &n.Type, &data, &created, &content, &topic, &n.Critical); err != nil {
		return n, err
	}
	n.Topic = topic.String
	n.Data = data
	n.CreatedAt = fromMicros(created)
	var err error
	n.Content, err = store.ReadContent(content)
	return n, err
}

// stateCols follow notificationCols in inbox reads: the reading user's read and archive times
// (each from the notification's row for the user's own, from the per-user tables for a
// broadcast) and the user's seen mark.
func scanWithState(row scanner) (herald.Notification, error) {
	var n herald.Notification
	var created, mark int64
	var data, content []byte
	var readAt, archivedAt sql.NullInt64
	var topic sql.NullString
	if err := row.Scan(&n.ID, &n.User, &n.Seq, &n.Type, &data, &created, &content, &topic, &n.Critical, &readAt, &archivedAt, &mark); err != nil {
		return n, err
	}
	n.Topic = topic.String
	var err error
	if n.Content, err = store.ReadContent(content); err != nil {
		return n, err
	}
	n.Data = data
	n.CreatedAt = fromMicros(created)
	if readAt.Valid {
		n.ReadAt = fromMicros(readAt.Int64)
	}
	if archivedAt.Valid {
		n.ArchivedAt = fromMicros(archivedAt.Int64)
	}
	n.Seen = n.ID <= mark || readAt.Valid
	return n, nil
}

// markQuery is the user's seen mark (0 for none), as a column of inbox reads; its parameter is
// the user.
const markQuery = `coalesce((SELECT seen_up_to FROM user_marks WHERE user_id = ?1), 0)`

// The queries every new stream makes (Heads, or Feed when it resumes), prepared once per reader
// connection: a reconnect storm is made of nothing else, and parsing the SQL anew each time was
// 40 % of a Heads read.
const (
	streamAfterQuery = `SELECT ` + notificationCols + ` FROM notifications
		WHERE stream = ? AND seq > ? ORDER BY seq LIMIT ?`
	headsQuery = `SELECT stream, seq FROM streams WHERE stream IN (?, '')`
	prefsQuery = `SELECT channel, kind, value FROM mutes WHERE user_id = ? ORDER BY channel, kind, value`
)

type readerStmts struct {
	streamAfter, heads, feed, prefs *sql.Stmt
	// broadcasts are recent broadcasts as read, for resumes (feed.go).
	broadcasts broadcastCache
	// window is the newest notifications of each stream as committed, for resumes (window.go).
	window recentWindow
}

func (r *readerStmts) prepare(ctx context.Context, db *sql.DB) error {
	var err error
	if r.streamAfter, err = db.PrepareContext(ctx, streamAfterQuery); err != nil {
		return fmt.Errorf("sqlite: prepare: %w", err)
	}
	if r.heads, err = db.PrepareContext(ctx, headsQuery); err != nil {
		r.streamAfter.Close()
		return fmt.Errorf("sqlite: prepare: %w", err)
	}
	if r.feed, err = db.PrepareContext(ctx, feedQuery); err != nil {
		r.streamAfter.Close()
		r.heads.Close()
		return fmt.Errorf("sqlite: prepare: %w", err)
	}
	if r.prefs, err = db.PrepareContext(ctx, prefsQuery); err != nil {
		r.streamAfter.Close()
		r.heads.Close()
		r.feed.Close()
		return fmt.Errorf("sqlite: prepare: %w", err)
	}
	return nil
}

func (r *readerStmts) close() error {
	return errors.Join(r.streamAfter.Close(), r.heads.Close(), r.feed.Close(), r.prefs.Close())
}

func streamAfter(ctx context.Context, stmt *sql.Stmt, stream string, after uint64, limit int) ([]herald.Notification, error) {
	rows, err := stmt.QueryContext(ctx, stream, after, limit)
	return appendRows(nil, rows, err)
}

func heads(ctx context.Context, stmt *sql.Stmt, user string) (herald.Cursor, error) {
	rows, err := stmt.QueryContext(ctx, user)
	var c herald.Cursor
	if err != nil {
		return c, unavailable(err)
	}
	defer rows.Close()
	for rows.Next() {
		var stream string
		var seq uint64
		if err := rows.Scan(&stream, &seq); err != nil {
			return c, unavailable(err)
		}
		c = c.With(stream, seq)
	}
	if err := rows.Err(); err != nil {
		return c, unavailable(err)
	}
	return c, nil
}

// StreamHeads returns the heads of the given streams.
func (s *Store) StreamHeads(ctx context.Context, streams []string) (map[string]uint64, error) {
	out := make(map[string]uint64, len(streams))
	for len(streams) > 0 {
		n := min(len(streams), seqChunk)
		args := make([]any, n)
		for i, st := range streams[:n] {
			args[i] = st
		}
		rows, err := s.reader.QueryContext(ctx, `SELECT stream, seq FROM streams WHERE stream IN (?`+strings.Repeat(`, ?`, n-1)+`)`, args...)
		if err != nil {
			return nil, unavailable(err)
		}
		for rows.Next() {
			var st string
			var seq uint64
			if err := rows.Scan(&st, &seq); err != nil {
				rows.Close()
				return nil, unavailable(err)
			}
			out[st] = seq
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, unavailable(err)
		}
		streams = streams[n:]
	}
	return out, nil
}

// Stream reads one stream after seq.
func (s *Store) Stream(ctx context.Context, stream string, after uint64, limit int) ([]herald.Notification, error) {
	return streamAfter(ctx, s.read.streamAfter, stream, after, limit)
}

// Heads returns the heads of user's stream and the broadcast stream.
func (s *Store) Heads(ctx context.Context, user string) (herald.Cursor, error) {
	return heads(ctx, s.read.heads, user)
}

// feedTx reads both of user's streams after the cursor in one transaction, so Heads agrees with
// what was returned: Feed's way when the broadcasts it needs are not all in its cache and could
// not be read beside its statement (feed.go).
func (s *Store) feedTx(ctx context.Context, user string, after herald.Cursor, limit int) (herald.FeedPage, error) {
	var page herald.FeedPage
	tx, err := s.reader.BeginTx(ctx, nil)
	if err != nil {
		return page, unavailable(err)
	}
	defer tx.Rollback()
	// Tx.StmtContext reuses the statements already prepared on the transaction's connection.
	after1, heads1 := tx.StmtContext(ctx, s.read.streamAfter), tx.StmtContext(ctx, s.read.heads)
	if page.User, err = streamAfter(ctx, after1, user, after.User, limit); err != nil {
		return page, err
	}
	if page.Broadcast, err = streamAfter(ctx, after1, herald.BroadcastStream, after.Broadcast, limit); err != nil {
		return page, err
	}
	if page.Heads, err = heads(ctx, heads1, user); err != nil {
		return page, err
	}
	return page, nil
}

// Inbox returns a page of user's notifications and broadcasts, newest first, with user's state
// of each. Each stream is read through its own index and the two are merged, since one ORDER BY
// over an OR of both would scan.
func (s *Store) Inbox(ctx context.Context, user string, q herald.InboxQuery) (herald.InboxPage, error) {
	var page herald.InboxPage
	if q.Limit <= 0 {
		return page, herald.Errorf(herald.EINVALID, "inbox limit must be positive, not %d", q.Limit)
	}
	before := q.Before
	if before <= 0 {
		before = 1<<63 - 1
	}
	// ?1 is the user, ?2 before, ?3 the limit of each part (one more than the page, to tell
	// whether there is a next one); the types follow.
	args := []any{user, before, q.Limit + 1}
	var typeFilter string
	if len(q.Types) > 0 {
		// Numbered: both parts of the query name them.
		ps := make([]string, len(q.Types))
		for i, t := range q.Types {
			args = append(args, t)
			ps[i] = "?" + strconv.Itoa(len(args))
		}
		typeFilter = ` AND n.type IN (` + strings.Join(ps, ", ") + `)`
	}
	unicast, broadcast := ` AND n.archived_at IS NULL`, ` AND a.archived_at IS NULL`
	if q.Archived {
		unicast, broadcast = ` AND n.archived_at IS NOT NULL`, ` AND a.archived_at IS NOT NULL`
	}
	if q.Topic != "" {
		// A topic's notifications are in the user's stream only: the broadcast part selects
		// nothing. No index has the topic: the user's stream is read newest first, which
		// retention bounds, and a topic publish of 100,000 rows would pay for one.
		args = append(args, q.Topic)
		typeFilter += ` AND n.topic = ?` + strconv.Itoa(len(args))
		broadcast += ` AND 0`
	}
	if q.UnreadOnly {
		unicast += ` AND n.read_at IS NULL`
		broadcast += ` AND r.read_at IS NULL`
	}
	// Within a stream ids grow with sequence numbers, so walking (stream, seq) backwards is newest
	// first by id; "id < before" is checked on the index entry (it holds the rowid), so paging
	// deeper skips index entries, not rows.
	// A broadcast the user muted is left out (broadcastMuted), as the user's streams leave it
	// out: it has one row for everyone, so it could not be left unwritten for the user alone.
	broadcast += ` AND NOT ` + broadcastMuted
	query := `SELECT id, stream, seq, type, data, created_at, content, topic, critical, read_at, archived_at, ` + markQuery + ` FROM (
		SELECT * FROM (
			SELECT n.id, n.stream, n.seq, n.type, n.data, n.created_at, n.content, n.topic, n.critical, n.read_at, n.archived_at
			FROM notifications n INDEXED BY notifications_stream_seq
			WHERE n.stream = ?1 AND n.id < ?2` + unicast + typeFilter + ` ORDER BY n.seq DESC LIMIT ?3)
		UNION ALL SELECT * FROM (
			SELECT n.id, n.stream, n.seq, n.type, n.data, n.created_at, n.content, n.topic, n.critical, r.read_at, a.archived_at
			FROM notifications n INDEXED BY notifications_stream_seq
			LEFT JOIN broadcast_reads r ON r.user_id = ?1 AND r.notification_id = n.id
			LEFT JOIN broadcast_archives a ON a.user_id = ?1 AND a.notification_id = n.id
			WHERE n.stream = '' AND n.id < ?2` + broadcast + typeFilter + ` ORDER BY n.seq DESC LIMIT ?3)
		ORDER BY 1 DESC LIMIT ?3)
	ORDER BY id DESC`

	rows, err := s.reader.QueryContext(ctx, query, args...)
	if err != nil {
		return page, unavailable(err)
	}
	defer rows.Close()
	for rows.Next() {
		n, err := scanWithState(rows)
		if err != nil {
			return page, unavailable(err)
		}
		page.Notifications = append(page.Notifications, n)
	}
	if err := rows.Err(); err != nil {
		return page, unavailable(err)
	}
	if len(page.Notifications) > q.Limit {
		page.Notifications = page.Notifications[:q.Limit]
		page.NextBefore = page.Notifications[q.Limit-1].ID
	}
	return page, nil
}

// Get returns one of user's notifications or broadcasts with user's state of it.
func (s *Store) Get(ctx context.Context, user string, id int64) (herald.Notification, error) {
	row := s.reader.QueryRowContext(ctx, `SELECT n.id, n.stream, n.seq, n.type, n.data, n.created_at, n.content, n.topic, n.critical,
		CASE WHEN n.stream = '' THEN r.read_at ELSE n.read_at END,
		CASE WHEN n.stream = '' THEN a.archived_at ELSE n.archived_at END, `+markQuery+`
		FROM notifications n
		LEFT JOIN broadcast_reads r ON n.stream = '' AND r.user_id = ?1 AND r.notification_id = n.id
		LEFT JOIN broadcast_archives a ON n.stream = '' AND a.user_id = ?1 AND a.notification_id = n.id
		WHERE n.id = ?2 AND n.stream IN (?1, '')`, user, id)
	n, err := scanWithState(row)
	if errors.Is(err, sql.ErrNoRows) {
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
	readMark    = mark{"read_at", "broadcast_reads"}
	archiveMark = mark{"archived_at", "broadcast_archives"}
)

// setMark sets or clears m on one of user's notifications or broadcasts; setting it twice keeps
// the first time. Another user's notification is not_found, as one that does not exist.
func (s *Store) setMark(ctx context.Context, m mark, user string, id int64, on bool) error {
	now := micros(time.Now())
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(err)
	}
	defer tx.Rollback()
	var stream string
	err = tx.QueryRowContext(ctx, `SELECT stream FROM notifications WHERE id = ? AND stream IN (?, '')`, id, user).Scan(&stream)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound(id)
	}
	if err != nil {
		return unavailable(err)
	}
	switch {
	case stream != herald.BroadcastStream && on:
		_, err = tx.ExecContext(ctx, `UPDATE notifications SET `+m.column+` = COALESCE(`+m.column+`, ?) WHERE id = ?`, now, id)
	case stream != herald.BroadcastStream:
		_, err = tx.ExecContext(ctx, `UPDATE notifications SET `+m.column+` = NULL WHERE id = ?`, id)
	case on:
		_, err = tx.ExecContext(ctx, `INSERT INTO `+m.broadcastTable+` (user_id, notification_id, `+m.column+`) VALUES (?, ?, ?)
			ON CONFLICT DO NOTHING`, user, id, now)
	default:
		_, err = tx.ExecContext(ctx, `DELETE FROM `+m.broadcastTable+` WHERE user_id = ? AND notification_id = ?`, user, id)
	}
	if err != nil {
		return unavailable(err)
	}
	if err := tx.Commit(); err != nil {
		return unavailable(err)
	}
	return nil
}

// ReadAll marks all of user's notifications and broadcasts read.
func (s *Store) ReadAll(ctx context.Context, user string) (int64, error) {
	now := micros(time.Now())
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, unavailable(err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE notifications SET read_at = ? WHERE stream = ? AND read_at IS NULL`, now, user)
	if err != nil {
		return 0, unavailable(err)
	}
	unicast, _ := res.RowsAffected()
	res, err = tx.ExecContext(ctx, `INSERT INTO broadcast_reads (user_id, notification_id, read_at)
		SELECT ?, id, ? FROM notifications WHERE stream = '' ON CONFLICT DO NOTHING`, user, now)
	if err != nil {
		return 0, unavailable(err)
	}
	broadcast, _ := res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, unavailable(err)
	}
	return unicast + broadcast, nil
}
