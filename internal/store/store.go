// Package store holds what Herald's stores (internal/store/sqlite, internal/store/postgres)
// share: how a request's idempotency keys are resolved, and how a key's result is kept. Each
// store writes with its own SQL; the rules are the same for both.
package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/heraldhq/herald"
)

// Stored is what a store keeps of an idempotency key: the draft's fingerprint and its result.
type Stored struct {
	Hash   []byte
	Result string
}

// Plan is a request whose idempotency keys are resolved: which drafts to write, and which to
// answer from an earlier result.
type Plan struct {
	Scope    string
	Drafts   []herald.Draft
	Receipts []herald.Receipt // filled for replays now, for the rest by the store and Dup
	FPs      [][]byte         // fingerprint of each keyed draft
	Replayed []bool           // the key was stored before: Receipts holds the stored result
	DupOf    []int            // ≥ 0: the key is that of an earlier draft of the same request
	Muted    []int            // recipients each draft does not reach for their mutes (prefs.go)
}

// Fresh reports whether draft i is to be written.
func (p *Plan) Fresh(i int) bool { return !p.Replayed[i] && p.DupOf[i] < 0 }

// Resolve checks the request's keys without writing anything: a key stored before replays its
// result (or conflicts, for a different draft), and a key used twice within the request replays
// its first use (or conflicts). lookup reads a stored key; found is false when it has none.
func Resolve(scope string, drafts []herald.Draft, lookup func(key string) (s Stored, found bool, err error)) (*Plan, error) {
	p := &Plan{
		Scope:    scope,
		Drafts:   drafts,
		Receipts: make([]herald.Receipt, len(drafts)),
		FPs:      make([][]byte, len(drafts)),
		Replayed: make([]bool, len(drafts)),
		DupOf:    make([]int, len(drafts)),
		Muted:    make([]int, len(drafts)),
	}
	var first map[string]int // key → first draft using it
	for i := range drafts {
		p.DupOf[i] = -1
		d := &drafts[i]
		if d.Key == "" {
			continue
		}
		fp := d.Fingerprint()
		if j, ok := first[d.Key]; ok {
			if !bytes.Equal(fp, p.FPs[j]) {
				return nil, Conflict(d.Key)
			}
			p.DupOf[i] = j
			continue
		}
		s, found, err := lookup(d.Key)
		if err != nil {
			return nil, err
		}
		if found {
			if !bytes.Equal(s.Hash, fp) {
				return nil, Conflict(d.Key)
			}
			r, err := decodeReceipt(s.Result)
			if err != nil {
				return nil, herald.Internal(err, "decode idempotency result")
			}
			p.Receipts[i] = r
			p.Replayed[i] = true
		}
		if first == nil {
			first = make(map[string]int)
		}
		first[d.Key] = i
		p.FPs[i] = fp
	}
	return p, nil
}

// Dup answers draft i, whose key an earlier draft j of the request used, with j's ids as a
// replay. Call it once j's receipt is filled.
func (p *Plan) Dup(i int) {
	src := p.Receipts[p.DupOf[i]].Notifications
	ns := make([]herald.Notification, len(src))
	for k := range src {
		ns[k] = herald.Notification{ID: src[k].ID, User: src[k].User}
	}
	p.Receipts[i] = herald.Receipt{Notifications: ns, Replayed: true, Recipients: p.Receipts[p.DupOf[i]].Recipients, Muted: p.Receipts[p.DupOf[i]].Muted}
	if p.Drafts[i].Topic != "" {
		p.Receipts[i].Notifications = nil // as a replay from the store says it
		p.Receipts[i].FirstID, p.Receipts[i].LastID = idSpan(src)
	}
}

// idSpan returns the least and greatest ids of ns, zeros when it is empty.
func idSpan(ns []herald.Notification) (first, last int64) {
	for i := range ns {
		if first == 0 || ns[i].ID < first {
			first = ns[i].ID
		}
		last = max(last, ns[i].ID)
	}
	return first, last
}

// MaxTopicRecipients bounds the subscribers one topic publish reaches. Its expansion is held in
// memory for its commit (about 0.4 KB a recipient on SQLite, 0.6 KB on PostgreSQL; a topic
// publish takes a commit group to itself and a store commits one group at a time, so one
// expansion at a time per node); stores count at most one more subscriber than this.
const MaxTopicRecipients = 100_000

// TooManyRecipients is the error of a publish to a topic of more than MaxTopicRecipients.
func TooManyRecipients(topic string) error {
	return herald.Errorf(herald.ETOOLARGE, "topic %q has more than %d subscribers, the most one publish reaches; split it into smaller topics", topic, MaxTopicRecipients)
}

// Result is what a store keeps as a keyed draft's result: the ids and recipients of its
// notifications, or for a topic draft how many recipients it reached and the span of their
// ids (a retry re-announces the notifications in it; see herald.Receipt.FirstID); and how many
// it did not reach for their mutes, when some. A version before the span reads the count and
// ignores the rest; a draft by name that muted nobody keeps the form it had before mutes (a
// list), which older versions read.
func Result(d *herald.Draft, ns []herald.Notification, muted int) string {
	mutedPart := ""
	if muted > 0 {
		mutedPart = fmt.Sprintf(`,"muted":%d`, muted)
	}
	switch {
	case d.Topic != "" && len(ns) == 0:
		return fmt.Sprintf(`{"recipients":0%s}`, mutedPart)
	case d.Topic != "":
		first, last := idSpan(ns)
		return fmt.Sprintf(`{"recipients":%d,"first":%d,"last":%d%s}`, len(ns), first, last, mutedPart)
	case muted > 0:
		return fmt.Sprintf(`{"notifications":%s%s}`, EncodeResult(ns), mutedPart)
	}
	return EncodeResult(ns)
}

// decodeReceipt reads what Result wrote as a replayed receipt.
func decodeReceipt(s string) (herald.Receipt, error) {
	if strings.HasPrefix(s, "{") {
		var t struct {
			Recipients    int             `json:"recipients"`
			First         int64           `json:"first"`
			Last          int64           `json:"last"`
			Muted         int             `json:"muted"`
			Notifications json.RawMessage `json:"notifications"`
		}
		if err := json.Unmarshal([]byte(s), &t); err != nil {
			return herald.Receipt{}, err
		}
		if t.First <= 0 || t.Last < t.First {
			t.First, t.Last = 0, 0 // stored by a version before the span: nothing to re-announce
		}
		r := herald.Receipt{Replayed: true, Recipients: t.Recipients, Muted: t.Muted}
		if t.Notifications != nil { // a draft addressed by name, some of whose recipients muted it
			ns, err := DecodeResult(string(t.Notifications))
			if err != nil {
				return herald.Receipt{}, err
			}
			r.Notifications = ns
		} else {
			r.FirstID, r.LastID = t.First, t.Last
		}
		return r, nil
	}
	ns, err := DecodeResult(s)
	if err != nil {
		return herald.Receipt{}, err
	}
	return herald.Receipt{Notifications: ns, Replayed: true}, nil
}

// Streams returns the streams a draft writes to: its recipients, or the broadcast stream.
func Streams(d *herald.Draft) []string {
	if d.Broadcast {
		return []string{herald.BroadcastStream}
	}
	return d.To
}

// Conflict is the error of a key reused for a different draft.
func Conflict(key string) error {
	return herald.Errorf(herald.ECONFLICT, "idempotency key %q was already used for a different notification", key)
}

// EncodeResult is what a replayed key must return: the ids and recipients, in order.
func EncodeResult(ns []herald.Notification) string {
	rows := make([][2]any, len(ns))
	for i := range ns {
		rows[i] = [2]any{ns[i].ID, ns[i].User}
	}
	b, _ := json.Marshal(rows) // ints and strings always marshal
	return string(b)
}

// DecodeResult reads what EncodeResult wrote.
func DecodeResult(s string) ([]herald.Notification, error) {
	var rows [][2]json.RawMessage
	if err := json.Unmarshal([]byte(s), &rows); err != nil {
		return nil, err
	}
	ns := make([]herald.Notification, len(rows))
	for i, r := range rows {
		if err := json.Unmarshal(r[0], &ns[i].ID); err != nil {
			return nil, fmt.Errorf("id: %w", err)
		}
		if err := json.Unmarshal(r[1], &ns[i].User); err != nil {
			return nil, fmt.Errorf("user: %w", err)
		}
	}
	return ns, nil
}

// Content is a draft's content as its notifications carry it: nil when it has none, so that
// a draft with an empty Content reads the same from its receipts as from the store.
func Content(d *herald.Draft) *herald.Content {
	if d.Content.IsZero() {
		return nil
	}
	return d.Content
}

// ContentColumn is what a store keeps of a notification's content: its JSON object
// (herald.Content.AppendJSON), or nil (NULL) when it has none, so that a notification without
// content costs nothing more than before content existed.
func ContentColumn(c *herald.Content) *string {
	if c.IsZero() {
		return nil
	}
	s := string(c.AppendJSON(nil))
	return &s
}

// ReadContent reads a content column back; NULL (nil) is no content.
func ReadContent(col []byte) (*herald.Content, error) {
	if col == nil {
		return nil, nil
	}
	c := new(herald.Content)
	if err := json.Unmarshal(col, c); err != nil {
		return nil, fmt.Errorf("content: %w", err)
	}
	return c, nil
}
