package client_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/heraldhq/herald/client"
	"github.com/heraldhq/herald/internal/config"
)

// TestTopics: a publisher manages a topic and publishes to it; a subscriber lists, joins and
// leaves its topics and filters its inbox by one, against a real server.
func TestTopics(t *testing.T) {
	s := start(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "h.db"), func(c *config.Config) { c.TopicSelfSubscribe = "public/" })
	ctx := context.Background()
	pub := newClient(t, s.URL)
	alice := newClient(t, s.URL, client.WithUser("alice"))

	if n, err := pub.SubscribeUsers(ctx, "org/acme", []string{"alice", "bob", "carol"}); err != nil || n != 3 {
		t.Fatalf("SubscribeUsers: %d, %v", n, err)
	}
	users, next, err := pub.TopicSubscribers(ctx, "org/acme", "", 2)
	if err != nil || !slices.Equal(users, []string{"alice", "bob"}) || next != "bob" {
		t.Fatalf("first page: %q %q %v", users, next, err)
	}
	users, next, err = pub.TopicSubscribers(ctx, "org/acme", next, 2)
	if err != nil || !slices.Equal(users, []string{"carol"}) || next != "" {
		t.Fatalf("last page: %q %q %v", users, next, err)
	}
	if err := pub.UnsubscribeUser(ctx, "org/acme", "carol"); err != nil {
		t.Fatal(err)
	}
	n, err := pub.PublishTopic(ctx, client.Message{Topic: "org/acme", Exclude: []string{"bob"}, Type: "comment", Content: client.Content{Title: "hi"}, Key: "c1"})
	if err != nil || n != 1 {
		t.Fatalf("PublishTopic: %d, %v; want 1 (alice; bob excluded, carol left)", n, err)
	}
	if n, err := pub.PublishTopic(ctx, client.Message{Topic: "org/acme", Exclude: []string{"bob"}, Type: "comment", Content: client.Content{Title: "hi"}, Key: "c1"}); err != nil || n != 1 {
		t.Fatalf("retried PublishTopic: %d, %v", n, err)
	}
	if _, err := pub.PublishTopic(ctx, client.Message{To: []string{"alice"}}); err == nil {
		t.Fatal("PublishTopic without a topic was sent")
	}
	if _, err := pub.Publish(ctx, client.Message{To: []string{"alice"}, Type: "direct"}); err != nil {
		t.Fatal(err)
	}
	page, err := alice.List(ctx, client.ListOptions{Topic: "org/acme"})
	if err != nil || len(page.Notifications) != 1 || page.Notifications[0].Topic != "org/acme" || page.Notifications[0].Title != "hi" {
		t.Fatalf("alice's org/acme inbox: %+v, %v", page, err)
	}

	if err := alice.JoinTopic(ctx, "public/news"); err != nil {
		t.Fatalf("JoinTopic of an open topic: %v", err)
	}
	var herr *client.Error
	if err := alice.JoinTopic(ctx, "issue:42"); !errors.As(err, &herr) || herr.Status != 403 {
		t.Fatalf("JoinTopic of a closed topic: %v, want a 403", err)
	}
	if err := alice.LeaveTopic(ctx, "org/acme"); err != nil {
		t.Fatal(err)
	}
	if ts, err := alice.MyTopics(ctx); err != nil || !slices.Equal(ts, []string{"public/news"}) {
		t.Fatalf("MyTopics: %q, %v", ts, err)
	}
	if err := pub.DeleteTopic(ctx, "public/news"); err != nil {
		t.Fatal(err)
	}
	if ts, err := alice.MyTopics(ctx); err != nil || len(ts) != 0 {
		t.Fatalf("MyTopics after the delete: %q, %v", ts, err)
	}
}
