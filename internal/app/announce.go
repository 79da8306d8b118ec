package app

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/heraldhq/herald"
)

// announcer is the store as the API of a cluster node sees it: a publish answered from its
// idempotency key (a retry) is answered only once what the key's first attempt committed is on
// the bus again.
//
// The first attempt may have been on a node killed after its commit and before its bus
// publish. Its publisher, retrying on this node, gets the stored result and moves on; without
// this, its next notification would reach every node long before the lost one, which only the
// periodic resync finds, and a broadcast could overtake the user's notification published
// before it. Announced again, the lost notifications are on the bus before the publisher's next
// one, so every node delivers them first; a node that already has them drops them by their
// sequence numbers. The cost is a read and a bus message per retried publish.
type announcer struct {
	herald.Store
	commit herald.CommitFunc // the commit sink: the bus, or the hub while the bus is down
}

// announcePage is how many of a topic publish's notifications one read brings back.
const announcePage = 1000

// Append appends the drafts, and announces again what the replayed ones committed before.
func (s announcer) Append(ctx context.Context, scope string, drafts []herald.Draft) ([]herald.Receipt, error) {
	rs, err := s.Store.Append(ctx, scope, drafts)
	if err != nil {
		return rs, err
	}
	if err := s.announce(ctx, drafts, rs); err != nil {
		// The publish is committed, but its order is not assured: the publisher retries (the
		// key makes that safe) rather than publish its next notification now.
		return nil, fmt.Errorf("announce a retried publish again: %w", err)
	}
	return rs, nil
}

// announce re-reads the notifications of the replayed receipts (receipt i answers drafts[i])
// and hands them, in id order (publish order), to the commit sink.
func (s announcer) announce(ctx context.Context, drafts []herald.Draft, rs []herald.Receipt) error {
	var ids []int64
	var ns []herald.Notification
	for i, r := range rs {
		if !r.Replayed {
			continue
		}
		for _, n := range r.Notifications {
			ids = append(ids, n.ID)
		}
		if r.FirstID == 0 {
			// A named or broadcast draft, or a topic draft that reached no one or whose key a
			// version before spans stored (its notifications come by the periodic resync).
			continue
		}
		for after, topic := r.FirstID-1, drafts[i].Topic; topic != ""; {
			page, err := s.Store.TopicNotifications(ctx, topic, after, r.LastID, announcePage)
			if err != nil {
				return err
			}
			ns = append(ns, page...)
			if len(page) < announcePage {
				break
			}
			after = page[len(page)-1].ID
		}
	}
	if len(ids) > 0 {
		named, err := s.Store.Notifications(ctx, ids)
		if err != nil {
			return err
		}
		ns = append(ns, named...)
	}
	if len(ns) == 0 {
		return nil
	}
	slices.SortFunc(ns, func(a, b herald.Notification) int { return cmp.Compare(a.ID, b.ID) })
	s.commit(slices.CompactFunc(ns, func(a, b herald.Notification) bool { return a.ID == b.ID }))
	return nil
}
