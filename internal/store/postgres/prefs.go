package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store"
)

// Preferences reads user's rules.
func (s *Store) Preferences(ctx context.Context, user string) (herald.Preferences, error) {
	if err := s.check(); err != nil {
		return herald.Preferences{}, err
	}
	rows, err := s.pool.Query(ctx, `SELECT channel, kind, value FROM herald_mutes WHERE user_id = $1 ORDER BY channel, kind, value`, user)
	if err != nil {
		return herald.Preferences{}, unavailable(err)
	}
	ms, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (herald.Mute, error) {
		var m herald.Mute
		err := row.Scan(&m.Channel, &m.Kind, &m.Value)
		return m, err
	})
	if err != nil {
		return herald.Preferences{}, unavailable(err)
	}
	return herald.Preferences{Mutes: ms}, nil
}

// SetPreferences replaces user's rules in one transaction. An append reads a recipient's rules
// in one statement, whose snapshot holds all of the old rules or all of the new.
func (s *Store) SetPreferences(ctx context.Context, user string, p herald.Preferences) error {
	if err := s.check(); err != nil {
		return err
	}
	p.Normalize()
	channels, kinds, values := make([]string, len(p.Mutes)), make([]string, len(p.Mutes)), make([]string, len(p.Mutes))
	for i, m := range p.Mutes {
		channels[i], kinds[i], values[i] = m.Channel, m.Kind, m.Value
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM herald_mutes WHERE user_id = $1`, user); err != nil {
			return err
		}
		if len(p.Mutes) == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, `INSERT INTO herald_mutes (user_id, channel, kind, value)
			SELECT $1, c, k, v FROM unnest($2::text[], $3::text[], $4::text[]) AS t(c, k, v)`, user, channels, kinds, values)
		return err
	})
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// applyMutes drops from the plans' drafts addressed by name the recipients who muted them,
// with the in-app rules of all their recipients that can mute one of them read in one
// statement of the group's transaction.
func applyMutes(ctx context.Context, tx pgx.Tx, plans []*store.Plan) error {
	var users, values []string
	seen, seenValue := map[string]bool{}, map[string]bool{}
	for _, p := range plans {
		for _, u := range p.MuteCandidates() {
			if !seen[u] {
				seen[u] = true
				users = append(users, u)
			}
		}
		for _, v := range p.MuteValues() {
			if !seenValue[v] {
				seenValue[v] = true
				values = append(values, v)
			}
		}
	}
	if len(users) == 0 {
		return nil
	}
	// Only the rules that can mute one of the drafts: their types, and every prefix of them.
	rows, err := tx.Query(ctx, `SELECT user_id, kind, value FROM herald_mutes
		WHERE user_id = ANY($2::text[]) AND channel = $1 AND kind = ANY($3::text[]) AND value = ANY($4::text[])`,
		herald.ChannelInApp, users, []string{herald.MuteType, herald.MutePrefix}, values)
	if err != nil {
		return err
	}
	var rules map[string]*herald.Preferences
	var u string
	m := herald.Mute{Channel: herald.ChannelInApp}
	_, err = pgx.ForEachRow(rows, []any{&u, &m.Kind, &m.Value}, func() error {
		if rules == nil {
			rules = map[string]*herald.Preferences{}
		}
		p := rules[u]
		if p == nil {
			p = new(herald.Preferences)
			rules[u] = p
		}
		p.Mutes = append(p.Mutes, m)
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range plans {
		p.ApplyMutes(rules)
	}
	return nil
}

// broadcastMuted is the condition, on a broadcast n of an inbox or count read whose user is
// $1, that the user muted it in the app (a broadcast has no topic: only type and prefix rules).
const broadcastMuted = `(NOT n.critical AND EXISTS (SELECT 1 FROM herald_mutes m WHERE m.user_id = $1 AND m.channel = '` + herald.ChannelInApp + `' AND (
	(m.kind = '` + herald.MuteType + `' AND m.value = n.type) OR
	(m.kind = '` + herald.MutePrefix + `' AND starts_with(n.type, m.value)))))`
