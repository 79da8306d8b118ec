package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
)

// Backup writes a consistent copy of the database at path to out, while a server may be
// running on it: VACUUM INTO reads one snapshot (WAL readers never block the writer) and writes
// a compact, self-contained file, with a new epoch (see NewEpoch). out must not exist.
func Backup(ctx context.Context, path, out string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("sqlite: backup: %s already exists", out)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	defer db.Close()
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	if version == 0 {
		return fmt.Errorf("sqlite: backup: %s is not a Herald database", path)
	}
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", out); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	// The copy starts a new epoch: once it is restored, the cursors that clients took from the
	// history it replaces are recognised as such (and answered with herald.missed), even after
	// its sequence numbers have passed them. The copy of an older schema has no identity yet;
	// opening it brings it up to date first.
	cp, err := Open(ctx, out, Options{})
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	_, err = cp.NewEpoch(ctx)
	if cerr := cp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	return nil
}
