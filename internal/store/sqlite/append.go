package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
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
	fail := func(err error) {
		for _, req := range group {
			if req.err == nil {
				req.receipts, req.err = nil, err
			}
		}
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		fail(unavailable(err))
		return
	}
	defer tx.Rollback()
	w := newTxWriter(ctx, tx, time.Now())
	defer w.close()
	for _, req := range group {
		// A savepoint per request: one request's idempotency conflict must not undo the others.
		if _, err := tx.ExecContext(ctx, "SAVEPOINT req"); err != nil {
			fail(unavailable(err))
			return
		}
		req.receipts, req.err = w.append(req.scope, req.drafts)
		if req.err != nil {
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO req"); err != nil {
				fail(unavailable(err))
				return
			}
			if herald.ErrorCode(req.err) == herald.EINTERNAL {
				fail(req.err)
				return
			}
		}
		if _, err := tx.ExecContext(ctx, "RELEASE req"); err != nil {
			fail(unavailable(err))
			return
		}
	}
	if err := tx.Commit(); err != nil {
		fail(unavailable(err))
	}
}

// txWriter holds the statements of one group transaction.
type txWriter struct {
	ctx                          context.Context
	now                          time.Time
	nextSeq, insert, getKey, key *sql.Stmt
}

func newTxWriter(ctx context.Context, tx *sql.Tx, now time.Time) *txWriter {
	prep := func(q string) *sql.Stmt {
		st, err := tx.PrepareContext(ctx, q)
		if err != nil {
			// Preparing fixed SQL fails only if the connection is broken; the first Exec reports it.
			return nil
		}
		return st
	}
	return &txWriter{
		ctx: ctx,
		now: now.UTC(),
		nextSeq: prep(`INSERT INTO streams (stream, seq) VALUES (?, 1)
			ON CONFLICT (stream) DO UPDATE SET seq = seq + 1 RETURNING seq`),
		insert: prep(`INSERT INTO notifications (stream, seq, type, data, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`),
		getKey: prep(`SELECT hash, result FROM idempotency WHERE scope = ? AND key = ?`),
		key:    prep(`INSERT INTO idempotency (scope, key, hash, result, created_at) VALUES (?, ?, ?, ?, ?)`),
	}
}

func (w *txWriter) close() {
	for _, st := range []*sql.Stmt{w.nextSeq, w.insert, w.getKey, w.key} {
		if st != nil {
			st.Close()
		}
	}
}

func (w *txWriter) append(scope string, drafts []herald.Draft) ([]herald.Receipt, error) {
	if w.nextSeq == nil || w.insert == nil || w.getKey == nil || w.key == nil {
		return nil, unavailable(errors.New("prepare statements"))
	}
	receipts := make([]herald.Receipt, len(drafts))
	for i := range drafts {
		d := &drafts[i]
		var fp []byte
		if d.Key != "" {
			fp = d.Fingerprint()
			var hash []byte
			var result string
			err := w.getKey.QueryRowContext(w.ctx, scope, d.Key).Scan(&hash, &result)
			switch {
			case err == nil:
				if !bytes.Equal(hash, fp) {
					return nil, herald.Errorf(herald.ECONFLICT, "idempotency key %q was already used for a different notification", d.Key)
				}
				ns, err := decodeResult(result)
				if err != nil {
					return nil, herald.Internal(err, "decode idempotency result")
				}
				receipts[i] = herald.Receipt{Notifications: ns, Replayed: true}
				continue
			case !errors.Is(err, sql.ErrNoRows):
				return nil, unavailable(err)
			}
		}
		streams := d.To
		if d.Broadcast {
			streams = []string{herald.BroadcastStream}
		}
		ns := make([]herald.Notification, len(streams))
		for j, stream := range streams {
			n := &ns[j]
			n.User, n.Type, n.Data, n.CreatedAt = stream, d.Type, d.Data, w.now
			if err := w.nextSeq.QueryRowContext(w.ctx, stream).Scan(&n.Seq); err != nil {
				return nil, unavailable(err)
			}
			if err := w.insert.QueryRowContext(w.ctx, stream, n.Seq, n.Type, []byte(n.Data), micros(w.now)).Scan(&n.ID); err != nil {
				return nil, unavailable(err)
			}
		}
		if d.Key != "" {
			if _, err := w.key.ExecContext(w.ctx, scope, d.Key, fp, encodeResult(ns), micros(w.now)); err != nil {
				return nil, unavailable(err)
			}
		}
		receipts[i] = herald.Receipt{Notifications: ns}
	}
	return receipts, nil
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
