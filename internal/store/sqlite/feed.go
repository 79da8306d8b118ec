package sqlite

import (
	"context"
	"database/sql"
	"slices"
	"sync"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store"
)

// Resuming a stream: Feed.
//
// After a restart or a deploy every client comes back at once, each reading its feed after its
// cursor (a reconnect storm). Read as a transaction of three statements, that was ~80 µs a
// stream, most of it in SQLite's machinery rather than in the rows: BEGIN and ROLLBACK parsed
// anew each time, three statements stepped, the same few broadcasts decoded for every client.
// Feed is now one statement, a snapshot by itself (SQLite runs a statement in one read
// transaction), that returns the user's notifications, the broadcast stream's positions and
// ids only (read from its index, not its rows), and both heads. The broadcasts themselves come
// from a small cache of those already read, looked up by sequence number and checked by id.
//
// The cache cannot change what a client is told, because it only ever supplies the contents of
// a row the statement has just seen: which broadcasts exist after the cursor, and so whether
// retention removed any (herald.missed), is decided by the snapshot, exactly as before. A
// notification's row never changes once written (read and archive state live elsewhere), and
// its id is never given again, even in another epoch, so a cached broadcast with the id the
// snapshot names is that broadcast. What the cache lacks is read by sequence number beside the
// statement; if that read no longer finds every id the snapshot named (retention ran in
// between), Feed reads all again in one transaction, as it did before.

// feedQuery is Feed's statement. ?1 is the user, ?2 and ?3 the cursor in the user's stream and
// the broadcast stream, ?4 the limit of each. Its rows: part 0, the user's notifications; part
// 1, the broadcasts' ids and sequence numbers; part 2, the heads (the stream in type).
const feedQuery = `SELECT 0, id, seq, type, data, created_at, content, topic, critical FROM (
		SELECT ` + notificationCols + ` FROM notifications WHERE stream = ?1 AND seq > ?2 ORDER BY seq LIMIT ?4)
	UNION ALL SELECT 1, id, seq, NULL, NULL, NULL, NULL, NULL, 0 FROM (
		SELECT id, seq FROM notifications WHERE stream = '' AND seq > ?3 ORDER BY seq LIMIT ?4)
	UNION ALL SELECT 2, 0, seq, stream, NULL, NULL, NULL, NULL, 0 FROM streams WHERE stream IN (?1, '')`

// Feed reads both of user's streams after the cursor in one snapshot, so Heads agrees with what
// was returned.
func (s *Store) Feed(ctx context.Context, user string, after herald.Cursor, limit int) (herald.FeedPage, error) {
	page, ok := s.read.window.feed(user, after, limit)
	if ok {
		return page, nil
	}
	rows, err := s.read.feed.QueryContext(ctx, user, after.User, after.Broadcast, limit)
	if err != nil {
		return page, unavailable(err)
	}
	defer rows.Close()
	var ids []posID // the broadcasts after the cursor: sequence number and id
	for rows.Next() {
		var (
			part    int
			n       herald.Notification
			typ     sql.NullString
			data    []byte
			created sql.NullInt64
			content []byte
			topic   sql.NullString
		)
		if err := rows.Scan(&part, &n.ID, &n.Seq, &typ, &data, &created, &content, &topic, &n.Critical); err != nil {
			return page, unavailable(err)
		}
		switch part {
		case 0:
			n.User, n.Type, n.Data, n.Topic = user, typ.String, data, topic.String
			n.CreatedAt = fromMicros(created.Int64)
			if n.Content, err = store.ReadContent(content); err != nil {
				return page, unavailable(err)
			}
			page.User = append(page.User, n)
		case 1:
			ids = append(ids, posID{n.Seq, n.ID})
		default:
			page.Heads = page.Heads.With(typ.String, n.Seq)
		}
	}
	if err := rows.Err(); err != nil {
		return page, unavailable(err)
	}
	rows.Close() // the snapshot ends here; a read for the cache below takes a connection of its own
	if len(ids) == 0 {
		return page, nil
	}
	if page.Broadcast, ok = s.read.broadcasts.get(ids); ok {
		return page, nil
	}
	ns, err := streamAfter(ctx, s.read.streamAfter, herald.BroadcastStream, after.Broadcast, limit)
	if err != nil {
		return page, err
	}
	s.read.broadcasts.put(ns)
	if !sameIDs(ns, ids) {
		// Retention removed a broadcast since the statement's snapshot: read all again in one
		// transaction, for a page whose heads agree with its notifications.
		return s.feedTx(ctx, user, after, limit)
	}
	page.Broadcast = ns[:len(ids)]
	return page, nil
}

// posID is a notification's place in its stream and its id.
type posID struct {
	seq uint64
	id  int64
}

// sameIDs reports whether ns begins with the notifications named by ids (ns may hold more:
// broadcasts committed after the snapshot).
func sameIDs(ns []herald.Notification, ids []posID) bool {
	if len(ns) < len(ids) {
		return false
	}
	for i, p := range ids {
		if ns[i].Seq != p.seq || ns[i].ID != p.id {
			return false
		}
	}
	return true
}

// The bounds of the broadcast cache: the newest broadcasts, as many as a resume reads in a
// few pages, and never more than a few megabytes of payload.
const (
	broadcastCacheLen   = 1024
	broadcastCacheBytes = 8 << 20
)

// broadcastCache holds broadcasts read from the store, by sequence number, for Feed. Entries
// are only ever taken for the id the store names at that position (see above), so the cache
// needs no invalidation; it is bounded by keeping the highest sequence numbers.
type broadcastCache struct {
	mu    sync.Mutex
	bySeq map[uint64]*herald.Notification
	bytes int
}

// get returns the broadcasts named by ids, in order, if the cache holds every one of them.
func (c *broadcastCache) get(ids []posID) ([]herald.Notification, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range ids {
		if n := c.bySeq[p.seq]; n == nil || n.ID != p.id {
			return nil, false
		}
	}
	out := make([]herald.Notification, len(ids))
	for i, p := range ids {
		out[i] = *c.bySeq[p.seq] // shares Data and Content, which nobody writes to
	}
	return out, true
}

// put keeps ns, then drops the lowest sequence numbers beyond the cache's bounds.
func (c *broadcastCache) put(ns []herald.Notification) {
	if len(ns) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bySeq == nil {
		c.bySeq = make(map[uint64]*herald.Notification, len(ns))
	}
	for i := range ns {
		n := ns[i]
		if old := c.bySeq[n.Seq]; old != nil {
			c.bytes -= entrySize(old)
		}
		c.bySeq[n.Seq] = &n
		c.bytes += entrySize(&n)
	}
	if len(c.bySeq) <= broadcastCacheLen && c.bytes <= broadcastCacheBytes {
		return
	}
	seqs := make([]uint64, 0, len(c.bySeq))
	for seq := range c.bySeq {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		if len(c.bySeq) <= broadcastCacheLen/2 && c.bytes <= broadcastCacheBytes/2 {
			break
		}
		c.bytes -= entrySize(c.bySeq[seq])
		delete(c.bySeq, seq)
	}
}

func entrySize(n *herald.Notification) int {
	return len(n.Data) + len(n.Type) + len(n.Topic) + n.Content.Size() + 128
}
