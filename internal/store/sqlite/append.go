package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
}

func (ws *writerStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{
		{&ws.insert, `INSERT INTO notifications (stream, seq, type, data, created_at, content, topic) VALUES (?, ?, ?, ?, ?, ?, ?)`},
		{&ws.getKey, `SELECT hash, result FROM idempotency WHERE scope = ? AND key = ?`},
		{&ws.key, `INSERT INTO idempotency (scope, key, hash, result, created_at) VALUES (?, ?, ?, ?, ?)`},
		{&ws.getSeq, `SELECT seq FROM streams WHERE stream = ?`},
		{&ws.putSeq, `INSERT INTO streams (stream, seq) VALUES (?, ?) ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq`},
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
	for _, st := range []*sql.Stmt{ws.insert, ws.getKey, ws.key, ws.getSeq, ws.putSeq} {
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
	seqs                map[string]uint64   // stream → last seq, as of this transaction
	dirty               map[string]struct{} // streams whose seq this transaction advanced
	// pushes are the ranges of ids whose notifications are queued for Web Push (push.go).
	pushes []pushRange
	noPush bool
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
	for _, st := range []*sql.Stmt{w.insert, w.getKey, w.key, w.getSeq, w.putSeq} {
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

// expand addresses the plan's fresh topic drafts to their subscribers, read in this
// transaction on the writer connection (where subscriptions are written too, so a bulk
// subscribe is wholly before or after), and loads the heads of the streams that adds.
func (w *txWriter) expand(p *store.Plan) error {
	var added []string
	err := p.Expand(func(topic string) ([]string, error) {
		rows, err := w.tx.QueryContext(w.ctx, `SELECT user_id FROM topic_subscribers WHERE topic = ? ORDER BY user_id LIMIT ?`, topic, store.MaxTopicRecipients+1)
		if err != nil {
			return nil, unavailable(err)
		}
		us, err := scanStrings(rows)
		for _, u := range us {
			if _, ok := w.seqs[u]; !ok {
				added = append(added, u)
			}
		}
		return us, err
	})
	if err != nil {
		return err
	}
	// A stream already in seqs has its head (maybe advanced by this group); one missing there
	// was either not loaded or has no row, and loading it again reads the same nothing.
	return w.loadSeqs(added)
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
		var topic any // NULL unless the draft is a topic's
		if d.Topic != "" {
			topic = d.Topic
		}
		for j, stream := range streams {
			n := &ns[j]
			n.User, n.Seq, n.Type, n.Content, n.Data, n.CreatedAt, n.Topic = stream, w.nextSeq(stream), d.Type, content, d.Data, w.now, d.Topic
			res, err := w.insert.ExecContext(w.ctx, stream, n.Seq, n.Type, []byte(n.Data), micros(w.now), column, topic)
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
			if _, err := w.key.ExecContext(w.ctx, p.Scope, d.Key, p.FPs[i], store.Result(d, ns), micros(w.now)); err != nil {
				return nil, unavailable(err)
			}
		}
		p.Receipts[i] = herald.Receipt{Notifications: ns}
		if d.Topic != "" {
			p.Receipts[i].Recipients = len(ns)
		}
	}
	return p.Receipts, nil
}
