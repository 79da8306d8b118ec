package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store"
)

// Append hands the drafts to the group-commit loop and waits for the commit that includes them.
// The loop is the only user of the writer connection for appends.
func (s *Store) Append(ctx context.Context, scope string, drafts []herald.Draft) ([]herald.Receipt, error) {
	return s.group.Append(ctx, scope, drafts)
}

func (s *Store) commitGroup(group []*store.Request) (later []*store.Request) {
	// The loop must not be cancelled by any one caller; a bounded context keeps a wedged disk
	// from holding every publisher forever.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// On failure every request fails, conflicts too: a conflict may have been decided against a
	// key another request of this group wrote, which is now rolled back.
	fail := func(err error) {
		for _, req := range group {
			req.Receipts, req.Err = nil, err
		}
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		fail(unavailable(err))
		return nil
	}
	defer tx.Rollback()
	w, err := newTxWriter(ctx, tx, &s.stmts, time.Now(), group)
	if err != nil {
		fail(err)
		return nil
	}
	w.noPush = s.opts.NoPush
	// Read in the transaction: a change of preferences sets it before its own transaction,
	// which the writer lock puts wholly before or after this one (Store.mayMute).
	w.noMutes = !s.mayMute.Load()
	defer w.close()
	for _, req := range group {
		// Each request is checked before anything of it is written, so a request refused for an
		// idempotency conflict leaves nothing to undo and the others commit without it. Any other
		// failure fails the whole group: the transaction is not committed.
		p, err := w.check(req.Scope, req.Drafts)
		if err != nil {
			if herald.ErrorCode(err) == herald.ECONFLICT {
				req.Err = err
				continue
			}
			fail(err)
			return nil
		}
		if err := w.expand(p); err != nil {
			fail(err)
			return nil
		}
		if err := w.applyMutes(p); err != nil {
			fail(err)
			return nil
		}
		if req.Receipts, err = w.write(p); err != nil {
			fail(err)
			return nil
		}
	}
	if err := w.flushSeqs(); err != nil {
		fail(err)
		return nil
	}
	if err := w.queuePushes(s.opts.PushDelay); err != nil {
		fail(err)
		return nil
	}
	if err := tx.Commit(); err != nil {
		fail(unavailable(err))
	}
	return nil
}

// seqChunk bounds the streams one statement reads or writes (SQLite limits bound parameters).
const seqChunk = 250

// smallGroup is the most streams whose heads are read and written one prepared statement each;
// beyond it one statement handles up to seqChunk, at the cost of preparing it for the group.
const smallGroup = 8

// writerStmts are prepared once on the writer connection and reused by every group.
type writerStmts struct {
	insert, getKey, key, getSeq, putSeq *sql.Stmt
	mutes                               *sql.Stmt // prefs.go
}

func (ws *writerStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{
		{&ws.insert, `INSERT INTO notifications (stream, seq, type, data, created_at, content, topic, critical) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`},
		{&ws.getKey, `SELECT hash, result FROM idempotency WHERE scope = ? AND key = ?`},
		{&ws.key, `INSERT INTO idempotency (scope, key, hash, result, created_at) VALUES (?, ?, ?, ?, ?)`},
		{&ws.getSeq, `SELECT seq FROM streams WHERE stream = ?`},
		{&ws.putSeq, `INSERT INTO streams (stream, seq) VALUES (?, ?) ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq`},
		{&ws.mutes, mutesQuery},
	} {
		st, err := db.PrepareContext(ctx, p.q)
		if err != nil {
			ws.close()
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
		*p.st = st
	}
	return nil
}

func (ws *writerStmts) close() {
	for _, st := range []*sql.Stmt{ws.insert, ws.getKey, ws.key, ws.getSeq, ws.putSeq, ws.mutes} {
		if st != nil {
			st.Close()
		}
	}
}

// txWriter holds the statements and stream heads of one group transaction. The heads of every
// stream the group writes are read once at its start and written back once before the commit,
// instead of an upsert per notification; the writer loop is the only writer of streams.
type txWriter struct {
	ctx                 context.Context
	tx                  *sql.Tx
	now                 time.Time
	insert, getKey, key *sql.Stmt
	getSeq, putSeq      *sql.Stmt
	mutes               *sql.Stmt
	seqs                map[string]uint64   // stream → last seq, as of this transaction
	dirty               map[string]struct{} // streams whose seq this transaction advanced
	// topicSizes are the audiences of the request's topic drafts (by index in its plan), as
	// expand counted them.
	topicSizes map[int]int
	// pushes are the ranges of ids whose notifications are queued for Web Push (push.go).
	pushes []pushRange
	noPush bool
	// noMutes: no user of the file has a mute rule, so none is read or joined.
	noMutes bool
}

func newTxWriter(ctx context.Context, tx *sql.Tx, stmts *writerStmts, now time.Time, group []*store.Request) (*txWriter, error) {
	w := &txWriter{
		// The statements run without a Done channel, which spares the driver a goroutine per
		// statement to watch for cancellation; the transaction as a whole stays bounded by ctx,
		// since database/sql rolls it back when ctx ends.
		ctx: context.WithoutCancel(ctx),
		tx:  tx,
		// Stored with microsecond precision: the receipt must carry exactly what a read returns.
		now:   now.UTC().Truncate(time.Microsecond),
		seqs:  make(map[string]uint64),
		dirty: make(map[string]struct{}),
	}
	// The statements were prepared once on the writer connection; Tx.Stmt reuses them.
	w.insert = tx.StmtContext(ctx, stmts.insert)
	w.getKey = tx.StmtContext(ctx, stmts.getKey)
	w.key = tx.StmtContext(ctx, stmts.key)
	w.getSeq = tx.StmtContext(ctx, stmts.getSeq)
	w.putSeq = tx.StmtContext(ctx, stmts.putSeq)
	w.mutes = tx.StmtContext(ctx, stmts.mutes)
	var streams []string
	seen := make(map[string]bool)
	for _, req := range group {
		for i := range req.Drafts {
			d := &req.Drafts[i]
			to := d.To
			if d.Broadcast {
				to = []string{herald.BroadcastStream}
			}
			for _, st := range to {
				if !seen[st] {
					seen[st] = true
					streams = append(streams, st)
				}
			}
		}
	}
	if err := w.loadSeqs(streams); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

func (w *txWriter) close() {
	for _, st := range []*sql.Stmt{w.insert, w.getKey, w.key, w.getSeq, w.putSeq, w.mutes} {
		if st != nil {
			st.Close()
		}
	}
}

// loadSeqs reads the heads of streams; a stream without a row has seq 0.
func (w *txWriter) loadSeqs(streams []string) error {
	if len(streams) <= smallGroup {
		for _, st := range streams {
			var seq uint64
			err := w.getSeq.QueryRowContext(w.ctx, st).Scan(&seq)
			switch {
			case err == nil:
				w.seqs[st] = seq
			case !errors.Is(err, sql.ErrNoRows):
				return unavailable(err)
			}
		}
		return nil
	}
	for len(streams) > 0 {
		n := min(len(streams), seqChunk)
		args := make([]any, n)
		for i, st := range streams[:n] {
			args[i] = st
		}
		rows, err := w.tx.QueryContext(w.ctx, `SELECT stream, seq FROM streams WHERE stream IN (?`+strings.Repeat(`, ?`, n-1)+`)`, args...)
		if err != nil {
			return unavailable(err)
		}
		for rows.Next() {
			var st string
			var seq uint64
			if err := rows.Scan(&st, &seq); err != nil {
				rows.Close()
				return unavailable(err)
			}
			w.seqs[st] = seq
		}
		if err := rows.Close(); err != nil {
			return unavailable(err)
		}
		if err := rows.Err(); err != nil {
			return unavailable(err)
		}
		streams = streams[n:]
	}
	return nil
}

// nextSeq takes the next sequence number of stream. The heads of all the group's streams were
// loaded, so a stream missing from seqs has none yet.
func (w *txWriter) nextSeq(stream string) uint64 {
	seq := w.seqs[stream] + 1
	w.seqs[stream] = seq
	w.dirty[stream] = struct{}{}
	return seq
}

// flushSeqs writes back the heads the transaction advanced.
func (w *txWriter) flushSeqs() error {
	dirty := make([]string, 0, len(w.dirty))
	for st := range w.dirty {
		dirty = append(dirty, st)
	}
	if len(dirty) <= smallGroup {
		for _, st := range dirty {
			if _, err := w.putSeq.ExecContext(w.ctx, st, w.seqs[st]); err != nil {
				return unavailable(err)
			}
		}
		return nil
	}
	for len(dirty) > 0 {
		n := min(len(dirty), seqChunk)
		args := make([]any, 0, 2*n)
		for _, st := range dirty[:n] {
			args = append(args, st, w.seqs[st])
		}
		q := `INSERT INTO streams (stream, seq) VALUES (?, ?)` + strings.Repeat(`, (?, ?)`, n-1) +
			` ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq`
		if _, err := w.tx.ExecContext(w.ctx, q, args...); err != nil {
			return unavailable(err)
		}
		dirty = dirty[n:]
	}
	return nil
}

// check resolves the request's idempotency keys without writing anything.
func (w *txWriter) check(scope string, drafts []herald.Draft) (*store.Plan, error) {
	return store.Resolve(scope, drafts, func(key string) (store.Stored, bool, error) {
		var st store.Stored
		err := w.getKey.QueryRowContext(w.ctx, scope, key).Scan(&st.Hash, &st.Result)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return st, false, nil
		case err != nil:
			return st, false, unavailable(err)
		}
		return st, true, nil
	})
}

// expand checks the size of the plan's fresh topic drafts: their audience, the subscribers
// they do not exclude. Their notifications are written by writeTopic, in SQL, without reading
// the subscribers into the process first; the audience less those written is what mutes held
// back (the same transaction on the one writer connection: nothing changes in between).
func (w *txWriter) expand(p *store.Plan) error {
	clear(w.topicSizes)
	for i := range p.Drafts {
		d := &p.Drafts[i]
		if d.Topic == "" || !p.Fresh(i) {
			continue
		}
		cond, args := topicAudience(d)
		var n int
		if err := w.tx.QueryRowContext(w.ctx, `SELECT count(*) FROM (SELECT 1 FROM topic_subscribers s WHERE `+cond+` LIMIT ?)`,
			append(args, store.MaxTopicRecipients+1)...).Scan(&n); err != nil {
			return unavailable(err)
		}
		if n > store.MaxTopicRecipients {
			return store.TooManyRecipients(d.Topic)
		}
		if w.topicSizes == nil {
			w.topicSizes = make(map[int]int)
		}
		w.topicSizes[i] = n
	}
	return nil
}

// topicAudience is the condition on topic_subscribers s that its user_id is in a topic draft's
// audience: subscribed to its topic at this point of the transaction, and not excluded.
func topicAudience(d *herald.Draft) (cond string, args []any) {
	cond = `s.topic = ?`
	args = []any{d.Topic}
	if len(d.Exclude) > 0 {
		ex, _ := json.Marshal(d.Exclude) // strings always marshal
		cond += ` AND s.user_id NOT IN (SELECT value FROM json_each(?))`
		args = append(args, string(ex))
	}
	return cond, args
}

// topicRecipients is the one place that says whom a topic draft reaches: its audience at this
// point of the transaction (the writer connection, where subscriptions and preferences are
// written too, so a bulk subscribe or a change of preferences is wholly before or after), less
// those who muted it, unless it is critical or nobody has a rule (noMutes: the mute subquery
// ran for every subscriber of every topic publish, in both statements). It returns a condition
// on topic_subscribers s, whose user_id is the recipient, and its arguments. Both statements
// of writeTopic select through it, so they agree on the set.
func topicRecipients(d *herald.Draft, noMutes bool) (cond string, args []any) {
	cond, args = topicAudience(d)
	if d.Critical || noMutes {
		return cond, args
	}
	typ, topic, prefixes := store.MuteArgs(d)
	// Plain placeholders, numbered in the order they appear: the type, its prefixes, the topic.
	cond += ` AND NOT ` + store.MutedSQL("mutes", "s.user_id", "?", "?", "IN ("+store.Placeholders(len(prefixes))+")")
	args = append(args, typ)
	for _, p := range prefixes {
		args = append(args, p)
	}
	return cond, append(args, topic)
}

// writeTopic writes a topic draft's notifications with two statements, whatever the number
// of subscribers: one advances the heads of their streams, and one inserts a notification per
// subscriber at its stream's new head, returning what the hub and the receipt need. A row per
// subscriber through the driver (the store's way for "to") cost most of a large topic's time.
//
// The heads this transaction advanced in memory are written first, and those it holds are read
// again after, so that the drafts around a topic draft in one group number their streams on.
func (w *txWriter) writeTopic(d *herald.Draft, audience int, content *herald.Content, column any) ([]herald.Notification, error) {
	if err := w.flushSeqs(); err != nil {
		return nil, err
	}
	cond, args := topicRecipients(d, w.noMutes)
	// The upsert's SELECT has a WHERE, as SQLite requires to tell its ON CONFLICT from a join's.
	if _, err := w.tx.ExecContext(w.ctx, `INSERT INTO streams (stream, seq) SELECT s.user_id, 1 FROM topic_subscribers s WHERE `+cond+`
		ON CONFLICT (stream) DO UPDATE SET seq = seq + 1`, args...); err != nil {
		return nil, unavailable(err)
	}
	// Rows are inserted in the SELECT's order, so ids grow with user ids, as the receipt lists
	// them; RETURNING gives them in no particular order.
	rows, err := w.tx.QueryContext(w.ctx, `INSERT INTO notifications (stream, seq, type, data, created_at, content, topic, critical)
		SELECT s.user_id, h.seq, ?, ?, ?, ?, ?, ? FROM topic_subscribers s JOIN streams h ON h.stream = s.user_id
		WHERE `+cond+` ORDER BY s.user_id
		RETURNING id, stream, seq`,
		append([]any{d.Type, []byte(d.Data), micros(w.now), column, d.Topic, d.Critical}, args...)...)
	if err != nil {
		return nil, unavailable(err)
	}
	// Sized once: appending to 100,000 would copy them about 17 times, and peak at twice.
	ns := make([]herald.Notification, 0, audience)
	for rows.Next() {
		n := herald.Notification{Type: d.Type, Content: content, Data: d.Data, CreatedAt: w.now, Topic: d.Topic, Critical: d.Critical}
		if err := rows.Scan(&n.ID, &n.User, &n.Seq); err != nil {
			rows.Close()
			return nil, unavailable(err)
		}
		ns = append(ns, n)
	}
	if err := rows.Close(); err != nil {
		return nil, unavailable(err)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	slices.SortFunc(ns, func(a, b herald.Notification) int { return cmp.Compare(a.ID, b.ID) })
	// The heads held in memory may be of the topic's streams: read them again.
	held := make([]string, 0, len(w.seqs))
	for st := range w.seqs {
		held = append(held, st)
	}
	clear(w.seqs)
	clear(w.dirty)
	if err := w.loadSeqs(held); err != nil {
		return nil, err
	}
	return ns, nil
}

// write stores the plan's new notifications and keys and returns the request's receipts.
func (w *txWriter) write(p *store.Plan) ([]herald.Receipt, error) {
	for i := range p.Drafts {
		d := &p.Drafts[i]
		switch {
		case p.Replayed[i]:
			continue
		case p.DupOf[i] >= 0:
			p.Dup(i)
			continue
		}
		streams := store.Streams(d)
		ns := make([]herald.Notification, len(streams))
		content := store.Content(d) // shared by the draft's notifications
		var column any              // a typed nil *string would not be NULL to the driver
		if c := store.ContentColumn(content); c != nil {
			column = *c
		}
		if d.Topic != "" {
			var err error
			if ns, err = w.writeTopic(d, w.topicSizes[i], content, column); err != nil {
				return nil, err
			}
			p.Muted[i] = w.topicSizes[i] - len(ns)
		}
		for j, stream := range streams { // none for a topic draft: its To is empty
			n := &ns[j]
			n.User, n.Seq, n.Type, n.Content, n.Data, n.CreatedAt, n.Critical = stream, w.nextSeq(stream), d.Type, content, d.Data, w.now, d.Critical
			res, err := w.insert.ExecContext(w.ctx, stream, n.Seq, n.Type, []byte(n.Data), micros(w.now), column, nil, d.Critical)
			if err != nil {
				return nil, unavailable(err)
			}
			if n.ID, err = res.LastInsertId(); err != nil {
				return nil, unavailable(err)
			}
		}
		if pushed, immediate := d.Pushed(); pushed && !w.noPush && len(ns) > 0 {
			w.pushRange(ns[0].ID, ns[len(ns)-1].ID, d.Broadcast, immediate)
		}
		if d.Key != "" {
			if _, err := w.key.ExecContext(w.ctx, p.Scope, d.Key, p.FPs[i], store.Result(d, ns, p.Muted[i]), micros(w.now)); err != nil {
				return nil, unavailable(err)
			}
		}
		p.Receipts[i] = herald.Receipt{Notifications: ns, Muted: p.Muted[i]}
		if d.Topic != "" {
			p.Receipts[i].Recipients = len(ns)
		}
	}
	return p.Receipts, nil
}
