package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald"
)

// Store times every operation of the Store it wraps and counts the failures that are the
// store's, not the request's (a missing notification is not a store error).
type Store struct {
	herald.Store
	dur  map[string]prometheus.Observer
	errs map[string]prometheus.Counter
}

var _ herald.Store = (*Store)(nil)

// storeOps are the operations, as label values.
var storeOps = []string{"append", "feed", "stream", "heads", "stream_heads", "inbox", "get", "set_read", "read_all", "mark_seen", "set_archived", "archive_read", "counts", "prune", "ping", "preferences", "set_preferences"}

// InstrumentStore returns s with its operations measured by m.
func (m *Metrics) InstrumentStore(s herald.Store) *Store {
	is := &Store{Store: s, dur: map[string]prometheus.Observer{}, errs: map[string]prometheus.Counter{}}
	for _, op := range storeOps {
		// Resolved once: a label lookup per call would cost more than the observation.
		is.dur[op] = m.StoreDuration.WithLabelValues(op)
		is.errs[op] = m.StoreErrors.WithLabelValues(op)
	}
	return is
}

func (s *Store) observe(op string, start time.Time, err error) {
	s.dur[op].Observe(time.Since(start).Seconds())
	if c := herald.ErrorCode(err); c == herald.EUNAVAILABLE || c == herald.EINTERNAL {
		s.errs[op].Inc()
	}
}

// Append implements herald.Store.
func (s *Store) Append(ctx context.Context, scope string, drafts []herald.Draft) (rs []herald.Receipt, err error) {
	start := time.Now()
	rs, err = s.Store.Append(ctx, scope, drafts)
	s.observe("append", start, err)
	return rs, err
}

// Feed implements herald.Store.
func (s *Store) Feed(ctx context.Context, user string, after herald.Cursor, limit int) (p herald.FeedPage, err error) {
	start := time.Now()
	p, err = s.Store.Feed(ctx, user, after, limit)
	s.observe("feed", start, err)
	return p, err
}

// Stream implements herald.Store.
func (s *Store) Stream(ctx context.Context, stream string, after uint64, limit int) (ns []herald.Notification, err error) {
	start := time.Now()
	ns, err = s.Store.Stream(ctx, stream, after, limit)
	s.observe("stream", start, err)
	return ns, err
}

// Heads implements herald.Store.
func (s *Store) Heads(ctx context.Context, user string) (c herald.Cursor, err error) {
	start := time.Now()
	c, err = s.Store.Heads(ctx, user)
	s.observe("heads", start, err)
	return c, err
}

// StreamHeads implements herald.Store.
func (s *Store) StreamHeads(ctx context.Context, streams []string) (h map[string]uint64, err error) {
	start := time.Now()
	h, err = s.Store.StreamHeads(ctx, streams)
	s.observe("stream_heads", start, err)
	return h, err
}

// Inbox implements herald.Store.
func (s *Store) Inbox(ctx context.Context, user string, q herald.InboxQuery) (p herald.InboxPage, err error) {
	start := time.Now()
	p, err = s.Store.Inbox(ctx, user, q)
	s.observe("inbox", start, err)
	return p, err
}

// Get implements herald.Store.
func (s *Store) Get(ctx context.Context, user string, id int64) (n herald.Notification, err error) {
	start := time.Now()
	n, err = s.Store.Get(ctx, user, id)
	s.observe("get", start, err)
	return n, err
}

// SetRead implements herald.Store.
func (s *Store) SetRead(ctx context.Context, user string, id int64, read bool) error {
	start := time.Now()
	err := s.Store.SetRead(ctx, user, id, read)
	s.observe("set_read", start, err)
	return err
}

// ReadAll implements herald.Store.
func (s *Store) ReadAll(ctx context.Context, user string) (n int64, err error) {
	start := time.Now()
	n, err = s.Store.ReadAll(ctx, user)
	s.observe("read_all", start, err)
	return n, err
}

// MarkSeen implements herald.Store.
func (s *Store) MarkSeen(ctx context.Context, user string, upTo int64) (mark int64, moved bool, err error) {
	start := time.Now()
	mark, moved, err = s.Store.MarkSeen(ctx, user, upTo)
	s.observe("mark_seen", start, err)
	return mark, moved, err
}

// SetArchived implements herald.Store.
func (s *Store) SetArchived(ctx context.Context, user string, id int64, archived bool) error {
	start := time.Now()
	err := s.Store.SetArchived(ctx, user, id, archived)
	s.observe("set_archived", start, err)
	return err
}

// ArchiveRead implements herald.Store.
func (s *Store) ArchiveRead(ctx context.Context, user string) (n int64, err error) {
	start := time.Now()
	n, err = s.Store.ArchiveRead(ctx, user)
	s.observe("archive_read", start, err)
	return n, err
}

// Counts implements herald.Store.
func (s *Store) Counts(ctx context.Context, user string) (c herald.Counts, err error) {
	start := time.Now()
	c, err = s.Store.Counts(ctx, user)
	s.observe("counts", start, err)
	return c, err
}

// Prune implements herald.Store.
func (s *Store) Prune(ctx context.Context, r herald.Retention) (n int64, err error) {
	start := time.Now()
	n, err = s.Store.Prune(ctx, r)
	s.observe("prune", start, err)
	return n, err
}

// Ping implements herald.Store.
func (s *Store) Ping(ctx context.Context) error {
	start := time.Now()
	err := s.Store.Ping(ctx)
	s.observe("ping", start, err)
	return err
}

// Preferences implements herald.Store: every stream reads its user's at its start.
func (s *Store) Preferences(ctx context.Context, user string) (p herald.Preferences, err error) {
	start := time.Now()
	p, err = s.Store.Preferences(ctx, user)
	s.observe("preferences", start, err)
	return p, err
}

// SetPreferences implements herald.Store.
func (s *Store) SetPreferences(ctx context.Context, user string, p herald.Preferences) (err error) {
	start := time.Now()
	err = s.Store.SetPreferences(ctx, user, p)
	s.observe("set_preferences", start, err)
	return err
}
