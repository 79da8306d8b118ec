package httpapi

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a token bucket per publisher: Rate publish requests a second on average, Burst at
// once. A nil *Limiter admits everything.
type Limiter struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	admits  int
}

// NewLimiter returns a limiter of perSecond requests a second per publisher with bursts of burst,
// or nil (no limit) when perSecond is 0.
func NewLimiter(perSecond float64, burst int) *Limiter {
	if perSecond <= 0 {
		return nil
	}
	if burst < 1 {
		burst = max(1, int(2*perSecond))
	}
	return &Limiter{rate: rate.Limit(perSecond), burst: burst, buckets: map[string]*rate.Limiter{}}
}

// sweepEvery is how many admissions pass between sweeps of idle buckets.
const sweepEvery = 4096

// Admit takes a token from publisher's bucket and returns 0, or returns how long until one is
// available and takes nothing.
func (l *Limiter) Admit(publisher string) time.Duration {
	if l == nil {
		return 0
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
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}
