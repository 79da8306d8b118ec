package postgres

import (
	"cmp"
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
			// the group itself puts its second user off to the next group), so it stands; so
			// does a topic found too large.
			if code := herald.ErrorCode(req.Err); code != herald.ECONFLICT && code != herald.ETOOLARGE {
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

	// 1b. Topic drafts: a cheap bound on their audience before anything is written. Their
	// notifications are written in SQL (writeTopic), without reading the subscribers into
	// the process.
	bounded := plans[:0]
	for _, pl := range plans {
		err := error(nil)
		for i := range pl.p.Drafts {
			if d := &pl.p.Drafts[i]; d.Topic != "" && pl.p.Fresh(i) && err == nil {
				err = boundTopic(ctx, tx, d)
			}
		}
		switch {
		case herald.ErrorCode(err) == herald.ETOOLARGE:
			pl.req.Err = err // this request alone fails, having written nothing
		case err != nil:
			return nil, err
		default:
			bounded = append(bounded, pl)
		}
	}
	plans = bounded
	// 1c. The in-app rules of the recipients of drafts addressed by name, all in one statement:
	// a change of preferences committed concurrently is wholly in or wholly out.
	ps := make([]*store.Plan, len(plans))
	for i, pl := range plans {
		ps[i] = pl.p
	}
	if err := applyMutes(ctx, tx, ps); err != nil {
		return nil, err
	}

	// 2. The drafts in the group's order, written in runs: a run of drafts by name (or
	// broadcasts) at a time, and each topic draft by itself between them, so that ids and
	// sequence numbers follow the drafts' order. Only a batch request can mix them (a topic
	// request has a group to itself): its runs lock their streams one run after the other.
	w := groupWriter{ctx: ctx, tx: tx, opts: s.opts}
	for _, pl := range plans {
		p := pl.p
		for i := range p.Drafts {
			if !p.Fresh(i) {
				continue
			}
			if p.Drafts[i].Topic == "" {
				w.run = append(w.run, draftAt{p, i})
				continue
			}
			if err := w.flush(); err != nil {
				return nil, err
			}
			if err := w.topic(p, i); err != nil {
				return nil, err
			}
		}
	}
	if err := w.flush(); err != nil {
		return nil, err
	}
	for _, pl := range plans {
		for i := range pl.p.Drafts {
			if pl.p.DupOf[i] >= 0 {
				pl.p.Dup(i)
			}
		}
		pl.req.Receipts = pl.p.Receipts
	}
	if len(w.kKey) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO herald_idempotency (scope, key, hash, result, created_at)
			SELECT scope, key, hash, result, created_at FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::timestamptz[]) AS t(scope, key, hash, result, created_at)`,
			w.kScope, w.kKey, w.kHash, w.kResult, w.kAt); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return later, nil
}

// draftAt is a plan's i-th draft.
type draftAt struct {
	p *store.Plan
	i int
}

// groupWriter writes a group's fresh drafts in order, and gathers their idempotency keys,
// written together at the end.
type groupWriter struct {
	ctx  context.Context
	tx   pgx.Tx
	opts Options
	run  []draftAt // drafts by name or broadcasts not yet written

	kScope, kKey, kResult []string
	kHash                 [][]byte
	kAt                   []time.Time
}

// keep records a keyed draft's result.
func (w *groupWriter) keep(p *store.Plan, i int, ns []herald.Notification, at time.Time) {
	d := &p.Drafts[i]
	if d.Key == "" {
		return
	}
	w.kScope, w.kKey, w.kAt = append(w.kScope, p.Scope), append(w.kKey, d.Key), append(w.kAt, at)
	w.kHash, w.kResult = append(w.kHash, p.FPs[i]), append(w.kResult, store.Result(d, ns, p.Muted[i]))
}

// flush writes the run: locks its streams in one global order (sorted, one upsert that also
// advances their heads, so that concurrent groups on any nodes never deadlock), takes its ids
// and commit time, and inserts its notifications in one statement.
func (w *groupWriter) flush() error {
	run := w.run
	w.run = w.run[:0]
	counts := map[string]int64{}
	total := 0
	for _, da := range run {
		for _, st := range store.Streams(&da.p.Drafts[da.i]) {
			counts[st]++
			total++
		}
	}
	next := map[string]uint64{} // the first sequence number this run gives each stream
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
		rows, err := w.tx.Query(w.ctx, `INSERT INTO herald_streams (stream, seq)
			SELECT s, n FROM unnest($1::text[], $2::bigint[]) AS t(s, n) ORDER BY s
			ON CONFLICT (stream) DO UPDATE SET seq = herald_streams.seq + EXCLUDED.seq
			RETURNING stream, seq`, streams, ns)
		if err != nil {
			return err
		}
		for rows.Next() {
			var st string
			var head int64
			if err := rows.Scan(&st, &head); err != nil {
				rows.Close()
				return err
			}
			next[st] = uint64(head-counts[st]) + 1
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// Ids and the commit time, taken now that the streams are locked: within a stream
		// both grow with sequence numbers, whichever node writes.
		if err := w.tx.QueryRow(w.ctx, `SELECT clock_timestamp(), array(SELECT nextval('herald_notification_ids') FROM generate_series(1, $1::int))`,
			total).Scan(&now, &idList); err != nil {
			return err
		}
		slices.Sort(idList)
		now = now.UTC().Truncate(time.Microsecond)
	} else {
		now = time.Now().UTC().Truncate(time.Microsecond) // the keys' time: every recipient muted
	}

	var (
		cID, cSeq      []int64
		cStream, cType []string
		cData          [][]byte
		cContent       []*string
		cCritical      []bool
		// Web Push: the notifications queued (push.go), and the broadcasts.
		pID    []int64
		pUser  []string
		pNow   []bool
		pBcast []int64
	)
	k := 0
	for _, da := range run {
		p, i := da.p, da.i
		d := &p.Drafts[i]
		sts := store.Streams(d)
		out := make([]herald.Notification, len(sts))
		content, column := store.Content(d), store.ContentColumn(d.Content)
		for j, st := range sts {
			n := &out[j]
			n.ID, n.User, n.Seq, n.Type, n.Content, n.Data, n.CreatedAt, n.Critical = idList[k], st, next[st], d.Type, content, d.Data, now, d.Critical
			next[st]++
			k++
			cID, cStream, cSeq = append(cID, n.ID), append(cStream, st), append(cSeq, int64(n.Seq))
			cType, cData, cContent = append(cType, d.Type), append(cData, []byte(d.Data)), append(cContent, column)
			cCritical = append(cCritical, d.Critical)
		}
		if pushed, immediate := d.Pushed(); !pushed || w.opts.NoPush {
			// nothing to queue
		} else if d.Broadcast {
			pBcast = append(pBcast, out[0].ID)
		} else {
			for j := range out {
				pID, pUser, pNow = append(pID, out[j].ID), append(pUser, out[j].User), append(pNow, immediate)
			}
		}
		p.Receipts[i] = herald.Receipt{Notifications: out, Muted: p.Muted[i]}
		w.keep(p, i, out, now)
	}
	if len(cID) > 0 {
		if _, err := w.tx.Exec(w.ctx, `INSERT INTO herald_notifications (id, stream, seq, type, data, content, critical, created_at)
			SELECT id, stream, seq, type, data, content, critical, $8
			FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bytea[], $6::text[], $7::boolean[]) AS t(id, stream, seq, type, data, content, critical)`,
			cID, cStream, cSeq, cType, cData, cContent, cCritical, now); err != nil {
			return err
		}
	}
	return queuePushes(w.ctx, w.tx, pID, pUser, pNow, pBcast, now, w.opts.PushDelay)
}

// boundTopic refuses a topic draft whose audience (its subscribers, less those it excludes) is
// over store.MaxTopicRecipients, counting one more at most, before its transaction writes
// anything. The bound is on memory: what subscribes between this count and the topic's
// statement, in the same transaction, can pass it by a few.
func boundTopic(ctx context.Context, tx pgx.Tx, d *herald.Draft) error {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM herald_topic_subscribers s
		WHERE s.topic = $1 AND NOT (s.user_id = ANY($2::text[])) LIMIT $3) AS t`,
		d.Topic, excluded(d), store.MaxTopicRecipients+1).Scan(&n); err != nil {
		return err
	}
	if n > store.MaxTopicRecipients {
		return store.TooManyRecipients(d.Topic)
	}
	return nil
}

func excluded(d *herald.Draft) []string {
	if d.Exclude == nil {
		return []string{}
	}
	return d.Exclude
}

// topic writes the plan's i-th draft, a topic's, in one statement whatever the number of
// subscribers, so that subscriptions and preferences are read from one snapshot (a bulk
// subscribe or a change of preferences committed concurrently is wholly in or wholly out) and
// nothing per subscriber passes through the process but what the hub needs:
//   - a: the audience, the topic's subscribers less the excluded, each with whether they
//     muted the draft in the app (never, when it is critical);
//   - h: the heads of the streams of those who did not, advanced by one, their rows locked in
//     the order of the runs' upsert (flush), so that no two groups deadlock;
//   - t: the commit time, taken after every lock (t counts h's rows: h has run to its end),
//     so that within a stream times grow with sequence numbers, as ids do;
//   - ins: a notification per stream at its new head;
//   - the pushes to queue (push.go), joined with the subscriptions in SQL.
//
// The rows returned are the notifications, and one more without an id: the audience's size
// and the commit time.
func (w *groupWriter) topic(p *store.Plan, i int) error {
	d := &p.Drafts[i]
	content, column := store.Content(d), store.ContentColumn(d.Content)
	muted := "false"
	typ, topic, prefixes := store.MuteArgs(d)
	if d.Critical { // no mute holds it back; the rules' parameters are still typed
		muted = "(false AND $7::text IS NULL AND $8::text IS NULL AND $9::text[] IS NULL)"
	} else {
		muted = store.MutedSQL("herald_mutes", "s.user_id", "$7", "$8", "= ANY($9::text[])")
	}
	pushed, immediate := d.Pushed()
	pushCTE := ""
	if pushed && !w.opts.NoPush {
		pushCTE = `, q AS (INSERT INTO herald_push_outbox (notification_id, user_id, subscription_id, immediate, due_at, created_at)
			SELECT ins.id, ins.stream, ps.id, $10::bool, CASE WHEN $10::bool THEN t.at ELSE t.at + $11::bigint * interval '1 microsecond' END, t.at
			FROM ins JOIN herald_push_subscriptions ps ON ps.user_id = ins.stream CROSS JOIN t)`
	}
	q := `WITH a AS (
			SELECT s.user_id, ` + muted + ` AS muted FROM herald_topic_subscribers s
			WHERE s.topic = $1 AND NOT (s.user_id = ANY($2::text[]))),
		h AS (
			INSERT INTO herald_streams (stream, seq)
			SELECT user_id, 1 FROM a WHERE NOT muted ORDER BY user_id COLLATE "default"
			ON CONFLICT (stream) DO UPDATE SET seq = herald_streams.seq + 1
			RETURNING stream, seq),
		t AS (SELECT clock_timestamp() AS at, (SELECT count(*) FROM a) AS audience, (SELECT count(*) FROM h) AS written),
		ins AS (
			INSERT INTO herald_notifications (id, stream, seq, type, data, content, topic, critical, created_at)
			SELECT nextval('herald_notification_ids'), o.stream, o.seq, $3, $4, $5, $1, $6, t.at
			FROM (SELECT stream, seq FROM h ORDER BY stream COLLATE "C") AS o CROSS JOIN t
			RETURNING id, stream, seq)` + pushCTE + `
		SELECT id, stream, seq, NULL::timestamptz FROM ins
		UNION ALL SELECT NULL, NULL, audience, at FROM t`
	args := []any{d.Topic, excluded(d), d.Type, []byte(d.Data), column, d.Critical, typ, topic, prefixes}
	if pushCTE != "" {
		args = append(args, immediate, w.opts.PushDelay.Microseconds())
	}
	rows, err := w.tx.Query(w.ctx, q, args...)
	if err != nil {
		return err
	}
	var (
		ns       []herald.Notification
		audience int64
		at       time.Time
		id       *int64
		stream   *string
		seq      int64
		when     *time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &stream, &seq, &when}, func() error {
		if id == nil {
			audience, at = seq, when.UTC()
			return nil
		}
		ns = append(ns, herald.Notification{ID: *id, User: *stream, Seq: uint64(seq), Type: d.Type, Content: content, Data: d.Data, Topic: d.Topic, Critical: d.Critical})
		return nil
	})
	if err != nil {
		return err
	}
	for j := range ns {
		ns[j].CreatedAt = at
	}
	slices.SortFunc(ns, func(a, b herald.Notification) int { return cmp.Compare(a.ID, b.ID) })
	p.Muted[i] = int(audience) - len(ns)
	p.Receipts[i] = herald.Receipt{Notifications: ns, Muted: p.Muted[i], Recipients: len(ns)}
	w.keep(p, i, ns, at)
	return nil
}
