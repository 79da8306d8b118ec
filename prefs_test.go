package herald

import "testing"

// TestMuted: which rule mutes what, in which channel.
func TestMuted(t *testing.T) {
	p := &Preferences{Mutes: []Mute{
		{ChannelInApp, MuteType, "comment"},
		{ChannelInApp, MutePrefix, "marketing."},
		{ChannelInApp, MuteTopic, "issue:42"},
		{ChannelPush, MuteType, "digest"},
	}}
	tests := []struct {
		channel, typ, topic string
		want                bool
	}{
		{ChannelInApp, "comment", "", true},
		{ChannelInApp, "comment.created", "", false},
		{ChannelInApp, "marketing.weekly", "", true},
		{ChannelInApp, "marketing", "", false},
		{ChannelInApp, "release", "issue:42", true},
		{ChannelInApp, "release", "issue:4", false},
		{ChannelInApp, "digest", "", false},
		{ChannelPush, "digest", "", true},
		{ChannelPush, "comment", "issue:42", false},
	}
	for _, tt := range tests {
		t.Run(tt.channel+"/"+tt.typ+"/"+tt.topic, func(t *testing.T) {
			if got := p.Muted(tt.channel, tt.typ, tt.topic); got != tt.want {
				t.Fatalf("Muted = %v, want %v", got, tt.want)
			}
		})
	}
	var none *Preferences
	if none.Muted(ChannelInApp, "comment", "") || none.MutesBroadcasts(ChannelInApp) {
		t.Fatal("nil preferences mute")
	}
	if !p.MutesBroadcasts(ChannelInApp) || (&Preferences{Mutes: []Mute{{ChannelInApp, MuteTopic, "x"}}}).MutesBroadcasts(ChannelInApp) {
		t.Fatal("MutesBroadcasts")
	}
}

// TestMuteValidate: channels, kinds and values a rule may have.
func TestMuteValidate(t *testing.T) {
	tests := []struct {
		m  Mute
		ok bool
	}{
		{Mute{ChannelInApp, MuteType, "comment"}, true},
		{Mute{ChannelPush, MutePrefix, "marketing."}, true},
		{Mute{ChannelInApp, MuteTopic, "org/acme/billing"}, true},
		{Mute{"email", MuteType, "comment"}, false},
		{Mute{ChannelInApp, "regex", "comment"}, false},
		{Mute{ChannelInApp, MuteType, ""}, false},
		{Mute{ChannelInApp, MuteType, "a b"}, false},
		{Mute{ChannelInApp, MutePrefix, "herald."}, false},
		{Mute{ChannelInApp, MutePrefix, string(make([]byte, 65))}, false},
		{Mute{ChannelInApp, MuteTopic, "issue 42"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.m.Channel+"/"+tt.m.Kind+"/"+tt.m.Value, func(t *testing.T) {
			err := tt.m.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok %v", err, tt.ok)
			}
			if err != nil && ErrorCode(err) != EINVALID {
				t.Fatalf("code %q", ErrorCode(err))
			}
		})
	}
}
