// Command nova is Nova's command-line tool: it runs the demo, inspects a
// store's streams and events, and measures a backend against its raw driver.
//
//	nova demo      run the order domain on a store and report
//	nova streams   list streams with their versions
//	nova read      print a stream's events
//	nova migrate   create or migrate a store's schema
//	nova bench     measure the store beside its raw driver
//
// Every command takes --store: a SQLite file path (default ./nova-demo.db),
// a server URL (postgres://, mysql://, nats://), or memory: for a store kept in memory.
// Errors go to stderr with exit status 1; bad usage exits with status 2.
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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand of nova.
type command struct {
	name    string
	summary string
	usage   string // argument synopsis after the command name
	// storeDefault is the --store default; empty means defaultStore.
	storeDefault string
	// run parses args with fs (already holding the common flags) and runs.
	run func(ctx context.Context, env *env, args []string) error
	// flags adds the command's own flags.
	flags func(fs *flag.FlagSet, env *env)
}

// env is what a command runs with: the parsed common flags and the output.
type env struct {
	store  string
	json   bool
	stdout io.Writer
	stderr io.Writer
	fs     *flag.FlagSet
}

// usageError is bad command-line usage: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

const defaultStore = "./nova-demo.db"

func commands() []*command {
	return []*command{demoCommand(), streamsCommand(), readCommand(), sagasCommand(), sagaCommand(), projectionsCommand(), projectionCommand(), migrateCommand(), benchCommand()}
}

// run executes nova with args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 && args[0] == "help" {
			return run(ctx, []string{args[1], "--help"}, stdout, stderr)
		}
		writeUsage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == args[0] {
			cmd = c
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "nova: unknown command %q\n\n", args[0])
		writeUsage(stderr)
		return 2
	}
	e := &env{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("nova "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	storeDefault := cmd.storeDefault
	if storeDefault == "" {
		storeDefault = defaultStore
	}
	fs.StringVar(&e.store, "store", storeDefault, "where the events are: a SQLite file path, a server URL (postgres://, mysql://, nats://), or "+memorySpec+" for a store kept in memory")
	if cmd.flags != nil {
		cmd.flags(fs, e)
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: nova %s %s\n\n%s\n\nflags:\n", cmd.name, cmd.usage, cmd.summary)
		fs.PrintDefaults()
	}
	e.fs = fs
	rest, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		return 0
	}
	if err != nil {
		return 2 // the flag package has printed the error and usage
	}
	if err := cmd.run(ctx, e, rest); err != nil {
		fmt.Fprintf(stderr, "nova %s: %v\n", cmd.name, err)
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(stderr)
			fs.Usage()
			return 2
		}
		return 1
	}
	return 0
}

// parseInterspersed parses flags that may come before, between or after the
// positional arguments (`nova read order-1 --json`), which flag.Parse alone
// does not allow. A "--" ends flag parsing.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return append(positional, tail...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func writeUsage(w io.Writer) {
	fmt.Fprintf(w, "nova: event sourcing, CQRS and durable sagas\n\nusage: nova COMMAND [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'nova COMMAND --help' for a command's flags.\n")
}
