package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/store/postgres"
	"github.com/heraldhq/herald/internal/store/sqlite"
)

const newEpochUsage = `usage: herald new-epoch [--store sqlite:PATH|postgres://…]

Marks the store as restored from a backup: clients whose cursors come from the history the
restore replaced are told so (herald.missed, store_changed) and resume where the restored store
begins anew. Run it with every server on the store stopped. A copy written by "herald backup" has
a new epoch already; run this after any other restore, or after restoring the same copy twice.
`

// newEpoch marks the store that the same flags and environment name as restored: it starts a
// new epoch, so that the cursors and page positions clients took from the history the restore
// replaced are answered with herald.missed (store_changed) rather than read against this one.
// A backup written by "herald backup" has a new epoch already; this is for any other restore
// (pg_restore, a disk snapshot, a file copied back), and for a backup restored a second time.
func newEpoch(ctx context.Context, args []string, stdout io.Writer) error {
	cfg := config.Default()
	fs := cfg.FlagSet("herald new-epoch")
	if err := parseFlags(fs, args, serveFlag); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs, newEpochUsage, "store", "config")
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return errors.New("new-epoch takes no arguments: herald new-epoch [--store sqlite:PATH|postgres://…]")
	}
	var s interface {
		Identity() herald.Identity
		NewEpoch(context.Context) (herald.Identity, error)
		Close() error
	}
	var err error
	if cfg.StoreKind() == "postgres" {
		s, err = postgres.Open(ctx, cfg.Store, postgres.Options{})
	} else {
		path, perr := cfg.SQLitePath()
		if perr != nil {
			return perr
		}
		s, err = sqlite.Open(ctx, path, sqlite.Options{})
	}
	if err != nil {
		return fmt.Errorf("open store %s: %w", cfg.RedactedStore(), err)
	}
	defer s.Close()
	before := s.Identity()
	after, err := s.NewEpoch(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "store %s: epoch %s -> %s (notifications after id %d belong to the new epoch)\n",
		after.ID, before.Epoch, after.Epoch, after.Since)
	return nil
}
