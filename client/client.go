// Package client is a Go client of Herald's HTTP API: publish notifications, follow a user's
// feed live (reconnecting and resuming exactly where it stopped), and read and mark the inbox.
//
//	c, err := client.New("https://herald.example.com", client.WithToken(os.Getenv("HERALD_KEY")))
//	receipts, err := c.Publish(ctx, client.Message{To: []string{"alice"}, Type: "comment", Data: map[string]any{"text": "hi"}})
//
//	sub, _ := client.New(url, client.WithToken(aliceToken)) // or client.WithUser("alice") in dev mode
//	for ev, err := range sub.Subscribe(ctx, client.SubscribeOptions{}) {
//		if err != nil { return err } // only errors that retrying cannot fix
//		fmt.Println(ev.Cursor, ev.Notification.Type)
//	}
//
// A Client is safe for concurrent use.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Client talks to one Herald server (or a cluster behind one address).
type Client struct {
	base  *url.URL
	http  *http.Client
	token func(context.Context) (string, error)
	user  string
}

// Option configures a Client.
type Option func(*Client)

// WithToken authenticates every request with a bearer credential: a publisher API key, a
// publisher token, or a subscriber token.
func WithToken(token string) Option {
	return func(c *Client) { c.token = func(context.Context) (string, error) { return token, nil } }
}

// WithTokenSource authenticates with a credential fetched before every request and every
// reconnection of a subscription, so that a short-lived token can be renewed.
func WithTokenSource(source func(context.Context) (string, error)) Option {
	return func(c *Client) { c.token = source }
}

// WithUser names the subscriber on a server in dev mode (no auth configured), as ?user=.
func WithUser(user string) Option { return func(c *Client) { c.user = user } }

// WithHTTPClient sets the HTTP client (for TLS settings or a proxy). Its Timeout must be zero:
// a subscription is a request that lasts; bound calls with their context instead.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// New returns a client of the server at baseURL (scheme, host and an optional path prefix).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("herald client: %q is not an http(s) URL", baseURL)
	}
	// Keep the prefix's escaping ("/a%2Fb" is one segment), without a trailing slash.
	u.RawPath = strings.TrimSuffix(u.EscapedPath(), "/")
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{base: u, http: &http.Client{}}
	for _, o := range opts {
		o(c)
	}
	if c.http.Timeout != 0 {
		return nil, errors.New("herald client: the HTTP client's Timeout must be zero (it would cut subscriptions); use contexts")
	}
	return c, nil
}

// Error is an error answer of the server, or of a proxy in front of it.
type Error struct {
	Status int // HTTP status
	// Code is the API's error code: invalid, unauthorized, forbidden, not_found, conflict,
	// too_large, rate_limited, unavailable, internal, ... An answer without one (a proxy's HTML
	// page) gets the code of its status: a 502 is unavailable.
	Code    string
	Message string
	// RetryAfter is the server's Retry-After, when it gave one (429, 503), in seconds or as a
	// date.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("herald: %d %s: %s", e.Status, e.Code, e.Message)
}

// Temporary reports whether trying again later may succeed: 408 (a proxy's timeout), 429 and
// 5xx.
func (e *Error) Temporary() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Message is a notification to publish: to users (To), to everyone (Broadcast), or to the
// subscribers of a topic (Topic, with PublishTopic).
type Message struct {
	To        []string `json:"to,omitempty"`
	Broadcast bool     `json:"broadcast,omitempty"`
	// Topic addresses the topic's subscribers at the commit, but those in Exclude (the actor,
	// typically). See PublishTopic.
	Topic   string   `json:"topic,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
	// Type names the kind of notification (default "notification").
	Type string `json:"type,omitempty"`
	// Content is what the notification says, for clients to show whatever its type; every
	// field is optional (see Content).
	Content
	// Data is any JSON value: a json.RawMessage is sent as is, anything else is marshalled.
	// The server refuses JSON that is not UTF-8 or names a member twice.
	Data any `json:"data,omitempty"`
	// Key makes publishing idempotent: a retry with the same key creates nothing new.
	Key string `json:"key,omitempty"`
	// Critical goes through every recipient's mutes (security alerts, legal notices): see
	// Preferences.
	Critical bool `json:"critical,omitempty"`
	// Push is Web Push for this notification when the server has it on (docs/push.md):
	// "always" (at once), "never", or "" for the default (a fallback for users who did not see
	// it live, after the server's delay).
	Push string `json:"push,omitempty"`
}

// Content is what a notification says, beside its data, in fields every client can show:
// plain text (never HTML: clients render it as text), links and a group key. Empty fields are
// left out. The server checks them (docs/api.md): Title at most 200 characters on one line,
// Body at most 2000 ("\n" breaks lines), no control or bidi characters; URL an https: or http:
// URL or a path starting with "/" (not "//"); Icon and Avatar the same but https: only (http:
// on a loopback host); at most 3 Actions with a label of at most 40 characters; Group a key of
// A-Z a-z 0-9 _ . : - / up to 128 bytes, by which a client may collapse notifications.
type Content struct {
	Title   string   `json:"title,omitempty"`
	Body    string   `json:"body,omitempty"`
	URL     string   `json:"url,omitempty"`
	Icon    string   `json:"icon,omitempty"`
	Avatar  string   `json:"avatar,omitempty"`
	Actions []Action `json:"actions,omitempty"`
	Group   string   `json:"group,omitempty"`
}

// Action is a button of a notification: a label of plain text and the URL it opens.
type Action struct {
	Label string `json:"label"`
	URL   string `json:"url"`
}

// check refuses strings that are not UTF-8. encoding/json would send them with U+FFFD in place
// of each bad byte, so "a\xffb" in To would reach another user, "a\uFFFDb", rather than fail.
// (Strings inside a Data that is not raw JSON are still replaced so.)
func (m *Message) check() error {
	for i, u := range m.To {
		if !utf8.ValidString(u) {
			return fmt.Errorf("to[%d] %+q is not valid UTF-8", i, u)
		}
	}
	for i, u := range m.Exclude {
		if !utf8.ValidString(u) {
			return fmt.Errorf("exclude[%d] %+q is not valid UTF-8", i, u)
		}
	}
	if !utf8.ValidString(m.Topic) {
		return fmt.Errorf("topic %+q is not valid UTF-8", m.Topic)
	}
	switch {
	case !utf8.ValidString(m.Type):
		return fmt.Errorf("type %+q is not valid UTF-8", m.Type)
	case !utf8.ValidString(m.Key):
		return fmt.Errorf("key %+q is not valid UTF-8", m.Key)
	}
	for _, f := range []struct{ name, v string }{{"title", m.Title}, {"body", m.Body}, {"url", m.URL}, {"icon", m.Icon}, {"avatar", m.Avatar}, {"group", m.Group}} {
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("%s %+q is not valid UTF-8", f.name, f.v)
		}
	}
	for i, a := range m.Actions {
		if !utf8.ValidString(a.Label) || !utf8.ValidString(a.URL) {
			return fmt.Errorf("actions[%d] is not valid UTF-8", i)
		}
	}
	if raw, ok := m.Data.(json.RawMessage); ok && !utf8.Valid(raw) {
		return errors.New("data is not valid UTF-8")
	}
	return nil
}

// Receipt is one notification a publish created: one per recipient, one for a broadcast.
type Receipt struct {
	ID   string `json:"id"`
	User string `json:"user,omitempty"` // empty for a broadcast
}

// Notification is a notification as a subscriber sees it.
type Notification struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	// Content is what the publisher gave of it; empty fields were not given.
	Content
	Data      json.RawMessage `json:"data"`
	CreatedAt time.Time       `json:"created_at"`
	Broadcast bool            `json:"broadcast"`
	// Topic is the topic it was published to; empty when it was addressed otherwise.
	Topic string `json:"topic,omitempty"`
	// Critical: the publisher marked it critical, so no mute held it back.
	Critical bool `json:"critical,omitempty"`
	// The subscriber's state of it comes from the inbox; a live notification is unread, unseen
	// and in the inbox. For a broadcast, every state is the subscriber's own.
	Read   bool       `json:"read"`
	ReadAt *time.Time `json:"read_at"`
	// Seen: it is at or below the subscriber's seen mark (MarkSeen), or read.
	Seen       bool       `json:"seen"`
	Archived   bool       `json:"archived"`
	ArchivedAt *time.Time `json:"archived_at"`
}

// Published is the whole answer to a publish.
type Published struct {
	// Notifications are those it created, one per recipient (one for a broadcast); none are
	// listed for a topic, which can reach 100,000.
	Notifications []Receipt `json:"notifications"`
	// Recipients is how many subscribers a topic publish reached; 0 for other publishes.
	Recipients int `json:"recipients"`
	// Muted is how many recipients muted it in the app, for whom it was not created (they are
	// in neither Notifications nor Recipients).
	Muted int `json:"muted"`
}

// Publish publishes one notification and returns what it created. It is retried on nothing:
// give the Message a Key and retry it yourself when a failure leaves you unsure.
func (c *Client) Publish(ctx context.Context, m Message) ([]Receipt, error) {
	p, err := c.PublishResult(ctx, m)
	return p.Notifications, err
}

// PublishResult publishes one notification, to named users, everyone or a topic, and returns
// the whole answer: what it created, and whom it did not reach for their mutes. A retry with
// the same Key answers as the first publish did.
func (c *Client) PublishResult(ctx context.Context, m Message) (Published, error) {
	var out Published
	if err := m.check(); err != nil {
		return out, fmt.Errorf("herald: %w", err)
	}
	err := c.do(ctx, http.MethodPost, "/v1/notifications", nil, m, &out)
	return out, err
}

// PublishBatch publishes up to 1000 notifications in one transaction (all or none) and returns
// one flat list of receipts, in order.
func (c *Client) PublishBatch(ctx context.Context, ms []Message) ([]Receipt, error) {
	for i := range ms {
		if err := ms[i].check(); err != nil {
			return nil, fmt.Errorf("herald: notifications[%d]: %w", i, err)
		}
	}
	var out struct {
		Notifications []Receipt `json:"notifications"`
	}
	body := struct {
		Notifications []Message `json:"notifications"`
	}{ms}
	err := c.do(ctx, http.MethodPost, "/v1/notifications/batch", nil, body, &out)
	return out.Notifications, err
}

// ListOptions select a page of the inbox.
type ListOptions struct {
	Limit  int      // 1 to 100; 0: the server's default (20)
	Before string   // a Page's NextBefore: the page after the previous one
	Unread bool     // only unread notifications
	Types  []string // only these types
	// Archived lists the archived notifications instead of the inbox (which leaves them out).
	Archived bool
	// Topic lists only the notifications published to this topic.
	Topic string
}

// Page is a page of the inbox, newest first.
type Page struct {
	Notifications []Notification `json:"notifications"`
	// NextBefore is the Before of the next (older) page; empty on the last page.
	NextBefore string `json:"next_before"`
}

// List returns a page of the subscriber's inbox.
func (c *Client) List(ctx context.Context, o ListOptions) (Page, error) {
	q := url.Values{}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Before != "" {
		q.Set("before", o.Before)
	}
	if o.Unread {
		q.Set("unread", "true")
	}
	if o.Archived {
		q.Set("archived", "true")
	}
	if len(o.Types) > 0 {
		q.Set("types", strings.Join(o.Types, ","))
	}
	if o.Topic != "" {
		q.Set("topic", o.Topic)
	}
	var p Page
	err := c.do(ctx, http.MethodGet, "/v1/notifications", q, nil, &p)
	return p, err
}

// Get returns one notification of the subscriber's.
func (c *Client) Get(ctx context.Context, id string) (Notification, error) {
	var n Notification
	p, err := notificationPath(id, "")
	if err == nil {
		err = c.do(ctx, http.MethodGet, p, nil, nil, &n)
	}
	return n, err
}

// MarkRead marks a notification read (for this subscriber: a broadcast's read state is per user).
func (c *Client) MarkRead(ctx context.Context, id string) error {
	p, err := notificationPath(id, "/read")
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, p, nil, nil, nil)
}

// MarkUnread marks a notification unread.
func (c *Client) MarkUnread(ctx context.Context, id string) error {
	p, err := notificationPath(id, "/read")
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, p, nil, nil, nil)
}

// notificationPath is the escaped path of a notification, with suffix. The id is one path
// segment whatever it holds: "1/read" or ".." must not address another resource.
func notificationPath(id, suffix string) (string, error) {
	if id == "" {
		return "", errors.New("herald: no notification id")
	}
	seg := url.PathEscape(id)
	if id == "." || id == ".." {
		seg = strings.Repeat("%2E", len(id)) // dot segments are removed by clients and proxies
	}
	return "/v1/notifications/" + seg + suffix, nil
}

// MarkAllRead marks every notification read and returns how many changed.
func (c *Client) MarkAllRead(ctx context.Context) (int64, error) {
	var out struct {
		Updated int64 `json:"updated"`
	}
	err := c.do(ctx, http.MethodPost, "/v1/notifications/read-all", nil, nil, &out)
	return out.Updated, err
}

// UnreadCount returns how many notifications are unread (archived ones left out).
func (c *Client) UnreadCount(ctx context.Context) (int64, error) {
	n, err := c.Counts(ctx)
	return n.Unread, err
}

// Counts are the subscriber's badge numbers. Archived notifications count in neither.
type Counts struct {
	Unread int64 `json:"unread"` // not read
	Unseen int64 `json:"unseen"` // neither seen nor read: what came since the list was last opened
}

// Counts returns the subscriber's unread and unseen counts.
func (c *Client) Counts(ctx context.Context) (Counts, error) {
	var out Counts
	err := c.do(ctx, http.MethodGet, "/v1/notifications/unread-count", nil, nil, &out)
	return out, err
}

// Seen is the subscriber's seen mark after MarkSeen, with the counts.
type Seen struct {
	// UpTo is the mark: every notification up to this id is seen. Empty while there is none.
	UpTo string `json:"seen_up_to"`
	Counts
}

// MarkSeen marks every notification of the subscriber's feed up to the id upTo seen (call it
// when the list opens, with the newest id it shows); "" marks everything up to now. The mark
// never moves back, nor past the newest notification of the feed.
func (c *Client) MarkSeen(ctx context.Context, upTo string) (Seen, error) {
	var body any
	if upTo != "" {
		body = struct {
			UpTo string `json:"up_to"`
		}{upTo}
	}
	var out Seen
	err := c.do(ctx, http.MethodPost, "/v1/notifications/seen", nil, body, &out)
	return out, err
}

// Archive moves a notification out of the inbox into the archive (for this subscriber only).
func (c *Client) Archive(ctx context.Context, id string) error {
	p, err := notificationPath(id, "/archive")
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, p, nil, nil, nil)
}

// Unarchive brings an archived notification back to the inbox.
func (c *Client) Unarchive(ctx context.Context, id string) error {
	p, err := notificationPath(id, "/archive")
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, p, nil, nil, nil)
}

// ArchiveRead archives every read notification and returns how many it archived.
func (c *Client) ArchiveRead(ctx context.Context) (int64, error) {
	var out struct {
		Updated int64 `json:"updated"`
	}
	err := c.do(ctx, http.MethodPost, "/v1/notifications/archive-read", nil, nil, &out)
	return out.Updated, err
}

// maxAnswer bounds what the client reads of an answer (an inbox page of 100 notifications of
// the largest payload fits with room to spare).
const maxAnswer = 64 << 20

// maxDrain bounds what the client reads past what it needs of an answer so that the connection
// can serve the next request; a longer rest costs a new connection instead.
const maxDrain = 256 << 10

// do sends a request and decodes a 2xx answer into out (when not nil), or returns an *Error.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	req, err := c.request(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer func() {
		// Read to the end (the JSON decoder stops at the value, before the chunked body's end)
		// or the transport closes the connection instead of reusing it: a new TCP and TLS
		// handshake per call, and sockets piling up in TIME_WAIT.
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		resp.Body.Close()
	}()
	if resp.StatusCode/100 != 2 {
		return readError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(out); err != nil {
		return fmt.Errorf("herald: %s %s: decode the answer: %w", method, path, err)
	}
	return nil
}

// request builds a request with the client's credentials. path is escaped already.
func (c *Client) request(ctx context.Context, method, path string, q url.Values, body any) (*http.Request, error) {
	u := *c.base
	u.RawPath = c.base.EscapedPath() + path
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, fmt.Errorf("herald: path %q: %w", u.RawPath, err)
	}
	u.Path = p
	if c.user != "" {
		if q == nil {
			q = url.Values{}
		}
		q.Set("user", c.user)
	}
	u.RawQuery = q.Encode()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("herald: encode the request: %w", err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != nil {
		tok, err := c.token(ctx)
		if err != nil {
			return nil, fmt.Errorf("herald: get a token: %w", err)
		}
		if strings.ContainsFunc(tok, isControl) {
			// No request could carry it; say so rather than fail in the transport.
			return nil, permanentError{errors.New("herald: the token contains control characters (a trailing newline?)")}
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req, nil
}

// readError turns an error answer into an *Error: Herald's JSON error, or whatever a proxy in
// front of it answered (an HTML page, plain text, nothing).
func readError(resp *http.Response) error {
	e := &Error{Status: resp.StatusCode, Code: statusCode(resp.StatusCode), Message: "(no message)"}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(raw, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message = body.Error.Code, body.Error.Message
	} else if text := plainText(raw); text != "" {
		e.Message = text
	}
	e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	return e
}

// statusCode is the API's error code for an HTTP status, for answers that do not carry one.
func statusCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusRequestTimeout:
		return "timeout"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge, http.StatusRequestHeaderFieldsTooLarge:
		return "too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusTooManyRequests:
		return "rate_limited"
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return "unavailable"
	}
	switch {
	case status >= 500:
		return "internal"
	case status >= 400:
		return "invalid"
	}
	return strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_"))
}

// plainText is the start of an answer's body as one line of text, without markup.
func plainText(raw []byte) string {
	var b strings.Builder
	inTag := false
	for _, r := range strings.ToValidUTF8(string(raw), "\uFFFD") {
		switch {
		case r == '<':
			inTag = true
		case r == '>' && inTag:
			inTag = false
			b.WriteByte(' ')
		case !inTag:
			b.WriteRune(r)
		}
	}
	text := strings.Join(strings.Fields(b.String()), " ")
	if len(text) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "…"
	}
	return text
}

// retryAfter parses a Retry-After header: seconds, or an HTTP date. Zero if absent or invalid.
func retryAfter(h string, now time.Time) time.Duration {
	if h = strings.TrimSpace(h); h == "" {
		return 0
	}
	if s, err := strconv.ParseInt(h, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
