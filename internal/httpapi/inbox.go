package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald"
)

// inboxItem is a notification as the inbox shows it: the stream envelope plus the caller's
// state of it. Content fields are left out when absent, as in the envelope.
type inboxItem struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title,omitempty"`
	Body       string          `json:"body,omitempty"`
	URL        string          `json:"url,omitempty"`
	Icon       string          `json:"icon,omitempty"`
	Avatar     string          `json:"avatar,omitempty"`
	Actions    []herald.Action `json:"actions,omitempty"`
	Group      string          `json:"group,omitempty"`
	Data       rawJSON         `json:"data"`
	CreatedAt  time.Time       `json:"created_at"`
	Broadcast  bool            `json:"broadcast"`
	Topic      string          `json:"topic,omitempty"`
	Critical   bool            `json:"critical,omitempty"`
	Read       bool            `json:"read"`
	ReadAt     *time.Time      `json:"read_at"`
	Seen       bool            `json:"seen"`
	Archived   bool            `json:"archived"`
	ArchivedAt *time.Time      `json:"archived_at"`
}

// rawJSON is stored, already-compact JSON, written as is.
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

func toItem(n *herald.Notification) inboxItem {
	it := inboxItem{
		ID:        strconv.FormatInt(n.ID, 10),
		Type:      n.Type,
		Data:      rawJSON(n.Data),
		CreatedAt: n.CreatedAt,
		Broadcast: n.Broadcast(),
		Topic:     n.Topic,
		Critical:  n.Critical,
		Seen:      n.Seen,
	}
	if c := n.Content; c != nil {
		it.Title, it.Body, it.URL, it.Icon, it.Avatar, it.Actions, it.Group = c.Title, c.Body, c.URL, c.Icon, c.Avatar, c.Actions, c.Group
	}
	if !n.ReadAt.IsZero() {
		t := n.ReadAt
		it.Read, it.ReadAt = true, &t
	}
	if !n.ArchivedAt.IsZero() {
		t := n.ArchivedAt
		it.Archived, it.ArchivedAt = true, &t
	}
	return it
}

const (
	defaultInboxLimit = 20
	maxInboxLimit     = 100
)

func (a *API) inbox(w http.ResponseWriter, r *http.Request) {
	sub, err := a.opts.Auth.Subscriber(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	user := sub.User
	q := r.URL.Query()
	iq := herald.InboxQuery{Limit: defaultInboxLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxInboxLimit {
			a.writeError(w, r, herald.Errorf(herald.EINVALID, "limit must be a number from 1 to %d", maxInboxLimit))
			return
		}
		iq.Limit = n
	}
	if v := q.Get("before"); v != "" {
		if iq.Before, err = a.parseBefore(v); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	if v := q.Get("unread"); v != "" {
		if iq.UnreadOnly, err = strconv.ParseBool(v); err != nil {
			a.writeError(w, r, herald.Errorf(herald.EINVALID, "unread must be true or false"))
			return
		}
	}
	if v := q.Get("archived"); v != "" {
		if iq.Archived, err = strconv.ParseBool(v); err != nil {
			a.writeError(w, r, herald.Errorf(herald.EINVALID, "archived must be true or false"))
			return
		}
	}
	if v, ok := q["topic"]; ok {
		if len(v) != 1 {
			a.writeError(w, r, herald.Errorf(herald.EINVALID, "topic may be given once"))
			return
		}
		if err := herald.ValidateTopic(v[0]); err != nil {
			a.writeError(w, r, prefixed("topic: ", err))
			return
		}
		iq.Topic = v[0]
	}
	filter, err := a.parseTypes(q["types"])
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	for t := range filter {
		iq.Types = append(iq.Types, t)
	}
	page, err := a.opts.Store.Inbox(r.Context(), user, iq)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	resp := struct {
		Notifications []inboxItem `json:"notifications"`
		NextBefore    *string     `json:"next_before"`
	}{Notifications: make([]inboxItem, 0, len(page.Notifications))}
	for i := range page.Notifications {
		resp.Notifications = append(resp.Notifications, toItem(&page.Notifications[i]))
	}
	if page.NextBefore != 0 {
		// The page position carries the store's epoch, like a cursor: after a restore, ids are
		// given anew, and a position of before must not page through another history.
		s := strconv.FormatInt(page.NextBefore, 10) + "." + a.epoch
		resp.NextBefore = &s
	}
	writeJSON(w, http.StatusOK, resp)
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	user, id, ok := a.userAndID(w, r)
	if !ok {
		return
	}
	n, err := a.opts.Store.Get(r.Context(), user, id)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toItem(&n))
}

func (a *API) markRead(w http.ResponseWriter, r *http.Request)   { a.setRead(w, r, true) }
func (a *API) markUnread(w http.ResponseWriter, r *http.Request) { a.setRead(w, r, false) }

func (a *API) setRead(w http.ResponseWriter, r *http.Request, read bool) {
	user, id, ok := a.userAndID(w, r)
	if !ok {
		return
	}
	if err := a.opts.Store.SetRead(r.Context(), user, id, read); err != nil {
		a.writeError(w, r, err)
		return
	}
	a.stateChanged(r, herald.StateChange{User: user, Kind: herald.StateRead, IDs: []int64{id}, On: read})
	w.WriteHeader(http.StatusNoContent)
}

// stateChanged tells OnState of a change, with the user's counts after it. The change is made:
// if the counts cannot be read, the user's other tabs learn of it at their next reload.
func (a *API) stateChanged(r *http.Request, sc herald.StateChange) {
	if a.opts.OnState == nil {
		return
	}
	c, err := a.opts.Store.Counts(r.Context(), sc.User)
	if err != nil {
		a.logFor(r).Warn("state changed but the counts could not be read; other streams are not told", "err", err)
		return
	}
	sc.Counts = c
	a.opts.OnState(sc)
}

func (a *API) readAll(w http.ResponseWriter, r *http.Request) {
	sub, err := a.opts.Auth.Subscriber(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	n, err := a.opts.Store.ReadAll(r.Context(), sub.User)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if n > 0 {
		a.stateChanged(r, herald.StateChange{User: sub.User, Kind: herald.StateRead, All: true, On: true})
	}
	writeJSON(w, http.StatusOK, map[string]int64{"updated": n})
}

func (a *API) unreadCount(w http.ResponseWriter, r *http.Request) {
	sub, err := a.opts.Auth.Subscriber(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	c, err := a.opts.Store.Counts(r.Context(), sub.User)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, countsJSON{Unread: c.Unread, Unseen: c.Unseen})
}

// countsJSON are a user's counts as the API writes them.
type countsJSON struct {
	Unread int64 `json:"unread"`
	Unseen int64 `json:"unseen"`
}

// maxSeenBody bounds the body of POST /v1/notifications/seen: {"up_to": "<id>"} and some room.
const maxSeenBody = 1 << 10

// markSeen serves POST /v1/notifications/seen: the caller has seen everything up to up_to, or
// without it (no body, {} or null) everything up to now.
func (a *API) markSeen(w http.ResponseWriter, r *http.Request) {
	sub, err := a.opts.Auth.Subscriber(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var upTo int64
	if r.ContentLength != 0 {
		var req struct {
			UpTo *string `json:"up_to"`
		}
		if err := decodeSmall(w, r, maxSeenBody, &req); err != nil {
			a.writeError(w, r, err)
			return
		}
		if req.UpTo != nil {
			if upTo, err = parseID(*req.UpTo); err != nil {
				a.writeError(w, r, herald.Errorf(herald.EINVALID, "up_to must be a notification id (a string of digits), not %q", truncateText(*req.UpTo, 40)))
				return
			}
		}
	}
	mark, moved, err := a.opts.Store.MarkSeen(r.Context(), sub.User, upTo)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	// The counts answer the caller and tell the other tabs; if they cannot be read, the mark has
	// moved all the same, and a retry is harmless.
	c, err := a.opts.Store.Counts(r.Context(), sub.User)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if moved && a.opts.OnState != nil {
		a.opts.OnState(herald.StateChange{User: sub.User, Kind: herald.StateSeen, On: true, SeenUpTo: mark, Counts: c})
	}
	resp := struct {
		SeenUpTo *string `json:"seen_up_to"`
		countsJSON
	}{countsJSON: countsJSON{Unread: c.Unread, Unseen: c.Unseen}}
	if mark > 0 {
		m := strconv.FormatInt(mark, 10)
		resp.SeenUpTo = &m
	}
	writeJSON(w, http.StatusOK, resp)
}

func (a *API) archive(w http.ResponseWriter, r *http.Request)   { a.setArchived(w, r, true) }
func (a *API) unarchive(w http.ResponseWriter, r *http.Request) { a.setArchived(w, r, false) }

func (a *API) setArchived(w http.ResponseWriter, r *http.Request, archived bool) {
	user, id, ok := a.userAndID(w, r)
	if !ok {
		return
	}
	if err := a.opts.Store.SetArchived(r.Context(), user, id, archived); err != nil {
		a.writeError(w, r, err)
		return
	}
	a.stateChanged(r, herald.StateChange{User: user, Kind: herald.StateArchived, IDs: []int64{id}, On: archived})
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) archiveRead(w http.ResponseWriter, r *http.Request) {
	sub, err := a.opts.Auth.Subscriber(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	n, err := a.opts.Store.ArchiveRead(r.Context(), sub.User)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if n > 0 {
		a.stateChanged(r, herald.StateChange{User: sub.User, Kind: herald.StateArchived, All: true, On: true})
	}
	writeJSON(w, http.StatusOK, map[string]int64{"updated": n})
}

func (a *API) userAndID(w http.ResponseWriter, r *http.Request) (string, int64, bool) {
	sub, err := a.opts.Auth.Subscriber(r)
	if err != nil {
		a.writeError(w, r, err)
		return "", 0, false
	}
	user := sub.User
	if postOnly(r.PathValue("id")) {
		// The {id} pattern also matches these POST-only endpoints.
		w.Header().Set("Allow", "POST")
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method "+r.Method+" is not allowed here")
		return "", 0, false
	}
	id, err := parseID(r.PathValue("id"))
	if err != nil {
		a.writeError(w, r, herald.Errorf(herald.EINVALID, "%q is not a notification id", truncateText(r.PathValue("id"), 40)))
		return "", 0, false
	}
	return user, id, true
}

// postOnly reports whether seg names a POST-only endpoint directly under /v1/notifications/.
func postOnly(seg string) bool {
	switch seg {
	case "batch", "read-all", "seen", "archive-read":
		return true
	}
	return false
}

// parseBefore reads an inbox page position: a next_before ("<id>.<epoch>"), or a notification
// id, taken as of the current epoch.
func (a *API) parseBefore(s string) (int64, error) {
	v, epoch, hasEpoch := strings.Cut(s, ".")
	id, err := parseID(v)
	if err != nil || (hasEpoch && !herald.ValidEpoch(epoch)) {
		return 0, herald.Errorf(herald.EINVALID, "before must be a next_before value or a notification id")
	}
	if hasEpoch && epoch != a.epoch {
		return 0, herald.Errorf(herald.ECONFLICT, "before is a page position of another store epoch (the store was restored or replaced since): load the first page again")
	}
	return id, nil
}

// parseID parses a notification id: a positive decimal int64.
func parseID(s string) (int64, error) {
	if len(s) == 0 || len(s) > 19 || s[0] == '0' || s[0] == '+' || s[0] == '-' {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseInt(s, 10, 64)
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
