package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store"
)

// A node's appends go through one group-commit loop, as with SQLite: the appends that arrive
// while a transaction commits are written by the next one together. A hot stream (a user with a
// busy feed, or the broadcasts) then costs one row lock and one WAL flush per group instead of
// per notification; each transaction holds its streams' locks until it commits, so other nodes'
// groups for the same streams queue behind it.

// groupTimeout bounds one group's transaction. Once queued, an append is not cancelled by its
// caller: it must learn whether its commit happened, so that what was committed is fanned out.
const groupTimeout = 30 * time.Second

// maxGroup bounds the notifications one group commit writes.
const maxGroup = 4096

// Append stores all drafts in one transaction (shared with concurrent appends of this node).
func (s *Store) Append(ctx context.Context, scope string, drafts []herald.Draft) ([]herald.Receipt, error) {
	return s.group.Append(ctx, scope, drafts)
}

// commitGroup writes a group, retrying a transaction that lost a deadlock or serialization race.
// It returns the requests it put off to the next group.
func (s *Store) commitGroup(group []*store.Request) (later []*store.Request) {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		for _, req := range group {
			req.Receipts, req.Err = nil, nil
		}
		var err error
		later, err = s.tryGroup(ctx, group)
		if err == nil {
			return later
		}
		if retryable(err) && attempt < 4 {
			continue
		}
		for _, req := range group {
			// A conflict was decided against a key committed before this transaction (a key of
			// the group itself puts its second user off to the next group), so it stands.
			if herald.ErrorCode(req.Err) != herald.ECONFLICT {
				req.Receipts, req.Err = nil, unavailable(err)
			}
		}
		return nil
	}
}

type scopedKey struct{ scope, key string }

// tryGroup is one transaction. Locks are taken in one global order, so that concurrent groups
// on any nodes never deadlock: first the advisory locks of the group's idempotency keys, sorted;
// then the rows of the streams it writes, sorted (one upsert that also advances their heads).
func (s *Store) tryGroup(ctx context.Context, group []*store.Request) (later []*store.Request, err error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	// 1. Idempotency keys: lock, look up, and resolve each request before writing anything.
	var locks []int64
	var kScopes, kKeys []string
	seenKey := map[scopedKey]bool{}
	for _, req := range group {
		for i := range req.Drafts {
			sk := scopedKey{req.Scope, req.Drafts[i].Key}
			if sk.key != "" && !seenKey[sk] {
				seenKey[sk] = true
				locks = append(locks, keyLock(sk.scope, sk.key))
				kScopes, kKeys = append(kScopes, sk.scope), append(kKeys, sk.key)
			}
		}
	}
	stored := map[scopedKey]store.Stored{}
	if len(locks) > 0 {
		slices.Sort(locks)
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(l) FROM unnest($1::bigint[]) AS l ORDER BY l`, locks); err != nil {
			return nil, err
		}
		rows, err := tx.Query(ctx, `SELECT i.scope, i.key, i.hash, i.result FROM herald_idempotency i
			JOIN unnest($1::text[], $2::text[]) AS t(scope, key) ON i.scope = t.scope AND i.key = t.key`, kScopes, kKeys)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var sk scopedKey
			var st store.Stored
			if err := rows.Scan(&sk.scope, &sk.key, &st.Hash, &st.Result); err != nil {
				rows.Close()
				return nil, err
			}
			stored[sk] = st
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	claimed := map[scopedKey]bool{} // keys a request of this group writes
	type planned struct {
		req *store.Request
		p   *store.Plan
	}
	var plans []planned
	for _, req := range group {
		putOff := false
		for i := range req.Drafts {
			if k := req.Drafts[i].Key; k != "" && claimed[scopedKey{req.Scope, k}] {
				putOff = true // an earlier request of the group writes this key: next group
			}
		}
		if putOff {
			later = append(later, req)
			continue
		}
		p, err := store.Resolve(req.Scope, req.Drafts, func(key string) (store.Stored, bool, error) {
			st, ok := stored[scopedKey{req.Scope, key}]
			return st, ok, nil
		})
		if err != nil {
			req.Err = err // a conflict: this request alone fails, having written nothing
			continue
		}
		for i := range req.Drafts {
			if p.Fresh(i) && req.Drafts[i].Key != "" {
				claimed[scopedKey{req.Scope, req.Drafts[i].Key}] = true
			}
		}
		plans = append(plans, planned{req, p})
	}

	// 1b. Topic drafts: their subscribers now, each topic in one statement, so a subscription
	// committed concurrently is wholly in or wholly out. Read before any stream is locked: the
	// streams are then locked in the one global order with the rest.
	// With them, and in the same statement, whether each muted the draft (prefs.go).
	for _, pl := range plans {
		err := pl.p.Expand(func(d *herald.Draft) ([]string, []bool, error) {
			return topicSubscribers(ctx, tx, d)
		})
		if err != nil {
			return nil, err
		}
	}
	// 1c. The in-app rules of the recipients of drafts addressed by name, all in one statement:
	// a change of preferences committed concurrently is wholly in or wholly out.
	ps := make([]*store.Plan, len(plans))
	for i, pl := range plans {
		ps[i] = pl.p
	}
	if err := applyMutes(ctx, tx, ps); err != nil {
		return nil, err
	}

	// 2. The streams to write and how many each gets; lock and advance their heads.
	counts := map[string]int64{}
	total := 0
	for _, pl := range plans {
		for i := range pl.p.Drafts {
			if pl.p.Fresh(i) {
				for _, st := range store.Streams(&pl.p.Drafts[i]) {
					counts[st]++
					total++
				}
			}
		}
	}
	next := map[string]uint64{} // the first sequence number this transaction gives each stream
	var now time.Time
	var idList []int64
	if total > 0 {
		streams := make([]string, 0, len(counts))
		for st := range counts {
			streams = append(streams, st)
		}
		slices.Sort(streams)
		ns := make([]int64, len(streams))
		for i, st := range streams {
			ns[i] = counts[st]
		}
		// Rows are inserted, and their locks taken, in the order of the SELECT.
		rows, err := tx.Query(ctx, `INSERT INTO herald_streams (stream, seq)
			SELECT s, n FROM unnest($1::text[], $2::bigint[]) AS t(s, n) ORDER BY s
			ON CONFLICT (stream) DO UPDATE SET seq = herald_streams.seq + EXCLUDED.seq
			RETURNING stream, seq`, streams, ns)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var st string
			var head int64
			if err := rows.Scan(&st, &head); err != nil {
				rows.Close()
				return nil, err
			}
			next[st] = uint64(head-counts[st]) + 1
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		// 3. Ids and the commit time, taken now that the streams are locked: within a stream
		// both grow with sequence numbers, whichever node writes.
		if err := tx.QueryRow(ctx, `SELECT clock_timestamp(), array(SELECT nextval('herald_notification_ids') FROM generate_series(1, $1::int))`,
			total).Scan(&now, &idList); err != nil {
			return nil, err
		}
		slices.Sort(idList)
		now = now.UTC().Truncate(time.Microsecond)
	}

	// 4. The notifications and the keys, one statement each, in the group's order.
	var (
		cID, cSeq      []int64
		cStream, cType []string
		cData          [][]byte
		cContent       []*string
		cTopic         []*string
		cCritical      []bool
		kScope, kKey   []string
		kResult        []string
		kHash          [][]byte
		// Web Push: the notifications queued (push.go), and the broadcasts.
		pID    []int64
		pUser  []string
		pNow   []bool
		pBcast []int64
	)
	k := 0
	for _, pl := range plans {
		p := pl.p
		for i := range p.Drafts {
			d := &p.Drafts[i]
			if !p.Fresh(i) {
				continue
			}
			sts := store.Streams(d)
			out := make([]herald.Notification, len(sts))
			content, column := store.Content(d), store.ContentColumn(d.Content)
			var topic *string // NULL unless the draft is a topic's
			if d.Topic != "" {
				topic = &d.Topic
			}
			for j, st := range sts {
				n := &out[j]
				n.ID, n.User, n.Seq, n.Type, n.Content, n.Data, n.CreatedAt, n.Topic, n.Critical = idList[k], st, next[st], d.Type, content, d.Data, now, d.Topic, d.Critical
				next[st]++
				k++
				cID, cStream, cSeq = append(cID, n.ID), append(cStream, st), append(cSeq, int64(n.Seq))
				cType, cData, cContent = append(cType, d.Type), append(cData, []byte(d.Data)), append(cContent, column)
				cTopic, cCritical = append(cTopic, topic), append(cCritical, d.Critical)
			}
			if pushed, immediate := d.Pushed(); !pushed || s.opts.NoPush {
				// nothing to queue
			} else if d.Broadcast {
				pBcast = append(pBcast, out[0].ID)
			} else {
				for j := range out {
					pID, pUser, pNow = append(pID, out[j].ID), append(pUser, out[j].User), append(pNow, immediate)
				}
			}
			p.Receipts[i] = herald.Receipt{Notifications: out, Muted: p.Muted[i]}
			if d.Topic != "" {
				p.Receipts[i].Recipients = len(out)
			}
			if d.Key != "" {
				kScope, kKey = append(kScope, p.Scope), append(kKey, d.Key)
				kHash, kResult = append(kHash, p.FPs[i]), append(kResult, store.Result(d, out, p.Muted[i]))
			}
		}
		for i := range p.Drafts {
			if p.DupOf[i] >= 0 {
				p.Dup(i)
			}
		}
		pl.req.Receipts = p.Receipts
	}
	if len(cID) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO herald_notifications (id, stream, seq, type, data, content, topic, critical, created_at)
			SELECT id, stream, seq, type, data, content, topic, critical, $9
			FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bytea[], $6::text[], $7::text[], $8::boolean[]) AS t(id, stream, seq, type, data, content, topic, critical)`,
			cID, cStream, cSeq, cType, cData, cContent, cTopic, cCritical, now); err != nil {
			return nil, err
		}
	}
	if len(kKey) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO herald_idempotency (scope, key, hash, result, created_at)
			SELECT scope, key, hash, result, $5 FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[]) AS t(scope, key, hash, result)`,
			kScope, kKey, kHash, kResult, now); err != nil {
			return nil, err
		}
	}
	if err := queuePushes(ctx, tx, pID, pUser, pNow, pBcast, now, s.opts.PushDelay); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return later, nil
}
