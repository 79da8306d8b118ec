package client_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/heraldhq/herald/client"
)

// TestPreferences: a backend sets a user's mutes, a muted publish creates nothing for them and
// a critical one goes through; the user reads and replaces their own; bad rules are refused.
func TestPreferences(t *testing.T) {
	s := start(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "h.db"), nil)
	ctx := context.Background()
	pub := newClient(t, s.URL)
	bob := newClient(t, s.URL, client.WithUser("bob"))

	set := client.Preferences{Mutes: map[string]client.Mutes{client.ChannelInApp: {Prefixes: []string{"marketing."}}}}
	got, err := pub.SetUserPreferences(ctx, "bob", set)
	if err != nil || !slices.Equal(got.Mutes[client.ChannelInApp].Prefixes, []string{"marketing."}) || got.Mutes[client.ChannelPush].Types == nil {
		t.Fatalf("SetUserPreferences: %+v, %v; want the rule back and every channel listed", got, err)
	}
	if p, err := pub.PublishResult(ctx, client.Message{To: []string{"bob", "carol"}, Type: "marketing.promo"}); err != nil || len(p.Notifications) != 1 || p.Notifications[0].User != "carol" || p.Muted != 1 {
		t.Fatalf("muted publish: %+v, %v; want carol's notification only, and bob counted muted", p, err)
	}
	// A topic publish says how many it reached and how many muted it.
	if _, err := pub.SubscribeUsers(ctx, "promos", []string{"bob", "carol", "dave"}); err != nil {
		t.Fatal(err)
	}
	p, err := pub.PublishResult(ctx, client.Message{Topic: "promos", Exclude: []string{"dave"}, Type: "marketing.promo", Key: "promo-1"})
	if err != nil || len(p.Notifications) != 0 || p.Recipients != 1 || p.Muted != 1 {
		t.Fatalf("muted topic publish: %+v, %v; want 1 recipient and 1 muted", p, err)
	}
	if again, err := pub.PublishResult(ctx, client.Message{Topic: "promos", Exclude: []string{"dave"}, Type: "marketing.promo", Key: "promo-1"}); err != nil || again.Recipients != 1 || again.Muted != 1 {
		t.Fatalf("its retry: %+v, %v; want the same answer", again, err)
	}
	if rs, err := pub.Publish(ctx, client.Message{To: []string{"bob"}, Type: "marketing.legal", Critical: true}); err != nil || len(rs) != 1 {
		t.Fatalf("critical publish: %+v, %v", rs, err)
	}
	page, err := bob.List(ctx, client.ListOptions{})
	if err != nil || len(page.Notifications) != 1 || !page.Notifications[0].Critical || page.Notifications[0].Type != "marketing.legal" {
		t.Fatalf("bob's inbox: %+v, %v; want only the critical one", page.Notifications, err)
	}

	mine, err := bob.Preferences(ctx)
	if err != nil || !slices.Equal(mine.Mutes[client.ChannelInApp].Prefixes, []string{"marketing."}) {
		t.Fatalf("Preferences: %+v, %v", mine, err)
	}
	if _, err := bob.SetPreferences(ctx, client.Preferences{Mutes: map[string]client.Mutes{client.ChannelPush: {Topics: []string{"issue:42"}}}}); err != nil {
		t.Fatal(err)
	}
	if p, err := pub.UserPreferences(ctx, "bob"); err != nil || len(p.Mutes[client.ChannelInApp].Prefixes) != 0 || !slices.Equal(p.Mutes[client.ChannelPush].Topics, []string{"issue:42"}) {
		t.Fatalf("after bob's own change: %+v, %v; want only the push rule", p, err)
	}

	var herr *client.Error
	_, err = bob.SetPreferences(ctx, client.Preferences{Mutes: map[string]client.Mutes{"email": {}}})
	if !errors.As(err, &herr) || herr.Status != 400 {
		t.Fatalf("an unknown channel: %v, want a 400", err)
	}
	if _, err := pub.UserPreferences(ctx, ""); err == nil {
		t.Fatal("UserPreferences without a user was sent")
	}
}
