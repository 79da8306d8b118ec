// Command herald is the Herald notification server.
//
//	herald [serve] [flags]   start a server (the default command)
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

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "herald:", err)
		}
		os.Exit(2)
	}
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
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: herald [serve] [flags]\n\nRun \"herald serve -h\" for the flags.")
		return nil
	}
	return fmt.Errorf("unknown command %q (try \"herald help\")", cmd)
}
