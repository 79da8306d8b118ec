package httpapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/metrics"
	"github.com/heraldhq/herald/internal/store/sqlite"
)

// prefsServer serves the API over a real SQLite store with real authentication: HS256 tokens
// for alice and bob, a publisher token, and a publisher key. changed records OnPreferences.
type prefsServer struct {
	h        http.Handler
	store    *sqlite.Store
	metrics  *metrics.Metrics
	tokens   map[string]string // alice, bob, publisher, key
	mu       sync.Mutex
	changed  []string
	maxRules int
}

func newPrefsServer(t *testing.T) *prefsServer {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "herald.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	secret := []byte("0123456789abcdef0123456789abcdef")
	key := auth.NewKey()
	keys, err := auth.ParseKeys("backend="+auth.HashKey(key), false)
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Config{Secret: secret, PublishScope: "herald:publish", Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	s := &prefsServer{store: st, metrics: metrics.New(), tokens: map[string]string{"key": key}, maxRules: 5}
	for name, tok := range map[string]auth.Token{
		"alice":     {User: "alice", TTL: time.Hour},
		"bob":       {User: "bob", TTL: time.Hour},
		"publisher": {Publish: true, TTL: time.Hour},
	} {
		if s.tokens[name], err = auth.Mint(secret, tok, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	api := New(Options{Store: st, Auth: authn, Metrics: s.metrics, NoPark: true, MaxPreferenceRules: s.maxRules,
		OnPreferences: func(user string) {
			s.mu.Lock()
			s.changed = append(s.changed, user)
			s.mu.Unlock()
		}})
	t.Cleanup(api.Close)
	if s.h, err = api.Handler(); err != nil {
		t.Fatal(err)
	}
	return s
}

// do sends a request as who (a key of tokens, or "" for none) and returns the status and body.
func (s *prefsServer) do(t *testing.T, who, method, path, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if who != "" {
		r.Header.Set("Authorization", "Bearer "+s.tokens[who])
	}
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

func errCode(body string) string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	json.Unmarshal([]byte(body), &e)
	return e.Error.Code
}

const noPrefs = `{"mutes":{"in_app":{"types":[],"prefixes":[],"topics":[]},"push":{"types":[],"prefixes":[],"topics":[]}}}`

// TestPreferencesAPI: who may read and replace whose preferences, and what bodies are refused,
// with which status and code.
func TestPreferencesAPI(t *testing.T) {
	s := newPrefsServer(t)
	tests := []struct {
		name, who, method, path, body string
		status                        int
		code                          string // of the error; "" for a success
		want                          string // the body of a success, when checked
	}{
		{"a new user has none", "alice", "GET", "/v1/preferences", "", 200, "", noPrefs},
		{"set own", "alice", "PUT", "/v1/preferences",
			`{"mutes":{"in_app":{"types":["digest","comment"],"prefixes":["marketing."],"topics":["issue:42","issue:42"]},"push":{"types":["digest"]}}}`, 200, "",
			`{"mutes":{"in_app":{"types":["comment","digest"],"prefixes":["marketing."],"topics":["issue:42"]},"push":{"types":["digest"],"prefixes":[],"topics":[]}}}`},
		{"read own", "alice", "GET", "/v1/preferences", "", 200, "",
			`{"mutes":{"in_app":{"types":["comment","digest"],"prefixes":["marketing."],"topics":["issue:42"]},"push":{"types":["digest"],"prefixes":[],"topics":[]}}}`},
		{"bob sees only his", "bob", "GET", "/v1/preferences", "", 200, "", noPrefs},
		{"publisher reads alice's", "publisher", "GET", "/v1/users/alice/preferences", "", 200, "",
			`{"mutes":{"in_app":{"types":["comment","digest"],"prefixes":["marketing."],"topics":["issue:42"]},"push":{"types":["digest"],"prefixes":[],"topics":[]}}}`},
		{"publisher key sets bob's", "key", "PUT", "/v1/users/bob/preferences", `{"mutes":{"push":{"topics":["org/acme"]}}}`, 200, "",
			`{"mutes":{"in_app":{"types":[],"prefixes":[],"topics":[]},"push":{"types":[],"prefixes":[],"topics":["org/acme"]}}}`},
		{"empty mutes clear", "bob", "PUT", "/v1/preferences", `{"mutes":{}}`, 200, "", noPrefs},

		{"no credential", "", "GET", "/v1/preferences", "", 401, herald.EUNAUTHORIZED, ""},
		{"no credential to set", "", "PUT", "/v1/preferences", `{"mutes":{}}`, 401, herald.EUNAUTHORIZED, ""},
		{"a publisher key is no user", "key", "GET", "/v1/preferences", "", 403, herald.EFORBIDDEN, ""},
		{"a publish token names no user", "publisher", "PUT", "/v1/preferences", `{"mutes":{}}`, 403, herald.EFORBIDDEN, ""},
		{"subscriber reads another's", "alice", "GET", "/v1/users/bob/preferences", "", 403, herald.EFORBIDDEN, ""},
		{"subscriber sets another's", "alice", "PUT", "/v1/users/bob/preferences", `{"mutes":{}}`, 403, herald.EFORBIDDEN, ""},
		{"subscriber sets own by name", "alice", "PUT", "/v1/users/alice/preferences", `{"mutes":{}}`, 403, herald.EFORBIDDEN, ""},
		{"nobody sets anyone's", "", "PUT", "/v1/users/bob/preferences", `{"mutes":{}}`, 401, herald.EUNAUTHORIZED, ""},

		{"bad channel", "alice", "PUT", "/v1/preferences", `{"mutes":{"email":{"types":["a"]}}}`, 400, herald.EINVALID, ""},
		{"bad type", "alice", "PUT", "/v1/preferences", `{"mutes":{"in_app":{"types":["a b"]}}}`, 400, herald.EINVALID, ""},
		{"reserved type", "alice", "PUT", "/v1/preferences", `{"mutes":{"in_app":{"types":["herald.missed"]}}}`, 400, herald.EINVALID, ""},
		{"bad prefix", "alice", "PUT", "/v1/preferences", `{"mutes":{"in_app":{"prefixes":["Herald."]}}}`, 400, herald.EINVALID, ""},
		{"empty prefix", "alice", "PUT", "/v1/preferences", `{"mutes":{"in_app":{"prefixes":[""]}}}`, 400, herald.EINVALID, ""},
		{"bad topic", "alice", "PUT", "/v1/preferences", `{"mutes":{"push":{"topics":["issue 42"]}}}`, 400, herald.EINVALID, ""},
		{"no mutes", "alice", "PUT", "/v1/preferences", `{}`, 400, herald.EINVALID, ""},
		{"unknown field", "alice", "PUT", "/v1/preferences", `{"mutes":{},"mute_all":true}`, 400, herald.EINVALID, ""},
		{"unknown list", "alice", "PUT", "/v1/preferences", `{"mutes":{"in_app":{"regexes":["."]}}}`, 400, herald.EINVALID, ""},
		{"not JSON", "alice", "PUT", "/v1/preferences", `{"mutes":`, 400, herald.EINVALID, ""},
		{"a list that is not one", "alice", "PUT", "/v1/preferences", `{"mutes":{"in_app":{"types":"a"}}}`, 400, herald.EINVALID, ""},
		{"bad user in the path", "publisher", "PUT", "/v1/users/a%09b/preferences", `{"mutes":{}}`, 400, herald.EINVALID, ""},
		{"too many rules", "alice", "PUT", "/v1/preferences",
			`{"mutes":{"in_app":{"types":["a","b","c"]},"push":{"types":["a","b","c"]}}}`, 413, herald.ETOOLARGE, ""},
		{"far too many rules", "alice", "PUT", "/v1/preferences",
			`{"mutes":{"in_app":{"types":[` + strings.Repeat(`"a",`, 50) + `"a"]}}}`, 413, herald.ETOOLARGE, ""},
		{"repeats count once", "bob", "PUT", "/v1/preferences",
			`{"mutes":{"in_app":{"types":["a","a","a","a","a","a","b"]}}}`, 200, "", ""},
		{"at the limit", "bob", "PUT", "/v1/preferences",
			`{"mutes":{"in_app":{"types":["a","b","c"],"topics":["t"]},"push":{"prefixes":["p"]}}}`, 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := s.do(t, tt.who, tt.method, tt.path, tt.body)
			if status != tt.status || errCode(body) != tt.code {
				t.Fatalf("%s %s: %d %s, want %d with code %q", tt.method, tt.path, status, body, tt.status, tt.code)
			}
			if tt.want != "" && strings.TrimSpace(body) != tt.want {
				t.Fatalf("body %s\nwant %s", body, tt.want)
			}
		})
	}
	// A refused change changed nothing.
	if _, body := s.do(t, "alice", "GET", "/v1/preferences", ""); !strings.Contains(body, `"marketing."`) {
		t.Fatalf("alice's preferences after refused changes: %s", body)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if want := []string{"alice", "bob", "bob", "bob", "bob"}; !slices.Equal(s.changed, want) {
		t.Fatalf("OnPreferences told of %q, want %q (each accepted change, none refused)", s.changed, want)
	}
}

// TestPublishMuted: a publish leaves out the recipients who muted it and says how many, counted
// in herald_notifications_muted_total; a critical one reaches them; a replay answers the same,
// and counts nothing more.
func TestPublishMuted(t *testing.T) {
	s := newPrefsServer(t)
	if status, body := s.do(t, "alice", "PUT", "/v1/preferences", `{"mutes":{"in_app":{"prefixes":["marketing."]}}}`); status != 200 {
		t.Fatalf("PUT: %d %s", status, body)
	}
	muted := func() float64 {
		fams, err := s.metrics.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() == "herald_notifications_muted_total" {
				for _, m := range f.Metric {
					if m.Label[0].GetValue() == herald.ChannelInApp {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return -1
	}
	tests := []struct {
		name, body string
		want       string // the 201's body, but ids
		metric     float64
	}{
		{"muted", `{"to":["alice","bob"],"type":"marketing.weekly","key":"k1"}`, `{"muted":1,"notifications":[{"id":"#","user":"bob"}]}`, 1},
		{"replay", `{"to":["alice","bob"],"type":"marketing.weekly","key":"k1"}`, `{"muted":1,"notifications":[{"id":"#","user":"bob"}]}`, 1},
		{"all muted", `{"to":["alice"],"type":"marketing.weekly"}`, `{"muted":1,"notifications":[]}`, 2},
		{"critical", `{"to":["alice","bob"],"type":"marketing.weekly","critical":true}`, `{"notifications":[{"id":"#","user":"alice"},{"id":"#","user":"bob"}]}`, 2},
		{"other type", `{"to":["alice"],"type":"marketing"}`, `{"notifications":[{"id":"#","user":"alice"}]}`, 2},
		{"broadcast is never muted here", `{"broadcast":true,"type":"marketing.weekly"}`, `{"notifications":[{"id":"#"}]}`, 2},
		{"critical must be a boolean", `{"to":["alice"],"critical":"yes"}`, `{"error":{"code":"invalid"}}`, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := s.do(t, "key", "POST", "/v1/notifications", tt.body)
			got := anonymize(body)
			if (status == 201) != !strings.Contains(tt.want, "error") || got != tt.want {
				t.Fatalf("%d %s\nwant %s", status, got, tt.want)
			}
			if m := muted(); m != tt.metric {
				t.Fatalf("herald_notifications_muted_total %v, want %v", m, tt.metric)
			}
		})
	}
}

// anonymize replaces the ids of a publish answer by "#", and an error's message by nothing; the
// keys come out sorted.
func anonymize(body string) string {
	var v map[string]any
	if json.Unmarshal([]byte(body), &v) != nil {
		return body
	}
	if ns, ok := v["notifications"].([]any); ok {
		for _, n := range ns {
			n.(map[string]any)["id"] = "#"
		}
	}
	if e, ok := v["error"].(map[string]any); ok {
		delete(e, "message")
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestPreferencesFrame: the event a user's streams receive when the preferences change.
func TestPreferencesFrame(t *testing.T) {
	got := string(PreferencesFrame(herald.Counts{Unread: 3, Unseen: 1}))
	if want := "event: herald.preferences\ndata: {\"unread\":3,\"unseen\":1}\n\n"; got != want {
		t.Fatalf("frame %q, want %q", got, want)
	}
}

// FuzzPreferencesBody: whatever a PUT of preferences carries, parsing never panics, and what it
// accepts is within the limit, every rule valid, sorted and without repeats.
func FuzzPreferencesBody(f *testing.F) {
	for _, s := range []string{
		`{"mutes":{}}`,
		`{"mutes":{"in_app":{"types":["a","b"],"prefixes":["marketing."],"topics":["issue:42"]},"push":{"types":["digest"]}}}`,
		`{"mutes":{"email":{"types":["a"]}}}`,
		`{"mutes":{"in_app":{"prefixes":["herald."]}}}`,
		`{"mutes":{"in_app":{"types":["a","a","a"]}}}`,
		`{"mutes":null}`,
	} {
		f.Add([]byte(s))
	}
	a := New(Options{MaxPreferenceRules: 5, NoPark: true})
	f.Fuzz(func(t *testing.T, body []byte) {
		var b prefsBody
		if err := json.Unmarshal(body, &b); err != nil {
			return
		}
		p, err := a.parsePrefs(b)
		if err != nil {
			if c := herald.ErrorCode(err); c != herald.EINVALID && c != herald.ETOOLARGE {
				t.Fatalf("error code %q: %v", c, err)
			}
			return
		}
		if len(p.Mutes) > 5 {
			t.Fatalf("%d rules accepted, limit 5", len(p.Mutes))
		}
		for i, m := range p.Mutes {
			if err := m.Validate(); err != nil {
				t.Fatalf("accepted an invalid rule %+v: %v", m, err)
			}
			if i > 0 && !mutesLess(p.Mutes[i-1], m) {
				t.Fatalf("rules not sorted and unique: %+v", p.Mutes)
			}
		}
	})
}

func mutesLess(a, b herald.Mute) bool {
	if a.Channel != b.Channel {
		return a.Channel < b.Channel
	}
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	return a.Value < b.Value
}

// TestPrefsCache: a node holds a user's rules once, while a stream of theirs is open; a change
// reloads them from the store and tells onReload; the reloader stops with stop, and a change of a
// user without streams here starts nothing.
func TestPrefsCache(t *testing.T) {
	s := newPrefsServer(t)
	c := newPrefsCache(s.store, slog.New(slog.DiscardHandler))
	reloaded := make(chan string, 4)
	c.onReload = func(user string) { reloaded <- user }
	ctx := t.Context()

	c.changed("alice", false) // nobody here: no reloader
	c.mu.Lock()
	started := len(c.dirty) > 0
	c.mu.Unlock()
	if started {
		t.Fatal("a change of a user without streams was queued")
	}

	a1, err := c.acquire(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	a2, err := c.acquire(ctx, "alice")
	if err != nil || a1 != a2 || a1.get() == nil || len(a1.get().Mutes) != 0 {
		t.Fatalf("second acquire: %p %p %v", a1, a2, err)
	}
	if err := s.store.SetPreferences(ctx, "alice", herald.Preferences{Mutes: []herald.Mute{{Channel: herald.ChannelInApp, Kind: herald.MuteType, Value: "promo"}}}); err != nil {
		t.Fatal(err)
	}
	c.changed("alice", false)
	select {
	case u := <-reloaded:
		if u != "alice" || !a1.get().Muted(herald.ChannelInApp, "promo", "") {
			t.Fatalf("reloaded %q, rules %+v", u, a1.get())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reload within 10s")
	}
	// After a bus loss every user held is read again; a change the bus lost is told.
	if err := s.store.SetPreferences(ctx, "alice", herald.Preferences{Mutes: []herald.Mute{{Channel: herald.ChannelInApp, Kind: herald.MuteType, Value: "digest"}}}); err != nil {
		t.Fatal(err)
	}
	c.changed("", true)
	select {
	case u := <-reloaded:
		if u != "alice" {
			t.Fatalf("reloaded %q", u)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reload of all within 10s")
	}
	c.release(a1)
	c.release(a2)
	c.mu.Lock()
	left := len(c.users)
	c.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d users held after their streams ended", left)
	}
	c.stop()
	select {
	case <-c.stopped:
	default:
		t.Fatal("stop returned before the reloader ended")
	}
	c.stop() // twice is harmless
	c.changed("alice", true)
}
