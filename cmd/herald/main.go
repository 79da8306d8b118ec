// Command herald is the Herald notification server.
//
//	herald serve [flags]                        start a server (the default command)
//	herald token --user alice [--ttl 1h]        mint a token with the configured HS256 secret
//	herald keygen [--name billing]              make a publisher API key and its hash
//	herald vapid [-o FILE]                      make a VAPID key pair for Web Push
//	herald backup OUT.db                        copy the SQLite store, consistently, while it runs
//	herald new-epoch                            mark the store as restored from a backup
//	herald healthcheck                          exit 0 if the server configured here answers /healthz
//	                                            (on --metrics-addr when set)
//	herald send --to alice --type comment       publish a notification
//	herald listen --user alice                  print a feed, one JSON object per event
//	herald version                              print the version
//
// The server's flags can also be set as HERALD_* environment variables (--max-payload is
// HERALD_MAX_PAYLOAD) or in a --config file; of send's and listen's, --server and --token
// (HERALD_SERVER, HERALD_TOKEN). Run "herald help" for more.
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
		if !errors.As(err, new(loggedError)) {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(2)
	}
}

const usage = `usage: herald COMMAND [flags]

  herald serve [flags]                   start a server; the default command ("herald [flags]")
  herald token --user ID [--ttl 1h]      mint a subscriber token (--publish: a publisher token)
                                         with the secret of --jwt-secret-file or HERALD_JWT_SECRET
  herald keygen [--name NAME]            make a publisher API key and the hash to configure
  herald vapid [-o FILE]                 make a VAPID key pair for Web Push (docs/push.md)
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
  herald version                         print the version (also: herald --version, herald -v)
  herald help [COMMAND]                  this list (also: herald -h), or a command's flags

"herald COMMAND -h" lists a command's flags, "herald serve -h" the server's settings.

Environment: the server's settings may also be given as HERALD_* variables (--max-payload is
HERALD_MAX_PAYLOAD) or as "name value" lines of a file named by --config. Flags win over the
environment, which wins over the file. token, backup and healthcheck read them too, for the
server's secret, store and address. Of the flags of send and listen, only --server and --token
have variables, HERALD_SERVER and HERALD_TOKEN (which keeps a token out of the process list);
the others are read from the command line only.
`

// commandError is a command's error, said as "herald COMMAND: …".
type commandError struct {
	cmd string
	err error
}

func (e commandError) Error() string {
	// The client's errors start with "herald: "; the command names itself instead.
	return "herald " + e.cmd + ": " + strings.TrimPrefix(e.err.Error(), "herald: ")
}

func (e commandError) Unwrap() error { return e.err }

// loggedError is an error the server's log has already reported, in the log's format: main
// does not print it again.
type loggedError struct{ error }

func (e loggedError) Unwrap() error { return e.error }

// token mints an HS256 token with the secret, issuer and audience the server is configured with
// (the same flags, environment and config file).
func token(args []string, stdout io.Writer) error {
	cfg := config.Default()
	fs := cfg.FlagSet("herald token")
	user := fs.String("user", "", "the user id the token is for (its sub)")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	publish := fs.Bool("publish", false, "add the publish scope, so the token can publish")
	if err := parseFlags(fs, args, serveFlag); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs, tokenUsage, "user", "ttl", "publish", "jwt-secret-file", "jwt-secret", "jwt-issuer", "jwt-audience", "publish-scope", "config")
			return nil
		}
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

const tokenUsage = `usage: herald token --user ID [--ttl 1h] [--publish]

Mints an HS256 token, signed with the server's secret and naming its issuer and audience: the
server's settings, from its flags, HERALD_* variables or --config file: it takes all of them
(herald serve -h); those that matter are below. --user, --ttl and --publish are read from the
command line only.
`

const backupUsage = `usage: herald backup [--store sqlite:PATH] OUT.db

Writes a consistent copy of the SQLite store to OUT.db, also while a server runs on it. The
store is the server's: --store, HERALD_STORE or the --config file.
`

// backup copies the store the same flags and environment name.
func backup(ctx context.Context, args []string, stdout io.Writer) error {
	cfg := config.Default()
	fs := cfg.FlagSet("herald backup")
	// The output file is the one positional argument; flags come first.
	var out string
	if n := len(args); n > 0 && !strings.HasPrefix(args[n-1], "-") {
		out, args = args[n-1], args[:n-1]
	}
	if err := parseFlags(fs, args, serveFlag); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs, backupUsage, "store", "config")
			return nil
		}
		return err
	}
	if out == "" {
		return errors.New("name the file to write: herald backup [--store sqlite:PATH] OUT.db")
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
func healthcheck(ctx context.Context, args []string, stdout io.Writer) error {
	cfg := config.Default()
	fs := cfg.FlagSet("herald healthcheck")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for the answer")
	if err := parseFlags(fs, args, serveFlag); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs, healthcheckUsage, "timeout", "addr", "tls-cert", "config")
			return nil
		}
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

const healthcheckUsage = `usage: herald healthcheck [--timeout 2s]

Exits 0 if the server that the server's settings (--addr, --tls-cert: flags, HERALD_* variables
or --config file) describe answers /healthz on loopback: a container's HEALTHCHECK.
`

const keygenUsage = `usage: herald keygen [--name NAME]

Makes a publisher API key, for the publisher, and its hash, for the server's --publisher-keys
or --publisher-key-file.
`

// keygen prints a new publisher key, for the publisher, and its hash, for the server.
func keygen(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("herald keygen", flag.ContinueOnError)
	name := fs.String("name", "", "the publisher's name (its identity for idempotency keys and rate limits)")
	if err := parseFlags(fs, args, noEnv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs, keygenUsage)
			return nil
		}
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

const serveUsage = `usage: herald serve [flags]   (or: herald [flags])

Starts a server. Every flag may also be given as a HERALD_* variable (--max-payload is
HERALD_MAX_PAYLOAD) or as a "name value" line of the file named by --config; flags win over the
environment, which wins over the file. Settings are checked before anything starts.
`

// serve runs the server until ctx ends. Once the log is set up, a failure is reported there, in
// its format, and not again by main.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := config.Default()
	fs := cfg.FlagSet("herald serve")
	if err := parseFlags(fs, args, serveFlag); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs, serveUsage)
			return nil
		}
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.Version = version
	log := app.NewLogger(cfg, stderr)
	log.Info("herald starting", "version", version, "go", runtime.Version())
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		log.Error("herald cannot start", "err", err)
		return loggedError{err}
	}
	if err := a.Run(ctx); err != nil {
		log.Error("herald stopped", "err", err)
		return loggedError{err}
	}
	return nil
}

const versionUsage = `usage: herald version

Prints the version of herald and of the Go it was built with (also: herald --version, herald -v).
`

func printVersion(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("herald version", flag.ContinueOnError)
	if err := parseFlags(fs, args, noEnv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs, versionUsage)
			return nil
		}
		return err
	}
	fmt.Fprintln(stdout, "herald", version, runtime.Version())
	return nil
}

// noEnv is the environment policy of commands whose flags are read from the command line only.
func noEnv(string) bool { return false }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			args = append([]string{"help"}, args[1:]...)
		case "-v", "-version", "--version":
			args = append([]string{"version"}, args[1:]...)
		}
		if args[0] != "" && args[0][0] != '-' {
			cmd, args = args[0], args[1:]
		}
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, args, stdout, stderr)
	case "token":
		err = token(args, stdout)
	case "backup":
		err = backup(ctx, args, stdout)
	case "new-epoch":
		err = newEpoch(ctx, args, stdout)
	case "healthcheck":
		err = healthcheck(ctx, args, stdout)
	case "version":
		err = printVersion(args, stdout)
	case "keygen":
		err = keygen(args, stdout)
	case "vapid":
		err = vapid(args, stdout)
	case "send":
		err = send(ctx, args, stdout)
	case "listen":
		err = listen(ctx, args, stdout, stderr)
	case "help":
		if len(args) > 0 && args[0] != "help" && !strings.HasPrefix(args[0], "-") {
			return run(ctx, []string{args[0], "-h"}, stdout, stderr) // herald help send
		}
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return fmt.Errorf("herald: unknown command %q (herald help lists them)", cmd)
	}
	if err != nil && !errors.As(err, new(loggedError)) {
		err = commandError{cmd, err}
	}
	return err
}
