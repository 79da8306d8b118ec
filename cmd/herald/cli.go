package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/heraldhq/herald/client"
)

// clientFlags are the flags every client command shares. --server and --token are also
// HERALD_SERVER and HERALD_TOKEN, which keeps a credential out of the process list; the others
// are read from the command line only.
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

// unauthorized adds to a 401 what to pass, when nothing was: someone trying listen for the first
// time has not read about --user.
func (f *clientFlags) unauthorized(err error, subscriber bool) error {
	var he *client.Error
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized || f.user != "" || f.token != "" {
		return err
	}
	answer := fmt.Sprintf("%d %s: %s", he.Status, he.Code, he.Message)
	switch {
	case subscriber && strings.HasPrefix(he.Message, "dev mode"): // docs/api.md: the dev-mode 401
		return fmt.Errorf("pass --user ID: the server is in dev mode, where --user names whose feed to follow (%s)", answer)
	case subscriber:
		return fmt.Errorf("pass a subscriber token with --token or HERALD_TOKEN; herald token --user ID mints one (%s)", answer)
	}
	return fmt.Errorf("pass a publisher key or token with --token or HERALD_TOKEN (%s)", answer)
}

const sendUsage = `usage: herald send (--to USER,… | --broadcast | --topic TOPIC [--exclude USER,…]) [--type TYPE] [--title TEXT] [--body TEXT] [--url URL] [--data JSON] [--critical] [--push always|never] [flags]

Publishes one notification and prints the receipts as JSON (for --topic, how many subscribers
it reached: {"notifications":[],"recipients":N}). --title, --body and --url are what
a client shows (plain text, and a link: an https: or http: URL or a path starting with /). --server and --token may also be
given as HERALD_SERVER and HERALD_TOKEN; the other flags are read from the command line only.
`

// send publishes one notification and prints the receipts as JSON.
func send(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("herald send", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs, false)
	to := fs.String("to", "", "recipients, comma-separated")
	broadcast := fs.Bool("broadcast", false, "send to everyone instead")
	topic := fs.String("topic", "", "send to the topic's subscribers instead (such as issue:42)")
	exclude := fs.String("exclude", "", "with --topic: subscribers not to notify (the actor, typically), comma-separated")
	typ := fs.String("type", "", "the notification's type (default: the server's, \"notification\")")
	title := fs.String("title", "", "the notification's title: one line of plain text, at most 200 characters")
	body := fs.String("body", "", "the notification's body: plain text, at most 2000 characters")
	link := fs.String("url", "", "where the notification leads: an https: or http: URL, or a path starting with /")
	data := fs.String("data", "", "the notification's data, as JSON")
	key := fs.String("idempotency-key", "", "makes a retry of this command create nothing new")
	critical := fs.Bool("critical", false, "goes through every recipient's mutes (security alerts, legal notices)")
	pushMode := fs.String("push", "", "Web Push: always (at once) or never; default: a fallback for users who did not see it live")
	if err := parseFlags(fs, args, clientEnvFlag); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs, sendUsage)
			return nil
		}
		return err
	}
	m := client.Message{Broadcast: *broadcast, Topic: *topic, Type: *typ, Key: *key, Content: client.Content{Title: *title, Body: *body, URL: *link},
		Critical: *critical, Push: *pushMode}
	m.To, m.Exclude = commaList(*to), commaList(*exclude)
	addressed := 0
	for _, given := range []bool{len(m.To) > 0, m.Broadcast, m.Topic != ""} {
		if given {
			addressed++
		}
	}
	switch {
	case addressed != 1:
		return errors.New("give --to users, or --broadcast, or --topic (one of them)")
	case len(m.Exclude) > 0 && m.Topic == "":
		return errors.New("--exclude goes with --topic")
	case m.Push != "" && m.Push != "always" && m.Push != "never":
		return fmt.Errorf("--push is always or never, not %q", m.Push)
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
	p, err := c.PublishResult(ctx, m)
	if err != nil {
		return cf.unauthorized(err, false)
	}
	if p.Notifications == nil {
		p.Notifications = []client.Receipt{}
	}
	out := map[string]any{"notifications": p.Notifications}
	if m.Topic != "" {
		out["recipients"] = p.Recipients
	}
	if p.Muted > 0 {
		out["muted"] = p.Muted
	}
	return json.NewEncoder(stdout).Encode(out)
}

// commaList splits a comma-separated flag, leaving out blanks.
func commaList(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// notificationLine and controlLine are the lines herald listen prints.
type notificationLine struct {
	Cursor string `json:"cursor"`
	ID     string `json:"id"`
	Type   string `json:"type"`
	client.Content
	Data      json.RawMessage `json:"data"`
	CreatedAt time.Time       `json:"created_at"`
	Broadcast bool            `json:"broadcast"`
	Topic     string          `json:"topic,omitempty"`
}

type controlLine struct {
	Cursor string          `json:"cursor"`
	Event  string          `json:"event"` // herald.read, herald.missed, herald.expired
	Data   json.RawMessage `json:"data"`
}

const listenUsage = `usage: herald listen [--user ID | --token TOKEN] [flags]

Follows a feed and prints one JSON object per event, reconnecting and resuming until interrupted
(or --count events). The connection's state goes to stderr. --server and --token may also be
given as HERALD_SERVER and HERALD_TOKEN; the other flags are read from the command line only.
`

// listen follows a user's feed and prints one JSON object per event, reconnecting and resuming
// until interrupted.
func listen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald listen", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs, true)
	types := fs.String("types", "", "only these notification types, comma-separated")
	last := fs.String("last-event-id", "", "resume after this cursor (0.0: everything still kept); default: from now")
	count := fs.Int("count", 0, "exit after this many events (0: never)")
	quiet := fs.Bool("quiet", false, "do not report the connection's state on stderr")
	if err := parseFlags(fs, args, clientEnvFlag); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs, listenUsage)
			return nil
		}
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
		o.OnState = stateReporter(stderr, cf.server)
	}
	enc := json.NewEncoder(stdout)
	n := 0
	for ev, err := range c.Subscribe(ctx, o) {
		if err != nil {
			return cf.unauthorized(err, true)
		}
		data := ev.Data
		if !json.Valid(data) {
			// Print a line whatever a server or proxy sent, rather than fail on it.
			data, _ = json.Marshal(string(data))
		}
		var line any = controlLine{Cursor: ev.Cursor, Event: ev.Type, Data: data}
		if n := ev.Notification; n != nil {
			line = notificationLine{Cursor: ev.Cursor, ID: n.ID, Type: n.Type, Content: n.Content, Data: n.Data, CreatedAt: n.CreatedAt, Broadcast: n.Broadcast, Topic: n.Topic}
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

// stateReporter says on w where listen connects, that it is retrying (once, however many
// attempts fail, with the first attempt's reason), and when it is live again.
func stateReporter(w io.Writer, server string) func(client.State, error) {
	live, retrying := false, false
	return func(s client.State, err error) {
		switch s {
		case client.Connecting:
			fmt.Fprintf(w, "herald listen: connecting to %s\n", server)
		case client.Live:
			live, retrying = true, false
			fmt.Fprintln(w, "herald listen: live")
		case client.Reconnecting:
			if retrying {
				return
			}
			retrying = true
			what := "cannot connect"
			if live {
				what, live = "connection lost", false
			}
			fmt.Fprintf(w, "herald listen: %s (%s); retrying %s until it answers\n", what, reason(err), server)
		}
	}
}

// reason is why a connection failed, without the request the error repeats.
func reason(err error) string {
	if err == nil {
		return "the server ended the stream"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return strings.TrimPrefix(err.Error(), "herald: ")
}
