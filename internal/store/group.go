package store

import (
	"context"
	"sync"

	"github.com/heraldhq/herald"
)

// Request is one Append waiting for the commit of its group.
type Request struct {
	Scope  string
	Drafts []herald.Draft
	// Receipts and Err are the outcome, set by the commit function.
	Receipts []herald.Receipt
	Err      error

	size int // notifications it may create
	done chan struct{}
}

// GroupCommit feeds Appends to a store's commit function a group at a time: the appends that
// arrive while one transaction commits are written by the next one together, so concurrent
// publishers share each commit (one fsync, one lock per stream).
type GroupCommit struct {
	// commit writes a group and sets each request's outcome, except those it returns, which
	// it could not take in this group: they open the next one.
	commit   func(group []*Request) (later []*Request)
	onCommit herald.CommitFunc
	maxGroup int

	appends chan *Request
	// mu guards closed; inflight counts Appends past the closed check, so that Close lets them
	// finish before it stops the loop.
	mu       sync.RWMutex
	closed   bool
	inflight sync.WaitGroup
	stop     chan struct{}
	stopped  chan struct{}
}

// NewGroupCommit starts the loop. maxGroup bounds the notifications of one group (a larger
// request makes a group of its own); onCommit, when set, receives each commit's new
// notifications in the order they were written, before their publishers are answered.
func NewGroupCommit(maxGroup int, commit func(group []*Request) (later []*Request), onCommit herald.CommitFunc) *GroupCommit {
	g := &GroupCommit{
		commit:   commit,
		onCommit: onCommit,
		maxGroup: maxGroup,
		appends:  make(chan *Request, 1024),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	go g.loop()
	return g
}

// Append queues the drafts and waits for the commit that includes them. Once queued, a request
// is committed even if ctx ends: the caller must learn the outcome, so that what was committed
// is also fanned out.
func (g *GroupCommit) Append(ctx context.Context, scope string, drafts []herald.Draft) ([]herald.Receipt, error) {
	if len(drafts) == 0 {
		return nil, nil
	}
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return nil, herald.Errorf(herald.EUNAVAILABLE, "store is closing")
	}
	g.inflight.Add(1)
	g.mu.RUnlock()
	defer g.inflight.Done()

	req := &Request{Scope: scope, Drafts: drafts, done: make(chan struct{})}
	for i := range drafts {
		req.size += len(Streams(&drafts[i]))
		if drafts[i].Topic != "" {
			// Its size is known only in the transaction; count it as a whole group, so that
			// nothing joins a group after it.
			req.size += g.maxGroup
		}
	}
	select {
	case g.appends <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	<-req.done
	return req.Receipts, req.Err
}

func (g *GroupCommit) loop() {
	defer close(g.stopped)
	var carry []*Request
	for {
		group := carry
		if len(group) == 0 {
			select {
			case req := <-g.appends:
				group = append(group, req)
			case <-g.stop:
				return
			}
		}
		size := 0
		for _, r := range group {
			size += r.size
		}
	collect:
		for size < g.maxGroup {
			select {
			case req := <-g.appends:
				group = append(group, req)
				size += req.size
			default:
				break collect
			}
		}
		carry = g.commit(group)
		var done []*Request
		for _, req := range group {
			if !contains(carry, req) {
				done = append(done, req)
			}
		}
		g.report(done)
		for _, req := range done {
			close(req.done)
		}
	}
}

func contains(rs []*Request, r *Request) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// report hands the group's new notifications to onCommit.
func (g *GroupCommit) report(done []*Request) {
	if g.onCommit == nil {
		return
	}
	var ns []herald.Notification
	for _, req := range done {
		if req.Err != nil {
			continue
		}
		for _, r := range req.Receipts {
			if !r.Replayed {
				ns = append(ns, r.Notifications...)
			}
		}
	}
	if len(ns) > 0 {
		g.onCommit(ns)
	}
}

// Close lets the Appends in flight finish and stops the loop. It may be called more than once.
func (g *GroupCommit) Close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	g.mu.Unlock()
	g.inflight.Wait()
	close(g.stop)
	<-g.stopped
}
