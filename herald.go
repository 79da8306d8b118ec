// Package herald is the domain of the Herald notification service: notifications, feeds and
// their cursors, the errors every layer speaks, and the Store the adapters implement.
//
// It imports no adapter. HTTP lives in internal/httpapi, storage in internal/store/*, local
// fan-out in internal/hub, and internal/app wires them together.
package herald

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// BroadcastStream is the stream key of broadcasts. User ids are never empty, so it cannot collide
// with a user's stream.
const BroadcastStream = ""

// DefaultType is the event type of a notification published without one.
const DefaultType = "notification"

// ControlPrefix starts every event type Herald itself emits on a stream (such as herald.missed).
// Publishers may not use it, so clients can tell control events from notifications.
const ControlPrefix = "herald."

// Limits on identifiers, checked wherever they enter the system.
const (
	MaxUserLen = 256
	MaxKeyLen  = 255
	MaxTypeLen = 64
	// MaxTopicLen bounds a topic name (see ValidateTopic).
	MaxTopicLen = 255
)

// Notification is one durable message in a feed: addressed to one user, or broadcast to all.
type Notification struct {
	// ID identifies the notification store-wide and orders the inbox (newest first).
	ID int64
	// User is the recipient; BroadcastStream ("") for a broadcast.
	User string
	// Seq is the position in its stream (the user's, or the broadcast stream): 1, 2, 3, … with no
	// gap, assigned in the transaction that stores the notification.
	Seq  uint64
	Type string
	// Content is what it says to its reader (title, body, links…); nil when the publisher
	// gave none. It is never changed once set, so the notifications of one draft share it.
	Content   *Content
	Data      json.RawMessage
	CreatedAt time.Time
	// ReadAt is when the reading user marked it read; zero when unread. Only inbox reads fill it
	// (Inbox, Get), as they fill Seen and ArchivedAt, because a broadcast's state is per user.
	ReadAt time.Time
	// Seen: the user has seen it, in a list or by reading it: its id is at most the user's seen
	// mark (Store.MarkSeen), or it is read.
	Seen bool
	// ArchivedAt is when the user archived it; zero when it is in the inbox.
	ArchivedAt time.Time
	// Topic is the topic it was published to; empty when it was addressed by name or broadcast.
	Topic string
	// Critical: the publisher marked it critical, so no mute holds it back (see Preferences).
	Critical bool
}

// Broadcast reports whether n was sent to everyone.
func (n *Notification) Broadcast() bool { return n.User == BroadcastStream }

// Draft is a notification as a publisher asks for it, before the store gives it identity.
type Draft struct {
	// To lists the recipients; empty when Broadcast or Topic is set.
	To        []string
	Broadcast bool
	// Topic, when set, addresses the draft to the topic's subscribers at the moment of its
	// commit, except those in Exclude (the actor, typically): the store reads them in the
	// transaction that writes one notification per subscriber, so a subscription changing
	// concurrently is either fully in or fully out. To must be empty.
	Topic   string
	Exclude []string
	Type    string
	// Content is checked by Content.Validate before a draft reaches a store; nil for none.
	Content *Content
	Data    json.RawMessage
	// Key is the idempotency key: a retried draft with the same key (within the same scope)
	// returns the first result and stores nothing.
	Key string
	// Critical drafts reach every recipient whatever they muted (security alerts, legal
	// notices). Other drafts are not written for a recipient who muted them in ChannelInApp:
	// the store reads the recipients' mutes in the append's transaction.
	Critical bool
	// Push says whether the draft's notifications may reach their users' browsers by Web Push:
	// PushDefault (a fallback after the store's push delay, for users who did not see it live),
	// PushAlways (at once, whoever is online) or PushNever. The store queues a push per
	// subscription of each recipient in the transaction that writes the notification.
	Push PushMode
}

// PushMode is a publisher's choice of Web Push for a draft (the publish body's "push").
type PushMode string

// The push modes. A broadcast is pushed only with PushAlways: a fallback for everyone who has
// not seen it would push it to nearly every subscriber anyway, later.
const (
	PushDefault PushMode = ""
	PushAlways  PushMode = "always"
	PushNever   PushMode = "never"
)

// Pushed reports whether a draft's notifications are queued for Web Push, and at once.
func (d *Draft) Pushed() (pushed, immediate bool) {
	switch {
	case d.Push == PushNever:
		return false, false
	case d.Push == PushAlways:
		return true, true
	}
	return !d.Broadcast, false
}

// PushSubscription is one browser's Web Push subscription (the Push API's PushSubscription): the
// push service's endpoint and the keys that encrypt for that browser (RFC 8291).
type PushSubscription struct {
	User     string
	Endpoint string
	// P256DH is the browser's ECDH public key and Auth its authentication secret, both
	// base64url as the browser gives them.
	P256DH string
	Auth   string
	// CreatedAt is when it was first registered.
	CreatedAt time.Time
}

// PushJob is one pending push in the outbox: one notification to one subscription, claimed by
// one node at a time.
type PushJob struct {
	// ID is the outbox row; Claim the token of the claim that returned it: finishing or retrying
	// a job needs both, so a node whose claim lapsed cannot touch a job another node now holds.
	ID    int64
	Claim string
	// Notification is the notification's id, User its recipient (for a broadcast too).
	Notification int64
	User         string
	Subscription PushSubscription
	// Immediate: queued with PushAlways; sent whether or not the user saw it.
	Immediate bool
	// Attempts counts the claims before this one.
	Attempts int
	// CreatedAt is when the notification was committed.
	CreatedAt time.Time
}

// PushOutboxStats describe the outbox now.
type PushOutboxStats struct {
	Pending int64
	// Oldest is the commit time of the oldest pending push; zero when none is.
	Oldest time.Time
}

// Receipt is the result of appending one Draft.
type Receipt struct {
	// Notifications are those the draft created, one per recipient in the draft's order (one for a
	// broadcast). For a replayed key only ID and User are set.
	Notifications []Notification
	// Replayed is true when the draft's key had been used before and nothing was created.
	Replayed bool
	// Recipients is how many users a topic draft reached. A replayed topic draft tells only
	// this (its Notifications are nil): a topic's result can be 100,000 ids, too many to keep
	// with its key.
	Recipients int
	// FirstID and LastID bound the ids of a replayed topic draft's notifications (zero when it
	// reached no one, or when its key was stored by a version before them), so that a retry
	// can re-announce them (Store.TopicNotifications). Only a replayed topic draft sets them.
	FirstID, LastID int64
	// Muted is how many recipients the draft did not reach because they muted it (in
	// ChannelInApp): no notification was created for them. A replay tells it too.
	Muted int
}

// FeedPage is a consistent read of a user's feed after a cursor.
type FeedPage struct {
	// User and Broadcast hold each stream's notifications after the cursor, in sequence order, at
	// most the requested limit of each.
	User      []Notification
	Broadcast []Notification
	// Heads are the last sequence numbers of both streams at the moment of the read.
	Heads Cursor
}

// InboxQuery selects a page of a user's inbox, newest first.
type InboxQuery struct {
	Limit int
	// Before, when non-zero, returns only notifications with a smaller ID (the next page).
	Before     int64
	UnreadOnly bool
	Types      []string
	// Archived selects the archived notifications instead of the inbox: a notification is in
	// exactly one of the two views.
	Archived bool
	// Topic, when set, selects only the notifications published to that topic (which are never
	// broadcasts).
	Topic string
}

// InboxPage is one page of an inbox.
type InboxPage struct {
	Notifications []Notification
	// NextBefore is the Before of the next page, or 0 when this is the last one.
	NextBefore int64
}

// Bus carries messages between the nodes of a cluster: each node's commits (and read-state
// changes), so that every node delivers them to the streams open on it. Messages are opaque to
// the bus (internal/bus encodes them). It is at most once and unordered: a message may be lost
// (an outage, a node killed between its commit and its publish) or overtaken. Nodes repair both
// from the store, so the bus decides how soon a notification arrives, never whether.
type Bus interface {
	// Publish sends a message to every node, this one included. It returns once the bus has
	// it, so that a message published after it cannot overtake it.
	Publish(ctx context.Context, msg []byte) error
	// Listen delivers what any node publishes until ctx ends, reconnecting as needed. It calls
	// lost whenever messages may have been missed (when its subscription is established, the
	// first time included, and after any loss it notices), so that the caller catches up from
	// the store. It returns when ctx ends.
	Listen(ctx context.Context, deliver func(msg []byte), lost func())
	// Ping reports whether the bus is reachable now.
	Ping(ctx context.Context) error
	Close() error
}

// Counts are the numbers a user's badge shows. Archived notifications count in neither: they
// are out of the inbox until unarchived.
type Counts struct {
	// Unread counts the notifications not read.
	Unread int64
	// Unseen counts those neither seen nor read: what arrived since the user last opened the
	// list (Store.MarkSeen).
	Unseen int64
}

// StateKind says which of a user's states of notifications a StateChange changed.
type StateKind uint8

// The kinds of state change. Their order is the order of a notification's life: unseen → seen
// → read → archived.
const (
	StateSeen StateKind = iota + 1
	StateRead
	StateArchived
)

// StateChange is a change of a user's state of notifications: seen, read or archived. The
// user's streams, on every node, are told of it, so that every tab and device shows the same
// list and badge.
type StateChange struct {
	User string
	Kind StateKind
	// IDs are the notifications changed (read and archived changes); empty when All is set, and
	// for a seen change.
	IDs []int64
	// All: every notification of the user was marked read (StateRead), or every read one
	// archived (StateArchived).
	All bool
	// On is the state the change set: read (or unread), archived (or unarchived). A seen change
	// only ever moves forward, and has it true.
	On bool
	// SeenUpTo is the user's seen mark after a seen change: every notification of the user's
	// feed with an id up to it is seen.
	SeenUpTo int64
	// Counts are the user's counts after the change. Unseen is -1 when it is not known: a read
	// change from a node of a version before seen state.
	Counts Counts
}

// Subscriber is a caller that authentication allows to read one user's feed.
type Subscriber struct {
	User string
	// Expires is when the credential stops being accepted; an open stream ends then, and the
	// client reconnects with a fresh one. Zero: never.
	Expires time.Time
}

// Publisher is a caller that authentication allows to publish.
type Publisher struct {
	// ID names the publisher: its idempotency keys are its own, and rate limits count per ID.
	ID string
}

// Retention says how much history the store keeps.
type Retention struct {
	// MaxAge removes notifications older than this; 0 keeps them regardless of age.
	MaxAge time.Duration
	// MaxPerStream keeps at most this many of the newest notifications of each user and of the
	// broadcast stream; 0 keeps any number.
	MaxPerStream int
	// IdempotencyTTL is how long an idempotency key is remembered.
	IdempotencyTTL time.Duration
}

// CommitFunc receives the notifications of each commit, after the commit is durable and before
// Append returns to the publishers whose drafts it held: an acknowledged notification has
// reached it. A store calls it from its group-commit loop, one commit at a time, in the order
// of its commits; other nodes' commits interleave with them in any order, and the hub orders
// each stream itself.
type CommitFunc func([]Notification)

// Store keeps notifications durably and answers every read the API needs. Every method that
// names a user only ever sees that user's notifications and broadcasts.
type Store interface {
	// Append stores all drafts in one durable commit and returns a receipt per draft, in order.
	// scope namespaces idempotency keys (one publisher's keys never collide with another's).
	// It returns only after the commit is durable.
	Append(ctx context.Context, scope string, drafts []Draft) ([]Receipt, error)
	// Feed reads user's feed after cursor: at most limit notifications of each stream.
	Feed(ctx context.Context, user string, after Cursor, limit int) (FeedPage, error)
	// Stream reads one stream (a user id, or BroadcastStream) after seq, at most limit.
	Stream(ctx context.Context, stream string, after uint64, limit int) ([]Notification, error)
	// Heads returns the last sequence numbers of user's stream and of the broadcast stream.
	Heads(ctx context.Context, user string) (Cursor, error)
	// StreamHeads returns the last sequence numbers of the given streams (user ids, or
	// BroadcastStream); a stream never written to is absent from the map.
	StreamHeads(ctx context.Context, streams []string) (map[string]uint64, error)

	// Inbox returns a page of user's inbox (or of the archived, with q.Archived), newest first,
	// with user's state of each notification.
	Inbox(ctx context.Context, user string, q InboxQuery) (InboxPage, error)
	// Get returns one notification of user's feed, archived or not, or a not_found error.
	Get(ctx context.Context, user string, id int64) (Notification, error)
	// SetRead marks one notification read (or unread) for user; not_found if it is not theirs.
	SetRead(ctx context.Context, user string, id int64, read bool) error
	// ReadAll marks every notification of user read, archived ones included, and returns how
	// many changed.
	ReadAll(ctx context.Context, user string) (int64, error)
	// MarkSeen raises user's seen mark to upTo: every notification of user's feed with an id up
	// to it is seen. upTo is capped at the newest id of the feed now, so that a notification
	// yet to come is never seen in advance; 0 (or less) means that newest id. The mark never
	// moves back. It returns the mark after the call, and whether the call moved it.
	MarkSeen(ctx context.Context, user string, upTo int64) (mark int64, moved bool, err error)
	// SetArchived archives one notification (or brings it back to the inbox) for user;
	// not_found if it is not theirs.
	SetArchived(ctx context.Context, user string, id int64, archived bool) error
	// ArchiveRead archives every read notification of user still in the inbox and returns how
	// many it archived.
	ArchiveRead(ctx context.Context, user string) (int64, error)
	// Counts returns user's unread and unseen counts, archived notifications excluded.
	Counts(ctx context.Context, user string) (Counts, error)

	// Prune removes what retention no longer keeps and returns the number of notifications removed.
	Prune(ctx context.Context, r Retention) (int64, error)
	Ping(ctx context.Context) error
	Close() error

	// Identity names the store and its current epoch, as read when it was opened.
	Identity() Identity
	// EpochStart returns where the current epoch begins in user's feed: in each stream, the
	// position just before its first notification committed in this epoch. A client whose
	// cursor is of another epoch resumes from here, so it receives exactly what was committed
	// since the store's history was replaced.
	EpochStart(ctx context.Context, user string) (Cursor, error)

	// Subscribe adds users to topic's subscribers, in one transaction, and returns how many
	// were not subscribed before. Subscribing twice is harmless. A subscription that would take
	// the topic or a user past lim is a conflict, and then nothing is added.
	Subscribe(ctx context.Context, topic string, users []string, lim TopicLimits) (added int64, err error)
	// Unsubscribe removes users from topic's subscribers, in one transaction, and returns how
	// many were subscribed.
	Unsubscribe(ctx context.Context, topic string, users []string) (removed int64, err error)
	// TopicSubscribers returns at most limit of topic's subscribers with ids greater than
	// after, in byte order of their ids: pass the last id of a page to read the next.
	TopicSubscribers(ctx context.Context, topic string, after string, limit int) ([]string, error)
	// UserTopics returns the topics user is subscribed to, in byte order.
	UserTopics(ctx context.Context, user string) ([]string, error)
	// DeleteTopic removes every subscription to topic and returns how many there were. The
	// notifications a topic publish created stay: they are their users'.
	DeleteTopic(ctx context.Context, topic string) (int64, error)
	// CountSubscribers returns how many users topic has now, counting at most max+1 (max ≤ 0:
	// all): what a publish to it will cost, charged before its commit.
	CountSubscribers(ctx context.Context, topic string, max int) (int64, error)

	// Re-announcing retried publishes (issue 19): a publish answered from its idempotency key
	// re-reads what its first attempt committed, to put it on the bus again before answering,
	// in case the node of that attempt died before it could.

	// Notifications returns the notifications with the given ids, in id order, as Stream reads
	// them; ids that name none (never committed, or pruned) are left out.
	Notifications(ctx context.Context, ids []int64) ([]Notification, error)
	// TopicNotifications returns at most limit notifications published to topic with ids
	// greater than after and at most upTo, in id order.
	TopicNotifications(ctx context.Context, topic string, after, upTo int64, limit int) ([]Notification, error)

	// Preferences: what each user muted (see Preferences). Append reads the mutes of a draft's
	// recipients in its own transaction; Inbox and Counts leave out the broadcasts a user muted.

	// Preferences returns user's preferences; a user who never set any has none (no error).
	Preferences(ctx context.Context, user string) (Preferences, error)
	// SetPreferences replaces all of user's preferences with p (normalized, see
	// Preferences.Normalize) in one transaction: a concurrent Append sees the old set or the new
	// one, never a mix.
	SetPreferences(ctx context.Context, user string, p Preferences) error

	// Web Push (issue 18): subscriptions, the outbox and presence.

	// AddPushSubscription registers sub for sub.User; an endpoint is one browser's, so one
	// registered before (by this or another user) is replaced. A user who has max others
	// already is refused (too_large). It reports whether the endpoint was new.
	AddPushSubscription(ctx context.Context, sub PushSubscription, max int) (created bool, err error)
	// DeletePushSubscription removes user's subscription of endpoint, and its pending pushes;
	// not_found if user has none with that endpoint.
	DeletePushSubscription(ctx context.Context, user, endpoint string) error
	// PushSubscriptions lists user's subscriptions, oldest first.
	PushSubscriptions(ctx context.Context, user string) ([]PushSubscription, error)
	// ClaimPushes claims at most limit pushes due at now, oldest due first, for lease: until
	// now+lease no other claim returns them. Each claim counts as an attempt.
	ClaimPushes(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]PushJob, error)
	// FinishPushes removes pushes that were sent or given up, those the claim still holds.
	FinishPushes(ctx context.Context, claim string, ids []int64) error
	// RetryPush makes a claimed push due again at at, if the claim still holds it.
	RetryPush(ctx context.Context, id int64, claim string, at time.Time) error
	// PushOutboxStats counts the pending pushes.
	PushOutboxStats(ctx context.Context) (PushOutboxStats, error)
	// MarkPresent records that each user had an open stream at the given time; a time earlier
	// than the one stored changes nothing.
	MarkPresent(ctx context.Context, present map[string]time.Time) error
	// LastPresent returns when user last had an open stream on any node, as MarkPresent
	// recorded it; zero if never.
	LastPresent(ctx context.Context, user string) (time.Time, error)
	// PrunePresence removes at most limit presence records older than before (LastPresent
	// then returns zero for their users), and returns how many it removed.
	PrunePresence(ctx context.Context, before time.Time, limit int) (int64, error)
}

// TopicLimits bound subscriptions, checked by Store.Subscribe in the transaction that adds
// them, so that concurrent subscribes cannot pass them together. Zero fields are no limit.
type TopicLimits struct {
	// MaxSubscribers is the most users one topic may have.
	MaxSubscribers int
	// MaxTopics is the most topics one user may be subscribed to.
	MaxTopics int
}

// TopicFull is the conflict of a subscription that would take topic past max subscribers.
func TopicFull(topic string, max int) error {
	return Errorf(ECONFLICT, "topic %q has reached its limit of %d subscribers (--max-topic-subscribers)", topic, max)
}

// TooManyTopics is the conflict of a subscription that would take user past max topics.
func TooManyTopics(user string, max int) error {
	return Errorf(ECONFLICT, "user %q is subscribed to %d topics, the limit (--max-user-topics); unsubscribe from one first", truncate(user, 80), max)
}

// Identity is which store a cursor, a page position or a bus message belongs to.
//
// A position is only meaningful against the history it was taken from: sequence numbers
// restart where a restored backup left them, and two deployments sharing a broker number their
// streams independently. So every cursor and bus message carries the identity of its store,
// and nothing of another is ever taken for this one.
type Identity struct {
	// ID is created at random with the store's schema and never changes. Two stores created
	// apart never share one; a backup keeps it.
	ID string
	// Epoch changes whenever the store's history is replaced: a backup written by Herald has a
	// new one, and so does a store an operator marks as restored. Cursors carry it.
	Epoch string
	// Since is the id of the last notification committed before the epoch began (0 for the
	// first epoch): notifications of this epoch have greater ids.
	Since int64
}

// Origin is the identity's wire form for bus messages: "<id>.<epoch>".
func (i Identity) Origin() string { return i.ID + "." + i.Epoch }

// ValidEpoch reports whether s can be an epoch: 1-16 lowercase hex digits. Epochs appear in SSE
// ids and inbox page positions, so their alphabet is kept plain.
func ValidEpoch(s string) bool {
	if len(s) == 0 || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

var typePattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

var topicPattern = regexp.MustCompile(`^[A-Za-z0-9_.:/-]{1,255}$`)

// ValidateTopic checks a topic name: 1-MaxTopicLen bytes of A-Z a-z 0-9 _ . : / -, such as
// "issue:42" or "org/acme/billing". The set is safe in a URL path segment once "/" is escaped,
// in logs and in SQL LIKE-free equality lookups, and leaves room for hierarchies.
func ValidateTopic(t string) error {
	if !topicPattern.MatchString(t) {
		return Errorf(EINVALID, "topic %q must be 1-%d characters of A-Z a-z 0-9 _ . : / -", truncate(t, 80), MaxTopicLen)
	}
	return nil
}

// ValidateType checks an event type a publisher or subscriber names. The prefix ControlPrefix is
// refused in any case: clients match event names in many ways, some without regard to case, and
// "HERALD.expired" must not pass for one of Herald's own events.
func ValidateType(t string) error {
	if !typePattern.MatchString(t) {
		return Errorf(EINVALID, "type %q must be 1-%d characters of A-Z a-z 0-9 _ . : -", truncate(t, 80), MaxTypeLen)
	}
	// The pattern admits only ASCII, so a byte-wise fold is exact.
	if len(t) >= len(ControlPrefix) && strings.EqualFold(t[:len(ControlPrefix)], ControlPrefix) {
		return Errorf(EINVALID, "type %q: the prefix %q is reserved (in any case) for Herald's own events", t, ControlPrefix)
	}
	return nil
}

// ValidateUser checks a user id: non-empty, bounded, valid UTF-8 of visible characters (see
// visible).
func ValidateUser(u string) error {
	if u == "" {
		return Errorf(EINVALID, "user id must not be empty")
	}
	if len(u) > MaxUserLen {
		return Errorf(EINVALID, "user id is longer than %d bytes", MaxUserLen)
	}
	if !visible(u) {
		return Errorf(EINVALID, "user id must be UTF-8 without control, format (bidi, zero-width) or line separator characters")
	}
	return nil
}

// ValidateKey checks an idempotency key: 1-MaxKeyLen bytes of valid UTF-8 of visible characters
// (see visible).
func ValidateKey(k string) error {
	if len(k) == 0 || len(k) > MaxKeyLen {
		return Errorf(EINVALID, "idempotency key must be 1-%d bytes", MaxKeyLen)
	}
	if !visible(k) {
		return Errorf(EINVALID, "idempotency key must be UTF-8 without control, format (bidi, zero-width) or line separator characters")
	}
	return nil
}

// visible reports whether s is valid UTF-8 without characters that do not show as themselves:
// controls (Unicode category Cc: C0, DEL, C1 with NEL), format characters (Cf: the bidi marks,
// embeddings, overrides and isolates, zero-width space and joiners, BOM, soft hyphen, tags) and
// the line and paragraph separators (Zl, Zp). Ids are shown in logs, admin screens and messages;
// with one of these, "alice" followed by an invisible character, or an id reordered by a
// right-to-left override, passes for another user's, and a separator breaks a log line.
func visible(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			// The fast path for ASCII, which most ids are: only C0 controls and DEL are refused.
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return false
		}
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
			return false
		}
		i += n
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut at a rune boundary, so a message quoting a long value does not end in half a rune.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Fingerprint identifies what a draft asks for, so a retried key can be told apart from a key
// reused for a different request.
func (d *Draft) Fingerprint() []byte {
	h := sha256.New()
	// Length-prefixed fields: no two different drafts encode to the same bytes.
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	// The first field says whether the draft has content, and so how many fields follow the
	// recipients. A draft without content fingerprints as it did before content existed, so a
	// key stored then still replays after an upgrade.
	flag := byte(0)
	if d.Broadcast {
		flag = 1
	}
	hasContent := !d.Content.IsZero()
	if hasContent {
		flag |= 2
	}
	if d.Topic != "" {
		flag |= 4
	}
	if d.Critical {
		// A flag only: a draft that is not critical fingerprints as before the flag existed.
		flag |= 8
	}
	field([]byte{flag})
	if d.Topic != "" {
		// The topic and who it excludes, not the subscribers it reached: a retry asks for
		// the same thing however the subscribers changed since, and is replayed. Exclude is a
		// set: its order and repeats change nothing a publish does, so a retry that lists the
		// same users otherwise (a client building it from a map) is the same request.
		field([]byte(d.Topic))
		ex := slices.Clone(d.Exclude)
		slices.Sort(ex)
		ex = slices.Compact(ex)
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(ex)))
		field(n[:])
		for _, u := range ex {
			field([]byte(u))
		}
	} else {
		for _, u := range d.To {
			field([]byte(u))
		}
	}
	field([]byte(d.Type))
	field(d.Data)
	if hasContent {
		field(d.Content.AppendJSON(nil)) // one encoding per content: fixed order, fixed escapes
	}
	return h.Sum(nil)
}
