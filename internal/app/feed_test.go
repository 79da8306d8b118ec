package app

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/config"
)

// TestGaplessFeedUnderReconnects proves invariant 2 on one node: concurrent publishers (unicast,
// multicast, broadcast, batches, mixed types) while several logical clients per user drop their
// connection at random moments and resume with their last event id. Each client's concatenated
// stream must be exactly its user's feed: nothing missing, nothing twice, every stream's cursor
// advancing one step at a time, every publisher's order kept.
func TestGaplessFeedUnderReconnects(t *testing.T) { streamModes(t, testGaplessFeedUnderReconnects) }

func testGaplessFeedUnderReconnects(t *testing.T) {
	tests := []struct {
		name  string
		types []string // the clients' filter; nil for all
	}{
		{"all types", nil},
		{"type filter", []string{"a", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A small queue and replay page make overflows and multi-page replays part of the run.
			s := startServer(t, func(c *config.Config) {
				c.QueueSize = 8
				c.MaxConnectionsPerUser = 64
				c.ReplayPage = 7
			})
			runFeedChaos(t, []*server{s}, tt.types)
		})
	}
}

type sentNote struct {
	id        string
	users     []string // nil for a broadcast
	publisher int
	typ       string
}

// runFeedChaos runs the gapless-feed scenario against one server or several nodes of a cluster:
// each connection and each publish goes to a node picked at random.
func runFeedChaos(t *testing.T, nodes []*server, filter []string) {
	const (
		users          = 5
		clientsPerUser = 2
		publishers     = 4
		perPublisher   = 60
	)
	userName := func(i int) string { return fmt.Sprintf("u%d", i) }
	wanted := func(typ string) bool { return filter == nil || slices.Contains(filter, typ) }

	// Clients first, so that the whole feed (from cursor 0.0) is theirs.
	type clientLog struct {
		user   string
		events []received
		errs   []string
	}
	var (
		clients       []*clientLog
		connected     sync.WaitGroup
		clientsDone   sync.WaitGroup
		publishedDone = make(chan struct{})
		expectMu      sync.Mutex
		expect        = map[string]map[string]bool{} // user → notification ids expected
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	query := func(user string) string {
		q := url.Values{"user": {user}}
		if filter != nil {
			q.Set("types", strings.Join(filter, ","))
		}
		return q.Encode()
	}
	complete := func(c *clientLog) bool {
		select {
		case <-publishedDone:
		default:
			return false
		}
		expectMu.Lock()
		defer expectMu.Unlock()
		got := 0
		for _, ev := range c.events {
			if expect[c.user][ev.Env.ID] {
				got++
			}
		}
		return got >= len(expect[c.user])
	}

	for u := 0; u < users; u++ {
		for k := 0; k < clientsPerUser; k++ {
			c := &clientLog{user: userName(u)}
			clients = append(clients, c)
			connected.Add(1)
			clientsDone.Add(1)
			rng := rand.New(rand.NewPCG(uint64(u), uint64(k)))
			go func() {
				defer clientsDone.Done()
				lastID, first := "", true
				for !complete(c) && ctx.Err() == nil {
					cctx, ccancel := context.WithCancel(ctx)
					q, header := query(c.user), lastID
					if lastID != "" && rng.IntN(2) == 0 {
						// Clients that cannot set headers resume with the query parameter.
						q, header = q+"&last_event_id="+url.QueryEscape(lastID), ""
					}
					status, ch, err := nodes[rng.IntN(len(nodes))].openStream(cctx, q, header)
					if err != nil || status == http.StatusTooManyRequests {
						ccancel()
						time.Sleep(5 * time.Millisecond)
						continue
					}
					if status != http.StatusOK {
						c.errs = append(c.errs, fmt.Sprintf("stream status %d", status))
						ccancel()
						return
					}
					// Drop the connection at a random moment: sometimes at once, mid-replay.
					life := time.Duration(rng.IntN(40)) * time.Millisecond
					if rng.IntN(5) == 0 {
						life = 300 * time.Millisecond
					}
					timer := time.NewTimer(life)
				read:
					for {
						select {
						case ev, ok := <-ch:
							if !ok {
								break read
							}
							switch ev.Type {
							case herald.ControlPrefix + "connected":
								if !first {
									c.errs = append(c.errs, "herald.connected on a resumed stream")
								}
								first = false
								connected.Done()
							case idOnly:
							case herald.ControlPrefix + "missed":
								c.errs = append(c.errs, "unexpected herald.missed at "+ev.Cursor)
							default:
								c.events = append(c.events, ev)
							}
							lastID = ev.Cursor
						case <-timer.C:
							break read
						}
					}
					timer.Stop()
					ccancel()
					for range ch {
						// Drain: what the client did not read before it hung up is not its own.
					}
				}
			}()
		}
	}
	waitOrFail(t, &connected, 10*time.Second, "clients connecting")

	// Publishers.
	var (
		sentMu sync.Mutex
		sent   []sentNote
		pubs   sync.WaitGroup
	)
	types := []string{"a", "b", "c"}
	for p := 0; p < publishers; p++ {
		pubs.Add(1)
		rng := rand.New(rand.NewPCG(uint64(p), 99))
		go func() {
			defer pubs.Done()
			for i := 0; i < perPublisher; {
				var drafts []map[string]any
				n := 1
				if rng.IntN(6) == 0 {
					n = 2 + rng.IntN(4) // a batch
				}
				for j := 0; j < n && i < perPublisher; j++ {
					d := map[string]any{"type": types[rng.IntN(len(types))], "data": map[string]int{"p": p, "i": i}}
					switch r := rng.IntN(4); {
					case r == 0:
						d["broadcast"] = true
					case r == 1:
						to := []string{userName(rng.IntN(users)), userName(rng.IntN(users)), userName(rng.IntN(users))}
						d["to"] = to
					default:
						d["to"] = []string{userName(rng.IntN(users))}
					}
					drafts = append(drafts, d)
					i++
				}
				path, body := "/v1/notifications", any(drafts[0])
				if len(drafts) > 1 {
					path, body = "/v1/notifications/batch", map[string]any{"notifications": drafts}
				}
				status, acks, raw := nodes[rng.IntN(len(nodes))].publish(t, path, body)
				if status != http.StatusCreated {
					t.Errorf("publish: status %d %v", status, raw)
					return
				}
				// Map acknowledgements back to drafts: one per distinct recipient, one per broadcast.
				k := 0
				sentMu.Lock()
				for _, d := range drafts {
					typ := d["type"].(string)
					if d["broadcast"] == true {
						sent = append(sent, sentNote{id: acks[k].ID, publisher: p, typ: typ})
						k++
						continue
					}
					var seen []string
					for _, u := range d["to"].([]string) {
						if slices.Contains(seen, u) {
							continue
						}
						seen = append(seen, u)
						if acks[k].User != u {
							t.Errorf("ack %d is for %q, want %q", k, acks[k].User, u)
						}
						sent = append(sent, sentNote{id: acks[k].ID, users: []string{u}, publisher: p, typ: typ})
						k++
					}
				}
				sentMu.Unlock()
				if k != len(acks) {
					t.Errorf("got %d acks for %d notifications", len(acks), k)
				}
				time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
			}
		}()
	}
	pubs.Wait()

	// The expected feed of each user, and each publisher's order within it.
	order := map[string]map[int][]string{} // user → publisher → ids in ack order
	expectMu.Lock()
	for u := 0; u < users; u++ {
		expect[userName(u)] = map[string]bool{}
		order[userName(u)] = map[int][]string{}
	}
	for _, n := range sent {
		if !wanted(n.typ) {
			continue
		}
		recipients := n.users
		if recipients == nil {
			recipients = nil
			for u := 0; u < users; u++ {
				recipients = append(recipients, userName(u))
			}
		}
		for _, u := range recipients {
			expect[u][n.id] = true
			order[u][n.publisher] = append(order[u][n.publisher], n.id)
		}
	}
	expectMu.Unlock()
	close(publishedDone)
	waitOrFail(t, &clientsDone, 30*time.Second, "clients receiving their whole feed")

	byID := map[string]sentNote{}
	for _, n := range sent {
		byID[n.id] = n
	}
	for ci, c := range clients {
		name := fmt.Sprintf("client %d (%s)", ci, c.user)
		for _, e := range c.errs {
			t.Errorf("%s: %s", name, e)
		}
		// Exactly the expected set, each once.
		seen := map[string]bool{}
		for _, ev := range c.events {
			if seen[ev.Env.ID] {
				t.Errorf("%s: notification %s received twice", name, ev.Env.ID)
			}
			seen[ev.Env.ID] = true
			if !expect[c.user][ev.Env.ID] {
				t.Errorf("%s: notification %s (%+v) is not in this user's feed", name, ev.Env.ID, byID[ev.Env.ID])
			}
		}
		for id := range expect[c.user] {
			if !seen[id] {
				t.Errorf("%s: notification %s (%+v) never received", name, id, byID[id])
			}
		}
		// The cursor moves one stream at a time, by one when nothing is filtered out.
		prev, firstEpoch := herald.Cursor{}, ""
		for _, ev := range c.events {
			cur, epoch, err := herald.ParsePosition(ev.Cursor)
			if firstEpoch == "" {
				firstEpoch = epoch
			}
			if err == nil && (epoch == "" || epoch != firstEpoch) {
				// Restarts and bus outages keep the store's epoch: only a restore changes it.
				t.Errorf("%s: cursor %q is of epoch %q, not the store's %q", name, ev.Cursor, epoch, firstEpoch)
			}
			if err != nil {
				t.Errorf("%s: bad cursor %q", name, ev.Cursor)
				continue
			}
			moved, stayed := cur.User, cur.Broadcast
			pm, ps := prev.User, prev.Broadcast
			if ev.Env.Broadcast {
				moved, stayed, pm, ps = cur.Broadcast, cur.User, prev.Broadcast, prev.User
			}
			switch {
			case stayed < ps:
				t.Errorf("%s: cursor went back from %s to %s", name, prev, cur)
			case moved <= pm:
				t.Errorf("%s: cursor %s does not advance past %s for notification %s", name, cur, prev, ev.Env.ID)
			case filter == nil && moved != pm+1:
				t.Errorf("%s: cursor jumped from %s to %s: a gap", name, prev, cur)
			}
			prev = cur
		}
		// Every publisher's order is kept.
		for p, ids := range order[c.user] {
			var got []string
			for _, ev := range c.events {
				if byID[ev.Env.ID].publisher == p {
					got = append(got, ev.Env.ID)
				}
			}
			if !slices.Equal(got, ids) {
				at := 0
				for at < min(len(got), len(ids)) && got[at] == ids[at] {
					at++
				}
				var around []string
				for _, ev := range c.events {
					if slices.Contains(got[at:min(len(got), at+3)], ev.Env.ID) || slices.Contains(ids[at:min(len(ids), at+3)], ev.Env.ID) {
						around = append(around, ev.Env.ID+"@"+ev.Cursor)
					}
				}
				t.Errorf("%s: publisher %d order differs at %d: got %v, want %v; as received: %v", name, p, at,
					got[at:min(len(got), at+3)], ids[at:min(len(ids), at+3)], around)
			}
		}
		if t.Failed() {
			return
		}
	}
	total := 0
	for _, c := range clients {
		total += len(c.events)
	}
	for i, s := range nodes {
		t.Logf("node %d: %d slow-consumer disconnects, hub %+v", i, s.API.SlowDisconnects(), s.Hub.Stats())
	}
	t.Logf("%d notifications published, %d received by %d clients", len(sent), total, len(clients))
}

func waitOrFail(t *testing.T, wg *sync.WaitGroup, within time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("timed out after %s waiting for %s", within, what)
	}
}
