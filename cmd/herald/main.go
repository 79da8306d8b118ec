// Command herald is the Herald notification server.
//
//	herald [serve] [flags]                      start a server (the default command)
//	herald token --user alice [--ttl 1h]        mint a token with the configured HS256 secret
//	herald keygen [--name billing]              make a publisher API key and its hash
//
// Every flag can also be set as a HERALD_* environment variable: --max-payload is
// HERALD_MAX_PAYLOAD. Run "herald serve -h" for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// The first signal starts a graceful drain; a second one kills at once (the default
		// action), for an operator who does not want to wait.
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "herald:", err)
		}
		os.Exit(2)
	}
}

const usage = `usage:
  herald [serve] [flags]                 start a server (the default command)
  herald token --user ID [--ttl 1h]      mint a subscriber token (--publish: a publisher token)
                                         with the secret of --jwt-secret-file or HERALD_JWT_SECRET
  herald keygen [--name NAME]            make a publisher API key and the hash to configure

Run "herald serve -h" (or token -h, keygen -h) for the flags.
`

// token mints an HS256 token with the secret, issuer and audience the server is configured with
// (the same flags, environment and config file).
func token(args []string, stdout, stderr io.Writer) error {
	cfg := config.Default()
	fs := cfg.FlagSet("herald token")
	fs.SetOutput(stderr)
	user := fs.String("user", "", "the user id the token is for (its sub)")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	publish := fs.Bool("publish", false, "add the publish scope, so the token can publish")
	if err := config.ParseArgs(fs, args); err != nil {
		return err
	}
	secret, err := cfg.ReadJWTSecret()
	if err != nil {
		return err
	}
	tok, err := auth.Mint([]byte(secret), auth.Token{
		User: *user, TTL: *ttl, Publish: *publish, Scope: cfg.PublishScope,
		Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience,
	}, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// keygen prints a new publisher key, for the publisher, and its hash, for the server.
func keygen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "the publisher's name (its identity for idempotency keys and rate limits)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	entry := ""
	if *name != "" {
		entry = *name + "="
	}
	key := auth.NewKey()
	entry += auth.HashKey(key)
	if _, err := auth.ParseKeys(entry, false); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "key (give it to the publisher; it is not stored anywhere):\n  %s\n", key)
	fmt.Fprintf(stdout, "hash (add it to --publisher-keys or a line of --publisher-key-file):\n  %s\n", entry)
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		cfg, err := config.Parse("herald serve", args, stderr)
		if err != nil {
			return err
		}
		log := app.NewLogger(cfg, stderr)
		a, err := app.New(ctx, cfg, log)
		if err != nil {
			return err
		}
		return a.Run(ctx)
	case "token":
		return token(args, stdout, stderr)
	case "keygen":
		return keygen(args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q (try \"herald help\")", cmd)
}
