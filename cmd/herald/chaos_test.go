package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	sse "github.com/tmaxmax/go-sse"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testenv"
)

// privateBroker is a broker server of the test's own, on a port of its own, that the test can
// kill and restart (the shared ones must stay up for other tests).
type privateBroker struct {
	t      *testing.T
	port   string
	scheme string
	argv   func(port, dir string) []string
	cmd    *exec.Cmd
	dir    string
}

func startPrivateBroker(t *testing.T, binary, scheme string, argv func(port, dir string) []string) *privateBroker {
	t.Helper()
	path, err := exec.LookPath(binary)
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/" + binary); serr == nil {
			path, err = "/usr/sbin/"+binary, nil
		}
	}
	testenv.Need(t, err == nil, "%s is not installed (the chaos test starts one of its own)", binary)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	r := &privateBroker{t: t, port: port, scheme: scheme, dir: t.TempDir(),
		argv: func(port, dir string) []string { return append([]string{path}, argv(port, dir)...) }}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *privateBroker) url() string { return r.scheme + "://127.0.0.1:" + r.port }

func (r *privateBroker) start() {
	r.t.Helper()
	argv := r.argv(r.port, r.dir)
	r.cmd = exec.Command(argv[0], argv[1:]...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		if c, err := net.Dial("tcp", "127.0.0.1:"+r.port); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatal("private broker did not start")
}

func (r *privateBroker) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// chaosBus is a bus for the chaos test and its outage: a broker killed and started again, or
// the nodes' connections cut.
type chaosBus struct {
	url             string
	outage, restore func()
}

func busFor(t *testing.T, kind, channel string) chaosBus {
	switch kind {
	case "redis":
		r := startPrivateBroker(t, "redis-server", "redis", func(port, dir string) []string {
			return []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir}
		})
		return chaosBus{url: r.url() + "/0", outage: r.kill, restore: r.start}
	case "nats":
		r := startPrivateBroker(t, "nats-server", "nats", func(port, dir string) []string {
			return []string{"-a", "127.0.0.1", "-p", port}
		})
		return chaosBus{url: r.url(), outage: r.kill, restore: r.start}
	case "rabbitmq":
		// RabbitMQ takes seconds to start: the outage cuts the nodes' connections, twice, on
		// the shared broker. rabbitmqctl takes about a second a call, so the nodes are cut one
		// after another, each alone off the bus for a moment while the others publish: the
		// case of a node whose publish fails while its neighbours' go through.
		url := testenv.RabbitMQ(t)
		cut := func() { testenv.CloseRabbitMQConnections(t, "herald:"+channel) }
		return chaosBus{url: url, outage: cut, restore: cut}
	}
	t.Fatalf("unknown bus %s", kind)
	return chaosBus{}
}

// liveNodes is the set of nodes clients and publishers may use right now.
type liveNodes struct {
	mu   sync.Mutex
	urls map[int]string
}

func (l *liveNodes) pick(rng *rand.Rand) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var urls []string
	for _, u := range l.urls {
		urls = append(urls, u)
	}
	slices.Sort(urls)
	if len(urls) == 0 {
		return ""
	}
	return urls[rng.IntN(len(urls))]
}

func (l *liveNodes) set(i int, url string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if url == "" {
		delete(l.urls, i)
	} else {
		l.urls[i] = url
	}
}

// eventKey names a user's event by its publisher and that publisher's publish: a topic
// publish's 201 has no ids, and no publish reaches a user twice.
func eventKey(p, i int) string { return fmt.Sprintf("%d.%d", p, i) }

type chaosEvent struct {
	id, cursor, typ string
	via             string // the node and connection it came by, and its place there
	env             struct {
		ID        string `json:"id"`
		Broadcast bool   `json:"broadcast"`
		Data      struct {
			P, I int
		} `json:"data"`
	}
}

func (ev *chaosEvent) key() string { return eventKey(ev.env.Data.P, ev.env.Data.I) }

// TestClusterChaos, once per bus: three nodes as processes sharing PostgreSQL and the bus.
// Publishers on every node (unicast, multicast, broadcast, topic); logical clients per user
// that reconnect at random moments to a random node with Last-Event-ID. Meanwhile one node is
// SIGKILLed and restarted, the bus goes down (Redis and NATS: the test's own server is killed
// and started again; RabbitMQ: the nodes' connections are cut), and another node is killed. At
// the end every client's concatenated stream is exactly its user's feed, each publisher's
// notifications in the order it published them across the user's two streams, and every
// acknowledged publish with ids is in PostgreSQL.
func TestClusterChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster for half a minute per bus")
	}
	for _, kind := range []string{"redis", "nats", "rabbitmq"} {
		t.Run(kind, func(t *testing.T) { runChaos(t, kind) })
	}
}

func runChaos(t *testing.T, busKind string) {
	store := testenv.Postgres(t)
	channel := testenv.Name("chaos")
	bus := busFor(t, busKind, channel)
	args := []string{"-store", store, "-bus", bus.url, "-bus-channel", channel, "-resync-interval", "500ms",
		"-heartbeat", "1s", "-max-connections-per-user", "0", "-queue-size", "32", "-retry", "50ms"}
	nodes := &liveNodes{urls: map[int]string{}}
	procs := make([]*proc, 3)
	for i := range procs {
		procs[i] = startProc(t, args...)
		nodes.set(i, procs[i].url)
	}

	const (
		users          = 4
		clientsPerUser = 2
		publishers     = 3
		publishFor     = 14 * time.Second
	)
	userName := func(i int) string { return fmt.Sprintf("u%d", i) }
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// Topics, subscribed before anything is published and never changed: a topic publish's 201
	// has no ids, only a count, so its recipients are known from here.
	topics := map[string][]string{"chaos:t0": {"u0", "u1", "u2"}, "chaos/t1": {"u1", "u3"}}
	topicNames := slices.Sorted(maps.Keys(topics))
	for _, topic := range topicNames {
		for _, u := range topics[topic] {
			req, _ := http.NewRequestWithContext(ctx, "PUT", procs[0].url+"/v1/topics/"+url.PathEscape(topic)+"/subscribers/"+u, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				t.Fatalf("subscribe %s to %s: status %d", u, topic, resp.StatusCode)
			}
		}
	}

	// Publishers: each publish carries an idempotency key, so a retry after a node died
	// mid-request (committed or not) creates it once.
	type ack struct {
		id, user string // user "" for a broadcast; id "" for a topic's (its 201 has none)
		p, i     int
		at       time.Duration // when it was acknowledged, since publishing began
		node     string        // by which node
	}
	var (
		acksMu sync.Mutex
		acks   []ack
		pubs   sync.WaitGroup
	)
	start := time.Now()
	stopPublishing := start.Add(publishFor)
	client := &http.Client{Timeout: 5 * time.Second}
	for p := 0; p < publishers; p++ {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			rng := rand.New(rand.NewPCG(uint64(p), 7))
			for i := 0; time.Now().Before(stopPublishing); i++ {
				var body string
				var reached []string // a topic publish's recipients
				switch r := rng.IntN(6); {
				case r == 0:
					body = fmt.Sprintf(`{"broadcast":true,"type":"b","data":{"p":%d,"i":%d}}`, p, i)
				case r == 1:
					// Two users, never the same twice: a user's events are told apart by (p, i).
					a := rng.IntN(users)
					body = fmt.Sprintf(`{"to":[%q,%q],"type":"m","data":{"p":%d,"i":%d}}`, userName(a), userName((a+1+rng.IntN(users-1))%users), p, i)
				case r == 2:
					topic := topicNames[rng.IntN(len(topicNames))]
					exclude := userName(rng.IntN(users)) // the actor; often not a subscriber
					reached = slices.DeleteFunc(slices.Clone(topics[topic]), func(u string) bool { return u == exclude })
					body = fmt.Sprintf(`{"topic":%q,"exclude":[%q],"type":"t","data":{"p":%d,"i":%d}}`, topic, exclude, p, i)
				default:
					body = fmt.Sprintf(`{"to":[%q],"type":"u","data":{"p":%d,"i":%d}}`, userName(rng.IntN(users)), p, i)
				}
				key := fmt.Sprintf("p%d-%d", p, i)
				for attempt := 0; ; attempt++ {
					if ctx.Err() != nil {
						return
					}
					url := nodes.pick(rng)
					req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/notifications", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Idempotency-Key", key)
					resp, err := client.Do(req)
					if err != nil {
						time.Sleep(20 * time.Millisecond)
						continue // the node died: retry elsewhere with the same key
					}
					var out struct {
						Notifications []struct{ ID, User string }
						Recipients    *int
					}
					err = json.NewDecoder(resp.Body).Decode(&out)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated || err != nil {
						if resp.StatusCode >= 500 || err != nil {
							time.Sleep(20 * time.Millisecond)
							continue
						}
						t.Errorf("publish %s: status %d", key, resp.StatusCode)
						return
					}
					if reached != nil && (out.Recipients == nil || *out.Recipients != len(reached)) {
						t.Errorf("topic publish %s: recipients %v, want %d", key, out.Recipients, len(reached))
					}
					acksMu.Lock()
					for _, n := range out.Notifications {
						acks = append(acks, ack{id: n.ID, user: n.User, p: p, i: i, at: time.Since(start), node: url})
					}
					for _, u := range reached {
						acks = append(acks, ack{user: u, p: p, i: i, at: time.Since(start), node: url})
					}
					acksMu.Unlock()
					break
				}
				time.Sleep(time.Duration(rng.IntN(15)) * time.Millisecond)
			}
		}()
	}

	// Clients.
	type clientLog struct {
		user   string
		events []chaosEvent
		errs   []string
	}
	var clients []*clientLog
	var clientsDone sync.WaitGroup
	published := make(chan struct{})
	// user → the user's events, each named by its publisher and publish (see chaosEvent.key) →
	// its acknowledged id ("" for a topic's).
	expect := map[string]map[string]string{}
	var expectMu sync.Mutex
	complete := func(c *clientLog) bool {
		select {
		case <-published:
		default:
			return false
		}
		expectMu.Lock()
		defer expectMu.Unlock()
		n := 0
		for _, ev := range c.events {
			if _, ok := expect[c.user][ev.key()]; ok {
				n++
			}
		}
		return n >= len(expect[c.user])
	}
	for u := 0; u < users; u++ {
		for k := 0; k < clientsPerUser; k++ {
			c := &clientLog{user: userName(u)}
			clients = append(clients, c)
			clientsDone.Add(1)
			go func() {
				defer clientsDone.Done()
				rng := rand.New(rand.NewPCG(uint64(u), uint64(100+k)))
				last := "0.0" // from the very start: the whole feed is expected
				for conn := 0; !complete(c) && ctx.Err() == nil; conn++ {
					url := nodes.pick(rng)
					life := time.Duration(50+rng.IntN(500)) * time.Millisecond
					cctx, ccancel := context.WithTimeout(ctx, life)
					req, _ := http.NewRequestWithContext(cctx, "GET", url+"/v1/stream?user="+c.user, nil)
					req.Header.Set("Last-Event-ID", last)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						ccancel()
						time.Sleep(20 * time.Millisecond)
						continue
					}
					if resp.StatusCode != http.StatusOK {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						ccancel()
						if resp.StatusCode != http.StatusServiceUnavailable {
							c.errs = append(c.errs, fmt.Sprintf("stream status %d", resp.StatusCode))
							return
						}
						continue
					}
					opened, nth := time.Since(start), 0
					for e, err := range sse.Read(resp.Body, nil) {
						if err != nil {
							break
						}
						nth++
						ev := chaosEvent{id: e.LastEventID, cursor: e.LastEventID, typ: e.Type,
							via: fmt.Sprintf("node %s conn %d opened %.2fs from %s, event %d at %.2fs", url[strings.LastIndexByte(url, ':')+1:], conn, opened.Seconds(), last, nth, time.Since(start).Seconds())}
						switch {
						case e.Type == herald.ControlPrefix+"missed":
							c.errs = append(c.errs, "herald.missed at "+e.LastEventID)
						case strings.HasPrefix(e.Type, herald.ControlPrefix) || e.Type == "":
						default:
							if err := json.Unmarshal([]byte(e.Data), &ev.env); err != nil {
								c.errs = append(c.errs, "bad event: "+err.Error())
								continue
							}
							c.events = append(c.events, ev)
						}
						last = e.LastEventID
					}
					resp.Body.Close()
					ccancel()
				}
			}()
		}
	}

	// The chaos.
	step := func(at time.Duration, what string, do func()) {
		time.Sleep(time.Until(stopPublishing.Add(-publishFor).Add(at)))
		t.Logf("%5.1fs: %s", at.Seconds(), what)
		do()
	}
	step(3*time.Second, "SIGKILL node 1", func() {
		nodes.set(1, "")
		procs[1].cmd.Process.Kill()
	})
	step(5*time.Second, "restart node 1", func() {
		procs[1] = startProc(t, args...)
		nodes.set(1, procs[1].url)
	})
	step(7*time.Second, "bus outage ("+busKind+")", bus.outage)
	step(9*time.Second, "bus back ("+busKind+")", bus.restore)
	step(11*time.Second, "SIGKILL node 2, right away restarted", func() {
		nodes.set(2, "")
		procs[2].cmd.Process.Kill()
		procs[2] = startProc(t, args...)
		nodes.set(2, procs[2].url)
	})
	pubs.Wait()

	// The expected feed of each user.
	acksMu.Lock()
	expectMu.Lock()
	// user → publisher → ids in ack order, across the user's two streams: a publisher's
	// notification is delivered before the next one it published, whichever streams they are
	// in, through node kills and the bus outage (see docs/design.md, "Order between a user's
	// two streams").
	order := map[string]map[int][]string{}
	acked := map[string]string{} // publish (chaosEvent.key) → when and by which node it was acknowledged
	for u := 0; u < users; u++ {
		expect[userName(u)] = map[string]string{}
		order[userName(u)] = map[int][]string{}
	}
	var allIDs []int64
	topicAcks := 0
	for _, a := range acks {
		if a.id == "" {
			topicAcks++
		} else {
			id, _ := strconv.ParseInt(a.id, 10, 64)
			allIDs = append(allIDs, id)
		}
		for u := 0; u < users; u++ {
			name := userName(u)
			if a.user == "" || a.user == name {
				k := eventKey(a.p, a.i)
				acked[k] = fmt.Sprintf("acked %.2fs by %s", a.at.Seconds(), a.node[strings.LastIndexByte(a.node, ':')+1:])
				expect[name][k] = a.id
				order[name][a.p] = append(order[name][a.p], k)
			}
		}
	}
	expectMu.Unlock()
	acksMu.Unlock()
	close(published)
	done := make(chan struct{})
	go func() { clientsDone.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(45 * time.Second):
		cancel()
		<-done
		t.Error("clients did not receive their whole feed within 45s of the last publish")
	}

	// Every client's stream is exactly its user's feed, each publisher's order kept, each stream
	// advancing one sequence number at a time.
	for ci, c := range clients {
		name := fmt.Sprintf("client %d (%s)", ci, c.user)
		for _, e := range c.errs {
			t.Errorf("%s: %s", name, e)
		}
		seen := map[string]bool{}
		prev, firstEpoch := herald.Cursor{}, ""
		for _, ev := range c.events {
			k := ev.key()
			if seen[k] {
				t.Errorf("%s: publish %s (notification %s) twice", name, k, ev.env.ID)
			}
			seen[k] = true
			switch id, ok := expect[c.user][k]; {
			case !ok:
				t.Errorf("%s: publish %s (notification %s) is not in the feed (an unacknowledged publish?)", name, k, ev.env.ID)
			case id != "" && id != ev.env.ID:
				t.Errorf("%s: publish %s arrived as notification %s, acknowledged as %s", name, k, ev.env.ID, id)
			}
			cur, epoch, err := herald.ParsePosition(ev.cursor)
			if firstEpoch == "" {
				firstEpoch = epoch
			}
			if err == nil && (epoch == "" || epoch != firstEpoch) {
				// Restarts and bus outages keep the store's epoch: only a restore changes it.
				t.Errorf("%s: cursor %q is of epoch %q, not the store's %q", name, ev.cursor, epoch, firstEpoch)
			}
			if err != nil {
				t.Errorf("%s: cursor %q", name, ev.cursor)
				continue
			}
			moved, pm, stayed, ps := cur.User, prev.User, cur.Broadcast, prev.Broadcast
			if ev.env.Broadcast {
				moved, pm, stayed, ps = cur.Broadcast, prev.Broadcast, cur.User, prev.User
			}
			if moved != pm+1 || stayed != ps {
				t.Errorf("%s: cursor went from %s to %s for notification %s", name, prev, cur, ev.env.ID)
			}
			prev = cur
		}
		missing := 0
		for k := range expect[c.user] {
			if !seen[k] {
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("%s: %d of %d notifications never received", name, missing, len(expect[c.user]))
		}
		for p, ids := range order[c.user] {
			var got []string
			var gotEvents []chaosEvent
			for _, ev := range c.events {
				if _, ok := expect[c.user][ev.key()]; ok && ev.env.Data.P == p {
					got = append(got, ev.key())
					gotEvents = append(gotEvents, ev)
				}
			}
			if !slices.Equal(got, ids) {
				at := 0
				for at < min(len(got), len(ids)) && got[at] == ids[at] {
					at++
				}
				var shown []string // publish key, type, id, cursor, and when it was acknowledged
				for _, ev := range gotEvents[at:min(len(got), at+4)] {
					shown = append(shown, fmt.Sprintf("%s(%s #%s at %s, %s; via %s)", ev.key(), ev.typ, ev.env.ID, ev.cursor, acked[ev.key()], ev.via))
				}
				var wanted []string
				for _, k := range ids[at:min(len(ids), at+4)] {
					wanted = append(wanted, k+"("+acked[k]+")")
				}
				t.Errorf("%s: publisher %d's order differs at %d of %d: got %v, want %v", name, p, at, len(ids),
					shown, wanted)
			}
		}
	}

	// Every acknowledged publish is in PostgreSQL.
	conn, err := pgx.Connect(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var stored int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM herald_notifications WHERE id = ANY($1)`, allIDs).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != len(allIDs) {
		t.Errorf("%d of %d acknowledged notifications are in PostgreSQL", stored, len(allIDs))
	}
	total := 0
	for _, c := range clients {
		total += len(c.events)
	}
	t.Logf("%d notifications acknowledged (%d of them by topic publishes), %d received by %d clients across the chaos", len(acks), topicAcks, total, len(clients))
}
