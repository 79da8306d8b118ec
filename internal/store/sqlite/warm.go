package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store"
)

// Warming the recent window at start.
//
// After a restart every client of the node comes back at once, and the windows (window.go) are
// empty: each resume read the store, a fifth of the server's CPU in that storm and what kept
// catching up slower than reconnecting. A sole writer that opens its file knows nobody writes it
// while it reads (its own commit loop has not started), so it fills the windows with one read of
// the newest rows, as if it had committed them itself: the rows go through the window's commit
// in id order (which is each stream's sequence order), so a stream's window again holds
// contiguous sequence numbers only.
//
// What the commit loop knows and a read does not is that the last row of a window is the
// stream's head: a read finds the rows retention left, and a row may be missing at the end. So
// each row is read with its stream's head (streams.seq), and a window whose last row is not
// the head is dropped. Retention only ever removes the oldest rows of a stream, so what it left
// of a stream is contiguous and ends at the head; a window warmed from it begins at or after
// the oldest row kept, and a cursor before that row is answered by the store, with
// herald.missed when retention removed what the cursor needs next — as before the restart.
//
// The read is bounded like the window itself (windowEntries rows, windowBytes of payload) and
// in time (warmTime): it reads newest first, and wherever it stops, what it read is every row
// above some id, which is each stream's newest rows.

// warmTime bounds the read at start: a node serves nothing until its store is open.
const warmTime = 2 * time.Second

// warmQuery reads the newest rows, newest first, each with its stream's head.
const warmQuery = `SELECT n.id, n.stream, n.seq, n.type, n.data, n.created_at, n.content, n.topic, n.critical, s.seq
	FROM (SELECT ` + notificationCols + ` FROM notifications ORDER BY id DESC LIMIT ?) n
	JOIN streams s ON s.stream = n.stream`

// warm fills the window from db, which nobody writes while it runs. It returns the number of
// notifications the window holds.
func (w *recentWindow) warm(ctx context.Context, db *sql.DB) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, warmTime)
	defer cancel()
	rows, err := db.QueryContext(ctx, warmQuery, windowEntries)
	if err != nil {
		return 0, fmt.Errorf("sqlite: warm the recent window: %w", err)
	}
	defer rows.Close()
	var (
		ns    []herald.Notification // newest first
		heads = map[string]uint64{}
		kept  = map[string]int{}
		bytes int
	)
	for rows.Next() {
		var (
			n       herald.Notification
			created int64
			data    []byte
			content []byte
			topic   sql.NullString
			head    uint64
		)
		if err := rows.Scan(&n.ID, &n.User, &n.Seq, &n.Type, &data, &created, &content, &topic, &n.Critical, &head); err != nil {
			return 0, fmt.Errorf("sqlite: warm the recent window: %w", err)
		}
		if kept[n.User] == windowPerStream {
			continue // the stream's window is full: older rows would only be dropped
		}
		n.Data, n.Topic, n.CreatedAt = data, topic.String, fromMicros(created)
		if n.Content, err = store.ReadContent(content); err != nil {
			return 0, fmt.Errorf("sqlite: warm the recent window: %w", err)
		}
		if bytes += entrySize(&n); bytes > windowBytes {
			break
		}
		heads[n.User] = head
		kept[n.User]++
		ns = append(ns, n)
	}
	if err := rows.Err(); err != nil && ctx.Err() == nil {
		return 0, fmt.Errorf("sqlite: warm the recent window: %w", err)
	}
	// Stopped by the deadline or not, ns is every row above some id, each stream's newest.
	slices.Reverse(ns)
	w.commit(ns)

	w.mu.Lock()
	defer w.mu.Unlock()
	held := 0
	for stream, win := range w.streams {
		if len(win) == 0 || win[len(win)-1].Seq != heads[stream] {
			// The stream's newest rows are gone (by hand: retention keeps them): what is left
			// does not end at the head.
			w.drop(win)
			delete(w.streams, stream)
			continue
		}
		held += len(win)
	}
	w.order = slices.DeleteFunc(w.order, func(stream string) bool {
		_, ok := w.streams[stream]
		return !ok
	})
	return held, nil
}
