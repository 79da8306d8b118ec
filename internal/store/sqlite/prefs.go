package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store"
)

// Preferences reads user's rules on the reader pool.
func (s *Store) Preferences(ctx context.Context, user string) (herald.Preferences, error) {
	if !s.mayMute.Load() {
		return herald.Preferences{}, nil // no user has a rule (see Store.mayMute)
	}
	rows, err := s.read.prefs.QueryContext(ctx, user)
	if err != nil {
		return herald.Preferences{}, unavailable(err)
	}
	defer rows.Close()
	var p herald.Preferences
	for rows.Next() {
		var m herald.Mute
		if err := rows.Scan(&m.Channel, &m.Kind, &m.Value); err != nil {
			return herald.Preferences{}, unavailable(err)
		}
		p.Mutes = append(p.Mutes, m)
	}
	if err := rows.Err(); err != nil {
		return herald.Preferences{}, unavailable(err)
	}
	return p, nil
}

// SetPreferences replaces user's rules in one transaction on the writer connection, where
// appends read them: an append sees all of the old rules or all of the new.
func (s *Store) SetPreferences(ctx context.Context, user string, p herald.Preferences) error {
	p.Normalize()
	if len(p.Mutes) > 0 {
		// Before the write: a read that sees the rules committed must not skip them.
		s.mayMute.Store(true)
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM mutes WHERE user_id = ?`, user); err != nil {
		return unavailable(err)
	}
	if len(p.Mutes) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO mutes (user_id, channel, kind, value) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return unavailable(err)
		}
		defer st.Close()
		for _, m := range p.Mutes {
			if _, err := st.ExecContext(ctx, user, m.Channel, m.Kind, m.Value); err != nil {
				return unavailable(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return unavailable(err)
	}
	return nil
}

// mutesQuery reads the in-app type and prefix rules of the users in the JSON array ?1 whose
// values are in the JSON array ?2 (store.Plan.MuteValues: those that can mute one of the
// drafts), in one statement prepared once on the writer connection (however many users:
// json_each, rather than an IN list per size). It searches the primary key by user and channel
// and filters that user's rules (at most --max-preference-rules): the unary + keeps SQLite from
// probing the key for every user, kind and value instead, which is up to 128 probes a user.
// For a recipient who muted none of the drafts it returns nothing.
const mutesQuery = `SELECT user_id, kind, value FROM mutes
	WHERE user_id IN (SELECT value FROM json_each(?1)) AND channel = '` + herald.ChannelInApp + `'
	AND +kind IN ('` + herald.MuteType + `', '` + herald.MutePrefix + `') AND +value IN (SELECT value FROM json_each(?2))`

// applyMutes drops from the plan's drafts addressed by name the recipients who muted them, with
// their in-app rules read in the group's transaction.
func (w *txWriter) applyMutes(p *store.Plan) error {
	if w.noMutes {
		return nil
	}
	users := p.MuteCandidates()
	if len(users) == 0 {
		return nil
	}
	list, err := json.Marshal(users)
	if err != nil {
		return herald.Internal(err, "encode recipients")
	}
	values, err := json.Marshal(p.MuteValues())
	if err != nil {
		return herald.Internal(err, "encode types")
	}
	rows, err := w.mutes.QueryContext(w.ctx, string(list), string(values))
	if err != nil {
		return unavailable(err)
	}
	rules, err := scanRules(rows, nil)
	if err != nil {
		return err
	}
	p.ApplyMutes(rules)
	return nil
}

// scanRules adds rows of (user, kind, value) of one channel to rules, by user.
func scanRules(rows *sql.Rows, rules map[string]*herald.Preferences) (map[string]*herald.Preferences, error) {
	defer rows.Close()
	for rows.Next() {
		var u string
		m := herald.Mute{Channel: herald.ChannelInApp}
		if err := rows.Scan(&u, &m.Kind, &m.Value); err != nil {
			return nil, unavailable(err)
		}
		if rules == nil {
			rules = make(map[string]*herald.Preferences)
		}
		p := rules[u]
		if p == nil {
			p = new(herald.Preferences)
			rules[u] = p
		}
		p.Mutes = append(p.Mutes, m)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return rules, nil
}

// numbered returns n numbered placeholders from ?from: "?5, ?6, …".
func numbered(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('?')
		b.WriteString(strconv.Itoa(from + i))
	}
	return b.String()
}

// broadcastMuted is the condition, on a broadcast n of an inbox or count read whose user is ?1,
// that the user muted it in the app (a broadcast has no topic: only type and prefix rules).
const broadcastMuted = `(n.critical = 0 AND EXISTS (SELECT 1 FROM mutes m WHERE m.user_id = ?1 AND m.channel = '` + herald.ChannelInApp + `' AND (
	(m.kind = '` + herald.MuteType + `' AND m.value = n.type) OR
	(m.kind = '` + herald.MutePrefix + `' AND substr(n.type, 1, length(m.value)) = m.value))))`
