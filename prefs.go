package herald

import (
	"cmp"
	"slices"
	"strings"
)

// Channels: where a notification reaches a user. A user's preferences are per channel.
const (
	// ChannelInApp is the feed: the inbox and the streams. A notification muted here is not
	// created for the user at all (broadcasts, which have one row for everyone, are left out
	// of the user's streams, inbox and counts instead).
	ChannelInApp = "in_app"
	// ChannelPush is Web Push: a notification muted here is kept in the feed but not pushed.
	ChannelPush = "push"
)

// Channels lists the channels in the order the API shows them.
var Channels = []string{ChannelInApp, ChannelPush}

// The kinds of mute rule.
const (
	// MuteType mutes one type exactly ("comment.created").
	MuteType = "type"
	// MutePrefix mutes every type that starts with the value ("marketing.").
	MutePrefix = "prefix"
	// MuteTopic mutes the notifications published to a topic ("issue:42").
	MuteTopic = "topic"
)

// Mute is one rule of a user's preferences: in Channel, mute what Kind and Value select.
type Mute struct {
	Channel string
	Kind    string
	Value   string
}

// Validate checks the rule: a known channel and kind, and a value valid for its kind (a type,
// a type prefix, which has the alphabet and length of a type, or a topic).
func (m Mute) Validate() error {
	if m.Channel != ChannelInApp && m.Channel != ChannelPush {
		return Errorf(EINVALID, "channel %q must be %q or %q", truncate(m.Channel, 40), ChannelInApp, ChannelPush)
	}
	switch m.Kind {
	case MuteType:
		if err := ValidateType(m.Value); err != nil {
			return err
		}
	case MutePrefix:
		if err := ValidateType(m.Value); err != nil {
			return Errorf(EINVALID, "type prefix %q must be 1-%d characters of A-Z a-z 0-9 _ . : - and not start with %q", truncate(m.Value, 80), MaxTypeLen, ControlPrefix)
		}
	case MuteTopic:
		if err := ValidateTopic(m.Value); err != nil {
			return err
		}
	default:
		return Errorf(EINVALID, "mute kind %q must be %q, %q or %q", truncate(m.Kind, 40), MuteType, MutePrefix, MuteTopic)
	}
	return nil
}

// Preferences are a user's mute rules. The zero value mutes nothing.
type Preferences struct {
	// Mutes are the rules, in the order Normalize gives them.
	Mutes []Mute
}

// Normalize sorts the rules by channel, kind and value and drops repeated ones, so that two
// equal sets of rules have one form (what the store keeps, and what GET returns).
func (p *Preferences) Normalize() {
	slices.SortFunc(p.Mutes, func(a, b Mute) int {
		return cmp.Or(cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Value, b.Value))
	})
	p.Mutes = slices.Compact(p.Mutes)
}

// Muted reports whether a notification of type typ, published to topic (empty for none), is
// muted in channel. It does not know whether the notification is critical: a critical one goes
// through whatever this says, and callers check that first. A nil p mutes nothing.
func (p *Preferences) Muted(channel, typ, topic string) bool {
	if p == nil {
		return false
	}
	for i := range p.Mutes {
		m := &p.Mutes[i]
		if m.Channel != channel {
			continue
		}
		switch m.Kind {
		case MuteType:
			if typ == m.Value {
				return true
			}
		case MutePrefix:
			if strings.HasPrefix(typ, m.Value) {
				return true
			}
		case MuteTopic:
			if topic != "" && topic == m.Value {
				return true
			}
		}
	}
	return false
}

// MutesBroadcasts reports whether any rule of channel can mute a broadcast (a broadcast has no
// topic, so only type and prefix rules can).
func (p *Preferences) MutesBroadcasts(channel string) bool {
	if p == nil {
		return false
	}
	for _, m := range p.Mutes {
		if m.Channel == channel && m.Kind != MuteTopic {
			return true
		}
	}
	return false
}
