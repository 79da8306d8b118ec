package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/heraldhq/herald"
)

// TestPreferencesSoleWriter: a store that is its file's only writer skips reading rules while
// no user has any, and never skips one: rules it writes, and rules in the file when it opens,
// are read; a store that shares its file always reads.
func TestPreferencesSoleWriter(t *testing.T) {
	ctx := context.Background()
	rule := herald.Preferences{Mutes: []herald.Mute{{Channel: herald.ChannelInApp, Kind: herald.MutePrefix, Value: "marketing."}}}
	read := func(t *testing.T, s *Store, user string) int {
		t.Helper()
		p, err := s.Preferences(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		return len(p.Mutes)
	}
	path := filepath.Join(t.TempDir(), "h.db")

	sole := openAt(t, path, Options{SoleWriter: true})
	if sole.mayMute.Load() || read(t, sole, "alice") != 0 {
		t.Fatal("a file without rules: the store reads them, or finds some")
	}
	if err := sole.SetPreferences(ctx, "alice", rule); err != nil {
		t.Fatal(err)
	}
	if read(t, sole, "alice") != 1 || read(t, sole, "bob") != 0 {
		t.Fatal("after alice's rule: not read back")
	}
	// Emptying them again keeps reading: another user may still have some.
	if err := sole.SetPreferences(ctx, "alice", herald.Preferences{}); err != nil {
		t.Fatal(err)
	}
	if !sole.mayMute.Load() {
		t.Fatal("cleared rules made the store stop reading")
	}
	if err := sole.SetPreferences(ctx, "bob", rule); err != nil {
		t.Fatal(err)
	}
	if err := sole.Close(); err != nil {
		t.Fatal(err)
	}

	// Opened again over a file with rules: read.
	again := openAt(t, path, Options{SoleWriter: true})
	if read(t, again, "bob") != 1 {
		t.Fatal("rules in the file at open were skipped")
	}
	again.Close()

	// Shared: another handle's rules are read even though this one opened on none.
	shared := filepath.Join(t.TempDir(), "shared.db")
	a := openAt(t, shared, Options{})
	b := openAt(t, shared, Options{})
	if err := b.SetPreferences(ctx, "carol", rule); err != nil {
		t.Fatal(err)
	}
	if read(t, a, "carol") != 1 {
		t.Fatal("a store sharing its file skipped another writer's rules")
	}
}
