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

// Error is an error answer of the server.
type Error struct {
	Status  int    // HTTP status
	Code    string // the API's error code: invalid, unauthorized, forbidden, not_found, conflict, ...
	Message string
	// RetryAfter is the server's Retry-After, when it gave one (429, 503).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("herald: %d %s: %s", e.Status, e.Code, e.Message)
}

// Temporary reports whether trying again later may succeed.
func (e *Error) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Message is a notification to publish: to users (To) or to everyone (Broadcast).
type Message struct {
	To        []string `json:"to,omitempty"`
	Broadcast bool     `json:"broadcast,omitempty"`
	// Type names the kind of notification (default "notification").
	Type string `json:"type,omitempty"`
	// Data is any JSON value: a json.RawMessage is sent as is, anything else is marshalled.
	Data any `json:"data,omitempty"`
	// Key makes publishing idempotent: a retry with the same key creates nothing new.
	Key string `json:"key,omitempty"`
}

// Receipt is one notification a publish created: one per recipient, one for a broadcast.
type Receipt struct {
	ID   string `json:"id"`
	User string `json:"user,omitempty"` // empty for a broadcast
}

// Notification is a notification as a subscriber sees it.
type Notification struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Data      json.RawMessage `json:"data"`
	CreatedAt time.Time       `json:"created_at"`
	Broadcast bool            `json:"broadcast"`
	// Read and ReadAt come from the inbox; a live notification is unread.
	Read   bool       `json:"read"`
	ReadAt *time.Time `json:"read_at"`
}

// Publish publishes one notification and returns what it created. It is retried on nothing:
// give the Message a Key and retry it yourself when a failure leaves you unsure.
func (c *Client) Publish(ctx context.Context, m Message) ([]Receipt, error) {
	var out struct {
		Notifications []Receipt `json:"notifications"`
	}
	err := c.do(ctx, http.MethodPost, "/v1/notifications", nil, m, &out)
	return out.Notifications, err
}

// PublishBatch publishes up to 1000 notifications in one transaction (all or none) and returns
// one flat list of receipts, in order.
func (c *Client) PublishBatch(ctx context.Context, ms []Message) ([]Receipt, error) {
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
	if len(o.Types) > 0 {
		q.Set("types", strings.Join(o.Types, ","))
	}
	var p Page
	err := c.do(ctx, http.MethodGet, "/v1/notifications", q, nil, &p)
	return p, err
}

// Get returns one notification of the subscriber's.
func (c *Client) Get(ctx context.Context, id string) (Notification, error) {
	var n Notification
	err := c.do(ctx, http.MethodGet, "/v1/notifications/"+url.PathEscape(id), nil, nil, &n)
	return n, err
}

// MarkRead marks a notification read (for this subscriber: a broadcast's read state is per user).
func (c *Client) MarkRead(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/v1/notifications/"+url.PathEscape(id)+"/read", nil, nil, nil)
}

// MarkUnread marks a notification unread.
func (c *Client) MarkUnread(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/notifications/"+url.PathEscape(id)+"/read", nil, nil, nil)
}

// MarkAllRead marks every notification read and returns how many changed.
func (c *Client) MarkAllRead(ctx context.Context) (int64, error) {
	var out struct {
		Updated int64 `json:"updated"`
	}
	err := c.do(ctx, http.MethodPost, "/v1/notifications/read-all", nil, nil, &out)
	return out.Updated, err
}

// UnreadCount returns how many notifications are unread.
func (c *Client) UnreadCount(ctx context.Context) (int64, error) {
	var out struct {
		Unread int64 `json:"unread"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/notifications/unread-count", nil, nil, &out)
	return out.Unread, err
}

// maxAnswer bounds what the client reads of an answer (an inbox page of 100 notifications of
// the largest payload fits with room to spare).
const maxAnswer = 64 << 20

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
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(out); err != nil {
		return fmt.Errorf("herald: %s %s: decode the answer: %w", method, path, err)
	}
	return nil
}

// request builds a request with the client's credentials.
func (c *Client) request(ctx context.Context, method, path string, q url.Values, body any) (*http.Request, error) {
	u := *c.base
	u.Path += path
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
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req, nil
}

// readError turns an error answer into an *Error.
func readError(resp *http.Response) error {
	e := &Error{Status: resp.StatusCode, Code: http.StatusText(resp.StatusCode), Message: "(no message)"}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(raw, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message = body.Error.Code, body.Error.Message
	} else if len(raw) > 0 {
		e.Message = strings.TrimSpace(string(raw[:min(len(raw), 200)]))
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}
