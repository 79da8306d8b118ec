package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/metrics"
)

// publishRequest is the JSON body of one notification. Pointers tell "absent" from "zero".
// The content fields need not: absent, null and "" all mean none.
type publishRequest struct {
	To        []string        `json:"to"`
	Broadcast *bool           `json:"broadcast"`
	Topic     *string         `json:"topic"`
	Exclude   []string        `json:"exclude"`
	Type      *string         `json:"type"`
	Title     string          `json:"title"`
	Body      string          `json:"body"`
	URL       string          `json:"url"`
	Icon      string          `json:"icon"`
	Avatar    string          `json:"avatar"`
	Actions   []herald.Action `json:"actions"`
	Group     string          `json:"group"`
	Data      jsontext.Value  `json:"data"`
	Key       *string         `json:"key"`
	// Critical goes through every recipient's mutes (security alerts, legal notices).
	Critical bool `json:"critical"`
	// Push is "always", "never", or absent for the default fallback (docs/push.md).
	Push string `json:"push"`
}

type batchRequest struct {
	Notifications []publishRequest `json:"notifications"`
}

type publishedItem struct {
	ID   string `json:"id"`
	User string `json:"user,omitempty"`
}

// publishResponse is the 201 of a publish. A topic's notifications are not listed, only counted
// in Recipients (present only when the request has a topic): they can be 100,000, and a replay
// knows only their count, so the first answer and its replays say the same.
//
// Muted counts the recipients who muted a notification, for whom it was not created (they are
// not in Notifications, nor counted in Recipients); absent when none did. A replay says the
// same as the first answer.
type publishResponse struct {
	Notifications []publishedItem `json:"notifications"`
	Recipients    *int            `json:"recipients,omitempty"`
	Muted         int             `json:"muted,omitempty"`
}

func (a *API) publish(w http.ResponseWriter, r *http.Request) {
	pub, ok := a.publisher(w, r)
	if !ok {
		return
	}
	body, err := jsonBody(w, r, a.opts.MaxBody)
	if err != nil {
		a.refuse(w, r, err)
		return
	}
	dec := a.newPublishBody(body)
	req, err := dec.single()
	a.release(dec, r.ContentLength)
	if err != nil {
		a.refuse(w, r, err)
		return
	}
	d, err := a.draft(&req, "")
	if err != nil {
		a.refuse(w, r, err)
		return
	}
	if err := mergeKeyHeader(&d, r.Header.Get("Idempotency-Key")); err != nil {
		a.writeError(w, r, err)
		return
	}
	a.commit(w, r, pub.ID, []herald.Draft{d})
}

func (a *API) publishBatch(w http.ResponseWriter, r *http.Request) {
	pub, ok := a.publisher(w, r)
	if !ok {
		return
	}
	if r.Header.Get("Idempotency-Key") != "" {
		a.writeError(w, r, herald.Errorf(herald.EINVALID, "a batch takes a \"key\" per notification, not an Idempotency-Key header"))
		return
	}
	body, err := jsonBody(w, r, a.opts.MaxBatchBody)
	if err != nil {
		a.refuse(w, r, err)
		return
	}
	// Each notification is validated as soon as it is decoded; only its draft is kept.
	var drafts []herald.Draft
	dec := a.newPublishBody(body)
	err = dec.batch(a.opts.MaxBatch, func(i int, req *publishRequest) error {
		d, err := a.draft(req, fmt.Sprintf("notifications[%d]: ", i))
		drafts = append(drafts, d)
		return err
	})
	a.release(dec, r.ContentLength)
	if err != nil {
		a.refuse(w, r, err)
		return
	}
	a.commit(w, r, pub.ID, drafts)
}

// publisher authenticates the publisher and refuses it when its rate limit has no token left;
// when it returns false the request has been answered. This is before the body is read, so that
// a publisher over its rate costs next to nothing; what the request costs is charged in commit,
// once it is known.
func (a *API) publisher(w http.ResponseWriter, r *http.Request) (herald.Publisher, bool) {
	pub, err := a.opts.Auth.Publisher(r)
	if err != nil {
		a.writeError(w, r, err)
		return pub, false
	}
	if wait := a.opts.Limiter.Ready(pub.ID); wait > 0 {
		a.rateLimited(w, r, wait)
		return pub, false
	}
	return pub, true
}

// rateLimited answers 429 with wait, the time until the publisher's bucket holds what the
// request needs, in whole seconds rounded up.
func (a *API) rateLimited(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	a.metrics.PublishRefused.WithLabelValues(metrics.RefusedRate).Inc()
	w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
	a.writeError(w, r, herald.Errorf(herald.ERATELIMITED, "publish rate limit exceeded; retry in %s", wait.Round(time.Millisecond)))
}

// refuse answers a publish that was refused before it was charged, counting those too large.
func (a *API) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if herald.ErrorCode(err) == herald.ETOOLARGE {
		a.metrics.PublishRefused.WithLabelValues(metrics.RefusedTooLarge).Inc()
	}
	a.writeError(w, r, err)
}

// created is how many notifications drafts create: one per user, one per broadcast, and for a
// topic its subscribers now (at least 1), less nothing for its exclusions. The request-size,
// rate and in-flight limits count them. A topic's count is read before its commit: what
// subscribes in between is not charged (--max-topic-subscribers bounds it).
func (a *API) created(ctx context.Context, drafts []herald.Draft) (int, error) {
	n := 0
	for _, d := range drafts {
		if d.Topic == "" {
			n += max(1, len(d.To))
		}
	}
	counted := map[string]int{}
	for _, d := range drafts {
		if d.Topic == "" {
			continue
		}
		c, ok := counted[d.Topic]
		if !ok {
			// Counted only up to what the request may still create, and no further once it is
			// over: a batch of large topics costs one count past the limit, not one each.
			k, err := a.opts.Store.CountSubscribers(ctx, d.Topic, max(1, a.opts.MaxRequestRecipients-n))
			if err != nil {
				return 0, err
			}
			c = int(k)
			counted[d.Topic] = c
		}
		if n += max(1, c); n > a.opts.MaxRequestRecipients {
			return n, nil
		}
	}
	return n, nil
}

// commit stores the drafts and answers 201 with their ids. The store hands what it committed to
// the hub itself, in commit order, so a live stream sees the same order a replay does.
//
// First the request is charged: it waits briefly for room under the server's in-flight limit,
// then takes its notifications from the publisher's rate limit. A request refused by either
// holds and takes nothing.
func (a *API) commit(w http.ResponseWriter, r *http.Request, scope string, drafts []herald.Draft) {
	n, err := a.created(r.Context(), drafts)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if max := a.opts.MaxRequestRecipients; n > max {
		// Only topics can get here: the users a request names were counted as it was read.
		// n is a lower bound: topics are counted only until the request is over.
		a.refuse(w, r, herald.Errorf(herald.ETOOLARGE, "the request would create more than %d notifications (its topics' subscribers included), the limit of --max-request-recipients; "+
			"split it into smaller requests", max))
		return
	}
	if burst := a.opts.Limiter.Burst(); burst > 0 && n > burst {
		// No wait would let it through: a 429 would have the publisher retry for ever.
		a.refuse(w, r, herald.Errorf(herald.ETOOLARGE, "the request creates %d notifications, more than the %d a publisher may create at once (--publish-burst); "+
			"split it into smaller requests, or raise --publish-burst", n, burst))
		return
	}
	release, ok := a.opts.Inflight.Acquire(r.Context(), n)
	if !ok {
		if r.Context().Err() != nil {
			return // the client left while it waited
		}
		a.metrics.PublishRefused.WithLabelValues(metrics.RefusedBusy).Inc()
		w.Header().Set("Retry-After", "1")
		a.writeError(w, r, herald.Errorf(herald.EUNAVAILABLE, "the server is at its limit of publish work in flight (--max-publish-inflight, %d notifications); retry shortly",
			a.opts.Inflight.Size()))
		return
	}
	// Held until the answer is written: the receipts and the answer grow with n too.
	defer release()
	if wait, _ := a.opts.Limiter.Admit(scope, n); wait > 0 {
		a.rateLimited(w, r, wait)
		return
	}
	receipts, err := a.opts.Store.Append(r.Context(), scope, drafts)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	resp := publishResponse{Notifications: make([]publishedItem, 0, n)}
	replayed := true
	muted := 0 // newly, for the metric
	for i, rc := range receipts {
		resp.Muted += rc.Muted
		if !rc.Replayed {
			replayed = false
			muted += rc.Muted
		}
		if drafts[i].Topic != "" {
			if resp.Recipients == nil {
				resp.Recipients = new(int)
			}
			*resp.Recipients += rc.Recipients
			continue
		}
		for _, n := range rc.Notifications {
			resp.Notifications = append(resp.Notifications, publishedItem{ID: strconv.FormatInt(n.ID, 10), User: n.User})
		}
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	if muted > 0 {
		a.metrics.Muted.WithLabelValues(herald.ChannelInApp).Add(float64(muted))
	}
	for i := range drafts {
		if receipts[i].Replayed {
			continue
		}
		switch {
		case drafts[i].Broadcast:
			a.published[kindBroadcast].Inc()
		case drafts[i].Topic != "":
			a.published[kindMulticast].Inc()
		case len(drafts[i].To) == 1:
			a.published[kindUnicast].Inc()
		default:
			a.published[kindMulticast].Inc()
		}
	}
	writeJSON(w, http.StatusCreated, resp)
	if ri := info(r); ri != nil {
		a.metrics.PublishDuration.Observe(time.Since(ri.start).Seconds())
	}
}

func mergeKeyHeader(d *herald.Draft, header string) error {
	if header == "" {
		return nil
	}
	if err := herald.ValidateKey(header); err != nil {
		return err
	}
	if d.Key != "" && d.Key != header {
		return herald.Errorf(herald.EINVALID, "the Idempotency-Key header and the body's \"key\" differ")
	}
	d.Key = header
	return nil
}

// draft validates one decoded notification. prefix locates it in a batch for error messages.
func (a *API) draft(req *publishRequest, prefix string) (herald.Draft, error) {
	var d herald.Draft
	bad := func(format string, args ...any) (herald.Draft, error) {
		return d, herald.Errorf(herald.EINVALID, prefix+format, args...)
	}
	broadcast := req.Broadcast != nil && *req.Broadcast
	addressed := 0 // of to, broadcast and topic
	for _, given := range []bool{req.To != nil, broadcast, req.Topic != nil} {
		if given {
			addressed++
		}
	}
	switch {
	case addressed > 1:
		return bad("give exactly one of \"to\", \"broadcast\": true and \"topic\"")
	case req.Broadcast != nil && !broadcast:
		return bad("\"broadcast\" may only be true; leave it out to address users with \"to\"")
	case addressed == 0:
		return bad("\"to\" (a list of user ids), \"broadcast\": true or \"topic\" is required")
	case req.To != nil && len(req.To) == 0:
		return bad("\"to\" must name at least one user")
	case len(req.To) > a.opts.MaxRecipients:
		return d, herald.Errorf(herald.ETOOLARGE, prefix+"\"to\" holds at most %d users, not %d", a.opts.MaxRecipients, len(req.To))
	case req.Exclude != nil && req.Topic == nil:
		return bad("\"exclude\" may only be given with \"topic\"")
	case len(req.Exclude) > a.opts.MaxRecipients:
		return d, herald.Errorf(herald.ETOOLARGE, prefix+"\"exclude\" holds at most %d users, not %d", a.opts.MaxRecipients, len(req.Exclude))
	}
	if req.Topic != nil {
		if err := herald.ValidateTopic(*req.Topic); err != nil {
			return d, prefixed(prefix+"topic: ", err)
		}
		d.Topic = *req.Topic
		excluded := make(map[string]bool, len(req.Exclude))
		for i, u := range req.Exclude {
			if err := herald.ValidateUser(u); err != nil {
				return d, prefixed(fmt.Sprintf("%sexclude[%d]: ", prefix, i), err)
			}
			if !excluded[u] {
				excluded[u] = true
				d.Exclude = append(d.Exclude, u)
			}
		}
	}
	d.Broadcast = broadcast
	// Each user gets one notification, however often they are named.
	seen := make(map[string]bool, len(req.To))
	for i, u := range req.To {
		if err := herald.ValidateUser(u); err != nil {
			return d, prefixed(fmt.Sprintf("%sto[%d]: ", prefix, i), err)
		}
		if !seen[u] {
			seen[u] = true
			d.To = append(d.To, u)
		}
	}
	switch m := herald.PushMode(req.Push); m {
	case herald.PushDefault, herald.PushAlways, herald.PushNever:
		d.Push = m
	default:
		return bad("\"push\" must be \"always\" or \"never\", or left out for the default (a fallback after --push-delay)")
	}
	d.Type = herald.DefaultType
	if req.Type != nil {
		if err := herald.ValidateType(*req.Type); err != nil {
			return d, prefixed(prefix, err)
		}
		d.Type = *req.Type
	}
	c := herald.Content{Title: req.Title, Body: req.Body, URL: req.URL, Icon: req.Icon, Avatar: req.Avatar, Group: req.Group}
	if len(req.Actions) > 0 { // "actions": [] is none, as "" is for the other fields
		c.Actions = req.Actions
	}
	if !c.IsZero() {
		if err := c.Validate(); err != nil {
			return d, prefixed(prefix, err)
		}
		d.Content = &c
	}
	d.Data = json.RawMessage("null")
	if req.Data != nil {
		// Only the whitespace between tokens goes: strings, escapes and numbers stay as the
		// publisher wrote them. The decoder has checked the value (strictJSON).
		if err := req.Data.Compact(); err != nil {
			return bad("\"data\" is not valid JSON")
		}
		if int64(len(req.Data)) > a.opts.MaxPayload {
			return d, herald.Errorf(herald.ETOOLARGE, prefix+"\"data\" is %d bytes; the limit is %d", len(req.Data), a.opts.MaxPayload)
		}
		d.Data = json.RawMessage(req.Data)
	}
	if req.Key != nil {
		if err := herald.ValidateKey(*req.Key); err != nil {
			return d, prefixed(prefix, err)
		}
		d.Key = *req.Key
	}
	d.Critical = req.Critical
	return d, nil
}

func prefixed(prefix string, err error) error {
	var e *herald.Error
	if prefix == "" || !errors.As(err, &e) {
		return err
	}
	return &herald.Error{Code: e.Code, Message: prefix + e.Message, Err: e.Err}
}
