// Package push sends Web Push notifications (RFC 8030, with VAPID, RFC 8292, and payloads
// encrypted per RFC 8291 by github.com/SherClockHolmes/webpush-go) from the store's durable
// outbox, as a fallback for users who did not see a notification live.
//
// The store queues the pushes in the transaction that commits the notification (one outbox row
// per subscription of each recipient), due after the push delay, or at once for a publisher's
// "push": "always". Every node runs a Sender, which claims due pushes with a lease (no other node
// sends a push while its claim holds), decides whether each is still wanted, sends it, and
// removes it, or reschedules it after a failure that may pass.
package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/SherClockHolmes/webpush-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/heraldhq/herald"
)

// Muter says whether a user muted push for notifications of a type or topic (preferences).
// A nil Muter mutes nothing.
type Muter interface {
	MutedPush(ctx context.Context, user, typ, topic string) (bool, error)
}

// Options configure a Sender. Zero durations and counts take the defaults in brackets.
type Options struct {
	Store herald.Store
	Keys  Keys
	// Subject is the VAPID "sub" claim: a mailto: or https: URL where the push service can
	// reach the operator.
	Subject string
	// Delay is how long a fallback push waits (the store's push delay): the presence check
	// looks back to the notification's commit. [30s]
	Delay time.Duration
	// TTL drops a push this long after its notification's commit, and bounds how long the push
	// service keeps it for an offline device. [4h]
	TTL time.Duration
	// Lease is how long a claim holds a push: a node killed while sending lets another send
	// it after this. [60s]
	Lease time.Duration
	// Retry is the first delay after a failure that may pass; it doubles each attempt, up to
	// 10 minutes. [5s]
	Retry time.Duration
	// Workers bounds the pushes being sent at once. [16]
	Workers int
	// Poll is how often the outbox is read when it had nothing due. [min(1s, Delay/4)]
	Poll time.Duration
	// Presence tells whether the user has a stream open on this node now; nil: the store's
	// record alone.
	Presence *Presence
	Muter    Muter
	// Client sends the requests; it must not follow redirects. [a client with a 30s timeout]
	Client     *http.Client
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Sender sends the outbox's pushes until Close.
type Sender struct {
	opts Options
	log  *slog.Logger

	queued  prometheus.Counter
	sent    prometheus.Counter
	failed  *prometheus.CounterVec
	skipped *prometheus.CounterVec
	pruned  prometheus.Counter

	stop context.CancelFunc
	done chan struct{}
}

// maxRetry caps the delay between attempts.
const maxRetry = 10 * time.Minute

// New checks opts and returns a Sender; Start runs it.
func New(opts Options) (*Sender, error) {
	if opts.Store == nil {
		return nil, errors.New("push: no store")
	}
	if _, err := ParsePrivateKey(opts.Keys.Private); err != nil {
		return nil, err
	}
	if err := CheckSubject(opts.Subject); err != nil {
		return nil, err
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.Delay, 30*time.Second)
	def(&opts.TTL, 4*time.Hour)
	def(&opts.Lease, time.Minute)
	def(&opts.Retry, 5*time.Second)
	def(&opts.Poll, max(10*time.Millisecond, min(time.Second, opts.Delay/4)))
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.Client == nil {
		opts.Client = NewClient(opts.Workers)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	f := promauto.With(opts.Registerer)
	s := &Sender{
		opts: opts,
		log:  opts.Logger,
		queued: f.NewCounter(prometheus.CounterOpts{Name: "herald_push_claimed_total",
			Help: "Pushes taken from the outbox by this node (a retry is taken again)."}),
		sent: f.NewCounter(prometheus.CounterOpts{Name: "herald_push_sent_total",
			Help: "Pushes the push service accepted."}),
		failed: f.NewCounterVec(prometheus.CounterOpts{Name: "herald_push_failed_total",
			Help: "Push attempts that failed, by reason: server_error, network and rate_limited are retried; gone (the subscription expired), rejected, invalid and expired (older than --push-ttl) are not."}, []string{"reason"}),
		skipped: f.NewCounterVec(prometheus.CounterOpts{Name: "herald_push_skipped_total",
			Help: "Pushes not sent because they were no longer wanted, by reason: seen, present (the user had a stream open since), muted, deleted."}, []string{"reason"}),
		pruned: f.NewCounter(prometheus.CounterOpts{Name: "herald_push_subscriptions_pruned_total",
			Help: "Subscriptions removed because their push service answered 404 or 410."}),
	}
	for _, r := range []string{"server_error", "network", "rate_limited", "gone", "rejected", "invalid", "expired"} {
		s.failed.WithLabelValues(r)
	}
	for _, r := range []string{"seen", "present", "muted", "deleted"} {
		s.skipped.WithLabelValues(r)
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_push_outbox_pending",
		Help: "Pushes in the outbox (all nodes'), due or not."}, func() float64 { return float64(s.stats().Pending) })
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_push_outbox_oldest_seconds",
		Help: "Age of the oldest notification with a push in the outbox; 0 when it is empty."}, func() float64 {
		if st := s.stats(); !st.Oldest.IsZero() {
			return time.Since(st.Oldest).Seconds()
		}
		return 0
	})
	return s, nil
}

func (s *Sender) stats() herald.PushOutboxStats {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, _ := s.opts.Store.PushOutboxStats(ctx) // a failed read shows as zero; /readyz reports the store
	return st
}

// NewClient returns the HTTP client pushes go out with: bounded in time, not following
// redirects (which would take a request to a host the endpoint check never saw), and keeping
// a connection per worker to each push service (most pushes go to one or two hosts; the
// default of two idle connections per host would reconnect, TLS handshake and all, for most).
func NewClient(workers int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = max(workers, 2)
	return &http.Client{
		Transport:     t,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// CheckSubject checks the VAPID subject: a mailto: address or an https URL.
func CheckSubject(s string) error {
	switch {
	case strings.HasPrefix(s, "mailto:") && strings.Contains(s, "@") && !strings.ContainsAny(s, " \t\r\n"):
	case strings.HasPrefix(s, "https://") && len(s) > len("https://") && !strings.ContainsAny(s, " \t\r\n"):
	default:
		return fmt.Errorf("vapid-subject must be a mailto: address or an https: URL where push services can reach the operator, as in mailto:ops@example.com")
	}
	return nil
}

// Start runs the outbox loop until Close.
func (s *Sender) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		s.run(ctx)
	}()
}

// Close stops the loop and waits for the pushes being sent. A push claimed but not finished is
// sent again by any node when its lease ends.
func (s *Sender) Close() {
	if s.stop != nil {
		s.stop()
		<-s.done
		s.stop = nil
	}
}

// presencePruneEvery is how often the loop removes presence older than the TTL (PrunePresence).
const presencePruneEvery = 10 * time.Minute

// presencePruneBatch bounds one prune statement, so that it holds SQLite's writer briefly.
const presencePruneBatch = 1000

func (s *Sender) run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	var pruned time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if time.Since(pruned) >= presencePruneEvery {
			pruned = time.Now()
			if _, err := s.PrunePresence(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("push: pruning presence failed", "err", err)
			}
		}
		n, err := s.Round(ctx)
		wait := s.opts.Poll
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("push: reading the outbox failed", "err", err)
		case n == s.batch():
			wait = 0 // more may be due
		}
		t.Reset(wait)
	}
}

func (s *Sender) batch() int { return 4 * s.opts.Workers }

// PrunePresence removes the presence recorded before the TTL, and returns how many users' it
// removed. Presence only holds back a push committed before it, and a push older than the TTL
// is dropped: older presence decides nothing, and without this the store keeps a row for every
// user who ever had a stream open. The loop of Start calls it every ten minutes.
func (s *Sender) PrunePresence(ctx context.Context) (int64, error) {
	before := time.Now().Add(-s.opts.TTL)
	var total int64
	for {
		n, err := s.opts.Store.PrunePresence(ctx, before, presencePruneBatch)
		total += n
		if err != nil || n < presencePruneBatch {
			return total, err
		}
	}
}

// Round claims the pushes due now (at most a batch), sends them with up to Workers at once,
// and returns how many it claimed.
func (s *Sender) Round(ctx context.Context) (int, error) {
	jobs, err := s.opts.Store.ClaimPushes(ctx, time.Now(), s.opts.Lease, s.batch())
	if err != nil {
		return 0, err
	}
	s.queued.Add(float64(len(jobs)))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var finished []int64
	sem := make(chan struct{}, s.opts.Workers)
	for i := range jobs {
		sem <- struct{}{}
		wg.Add(1)
		go func(j *herald.PushJob) {
			defer func() { <-sem; wg.Done() }()
			if s.handle(ctx, j) {
				mu.Lock()
				finished = append(finished, j.ID)
				mu.Unlock()
			}
		}(&jobs[i])
	}
	wg.Wait()
	if len(jobs) > 0 {
		// The round's done pushes leave the outbox together, in one transaction: one commit per
		// round rather than per push. The outbox is updated even when ctx ended during the
		// sends, so that a push the service accepted is not sent again after a restart.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.opts.Store.FinishPushes(uctx, jobs[0].Claim, finished); err != nil {
			// Their lease ends, and they are claimed again: pushes sent twice at worst,
			// collapsed on the device by their tag.
			s.log.Warn("push: updating the outbox failed", "pushes", len(finished), "err", err)
		}
	}
	return len(jobs), nil
}

// outcome is what became of one attempt.
type outcome int

const (
	done  outcome = iota // sent or given up: remove it
	retry                // try again at the time given
)

// handle decides whether j is still wanted and sends it. It reports whether j is done (to be
// removed from the outbox); a push to retry it reschedules itself.
func (s *Sender) handle(ctx context.Context, j *herald.PushJob) bool {
	what, at := s.attempt(ctx, j)
	if what == done {
		return true
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.opts.Store.RetryPush(uctx, j.ID, j.Claim, at); err != nil {
		// Its lease ends, and it is claimed again, which is a retry too.
		s.log.Warn("push: rescheduling a push failed", "push", j.ID, "err", err)
	}
	return false
}

func (s *Sender) attempt(ctx context.Context, j *herald.PushJob) (outcome, time.Time) {
	now := time.Now()
	left := s.opts.TTL - now.Sub(j.CreatedAt)
	if left <= 0 {
		s.failed.WithLabelValues("expired").Inc()
		return done, now
	}
	later := func() (outcome, time.Time) { return retry, now.Add(s.backoff(j.Attempts)) }
	n, err := s.opts.Store.Get(ctx, j.User, j.Notification)
	switch {
	case herald.ErrorCode(err) == herald.ENOTFOUND:
		s.skipped.WithLabelValues("deleted").Inc() // removed by retention since
		return done, now
	case err != nil:
		return later()
	}
	if m := s.opts.Muter; m != nil && !n.Critical { // no mute holds back a critical notification
		muted, err := m.MutedPush(ctx, j.User, n.Type, n.Topic)
		if err != nil {
			return later()
		}
		if muted {
			s.skipped.WithLabelValues("muted").Inc()
			return done, now
		}
	}
	if !j.Immediate {
		if n.Seen {
			s.skipped.WithLabelValues("seen").Inc()
			return done, now
		}
		present := s.opts.Presence != nil && s.opts.Presence.Here(j.User)
		if !present {
			last, err := s.opts.Store.LastPresent(ctx, j.User)
			if err != nil {
				return later()
			}
			present = !last.Before(j.CreatedAt)
		}
		if present {
			s.skipped.WithLabelValues("present").Inc()
			return done, now
		}
	}
	payload, err := NewPayload(&n)
	if err != nil {
		s.failed.WithLabelValues("invalid").Inc()
		return done, now
	}
	return s.send(ctx, j, &n, payload, left)
}

// send posts one push and reads the push service's answer (RFC 8030 §5, §6.2, §7.3).
func (s *Sender) send(ctx context.Context, j *herald.PushJob, n *herald.Notification, payload []byte, ttl time.Duration) (outcome, time.Time) {
	now := time.Now()
	urgency := webpush.UrgencyNormal
	if j.Immediate {
		urgency = webpush.UrgencyHigh
	}
	res, err := webpush.SendNotificationWithContext(ctx, payload[:len(payload):len(payload)], &webpush.Subscription{
		Endpoint: j.Subscription.Endpoint,
		Keys:     webpush.Keys{Auth: j.Subscription.Auth, P256dh: j.Subscription.P256DH},
	}, &webpush.Options{
		HTTPClient:      s.opts.Client,
		Subscriber:      strings.TrimPrefix(s.opts.Subject, "mailto:"), // the library adds mailto: to what is not https:
		Topic:           topic(n),
		TTL:             int(ttl / time.Second),
		Urgency:         urgency,
		VAPIDPublicKey:  s.opts.Keys.Public,
		VAPIDPrivateKey: s.opts.Keys.Private,
		VapidExpiration: now.Add(12 * time.Hour),
	})
	if err != nil {
		if res == nil && ctx.Err() == nil && !isNetwork(err) {
			// Nothing was sent: the subscription's keys cannot encrypt (not a P-256 point).
			s.failed.WithLabelValues("invalid").Inc()
			s.log.Info("push: a subscription's keys cannot encrypt; removing it", "user", j.User, "err", err)
			s.prune(ctx, j)
			return done, now
		}
		s.failed.WithLabelValues("network").Inc()
		return retry, now.Add(s.backoff(j.Attempts))
	}
	res.Body.Close()
	switch code := res.StatusCode; {
	case code >= 200 && code < 300:
		s.sent.Inc()
		return done, now
	case code == http.StatusNotFound || code == http.StatusGone:
		s.failed.WithLabelValues("gone").Inc()
		s.prune(ctx, j)
		return done, now
	case code == http.StatusTooManyRequests:
		s.failed.WithLabelValues("rate_limited").Inc()
		if d, ok := retryAfter(res.Header.Get("Retry-After"), now); ok {
			return retry, now.Add(min(d, maxRetry))
		}
		return retry, now.Add(s.backoff(j.Attempts))
	case code >= 500:
		s.failed.WithLabelValues("server_error").Inc()
		return retry, now.Add(s.backoff(j.Attempts))
	default:
		// 400, 401, 403 (a VAPID key the subscription was not made with), 413: trying again
		// would get the same answer.
		s.failed.WithLabelValues("rejected").Inc()
		s.log.Warn("push: the push service refused a push", "status", code, "host", res.Request.URL.Host)
		return done, now
	}
}

// prune removes a subscription its push service no longer knows; it was the user's.
func (s *Sender) prune(ctx context.Context, j *herald.PushJob) {
	err := s.opts.Store.DeletePushSubscription(context.WithoutCancel(ctx), j.User, j.Subscription.Endpoint)
	switch {
	case err == nil:
		s.pruned.Inc()
	case herald.ErrorCode(err) != herald.ENOTFOUND:
		s.log.Warn("push: removing an expired subscription failed", "err", err)
	}
}

// backoff is the delay before attempt+1: Retry doubled per attempt, capped, with jitter so
// that pushes failed together do not all come back together.
func (s *Sender) backoff(attempts int) time.Duration {
	d := s.opts.Retry << min(attempts, 20)
	if d <= 0 || d > maxRetry {
		d = maxRetry
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// isNetwork reports whether err came from the request (http.Client wraps all its errors in a
// *url.Error) rather than from preparing it.
func isNetwork(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue)
}

// topic is the push's Topic header (RFC 8030 §5.4): a push service keeps only the newest
// undelivered push of a topic. At most 32 characters of the base64url alphabet: the content's
// group when it fits, else nothing (the device still collapses by the payload's tag).
func topic(n *herald.Notification) string {
	if n.Content == nil || n.Content.Group == "" || len(n.Content.Group) > 32 {
		return ""
	}
	for _, c := range n.Content.Group {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return ""
		}
	}
	return n.Content.Group
}
