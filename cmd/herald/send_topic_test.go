package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/heraldhq/herald/client"
	"github.com/heraldhq/herald/internal/apptest"
)

// TestSendTopic: herald send --topic notifies the topic's subscribers but those excluded, and
// prints how many it reached; the flags that address a notification exclude each other.
func TestSendTopic(t *testing.T) {
	s := apptest.Start(t, apptest.Config(t))
	ctx := context.Background()
	pub, err := client.New(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.SubscribeUsers(ctx, "issue:42", []string{"alice", "bob", "carol"}); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := run(ctx, []string{"send", "--server", s.URL, "--topic", "issue:42", "--exclude", "bob, carol", "--type", "comment", "--title", "Bob commented"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Notifications []any
		Recipients    int
	}
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil || got.Recipients != 1 || got.Notifications == nil || len(got.Notifications) != 0 {
		t.Fatalf("send --topic printed %q (%v); want no notifications listed and 1 recipient", out.String(), err)
	}
	alice, _ := client.New(s.URL, client.WithUser("alice"))
	page, err := alice.List(ctx, client.ListOptions{Topic: "issue:42"})
	if err != nil || len(page.Notifications) != 1 || page.Notifications[0].Title != "Bob commented" {
		t.Fatalf("alice's inbox: %+v, %v", page, err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"topic and to", []string{"send", "--server", s.URL, "--topic", "t", "--to", "a"}, "one of them"},
		{"topic and broadcast", []string{"send", "--server", s.URL, "--topic", "t", "--broadcast"}, "one of them"},
		{"exclude without topic", []string{"send", "--server", s.URL, "--to", "a", "--exclude", "b"}, "--exclude goes with --topic"},
		{"bad topic", []string{"send", "--server", s.URL, "--topic", "a b"}, "400 invalid"},
		{"bad push", []string{"send", "--server", s.URL, "--to", "a", "--push", "sometimes"}, "--push is always or never"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(ctx, tt.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%v: %v, want an error with %q", tt.args, err, tt.want)
			}
		})
	}
}

// TestSendCritical: herald send --critical goes through a recipient's mutes.
func TestSendCritical(t *testing.T) {
	s := apptest.Start(t, apptest.Config(t))
	ctx := context.Background()
	pub, err := client.New(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.SetUserPreferences(ctx, "alice", client.Preferences{Mutes: map[string]client.Mutes{client.ChannelInApp: {Types: []string{"security"}}}}); err != nil {
		t.Fatal(err)
	}
	for _, critical := range []bool{false, true} {
		args := []string{"send", "--server", s.URL, "--to", "alice", "--type", "security", "--title", "new sign-in"}
		if critical {
			args = append(args, "--critical")
		}
		var out strings.Builder
		if err := run(ctx, args, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]string{false: `"notifications":[]`, true: `"user":"alice"`}[critical]; !strings.Contains(out.String(), want) {
			t.Fatalf("critical=%v printed %s, want %s", critical, out.String(), want)
		}
	}
	alice, _ := client.New(s.URL, client.WithUser("alice"))
	page, err := alice.List(ctx, client.ListOptions{})
	if err != nil || len(page.Notifications) != 1 || !page.Notifications[0].Critical {
		t.Fatalf("alice's inbox: %+v, %v; want the critical notification only", page.Notifications, err)
	}
}
