package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/heraldhq/herald"
)

// Topics are sets of subscribers kept in the store; a publish to a topic reaches those
// subscribed at its commit (docs/design.md, "Topics: fan-out on write"). Publishers manage the
// subscriptions, as they address notifications. A subscriber acts only on itself, under
// /v1/me/topics, never on a user named in the path: it lists its topics, leaves any of them, and
// joins those the operator opened to self-service (Options.SelfSubscribe).

const (
	// maxBulkSubscribe bounds the users of one bulk subscribe: the store adds them in one
	// transaction, which holds the writer for as long.
	maxBulkSubscribe = 10_000
	// maxBulkBody is the bytes of a bulk subscribe: 10,000 ids of up to 255 bytes, quoted.
	maxBulkBody        = maxBulkSubscribe*260 + 1024
	defaultSubscribers = 100
	maxSubscribers     = 1000
)

// subscribeRequest is the body of a bulk subscribe.
type subscribeRequest struct {
	Users []string `json:"users"`
}

// subscribersPage is a page of a topic's subscribers; NextAfter is null on the last page.
type subscribersPage struct {
	Subscribers []string `json:"subscribers"`
	NextAfter   *string  `json:"next_after"`
}

// topicOf validates the {topic} path value, naming the field.
func topicOf(r *http.Request) (string, error) {
	t := r.PathValue("topic")
	if err := herald.ValidateTopic(t); err != nil {
		return "", prefixed("topic: ", err)
	}
	return t, nil
}

// topicAndUser authenticates a publisher and reads {topic} and {user}; when it returns false
// the request has been answered.
func (a *API) topicAndUser(w http.ResponseWriter, r *http.Request) (topic, user string, ok bool) {
	if _, ok := a.publisher(w, r); !ok {
		return "", "", false
	}
	topic, err := topicOf(r)
	if err != nil {
		a.writeError(w, r, err)
		return "", "", false
	}
	user = r.PathValue("user")
	if err := herald.ValidateUser(user); err != nil {
		a.writeError(w, r, prefixed("user: ", err))
		return "", "", false
	}
	return topic, user, true
}

// subscribe is PUT /v1/topics/{topic}/subscribers/{user}: idempotent, 204 either way.
func (a *API) subscribe(w http.ResponseWriter, r *http.Request) {
	a.changeSubscription(w, r, a.subscribeLimited)
}

// subscribeLimited is the store's Subscribe under the server's topic limits.
func (a *API) subscribeLimited(ctx context.Context, topic string, users []string) (int64, error) {
	return a.opts.Store.Subscribe(ctx, topic, users, a.opts.TopicLimits)
}

// unsubscribe is DELETE /v1/topics/{topic}/subscribers/{user}: 204 whether or not the user was
// subscribed, so that a retry answers as the first call did.
func (a *API) unsubscribe(w http.ResponseWriter, r *http.Request) {
	a.changeSubscription(w, r, a.opts.Store.Unsubscribe)
}

// changeSubscription applies change (the store's Subscribe or Unsubscribe) to the path's topic
// and user, and answers 204.
func (a *API) changeSubscription(w http.ResponseWriter, r *http.Request,
	change func(ctx context.Context, topic string, users []string) (int64, error)) {
	topic, user, ok := a.topicAndUser(w, r)
	if !ok {
		return
	}
	if _, err := change(r.Context(), topic, []string{user}); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// subscribeMany is POST /v1/topics/{topic}/subscribers {"users": [...]}: all in one transaction.
// It answers 200 with how many were not subscribed before, which a caller syncing a list wants.
func (a *API) subscribeMany(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.publisher(w, r); !ok {
		return
	}
	topic, err := topicOf(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var req subscribeRequest
	if err := decodeSmall(w, r, maxBulkBody, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	switch {
	case req.Users == nil:
		a.writeError(w, r, herald.Errorf(herald.EINVALID, "\"users\" (a list of user ids) is required"))
		return
	case len(req.Users) > maxBulkSubscribe:
		a.writeError(w, r, herald.Errorf(herald.ETOOLARGE, "\"users\" holds at most %d users, not %d", maxBulkSubscribe, len(req.Users)))
		return
	}
	for i, u := range req.Users {
		if err := herald.ValidateUser(u); err != nil {
			a.writeError(w, r, prefixed(fmt.Sprintf("users[%d]: ", i), err))
			return
		}
	}
	added, err := a.subscribeLimited(r.Context(), topic, req.Users)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"subscribed": added})
}

// subscribers is GET /v1/topics/{topic}/subscribers?after=&limit=, in byte order of the ids.
func (a *API) subscribers(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.publisher(w, r); !ok {
		return
	}
	topic, err := topicOf(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	limit := defaultSubscribers
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxSubscribers {
			a.writeError(w, r, herald.Errorf(herald.EINVALID, "limit must be an integer from 1 to %d", maxSubscribers))
			return
		}
		limit = n
	}
	after := q.Get("after")
	if after != "" {
		if err := herald.ValidateUser(after); err != nil {
			a.writeError(w, r, prefixed("after: ", err))
			return
		}
	}
	// One more than the page tells whether there is a next one, without an empty last page.
	users, err := a.opts.Store.TopicSubscribers(r.Context(), topic, after, limit+1)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	page := subscribersPage{Subscribers: users}
	if page.Subscribers == nil {
		page.Subscribers = []string{}
	}
	if len(users) > limit {
		page.Subscribers = users[:limit]
		last := users[limit-1]
		page.NextAfter = &last
	}
	writeJSON(w, http.StatusOK, page)
}

// deleteTopic is DELETE /v1/topics/{topic}: every subscription goes; notifications stay.
func (a *API) deleteTopic(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.publisher(w, r); !ok {
		return
	}
	topic, err := topicOf(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if _, err := a.opts.Store.DeleteTopic(r.Context(), topic); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// myTopics is GET /v1/topics: the topics the calling subscriber is subscribed to.
func (a *API) myTopics(w http.ResponseWriter, r *http.Request) {
	sub, err := a.opts.Auth.Subscriber(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	topics, err := a.opts.Store.UserTopics(r.Context(), sub.User)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if topics == nil {
		topics = []string{}
	}
	writeJSON(w, http.StatusOK, map[string][]string{"topics": topics})
}

// selfSubscribable reports whether a subscriber may subscribe itself to topic: the topic starts
// with one of the prefixes the operator opened (--topic-self-subscribe).
func (a *API) selfSubscribable(topic string) bool {
	for _, p := range a.opts.SelfSubscribe {
		if strings.HasPrefix(topic, p) {
			return true
		}
	}
	return false
}

// subscribeSelf is PUT /v1/me/topics/{topic}: the caller subscribes itself, to a topic open to
// self-service; 204 whether or not it was subscribed before.
func (a *API) subscribeSelf(w http.ResponseWriter, r *http.Request) {
	a.changeOwnSubscription(w, r, func(ctx context.Context, topic, user string) error {
		if !a.selfSubscribable(topic) {
			return herald.Errorf(herald.EFORBIDDEN, "topic %q is not open to self-service: only a publisher can subscribe users to it", topic)
		}
		_, err := a.subscribeLimited(ctx, topic, []string{user})
		return err
	})
}

// unsubscribeSelf is DELETE /v1/me/topics/{topic}: the caller leaves a topic, whichever put it
// there; 204 whether or not it was subscribed. A user may always stop what it receives.
func (a *API) unsubscribeSelf(w http.ResponseWriter, r *http.Request) {
	a.changeOwnSubscription(w, r, func(ctx context.Context, topic, user string) error {
		_, err := a.opts.Store.Unsubscribe(ctx, topic, []string{user})
		return err
	})
}

// changeOwnSubscription authenticates a subscriber, reads {topic}, applies change to the pair
// and answers 204. The user is the credential's, never one of the request.
func (a *API) changeOwnSubscription(w http.ResponseWriter, r *http.Request, change func(ctx context.Context, topic, user string) error) {
	sub, err := a.opts.Auth.Subscriber(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	topic, err := topicOf(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := change(r.Context(), topic, sub.User); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
