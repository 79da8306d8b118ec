package store

import (
	"fmt"
	"slices"
	"strings"

	"github.com/heraldhq/herald"
)

// Preferences: a draft is not written for a recipient who muted it in herald.ChannelInApp,
// unless it is critical. Both stores read the mutes in the transaction of the append, so a
// concurrent change of preferences is wholly before or wholly after it:
//
//   - for drafts addressed by name, the rules of all their recipients that can mute one of them,
//     in one statement per group (MuteCandidates and MuteValues, then ApplyMutes, judged by
//     herald.Preferences.Muted);
//   - for topic drafts, in the statement that reads the subscribers (Expand), with the SQL of
//     each store (MutedSQL's rule, the same as Muted's).
//
// Broadcasts have one row for everyone and are never held back here: the streams, the inbox
// and the counts leave them out for the users who muted them.

// MaxPreferenceRules is the default bound on the rules of one user (config.MaxPreferenceRules
// overrides it at the API). The stores read a user's rules in full, on every stream open and
// for every recipient of an append, so the bound keeps that small.
const MaxPreferenceRules = 100

// MuteCandidates returns the recipients whose rules ApplyMutes needs: those of the plan's fresh
// drafts addressed by name that are not critical, each once.
func (p *Plan) MuteCandidates() []string {
	var out []string
	var seen map[string]bool
	for i := range p.Drafts {
		d := &p.Drafts[i]
		if !p.Fresh(i) || d.Critical || d.Broadcast || d.Topic != "" {
			continue
		}
		if seen == nil {
			seen = make(map[string]bool)
		}
		for _, u := range d.To {
			if !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	return out
}

// MuteValues returns what a rule must be to mute one of the drafts MuteCandidates covers: each
// draft's type and every prefix of it, each once. A rule of another value mutes none of them,
// so a store reads only the recipients' rules of these values (for a recipient who muted none
// of the drafts, nothing), and ApplyMutes judges the same with them as with all the rules.
func (p *Plan) MuteValues() []string {
	var out []string
	seen := map[string]bool{}
	for i := range p.Drafts {
		d := &p.Drafts[i]
		if !p.Fresh(i) || d.Critical || d.Broadcast || d.Topic != "" {
			continue
		}
		for n := len(d.Type); n > 0; n-- {
			if v := d.Type[:n]; !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	return out
}

// ApplyMutes drops from each fresh draft addressed by name the recipients whose in-app rules
// (rules, by user; a user without rules is absent) mute it, unless it is critical, and counts
// them in Muted. Like Expand it changes a copy of the drafts, never the caller's.
func (p *Plan) ApplyMutes(rules map[string]*herald.Preferences) {
	if len(rules) == 0 {
		return
	}
	copied := false
	for i := range p.Drafts {
		d := &p.Drafts[i]
		if !p.Fresh(i) || d.Critical || d.Broadcast || d.Topic != "" {
			continue
		}
		var muted []bool
		n := 0
		for j, u := range d.To {
			if rules[u].Muted(herald.ChannelInApp, d.Type, "") {
				if muted == nil {
					muted = make([]bool, len(d.To))
				}
				muted[j] = true
				n++
			}
		}
		if n == 0 {
			continue
		}
		if !copied {
			p.Drafts, copied = slices.Clone(p.Drafts), true
			d = &p.Drafts[i]
		}
		d.To, p.Muted[i] = dropMuted(d.To, muted)
	}
}

// dropMuted returns users without those muted (muted[i] for users[i]; nil: none), in a new
// slice, and how many it dropped.
func dropMuted(users []string, muted []bool) ([]string, int) {
	if muted == nil {
		return users, 0
	}
	out := make([]string, 0, len(users))
	for i, u := range users {
		if !muted[i] {
			out = append(out, u)
		}
	}
	return out, len(users) - len(out)
}

// MuteArgs are what MutedSQL's rule compares a draft with: its type, its topic ("" for none),
// and every prefix of its type, longest first. A prefix rule mutes a type it starts, and a
// type's prefixes are at most herald.MaxTypeLen, so the stores compare values by equality
// (through their primary key) rather than with an expression on each rule.
func MuteArgs(d *herald.Draft) (typ, topic string, prefixes []string) {
	prefixes = make([]string, 0, len(d.Type))
	for n := len(d.Type); n > 0; n-- {
		prefixes = append(prefixes, d.Type[:n])
	}
	return d.Type, d.Topic, prefixes
}

// MutedSQL is the SQL condition "user u muted this draft in the app": it is true when a rule of
// u in herald.ChannelInApp is the draft's type, a prefix of its type, or its topic. mutes names
// the rules table, user the expression of the user id; typ, topic and prefixes are the
// placeholders of MuteArgs (prefixes an IN list or an ANY array, as the store writes it).
func MutedSQL(mutes, user, typ, topic, prefixes string) string {
	return fmt.Sprintf(`EXISTS (SELECT 1 FROM %[1]s m WHERE m.user_id = %[2]s AND m.channel = '%[6]s' AND (
		(m.kind = '%[7]s' AND m.value = %[3]s) OR (m.kind = '%[8]s' AND m.value %[5]s) OR (m.kind = '%[9]s' AND m.value = %[4]s)))`,
		mutes, user, typ, topic, prefixes, herald.ChannelInApp, herald.MuteType, herald.MutePrefix, herald.MuteTopic)
}

// Placeholders returns n SQL placeholders "?, ?, …" for an IN list.
func Placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return "?" + strings.Repeat(", ?", n-1)
}
