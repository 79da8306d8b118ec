package client

import (
	"context"
	"errors"
	"net/http"
)

// Preferences (docs/api.md, "Preferences"): what a user muted, per channel. A notification
// muted in ChannelInApp is not created for the user (a broadcast is left out of their streams,
// inbox and counts instead); one muted in ChannelPush is kept but not pushed. Critical
// messages go through every mute.

// The channels of preferences.
const (
	ChannelInApp = "in_app"
	ChannelPush  = "push"
)

// Preferences are a user's mute rules by channel (ChannelInApp, ChannelPush).
type Preferences struct {
	Mutes map[string]Mutes `json:"mutes"`
}

// Mutes are the rules of one channel: notifications of these types, of types starting with
// these prefixes (such as "marketing."), and published to these topics.
type Mutes struct {
	Types    []string `json:"types"`
	Prefixes []string `json:"prefixes"`
	Topics   []string `json:"topics"`
}

// Preferences returns the subscriber's own preferences: every channel, lists empty when none.
func (c *Client) Preferences(ctx context.Context) (Preferences, error) {
	var p Preferences
	err := c.do(ctx, http.MethodGet, "/v1/preferences", nil, nil, &p)
	return p, err
}

// SetPreferences replaces all the subscriber's rules with p (a channel left out has none, so
// send back the channels you do not change) and returns them as stored. Past the server's
// --max-preference-rules it fails with a 413 and changes nothing.
func (c *Client) SetPreferences(ctx context.Context, p Preferences) (Preferences, error) {
	var out Preferences
	err := c.do(ctx, http.MethodPut, "/v1/preferences", nil, p, &out)
	return out, err
}

// UserPreferences returns user's preferences, for a settings page built by the backend. It
// needs a publisher's credential.
func (c *Client) UserPreferences(ctx context.Context, user string) (Preferences, error) {
	var p Preferences
	if user == "" {
		return p, errors.New("herald: no user")
	}
	err := c.do(ctx, http.MethodGet, "/v1/users/"+pathSegment(user)+"/preferences", nil, nil, &p)
	return p, err
}

// SetUserPreferences replaces all of user's rules with p, as SetPreferences does for the
// subscriber. It needs a publisher's credential.
func (c *Client) SetUserPreferences(ctx context.Context, user string, p Preferences) (Preferences, error) {
	var out Preferences
	if user == "" {
		return out, errors.New("herald: no user")
	}
	err := c.do(ctx, http.MethodPut, "/v1/users/"+pathSegment(user)+"/preferences", nil, p, &out)
	return out, err
}
