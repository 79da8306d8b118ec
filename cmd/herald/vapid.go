package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/heraldhq/herald/internal/push"
)

const vapidUsage = `usage: herald vapid [-o FILE]

Makes a VAPID key pair for Web Push (RFC 8292). The private key signs every push, so that push
services deliver only this server's; browsers subscribe with the public key, which Herald serves
at GET /v1/push/key (it is derived from the private key: configure only that one). With -o the
private key is written to FILE (mode 0600, never overwritten) for --vapid-private-key-file;
without it, it is printed for HERALD_VAPID_PRIVATE_KEY. Keep the key: with a new one, every
browser must subscribe again.
`

// vapid prints (or writes) a new VAPID key pair.
func vapid(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("herald vapid", flag.ContinueOnError)
	out := fs.String("o", "", "write the private key to this new file (mode 0600) instead of printing it")
	if err := parseFlags(fs, args, noEnv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs, vapidUsage)
			return nil
		}
		return err
	}
	keys, err := push.GenerateKeys()
	if err != nil {
		return err
	}
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("vapid: %w", err)
		}
		if _, err := fmt.Fprintln(f, keys.Private); err != nil {
			f.Close()
			return fmt.Errorf("vapid: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("vapid: %w", err)
		}
		fmt.Fprintf(stdout, "private key written to %s: start the server with --vapid-private-key-file %s --vapid-subject mailto:you@example.com\n", *out, *out)
	} else {
		fmt.Fprintf(stdout, "private key (set it as HERALD_VAPID_PRIVATE_KEY, with HERALD_VAPID_SUBJECT=mailto:you@example.com; keep it secret):\n  %s\n", keys.Private)
	}
	fmt.Fprintf(stdout, "public key (served at GET /v1/push/key; browsers subscribe with it):\n  %s\n", keys.Public)
	return nil
}
