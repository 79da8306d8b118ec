package httpapi

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"
)

// Limiter is a token bucket per publisher, counted in notifications created: Rate a second on
// average, Burst at once. A notification to n users is n (each is a row, a delivery and an
// inbox entry); a broadcast is 1. Counting requests instead let one batch of a million rows
// through a limit of one a second. A nil *Limiter admits everything.
type Limiter struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	admits  int
}

// NewLimiter returns a limiter of perSecond notifications a second per publisher with bursts of
// burst (0: twice perSecond, at least 1), or nil (no limit) when perSecond is 0.
func NewLimiter(perSecond float64, burst int) *Limiter {
	if perSecond <= 0 {
		return nil
	}
	if burst < 1 {
		burst = max(1, int(min(2*perSecond, math.MaxInt32)))
	}
	return &Limiter{rate: rate.Limit(perSecond), burst: burst, buckets: map[string]*rate.Limiter{}}
}

// Burst is the most notifications a publisher may create at once, so the most one request may
// create: a larger request could never be admitted. 0 for a nil *Limiter.
func (l *Limiter) Burst() int {
	if l == nil {
		return 0
	}
	return l.burst
}

// sweepEvery is how many admissions pass between sweeps of idle buckets.
const sweepEvery = 4096

// Ready returns 0 when publisher has a token left, or how long until it has one. It takes
// nothing: it lets a publisher with an empty bucket be refused before its body is read, when
// what the request will cost is not known yet; Admit charges the request once it is.
func (l *Limiter) Ready(publisher string) time.Duration {
	if l == nil {
		return 0
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[publisher]
	if b == nil {
		return 0 // a new bucket is full
	}
	if tokens := b.TokensAt(now); tokens < 1 {
		return time.Duration((1 - tokens) / float64(l.rate) * float64(time.Second))
	}
	return 0
}

// Admit takes n tokens from publisher's bucket and returns 0; or takes nothing and returns how
// long until the bucket holds n. overBurst reports an n above Burst, which no wait admits.
func (l *Limiter) Admit(publisher string, n int) (wait time.Duration, overBurst bool) {
	if l == nil {
		return 0, false
	}
	if n > l.burst {
		return 0, true
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[publisher]
	if b == nil {
		b = rate.NewLimiter(l.rate, l.burst)
		l.buckets[publisher] = b
	}
	if l.admits++; l.admits%sweepEvery == 0 {
		// A full bucket is the same as a new one: forgetting it bounds the map by the publishers
		// active recently, without a goroutine to do it.
		for id, other := range l.buckets {
			if other != b && other.TokensAt(now) >= float64(l.burst) {
				delete(l.buckets, id)
			}
		}
	}
	r := b.ReserveN(now, n)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, false
}

// DefaultInflightWait is how long a publish waits for room under the in-flight limit before it
// is refused: about as long as the largest request allowed takes to commit, so that a few large
// requests arriving together are served one after another rather than refused.
const DefaultInflightWait = time.Second

// Inflight bounds the publish work the server holds at once, counted in notifications (as
// Limiter counts them) from the moment a request is decoded until its answer is written: the
// store's rows, the fan-out to streams and the answer's ids all grow with it. A request waits up
// to a short time for room, then is refused. A nil *Inflight admits everything.
type Inflight struct {
	sem  *semaphore.Weighted
	size int
	wait time.Duration
	// held is the weight acquired now, for the metrics.
	mu   sync.Mutex
	held int
}

// NewInflight returns a limit of size notifications in flight whose requests wait at most wait
// for room, or nil (no limit) when size is 0.
func NewInflight(size int, wait time.Duration) *Inflight {
	if size <= 0 {
		return nil
	}
	return &Inflight{sem: semaphore.NewWeighted(int64(size)), size: size, wait: wait}
}

// Size is the most notifications in flight; 0 for no limit.
func (f *Inflight) Size() int {
	if f == nil {
		return 0
	}
	return f.size
}

// Held is the number of notifications in flight now.
func (f *Inflight) Held() int {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held
}

// Acquire takes room for n notifications, waiting at most the limit's wait (and no longer than
// ctx), and returns the function that gives it back; ok is false when there was no room in
// time, and then nothing is held. An n above Size is capped to Size, so that a request the other
// limits let through is never refused for ever.
func (f *Inflight) Acquire(ctx context.Context, n int) (release func(), ok bool) {
	if f == nil {
		return func() {}, true
	}
	n = min(max(n, 1), f.size)
	if !f.sem.TryAcquire(int64(n)) {
		ctx, cancel := context.WithTimeout(ctx, f.wait)
		defer cancel()
		if f.sem.Acquire(ctx, int64(n)) != nil {
			return nil, false
		}
	}
	f.add(n)
	var once sync.Once
	return func() {
		once.Do(func() {
			f.add(-n)
			f.sem.Release(int64(n))
		})
	}, true
}

func (f *Inflight) add(n int) {
	f.mu.Lock()
	f.held += n
	f.mu.Unlock()
}
