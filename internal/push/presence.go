package push

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/heraldhq/herald"
)

// presenceChunk bounds the users one store write records, so that a node with many streams
// does not hold the store's writer for long.
const presenceChunk = 1000

// Presence records in the store when each user had a stream open on this node, so that any
// node's sender can tell whether the user was online since a notification was committed: at
// once (within one interval) when a stream opens or closes, and every interval for each user
// with streams open. Between those writes it costs a map entry per user with open streams.
type Presence struct {
	store    herald.Store
	interval time.Duration
	log      *slog.Logger

	mu    sync.Mutex
	open  map[string]int       // users with streams open here → how many
	dirty map[string]time.Time // opens and closes not yet written, with their times

	stop context.CancelFunc
	done chan struct{}
}

// NewPresence returns a Presence writing every interval; Start runs it.
func NewPresence(store herald.Store, interval time.Duration, log *slog.Logger) *Presence {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Presence{store: store, interval: interval, log: log, open: map[string]int{}, dirty: map[string]time.Time{}}
}

// Changed records that one of user's streams opened or closed on this node. The hub calls it
// under its lock, so it only takes its own.
func (p *Presence) Changed(user string, opened bool) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if opened {
		p.open[user]++
	} else if p.open[user]--; p.open[user] <= 0 {
		delete(p.open, user)
	}
	p.dirty[user] = now
}

// Here reports whether user has a stream open on this node now.
func (p *Presence) Here(user string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open[user] > 0
}

// Start writes presence every interval until Close.
func (p *Presence) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.stop, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(p.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				// The last opens and closes, so that a restart does not lose them.
				fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				p.Flush(fctx)
				cancel()
				return
			case <-t.C:
				p.Flush(ctx)
			}
		}
	}()
}

// Flush writes what changed since the last write, and now for every user with open streams.
func (p *Presence) Flush(ctx context.Context) {
	now := time.Now()
	p.mu.Lock()
	batch := p.dirty
	p.dirty = make(map[string]time.Time, len(batch))
	for u := range p.open {
		batch[u] = now
	}
	p.mu.Unlock()
	chunk := make(map[string]time.Time, min(len(batch), presenceChunk))
	for u, at := range batch {
		chunk[u] = at
		if len(chunk) == presenceChunk {
			p.write(ctx, chunk)
			clear(chunk)
		}
	}
	p.write(ctx, chunk)
}

func (p *Presence) write(ctx context.Context, chunk map[string]time.Time) {
	if err := p.store.MarkPresent(ctx, chunk); err != nil && ctx.Err() == nil {
		// The next interval writes the users with open streams again; a lost close costs at
		// most one push to a user who was online until a moment before.
		p.log.Warn("push: recording presence failed", "users", len(chunk), "err", err)
	}
}

// Close stops the writes after a last one.
func (p *Presence) Close() {
	if p.stop != nil {
		p.stop()
		<-p.done
		p.stop = nil
	}
}
