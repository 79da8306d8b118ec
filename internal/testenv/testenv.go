// Package testenv decides what a test does when something it needs from the machine (nginx,
// PostgreSQL, Redis, ...) is missing: on a developer's machine it skips with the reason; in CI
// (CI=true) it fails, so that a missing service can never pass as a skipped test.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// CI reports whether the tests run in CI, where every service must be present.
func CI() bool { return os.Getenv("CI") == "true" }

// Need skips t, or fails it in CI, when ok is false; the message says what is missing and how
// to get it.
func Need(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("CI=true and %s", msg)
	}
	t.Skip(msg)
}
