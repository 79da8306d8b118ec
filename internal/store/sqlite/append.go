package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/heraldhq/herald"
)

type appendReq struct {
	scope  string
	drafts []herald.Draft
	size   int // notifications it may create

	receipts []herald.Receipt
	err      error
	done     chan struct{}
}

// Append hands the drafts to the writer loop and waits for the commit that includes them.
//
// Once queued, the request is committed even if ctx ends: the caller must learn the outcome so
// that what was committed is also fanned out to live subscribers.
func (s *Store) Append(ctx context.Context, scope string, drafts []herald.Draft) ([]herald.Receipt, error) {
	if len(drafts) == 0 {
		return nil, nil
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, herald.Errorf(herald.EUNAVAILABLE, "store is closing")
	}
	s.inflight.Add(1)
	s.mu.RUnlock()
	defer s.inflight.Done()

	req := &appendReq{scope: scope, drafts: drafts, done: make(chan struct{})}
	for i := range drafts {
		req.size += max(1, len(drafts[i].To))
	}
	select {
	case s.appends <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	<-req.done
	return req.receipts, req.err
}

// writeLoop is the only user of the writer connection for appends. Whatever queued while the
// previous commit was syncing goes into the next transaction, bounded by MaxGroup notifications.
func (s *Store) writeLoop() {
	defer close(s.stopped)
	var group []*appendReq
	for {
		group = group[:0]
		select {
		case req := <-s.appends:
			group = append(group, req)
		case <-s.stop:
			return
		}
		size := group[0].size
	collect:
		for size < s.opts.MaxGroup {
			select {
			case req := <-s.appends:
				group = append(group, req)
				size += req.size
			default:
				break collect
			}
		}
		s.commitGroup(group)
		s.reportCommit(group)
		for _, req := range group {
			close(req.done)
		}
	}
}

// reportCommit hands the group's new notifications to OnCommit in commit order.
func (s *Store) reportCommit(group []*appendReq) {
	if s.opts.OnCommit == nil {
		return
	}
	var ns []herald.Notification
	for _, req := range group {
		if req.err != nil {
			continue
		}
		for _, rc := range req.receipts {
			if !rc.Replayed {
				ns = append(ns, rc.Notifications...)
			}
		}
	}
	if len(ns) > 0 {
		s.opts.OnCommit(ns)
	}
}

func (s *Store) commitGroup(group []*appendReq) {
	// The loop must not be cancelled by any one caller; a bounded context keeps a wedged disk
	// from holding every publisher forever.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// On failure every request fails, conflicts too: a conflict may have been decided against a
	// key another request of this group wrote, which is now rolled back.
	fail := func(err error) {
		for _, req := range group {
			req.receipts, req.err = nil, err
		}
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		fail(unavailable(err))
		return
	}
	defer tx.Rollback()
	w, err := newTxWriter(ctx, tx, &s.stmts, time.Now(), group)
	if err != nil {
		fail(err)
		return
	}
	defer w.close()
	for _, req := range group {
		// Each request is checked before anything of it is written, so a request refused for an
		// idempotency conflict leaves nothing to undo and the others commit without it. Any other
		// failure fails the whole group: the transaction is not committed.
		p, err := w.check(req.scope, req.drafts)
		if err != nil {
			if herald.ErrorCode(err) == herald.ECONFLICT {
				req.err = err
				continue
			}
			fail(err)
			return
		}
		if req.receipts, err = w.write(p); err != nil {
			fail(err)
			return
		}
	}
	if err := w.flushSeqs(); err != nil {
		fail(err)
		return
	}
	if err := tx.Commit(); err != nil {
		fail(unavailable(err))
	}
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
		{&ws.insert, `INSERT INTO notifications (stream, seq, type, data, created_at) VALUES (?, ?, ?, ?, ?)`},
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
}

func newTxWriter(ctx context.Context, tx *sql.Tx, stmts *writerStmts, now time.Time, group []*appendReq) (*txWriter, error) {
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
		for i := range req.drafts {
			d := &req.drafts[i]
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

// plan is a request that passed its idempotency check: what to write and what to replay.
type plan struct {
	scope    string
	drafts   []herald.Draft
	receipts []herald.Receipt
	fps      [][]byte // fingerprint of each keyed draft
	replayed []bool   // the key was stored before: receipts holds the stored result
	dupOf    []int    // ≥ 0: the key is that of an earlier draft of the same request
}

// check resolves the request's idempotency keys without writing anything: a key stored before
// replays (or conflicts), and a key used twice within the request replays its first use.
func (w *txWriter) check(scope string, drafts []herald.Draft) (*plan, error) {
	p := &plan{
		scope:    scope,
		drafts:   drafts,
		receipts: make([]herald.Receipt, len(drafts)),
		fps:      make([][]byte, len(drafts)),
		replayed: make([]bool, len(drafts)),
		dupOf:    make([]int, len(drafts)),
	}
	var first map[string]int // key → first draft using it
	for i := range drafts {
		p.dupOf[i] = -1
		d := &drafts[i]
		if d.Key == "" {
			continue
		}
		fp := d.Fingerprint()
		if j, ok := first[d.Key]; ok {
			if !bytes.Equal(fp, p.fps[j]) {
				return nil, conflict(d.Key)
			}
			p.dupOf[i] = j
			continue
		}
		var hash []byte
		var result string
		err := w.getKey.QueryRowContext(w.ctx, scope, d.Key).Scan(&hash, &result)
		switch {
		case err == nil:
			if !bytes.Equal(hash, fp) {
				return nil, conflict(d.Key)
			}
			ns, err := decodeResult(result)
			if err != nil {
				return nil, herald.Internal(err, "decode idempotency result")
			}
			p.receipts[i] = herald.Receipt{Notifications: ns, Replayed: true}
			p.replayed[i] = true
		case !errors.Is(err, sql.ErrNoRows):
			return nil, unavailable(err)
		}
		if first == nil {
			first = make(map[string]int)
		}
		first[d.Key] = i
		p.fps[i] = fp
	}
	return p, nil
}

func conflict(key string) error {
	return herald.Errorf(herald.ECONFLICT, "idempotency key %q was already used for a different notification", key)
}

// write stores the plan's new notifications and keys and returns the request's receipts.
func (w *txWriter) write(p *plan) ([]herald.Receipt, error) {
	for i := range p.drafts {
		d := &p.drafts[i]
		if p.replayed[i] {
			continue
		}
		if j := p.dupOf[i]; j >= 0 {
			src := p.receipts[j].Notifications
			ns := make([]herald.Notification, len(src))
			for k := range src {
				ns[k] = herald.Notification{ID: src[k].ID, User: src[k].User}
			}
			p.receipts[i] = herald.Receipt{Notifications: ns, Replayed: true}
			continue
		}
		streams := d.To
		if d.Broadcast {
			streams = []string{herald.BroadcastStream}
		}
		ns := make([]herald.Notification, len(streams))
		for j, stream := range streams {
			n := &ns[j]
			n.User, n.Seq, n.Type, n.Data, n.CreatedAt = stream, w.nextSeq(stream), d.Type, d.Data, w.now
			res, err := w.insert.ExecContext(w.ctx, stream, n.Seq, n.Type, []byte(n.Data), micros(w.now))
			if err != nil {
				return nil, unavailable(err)
			}
			if n.ID, err = res.LastInsertId(); err != nil {
				return nil, unavailable(err)
			}
		}
		if d.Key != "" {
			if _, err := w.key.ExecContext(w.ctx, p.scope, d.Key, p.fps[i], encodeResult(ns), micros(w.now)); err != nil {
				return nil, unavailable(err)
			}
		}
		p.receipts[i] = herald.Receipt{Notifications: ns}
	}
	return p.receipts, nil
}

// encodeResult stores what a replayed key must return: the ids and recipients, in order.
func encodeResult(ns []herald.Notification) string {
	rows := make([][2]any, len(ns))
	for i := range ns {
		rows[i] = [2]any{ns[i].ID, ns[i].User}
	}
	b, _ := json.Marshal(rows) // ints and strings always marshal
	return string(b)
}

func decodeResult(s string) ([]herald.Notification, error) {
	var rows [][2]json.RawMessage
	if err := json.Unmarshal([]byte(s), &rows); err != nil {
		return nil, err
	}
	ns := make([]herald.Notification, len(rows))
	for i, r := range rows {
		if err := json.Unmarshal(r[0], &ns[i].ID); err != nil {
			return nil, fmt.Errorf("id: %w", err)
		}
		if err := json.Unmarshal(r[1], &ns[i].User); err != nil {
			return nil, fmt.Errorf("user: %w", err)
		}
	}
	return ns, nil
}
