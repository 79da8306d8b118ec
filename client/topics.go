package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Topics (docs/api.md, "Topics: notify followers"): a publisher keeps sets of subscribers in
// Herald and publishes to them by name; a subscriber lists its topics, leaves any, and joins
// those the operator opened to self-service.

// PublishTopic publishes m to the subscribers of m.Topic, but those in m.Exclude, and returns
// how many it reached. A retry with the same Key answers the first count, however the
// subscribers changed since.
func (c *Client) PublishTopic(ctx context.Context, m Message) (recipients int, err error) {
	if m.Topic == "" {
		return 0, errors.New("herald: PublishTopic needs a Topic")
	}
	p, err := c.PublishResult(ctx, m)
	return p.Recipients, err
}

// topicPath is the escaped path of a topic, with suffix: a "/" in the topic is escaped, so the
// topic stays one path segment.
func topicPath(prefix, topic, suffix string) (string, error) {
	if topic == "" {
		return "", errors.New("herald: no topic")
	}
	return prefix + pathSegment(topic) + suffix, nil
}

// pathSegment escapes s as one path segment: a "/" in it is escaped, and a dot segment, which
// clients and proxies remove, is spelled with escapes.
func pathSegment(s string) string {
	if s == "." || s == ".." {
		return strings.Repeat("%2E", len(s))
	}
	return url.PathEscape(s)
}

// SubscribeUsers subscribes up to 10,000 users to topic in one transaction (a publish sees all
// of them or none) and returns how many were not subscribed before. It needs a publisher's
// credential. Past the server's limits it fails with a 409 and subscribes no one.
func (c *Client) SubscribeUsers(ctx context.Context, topic string, users []string) (int64, error) {
	path, err := topicPath("/v1/topics/", topic, "/subscribers")
	if err != nil {
		return 0, err
	}
	var out struct {
		Subscribed int64 `json:"subscribed"`
	}
	err = c.do(ctx, http.MethodPost, path, nil, struct {
		Users []string `json:"users"`
	}{users}, &out)
	return out.Subscribed, err
}

// UnsubscribeUser removes user from topic's subscribers; nothing happens if it was not one. It
// needs a publisher's credential.
func (c *Client) UnsubscribeUser(ctx context.Context, topic, user string) error {
	path, err := topicPath("/v1/topics/", topic, "/subscribers/")
	if err != nil {
		return err
	}
	if user == "" {
		return errors.New("herald: no user")
	}
	return c.do(ctx, http.MethodDelete, path+pathSegment(user), nil, nil, nil)
}

// TopicSubscribers returns a page of at most limit (1 to 1000; 0: the server's 100) of topic's
// subscribers after the id after, in byte order, and the after of the next page ("" on the
// last). It needs a publisher's credential.
func (c *Client) TopicSubscribers(ctx context.Context, topic, after string, limit int) (users []string, next string, err error) {
	path, err := topicPath("/v1/topics/", topic, "/subscribers")
	if err != nil {
		return nil, "", err
	}
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Subscribers []string `json:"subscribers"`
		NextAfter   *string  `json:"next_after"`
	}
	if err := c.do(ctx, http.MethodGet, path, q, nil, &out); err != nil {
		return nil, "", err
	}
	if out.NextAfter != nil {
		next = *out.NextAfter
	}
	return out.Subscribers, next, nil
}

// DeleteTopic removes every subscription to topic; the notifications published to it stay. It
// needs a publisher's credential.
func (c *Client) DeleteTopic(ctx context.Context, topic string) error {
	path, err := topicPath("/v1/topics/", topic, "")
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, path, nil, nil, nil)
}

// MyTopics returns the topics the subscriber is subscribed to, in byte order.
func (c *Client) MyTopics(ctx context.Context) ([]string, error) {
	var out struct {
		Topics []string `json:"topics"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/topics", nil, nil, &out)
	return out.Topics, err
}

// JoinTopic subscribes the subscriber itself to topic. The server allows it only for topics
// the operator opened to self-service (--topic-self-subscribe): others fail with a 403.
func (c *Client) JoinTopic(ctx context.Context, topic string) error {
	path, err := topicPath("/v1/me/topics/", topic, "")
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPut, path, nil, nil, nil)
}

// LeaveTopic unsubscribes the subscriber itself from topic, whoever subscribed it; nothing
// happens if it was not subscribed.
func (c *Client) LeaveTopic(ctx context.Context, topic string) error {
	path, err := topicPath("/v1/me/topics/", topic, "")
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, path, nil, nil, nil)
}
