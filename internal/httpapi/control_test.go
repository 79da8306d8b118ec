package httpapi

import (
	"context"
	"net/http"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/hub"
)

// expiringAuth is devAuth with credentials that expire at a set time.
type expiringAuth struct{ at time.Time }

func (a expiringAuth) Subscriber(r *http.Request) (herald.Subscriber, error) {
	return herald.Subscriber{User: r.URL.Query().Get("user"), Expires: a.at}, nil
}

func (expiringAuth) Publisher(*http.Request) (herald.Publisher, error) {
	return herald.Publisher{}, nil
}

// TestControlEventsKeepTheCursor: a control event (read state, preferences, expired) carries
// the id the client already has, never another and never none. A client that takes the id of
// the last event of each response it reads (go-sse's Read, and many hand-written readers do)
// then resumes where it was even when a control event is the first thing a resumed stream
// sends: without an id there, it resumed with an empty Last-Event-ID, which starts at the
// present, and everything published meanwhile was skipped without a herald.missed (the
// cluster chaos test lost 15-32 notifications that way after every stream was told of its
// preferences at once).
func TestControlEventsKeepTheCursor(t *testing.T) {
	for _, park := range []bool{true, false} {
		name := "goroutine"
		if park {
			if !parkSupported {
				continue
			}
			name = "parked"
		}
		t.Run(name, func(t *testing.T) {
			for _, control := range []struct {
				name string
				send func(s *streamServer)
			}{
				{"preferences", func(s *streamServer) {
					s.hub.Notify("alice", hub.NewControl(PreferencesFrame(herald.Counts{Unread: 1})))
				}},
				{"read", func(s *streamServer) {
					s.hub.Notify("alice", hub.NewControl(StateFrame(herald.StateChange{User: "alice", Kind: herald.StateRead, IDs: []int64{1}, On: true})))
				}},
				{"expired", nil},
			} {
				t.Run(control.name, func(t *testing.T) {
					auth := expiringAuth{}
					if control.send == nil {
						// Expires soon after the stream opened: its end is the stream's first event.
						auth.at = time.Now().Add(time.Second)
					}
					s := startStreamServer(t, hub.Options{}, Options{NoPark: !park, Heartbeat: time.Hour, Auth: auth})
					s.broadcast(t, 3, 8)
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.addr+"/v1/stream?user=alice", nil)
					req.Header.Set("Last-Event-ID", "0.3")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					if control.send != nil {
						waitUntil(t, 10*time.Second, "the stream's subscription", func() bool { return s.hub.Stats().Subscriptions == 1 })
						control.send(s)
					}
					var events []sse.Event
					for e, err := range sse.Read(resp.Body, nil) {
						if err != nil {
							break
						}
						events = append(events, e)
						if len(events) == 1 && control.send != nil {
							s.broadcast(t, 1, 8) // then a notification follows it
						}
						if len(events) == 2 || e.Type == ExpiredType {
							break
						}
					}
					if len(events) == 0 {
						t.Fatal("no event")
					}
					if got := events[0].Type; got[:len(herald.ControlPrefix)] != herald.ControlPrefix {
						t.Fatalf("first event %q, want a control event", got)
					}
					pos, _, err := herald.ParsePosition(events[0].LastEventID)
					if err != nil || pos != (herald.Cursor{Broadcast: 3}) {
						t.Fatalf("%s arrived with id %q (%v), want the client's cursor 0.3", events[0].Type, events[0].LastEventID, err)
					}
					if control.send != nil {
						if len(events) != 2 {
							t.Fatalf("%d events, want the control event and a notification", len(events))
						}
						if pos, _, err := herald.ParsePosition(events[1].LastEventID); err != nil || pos != (herald.Cursor{Broadcast: 4}) {
							t.Fatalf("the notification after it has id %q, want 0.4", events[1].LastEventID)
						}
					}
				})
			}
		})
	}
}
