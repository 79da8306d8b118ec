package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/sse"
)

// Preferences (issue 17 §2): what each user muted, by channel. A user reads and replaces their
// own (GET/PUT /v1/preferences); a publisher reads and replaces anyone's (GET/PUT
// /v1/users/{user}/preferences), for settings pages built server-side. The store applies the
// in-app rules when it writes a publish; streams apply them to broadcasts as they deliver them
// (conn.muted), with the rules of their user kept here, in memory, for as long as the user has
// a stream open on this node, and reloaded when they change (PreferencesChanged).

// PreferencesType is the control event a user's streams receive when the user's preferences
// change (from any tab, device or server-side page): {"unread","unseen"}, the user's counts
// now that other broadcasts are left out. It has no id: it is not in the feed.
const PreferencesType = herald.ControlPrefix + "preferences"

// prefsBody is the JSON of a user's preferences, in requests and answers:
//
//	{"mutes": {"in_app": {"types": [...], "prefixes": [...], "topics": [...]}, "push": {...}}}
//
// A PUT replaces all the rules: a channel or list left out has none. Answers name every
// channel and list, empty ones as [].
type prefsBody struct {
	Mutes map[string]*channelRules `json:"mutes"`
}

// channelRules are the rules of one channel.
type channelRules struct {
	Types    []string `json:"types"`
	Prefixes []string `json:"prefixes"`
	Topics   []string `json:"topics"`
}

// maxPrefsBody bounds a preferences body: far more than the rules allowed, each up to a topic's
// 255 bytes, quoted.
func (a *API) maxPrefsBody() int64 { return int64(a.opts.MaxPreferenceRules)*300 + 4096 }

// bodyOf is the answer form of p: every channel, every list.
func bodyOf(p herald.Preferences) prefsBody {
	b := prefsBody{Mutes: map[string]*channelRules{}}
	for _, ch := range herald.Channels {
		b.Mutes[ch] = &channelRules{Types: []string{}, Prefixes: []string{}, Topics: []string{}}
	}
	for _, m := range p.Mutes {
		r := b.Mutes[m.Channel]
		if r == nil {
			continue // a channel of a later version, in a store shared with it
		}
		switch m.Kind {
		case herald.MuteType:
			r.Types = append(r.Types, m.Value)
		case herald.MutePrefix:
			r.Prefixes = append(r.Prefixes, m.Value)
		case herald.MuteTopic:
			r.Topics = append(r.Topics, m.Value)
		}
	}
	return b
}

// parsePrefs validates a request body into preferences, normalized, within the limit.
func (a *API) parsePrefs(b prefsBody) (herald.Preferences, error) {
	var p herald.Preferences
	if b.Mutes == nil {
		return p, herald.Errorf(herald.EINVALID, "\"mutes\" (an object of channels: %q, %q) is required; {\"mutes\": {}} mutes nothing", herald.ChannelInApp, herald.ChannelPush)
	}
	// More rules than the limit are refused before they are checked one by one.
	n := 0
	for _, r := range b.Mutes {
		if r != nil {
			n += len(r.Types) + len(r.Prefixes) + len(r.Topics)
		}
	}
	if n > 2*a.opts.MaxPreferenceRules {
		return p, a.tooManyRules(n)
	}
	for ch, r := range b.Mutes {
		if err := (herald.Mute{Channel: ch, Kind: herald.MuteType, Value: "x"}).Validate(); err != nil {
			return p, prefixed("mutes: ", err)
		}
		if r == nil {
			continue
		}
		for _, list := range []struct {
			kind   string
			name   string
			values []string
		}{{herald.MuteType, "types", r.Types}, {herald.MutePrefix, "prefixes", r.Prefixes}, {herald.MuteTopic, "topics", r.Topics}} {
			for i, v := range list.values {
				m := herald.Mute{Channel: ch, Kind: list.kind, Value: v}
				if err := m.Validate(); err != nil {
					return p, prefixed(fmt.Sprintf("mutes.%s.%s[%d]: ", ch, list.name, i), err)
				}
				p.Mutes = append(p.Mutes, m)
			}
		}
	}
	p.Normalize()
	if len(p.Mutes) > a.opts.MaxPreferenceRules {
		return p, a.tooManyRules(len(p.Mutes))
	}
	return p, nil
}

func (a *API) tooManyRules(n int) error {
	return herald.Errorf(herald.ETOOLARGE, "%d rules; a user has at most %d (--max-preference-rules): mute a prefix rather than each type", n, a.opts.MaxPreferenceRules)
}

// myPreferences is GET /v1/preferences: the calling subscriber's.
func (a *API) myPreferences(w http.ResponseWriter, r *http.Request) {
	sub, err := a.opts.Auth.Subscriber(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.getPreferences(w, r, sub.User)
}

// setMyPreferences is PUT /v1/preferences: the calling subscriber replaces theirs.
func (a *API) setMyPreferences(w http.ResponseWriter, r *http.Request) {
	sub, err := a.opts.Auth.Subscriber(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.setPreferences(w, r, sub.User)
}

// userPreferences is GET /v1/users/{user}/preferences, for publishers.
func (a *API) userPreferences(w http.ResponseWriter, r *http.Request) {
	if user, ok := a.preferencesUser(w, r); ok {
		a.getPreferences(w, r, user)
	}
}

// setUserPreferences is PUT /v1/users/{user}/preferences, for publishers.
func (a *API) setUserPreferences(w http.ResponseWriter, r *http.Request) {
	if user, ok := a.preferencesUser(w, r); ok {
		a.setPreferences(w, r, user)
	}
}

// preferencesUser authenticates a publisher and reads {user}; when it returns false the request
// has been answered.
func (a *API) preferencesUser(w http.ResponseWriter, r *http.Request) (string, bool) {
	if _, ok := a.publisher(w, r); !ok {
		return "", false
	}
	user := r.PathValue("user")
	if err := herald.ValidateUser(user); err != nil {
		a.writeError(w, r, prefixed("user: ", err))
		return "", false
	}
	return user, true
}

func (a *API) getPreferences(w http.ResponseWriter, r *http.Request, user string) {
	p, err := a.opts.Store.Preferences(r.Context(), user)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, bodyOf(p))
}

// setPreferences replaces user's preferences and answers 200 with them as stored (normalized).
// The user's open streams, on every node, hear of it (OnPreferences).
func (a *API) setPreferences(w http.ResponseWriter, r *http.Request, user string) {
	var b prefsBody
	if err := decodeSmall(w, r, a.maxPrefsBody(), &b); err != nil {
		a.writeError(w, r, err)
		return
	}
	p, err := a.parsePrefs(b)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.opts.Store.SetPreferences(r.Context(), user, p); err != nil {
		a.writeError(w, r, err)
		return
	}
	if a.opts.OnPreferences != nil {
		a.opts.OnPreferences(user)
	}
	writeJSON(w, http.StatusOK, bodyOf(p))
}

// ---------------------------------------------------------------------------------------------
// The rules of the users with streams open here.

// userPrefs are one user's rules, shared by the user's streams on this node.
type userPrefs struct {
	user string
	refs int // streams holding it; guarded by prefsCache.mu
	// load serializes the reads of the rules from the store, so that the last one set is the
	// last one read: a read that began before a change never overwrites one that began after.
	load   sync.Mutex
	loaded bool // guarded by load
	cur    atomic.Pointer[herald.Preferences]
}

// get returns the rules now; nil (nothing muted) for a nil u.
func (u *userPrefs) get() *herald.Preferences {
	if u == nil {
		return nil
	}
	return u.cur.Load()
}

// prefsCache holds the rules of the users with a stream open on this node, and reloads them
// from the store when they change. Its reloader goroutine starts with the first change and
// stops with API.Close.
type prefsCache struct {
	store herald.Store
	log   *slog.Logger
	// onReload, when set, is told of each user whose rules were reloaded (their streams then
	// hear of it).
	onReload func(user string)

	mu    sync.Mutex
	users map[string]*userPrefs
	dirty map[string]bool // users whose rules changed, to reload
	all   bool            // reload every user's (the bus may have lost changes)

	once    sync.Once
	wake    chan struct{}
	done    chan struct{}
	stopped chan struct{}
	closed  bool // guarded by mu
}

func newPrefsCache(store herald.Store, log *slog.Logger) *prefsCache {
	return &prefsCache{store: store, log: log, users: map[string]*userPrefs{}, dirty: map[string]bool{},
		wake: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
}

// acquire returns user's rules for a stream that opens, read from the store unless another
// stream of the user here holds them already. The stream calls release when it ends.
func (c *prefsCache) acquire(ctx context.Context, user string) (*userPrefs, error) {
	c.mu.Lock()
	u := c.users[user]
	if u == nil {
		u = &userPrefs{user: user}
		c.users[user] = u
	}
	u.refs++
	c.mu.Unlock()
	// Registered before the read: a change from now on reloads what this read finds.
	u.load.Lock()
	defer u.load.Unlock()
	if u.loaded {
		return u, nil
	}
	p, err := c.store.Preferences(ctx, user)
	if err != nil {
		c.release(u)
		return nil, err
	}
	u.cur.Store(&p)
	u.loaded = true
	return u, nil
}

// release lets go of a stream's rules.
func (c *prefsCache) release(u *userPrefs) {
	if u == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if u.refs--; u.refs == 0 && c.users[u.user] == u {
		delete(c.users, u.user)
	}
}

// changed marks user's rules for a reload, or, for all, every user's.
func (c *prefsCache) changed(user string, all bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if all {
		c.all = true
	} else if c.users[user] != nil {
		c.dirty[user] = true
	} else {
		c.mu.Unlock()
		return // no stream of the user here
	}
	c.mu.Unlock()
	c.once.Do(func() { go c.reloader() })
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// reloadTimeout bounds one read of a user's rules by the reloader.
const reloadTimeout = 5 * time.Second

// reloader reloads the rules that changed, one user at a time, until stop.
func (c *prefsCache) reloader() {
	defer close(c.stopped)
	for {
		select {
		case <-c.done:
			return
		case <-c.wake:
		}
		c.mu.Lock()
		var todo []*userPrefs
		for user := range c.dirty {
			if u := c.users[user]; u != nil && !c.all {
				todo = append(todo, u)
			}
		}
		if c.all {
			for _, u := range c.users {
				todo = append(todo, u)
			}
		}
		clear(c.dirty)
		c.all = false
		c.mu.Unlock()
		for _, u := range todo {
			select {
			case <-c.done:
				return
			default:
			}
			if c.reload(u) && c.onReload != nil {
				c.onReload(u.user)
			}
		}
	}
}

// reload reads u's rules again and reports whether they changed. After a bus loss every user's
// rules are read again, nearly always unchanged: their streams hear of a change only, rather
// than every stream of the node getting an event (and its client a reason to reload its list)
// for nothing.
func (c *prefsCache) reload(u *userPrefs) bool {
	u.load.Lock()
	defer u.load.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	p, err := c.store.Preferences(ctx, u.user)
	if err != nil {
		// The streams keep the rules they have until they reconnect, which reads them anew.
		c.log.Warn("preferences changed but could not be read; the user's open streams keep their old rules until they reconnect", "err", err)
		return false
	}
	old := u.cur.Load()
	u.cur.Store(&p)
	u.loaded = true
	return old == nil || !slices.Equal(old.Mutes, p.Mutes)
}

// stop ends the reloader, if it started, and waits for it.
func (c *prefsCache) stop() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	close(c.done)
	started := true
	c.once.Do(func() { started = false })
	if started {
		<-c.stopped
	}
}

// PreferencesChanged tells the streams of user open on this node that the user's preferences
// changed in the store: their rules are reloaded, and they receive a herald.preferences event
// with the user's counts. App calls it for every change, on every node (through the bus in a
// cluster).
func (a *API) PreferencesChanged(user string) { a.prefs.changed(user, false) }

// ReloadPreferences reloads the rules of every user with a stream open on this node: after the
// bus lost messages, some of which may have been changes of preferences.
func (a *API) ReloadPreferences() { a.prefs.changed("", true) }

// preferencesReloaded tells user's streams here of new preferences, with the user's counts,
// which the rules change (muted broadcasts are not counted).
func (a *API) preferencesReloaded(user string) {
	if a.opts.Hub == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	c, err := a.opts.Store.Counts(ctx, user)
	if err != nil {
		return // the streams filter by the new rules; the badge is right at the next read
	}
	a.opts.Hub.Notify(user, hub.NewControl(PreferencesFrame(c)))
}

// PreferencesFrame encodes the herald.preferences event: {"unread","unseen"}.
func PreferencesFrame(c herald.Counts) []byte {
	f, _ := sse.AppendEvent(nil, "", PreferencesType, fmt.Appendf(nil, `{"unread":%d,"unseen":%d}`, c.Unread, c.Unseen))
	return f
}

// muted reports whether the stream's user muted n in the app. Only broadcasts are left out
// here, and never a critical one: a user's own notifications that they muted were never
// created. Like the ?types= filter, a muted broadcast still moves the cursor.
func (c *conn) muted(n *herald.Notification) bool {
	return n.User == herald.BroadcastStream && !n.Critical && c.prefs.get().Muted(herald.ChannelInApp, n.Type, n.Topic)
}
