package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/heraldhq/herald"
)

// publishRequest is the JSON body of one notification. Pointers tell "absent" from "zero".
type publishRequest struct {
	To        []string       `json:"to"`
	Broadcast *bool          `json:"broadcast"`
	Type      *string        `json:"type"`
	Data      jsontext.Value `json:"data"`
	Key       *string        `json:"key"`
}

type batchRequest struct {
	Notifications []publishRequest `json:"notifications"`
}

type publishedItem struct {
	ID   string `json:"id"`
	User string `json:"user,omitempty"`
}

type publishResponse struct {
	Notifications []publishedItem `json:"notifications"`
}

func (a *API) publish(w http.ResponseWriter, r *http.Request) {
	pub, ok := a.publisher(w, r)
	if !ok {
		return
	}
	body, err := readJSONBody(w, r, a.opts.MaxBody)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var req publishRequest
	if err := decodeStrict(body, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	d, err := a.draft(&req, "")
	if err != nil {
		a.writeError(w, r, err)
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
	body, err := readJSONBody(w, r, a.opts.MaxBatchBody)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var req batchRequest
	if err := decodeStrict(body, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	switch {
	case req.Notifications == nil:
		a.writeError(w, r, herald.Errorf(herald.EINVALID, "\"notifications\" is required"))
		return
	case len(req.Notifications) == 0:
		a.writeError(w, r, herald.Errorf(herald.EINVALID, "\"notifications\" must not be empty"))
		return
	case len(req.Notifications) > a.opts.MaxBatch:
		a.writeError(w, r, herald.Errorf(herald.ETOOLARGE, "a batch holds at most %d notifications, not %d", a.opts.MaxBatch, len(req.Notifications)))
		return
	}
	drafts := make([]herald.Draft, len(req.Notifications))
	for i := range req.Notifications {
		if drafts[i], err = a.draft(&req.Notifications[i], fmt.Sprintf("notifications[%d]: ", i)); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	a.commit(w, r, pub.ID, drafts)
}

// publisher authenticates the publisher and applies its rate limit; when it returns false the
// request has been answered.
func (a *API) publisher(w http.ResponseWriter, r *http.Request) (herald.Publisher, bool) {
	pub, err := a.opts.Auth.Publisher(r)
	if err != nil {
		a.writeError(w, r, err)
		return pub, false
	}
	if wait := a.opts.Limiter.Admit(pub.ID); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		a.writeError(w, r, herald.Errorf(herald.ERATELIMITED, "publish rate limit exceeded; retry in %s", wait.Round(time.Millisecond)))
		return pub, false
	}
	return pub, true
}

// commit stores the drafts and answers 201 with their ids. The store hands what it committed to
// the hub itself, in commit order, so a live stream sees the same order a replay does.
func (a *API) commit(w http.ResponseWriter, r *http.Request, scope string, drafts []herald.Draft) {
	receipts, err := a.opts.Store.Append(r.Context(), scope, drafts)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	resp := publishResponse{Notifications: []publishedItem{}}
	replayed := true
	for _, rc := range receipts {
		if !rc.Replayed {
			replayed = false
		}
		for _, n := range rc.Notifications {
			resp.Notifications = append(resp.Notifications, publishedItem{ID: strconv.FormatInt(n.ID, 10), User: n.User})
		}
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	for i := range drafts {
		if receipts[i].Replayed {
			continue
		}
		switch {
		case drafts[i].Broadcast:
			a.published[kindBroadcast].Inc()
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
	switch {
	case broadcast && req.To != nil:
		return bad("give either \"to\" or \"broadcast\": true, not both")
	case req.Broadcast != nil && !broadcast:
		return bad("\"broadcast\" may only be true; leave it out to address users with \"to\"")
	case !broadcast && req.To == nil:
		return bad("\"to\" (a list of user ids) or \"broadcast\": true is required")
	case !broadcast && len(req.To) == 0:
		return bad("\"to\" must name at least one user")
	case len(req.To) > a.opts.MaxRecipients:
		return d, herald.Errorf(herald.ETOOLARGE, prefix+"\"to\" holds at most %d users, not %d", a.opts.MaxRecipients, len(req.To))
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
	d.Type = herald.DefaultType
	if req.Type != nil {
		if err := herald.ValidateType(*req.Type); err != nil {
			return d, prefixed(prefix, err)
		}
		d.Type = *req.Type
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
	return d, nil
}

func prefixed(prefix string, err error) error {
	var e *herald.Error
	if prefix == "" || !errors.As(err, &e) {
		return err
	}
	return &herald.Error{Code: e.Code, Message: prefix + e.Message, Err: e.Err}
}

// readJSONBody checks the content type and reads at most limit bytes of body.
func readJSONBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, herald.Errorf(herald.EUNSUPPORTED, "send the body as Content-Type: application/json")
	}
	if r.ContentLength > limit {
		return nil, herald.Errorf(herald.ETOOLARGE, "the body is %d bytes; the limit is %d", r.ContentLength, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, herald.Errorf(herald.ETOOLARGE, "the body is larger than %d bytes", limit)
	case err != nil:
		return nil, herald.Errorf(herald.EINVALID, "could not read the body")
	}
	return body, nil
}
