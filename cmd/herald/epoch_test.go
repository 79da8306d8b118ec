package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/postgres"
	"github.com/heraldhq/herald/internal/store/sqlite"
	"github.com/heraldhq/herald/internal/testenv"
)

// TestNewEpochCommand: "herald new-epoch" gives the store a new epoch and keeps its id, on both
// kinds of store.
func TestNewEpochCommand(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		store func(t *testing.T) string
		open  func(t *testing.T, store string) interface {
			Identity() herald.Identity
			Close() error
		}
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "h.db") },
			func(t *testing.T, store string) interface {
				Identity() herald.Identity
				Close() error
			} {
				s, err := sqlite.Open(ctx, strings.TrimPrefix(store, "sqlite:"), sqlite.Options{})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}},
		{"postgres", func(t *testing.T) string { return testenv.Postgres(t) },
			func(t *testing.T, store string) interface {
				Identity() herald.Identity
				Close() error
			} {
				s, err := postgres.Open(ctx, store, postgres.Options{})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := tt.store(t)
			s := tt.open(t, store)
			before := s.Identity()
			s.Close()
			var out bytes.Buffer
			if err := run(ctx, []string{"new-epoch", "--store", store}, &out, &out); err != nil {
				t.Fatalf("new-epoch: %v (%s)", err, out.String())
			}
			s = tt.open(t, store)
			defer s.Close()
			after := s.Identity()
			if after.ID != before.ID || after.Epoch == before.Epoch {
				t.Fatalf("identity %+v after new-epoch, %+v before; want the same id, another epoch", after, before)
			}
			if !strings.Contains(out.String(), before.Epoch+" -> "+after.Epoch) {
				t.Fatalf("new-epoch said %q", out.String())
			}
			if err := run(ctx, []string{"new-epoch", "--store", store, "extra"}, &out, &out); err == nil {
				t.Fatal("new-epoch took an argument")
			}
		})
	}
}
