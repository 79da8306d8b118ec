package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"

	"github.com/heraldhq/herald/internal/config"
)

// The flags of a command come from its command line. Those that describe the server (the serve
// flags, which token, backup and healthcheck read as well) and the client's --server and --token
// may also come from HERALD_* variables and, for the serve flags, a --config file; the command
// line wins over the environment, which wins over the file. A command's other flags (send --to,
// listen --count, token --user…) are read from the command line only: a HERALD_TO or
// HERALD_BROADCAST left in a shell must not choose whom a notification goes to.

// serveFlag reports whether name is a flag of herald serve.
func serveFlag(name string) bool {
	cfg := config.Default()
	return cfg.FlagSet("").Lookup(name) != nil
}

// clientEnvFlag reports whether name is a flag of send and listen read from the environment.
func clientEnvFlag(name string) bool { return name == "server" || name == "token" }

// parseFlags parses args into fs, then, for the flags args left unset and fromEnv accepts, the
// HERALD_* variables and the file of fs's --config flag, if it has one. It prints nothing: a
// mistake is returned as one line naming the flag, the variable or the line of the file, and
// what it takes; -h is flag.ErrHelp, for the caller to print the usage.
func parseFlags(fs *flag.FlagSet, args []string, fromEnv func(name string) bool) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var failed *valueError
	restore := explainValues(fs, &failed)
	err := fs.Parse(args)
	restore()
	switch {
	case errors.Is(err, flag.ErrHelp):
		return err
	case failed != nil:
		return failed
	case err != nil:
		return commandLineError(fs, err)
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments: %s (%s -h lists the flags)", strings.Join(fs.Args(), " "), fs.Name())
	}

	// later holds the flags the environment and the file may set, sharing their values with fs.
	// One given on the command line is there too, so that the file may name it, but setting it
	// does nothing: the command line wins.
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	later := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	later.SetOutput(io.Discard)
	fs.VisitAll(func(f *flag.Flag) {
		switch {
		case !fromEnv(f.Name):
		case given[f.Name]:
			later.Var(kept{f.Value}, f.Name, f.Usage)
		default:
			later.Var(f.Value, f.Name, f.Usage)
		}
	})
	restore = explainValues(later, &failed)
	defer restore()
	var envErr error
	later.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		v := os.Getenv(name)
		if envErr != nil || v == "" || given[f.Name] {
			return
		}
		if err := later.Set(f.Name, v); err != nil {
			failed.source = name
			envErr = failed
		}
	})
	if envErr != nil {
		return envErr
	}
	cf := later.Lookup("config")
	if cf == nil || cf.Value.String() == "" {
		return nil
	}
	file := cf.Value.String()
	line, setting := 0, ""
	err = ff.Parse(later, nil, ff.WithConfigFileFlag("config"), ff.WithConfigFileParser(func(r io.Reader, set func(name, value string) error) error {
		// ff's parser, a line at a time, to know which line a mistake is on.
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line++
			err := ff.PlainParser(strings.NewReader(sc.Text()), func(name, value string) error {
				setting = name
				return set(name, value)
			})
			if err != nil {
				return err
			}
		}
		return sc.Err()
	}))
	switch {
	case err == nil:
		return nil
	case failed != nil:
		failed.source = fmt.Sprintf("%s, line %d", file, line)
		return failed
	case strings.Contains(err.Error(), "not defined in flag set"):
		return fmt.Errorf("%s, line %d: %q is not a setting (%s -h lists them)", file, line, setting, fs.Name())
	}
	return fmt.Errorf("--config: %w", err)
}

// envName is the variable of a flag: --max-payload is HERALD_MAX_PAYLOAD.
func envName(flagName string) string {
	return "HERALD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// kept is a flag given on the command line, as the environment and the config file see it:
// setting it changes nothing.
type kept struct{ flag.Value }

func (kept) Set(string) error { return nil }

// valueError is a flag value that does not parse, and what the flag takes instead.
type valueError struct {
	flag   string
	value  string
	want   string
	source string // where the value came from, when not the command line: a variable, a file's line
}

func (e *valueError) Error() string {
	if e.source == "" {
		return fmt.Sprintf("--%s: %q is not %s", e.flag, e.value, e.want)
	}
	return fmt.Sprintf("%s (--%s): %q is not %s", e.source, e.flag, e.value, e.want)
}

// explainValues has each flag of fs report a value that does not parse in *failed, saying what
// the flag takes (the flag package says "parse error", and prints the whole usage). It returns
// the function that puts the flags' own values back, for the usage to print their defaults.
func explainValues(fs *flag.FlagSet, failed **valueError) (restore func()) {
	var undo []func()
	fs.VisitAll(func(f *flag.Flag) {
		orig := f.Value
		f.Value = explained{Value: orig, name: f.Name, failed: failed}
		undo = append(undo, func() { f.Value = orig })
	})
	return func() {
		for _, u := range undo {
			u()
		}
	}
}

type explained struct {
	flag.Value
	name   string
	failed **valueError
}

func (v explained) Set(s string) error {
	err := v.Value.Set(s)
	if err != nil {
		*v.failed = &valueError{flag: v.name, value: s, want: expected(v.Value, err)}
		return *v.failed
	}
	return nil
}

// IsBoolFlag lets a bool flag be given without a value (--insecure), as the flag it wraps.
func (v explained) IsBoolFlag() bool {
	b, ok := v.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// expected says what a flag of v's kind takes.
func expected(v flag.Value, err error) string {
	g, ok := v.(flag.Getter)
	if !ok {
		return "valid: " + err.Error()
	}
	switch g.Get().(type) {
	case bool:
		return "true or false"
	case int, int64, uint, uint64:
		return "a whole number"
	case float64:
		return "a number"
	case time.Duration:
		return "a duration, such as 30s, 5m or 1h"
	}
	return "valid: " + err.Error()
}

// commandLineError rewrites the flag package's other complaints in the words of this command.
func commandLineError(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return fmt.Errorf("unknown flag --%s (%s -h lists the flags)", name, fs.Name())
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return fmt.Errorf("--%s needs a value", name)
	}
	return err
}

// printUsage writes a command's usage: what it does, then the flags in names (all of fs's when
// names is empty), with their defaults.
func printUsage(w io.Writer, fs *flag.FlagSet, text string, names ...string) {
	fmt.Fprint(w, text)
	show := fs
	if len(names) > 0 {
		show = flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
		for _, n := range names {
			if f := fs.Lookup(n); f != nil {
				show.Var(f.Value, f.Name, f.Usage)
				show.Lookup(n).DefValue = f.DefValue
			}
		}
	}
	some := false
	show.VisitAll(func(*flag.Flag) { some = true })
	if some {
		fmt.Fprintln(w, "\nflags:")
		show.SetOutput(w)
		show.PrintDefaults()
	}
}
