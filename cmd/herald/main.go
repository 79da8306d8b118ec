// Command herald is the Herald notification server.
//
//	herald [serve] [flags]                      start a server (the default command)
//	herald token --user alice [--ttl 1h]        mint a token with the configured HS256 secret
//	herald keygen [--name billing]              make a publisher API key and its hash
//	herald backup OUT.db                        copy the SQLite store, consistently, while it runs
//	herald new-epoch                            mark the store as restored from a backup
//	herald healthcheck                          exit 0 if the server configured here answers /healthz
//	                                            (on --metrics-addr when set)
//	herald send --to alice --type comment       publish a notification
//	herald listen --user alice                  print a feed, one JSON object per event
//	herald version                              print the version
//
// Every flag can also be set as a HERALD_* environment variable: --max-payload is
// HERALD_MAX_PAYLOAD. Run "herald serve -h" for the list.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/store/sqlite"
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
			msg := err.Error()
			if !strings.HasPrefix(msg, "herald") { // the client's errors say where they come from
				msg = "herald: " + msg
			}
			fmt.Fprintln(os.Stderr, msg)
		}
		os.Exit(2)
	}
}

const usage = `usage:
  herald [serve] [flags]                 start a server (the default command)
  herald token --user ID [--ttl 1h]      mint a subscriber token (--publish: a publisher token)
                                         with the secret of --jwt-secret-file or HERALD_JWT_SECRET
  herald keygen [--name NAME]            make a publisher API key and the hash to configure
  herald backup OUT.db                   write a consistent copy of the SQLite store (--store), also
                                         while a server runs on it
  herald new-epoch                       mark the store (--store) as restored from a backup, with
                                         its servers stopped: clients' older cursors are then told
  herald healthcheck                     exit 0 if the server configured here answers /healthz,
                                         on --metrics-addr when set (for container HEALTHCHECKs:
                                         the image has no curl)
  herald send --to alice --type comment --data '{"text":"hi"}'
                                         publish a notification (--broadcast: to everyone)
  herald listen --user alice             print alice's feed, one JSON object per event,
                                         reconnecting and resuming (--token with auth on)
  herald version                         print the version

Run "herald serve -h" (or token -h, send -h, ...) for the flags. send and listen talk to
--server (default http://127.0.0.1:8080) with --token, or HERALD_SERVER and HERALD_TOKEN.
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

// backup copies the store the same flags and environment name.
func backup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := config.Default()
	fs := cfg.FlagSet("herald backup")
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: herald backup [--store sqlite:PATH] OUT.db")
	}
	// The output file is the one positional argument; flags come first.
	var out string
	if n := len(args); n > 0 && !strings.HasPrefix(args[n-1], "-") {
		out, args = args[n-1], args[:n-1]
	}
	if err := config.ParseArgs(fs, args); err != nil {
		return err
	}
	if out == "" {
		fs.Usage()
		return errors.New("name the file to write")
	}
	path, err := cfg.SQLitePath()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := sqlite.Backup(ctx, path, out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s in %s\n", path, out, time.Since(start).Round(time.Millisecond))
	return nil
}

// version is stamped in by deploy/build.sh.
var version = "dev"

// healthcheck asks the server that the same flags and environment describe for /healthz, on
// loopback, or on the metrics listener when there is one. It is the container's HEALTHCHECK.
func healthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := config.Default()
	fs := cfg.FlagSet("herald healthcheck")
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for the answer")
	if err := config.ParseArgs(fs, args); err != nil {
		return err
	}
	if cfg.MetricsAddr != "" {
		// The metrics listener keeps answering when the API's port is saturated with streams,
		// and a liveness probe that fails then would have a busy server restarted.
		return probe(ctx, "http://"+probeAddr(cfg.MetricsAddr)+"/healthz", http.DefaultTransport, *timeout, stdout)
	}
	_, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return fmt.Errorf("addr %q: %w", cfg.Addr, err)
	}
	scheme, transport := "http", http.DefaultTransport.(*http.Transport).Clone()
	if cfg.TLSCert != "" {
		// The server's certificate names its public host, not 127.0.0.1; this is a liveness
		// probe of a process on the same host, not a check of the certificate.
		scheme, transport.TLSClientConfig = "https", &tls.Config{InsecureSkipVerify: true}
	}
	return probe(ctx, scheme+"://"+net.JoinHostPort("127.0.0.1", port)+"/healthz", transport, *timeout, stdout)
}

// probeAddr is where a process on the same host reaches a listener on addr: the address itself
// when it names one (an internal interface), else loopback (for ":9090", "0.0.0.0:9090",
// "localhost:9090").
func probeAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr // the request fails and says why
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// probe GETs url and succeeds on a 200, printing "ok".
func probe(ctx context.Context, url string, transport http.RoundTripper, timeout time.Duration, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("unhealthy: %w", err)
	}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return fmt.Errorf("unhealthy: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unhealthy: /healthz answered %d", resp.StatusCode)
	}
	fmt.Fprintln(stdout, "ok")
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
		cfg.Version = version
		log := app.NewLogger(cfg, stderr)
		log.Info("herald starting", "version", version, "go", runtime.Version())
		a, err := app.New(ctx, cfg, log)
		if err != nil {
			return err
		}
		return a.Run(ctx)
	case "token":
		return token(args, stdout, stderr)
	case "backup":
		return backup(ctx, args, stdout, stderr)
	case "new-epoch":
		return newEpoch(ctx, args, stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "herald", version, runtime.Version())
		return nil
	case "keygen":
		return keygen(args, stdout, stderr)
	case "send":
		return send(ctx, args, stdout, stderr)
	case "listen":
		return listen(ctx, args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q (try \"herald help\")", cmd)
}
