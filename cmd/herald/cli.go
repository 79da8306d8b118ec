package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"

	"github.com/heraldhq/herald/client"
)

// clientFlags are the flags every client command shares. Each is also a HERALD_* variable
// (--token is HERALD_TOKEN), which keeps a credential out of the process list.
type clientFlags struct {
	server string
	token  string
	user   string
}

func (f *clientFlags) register(fs *flag.FlagSet, subscriber bool) {
	fs.StringVar(&f.server, "server", "http://127.0.0.1:8080", "Herald's URL (HERALD_SERVER)")
	fs.StringVar(&f.token, "token", "", "bearer credential: a publisher key or token, or a subscriber token (prefer HERALD_TOKEN: flags show in process lists)")
	if subscriber {
		fs.StringVar(&f.user, "user", "", "dev mode: the user to act as (a server with auth takes the user from --token)")
	}
}

func (f *clientFlags) client() (*client.Client, error) {
	var opts []client.Option
	if f.token != "" {
		opts = append(opts, client.WithToken(f.token))
	}
	if f.user != "" {
		opts = append(opts, client.WithUser(f.user))
	}
	return client.New(f.server, opts...)
}

func parseClientFlags(fs *flag.FlagSet, args []string) error {
	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix("HERALD")); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return nil
}

// send publishes one notification and prints the receipts as JSON.
func send(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs, false)
	to := fs.String("to", "", "recipients, comma-separated")
	broadcast := fs.Bool("broadcast", false, "send to everyone instead")
	typ := fs.String("type", "", "the notification's type (default: the server's, \"notification\")")
	data := fs.String("data", "", "the notification's data, as JSON")
	key := fs.String("idempotency-key", "", "makes a retry of this command create nothing new")
	if err := parseClientFlags(fs, args); err != nil {
		return err
	}
	m := client.Message{Broadcast: *broadcast, Type: *typ, Key: *key}
	for _, u := range strings.Split(*to, ",") {
		if u = strings.TrimSpace(u); u != "" {
			m.To = append(m.To, u)
		}
	}
	if (len(m.To) > 0) == m.Broadcast {
		return errors.New("give --to users, or --broadcast")
	}
	if *data != "" {
		if !json.Valid([]byte(*data)) {
			return fmt.Errorf("--data is not valid JSON: %s", *data)
		}
		m.Data = json.RawMessage(*data)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	receipts, err := c.Publish(ctx, m)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(map[string]any{"notifications": receipts})
}

// notificationLine and controlLine are the lines herald listen prints.
type notificationLine struct {
	Cursor    string          `json:"cursor"`
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Data      json.RawMessage `json:"data"`
	CreatedAt time.Time       `json:"created_at"`
	Broadcast bool            `json:"broadcast"`
}

type controlLine struct {
	Cursor string          `json:"cursor"`
	Event  string          `json:"event"` // herald.read, herald.missed, herald.expired
	Data   json.RawMessage `json:"data"`
}

// listen follows a user's feed and prints one JSON object per event, reconnecting and resuming
// until interrupted.
func listen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald listen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs, true)
	types := fs.String("types", "", "only these notification types, comma-separated")
	last := fs.String("last-event-id", "", "resume after this cursor (0.0: everything still kept); default: from now")
	count := fs.Int("count", 0, "exit after this many events (0: never)")
	quiet := fs.Bool("quiet", false, "do not report the connection's state on stderr")
	if err := parseClientFlags(fs, args); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	o := client.SubscribeOptions{LastEventID: *last}
	if *types != "" {
		o.Types = strings.Split(*types, ",")
	}
	if !*quiet {
		o.OnState = func(s client.State, err error) {
			if err != nil {
				fmt.Fprintf(stderr, "herald listen: %s (%v)\n", s, err)
			} else {
				fmt.Fprintf(stderr, "herald listen: %s\n", s)
			}
		}
	}
	enc := json.NewEncoder(stdout)
	n := 0
	for ev, err := range c.Subscribe(ctx, o) {
		if err != nil {
			return err
		}
		data := ev.Data
		if !json.Valid(data) {
			// Print a line whatever a server or proxy sent, rather than fail on it.
			data, _ = json.Marshal(string(data))
		}
		var line any = controlLine{Cursor: ev.Cursor, Event: ev.Type, Data: data}
		if n := ev.Notification; n != nil {
			line = notificationLine{Cursor: ev.Cursor, ID: n.ID, Type: n.Type, Data: n.Data, CreatedAt: n.CreatedAt, Broadcast: n.Broadcast}
		}
		if err := enc.Encode(line); err != nil {
			return err // stdout is gone (a closed pipe): nobody is listening
		}
		if n++; *count > 0 && n >= *count {
			return nil
		}
	}
	return nil // interrupted
}
