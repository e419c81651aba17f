// Command nova is Nova's command-line tool: it runs the demo, inspects a
// store's streams, events, saga runs and projections, acts on stuck runs,
// and measures a backend against its raw driver.
//
//	nova demo         run the order domain on a store and report
//	nova streams      list streams with their versions
//	nova read         print a stream's events
//	nova sagas        list saga runs
//	nova saga         print a run's timeline, or retry, skip or abandon it
//	nova projections  list projections with their checkpoint and lag
//	nova projection   rebuild a projection's read model
//	nova serve        serve a web console over the store
//	nova migrate      create or migrate a store's schema
//	nova tail         print a broker's messages as they arrive
//	nova dlq          list, drain or replay a topic's dead letters
//	nova bench        measure a store, or a broker adapter, beside its raw driver
//
// Every command takes --store: a SQLite file path (default ./nova-demo.db),
// a server URL (postgres://, mysql://, nats://), or memory: for a store
// kept in memory; and --json, to print what it reports as JSON lines.
// Only demo and migrate create or migrate a store: every other command
// opens an existing one, writes no schema, and says how to create a store
// when there is none. A URL is read strictly (an unknown parameter is an
// error, not ignored), and no output shows its password. Errors go to
// stderr with exit status 1; bad usage exits with status 2.
//
// The commands are parsed with the standard flag package and a small
// table of commands (main.go) rather than a CLI framework: that table is
// all this tool needs (help printed once, suggestions for a mistyped
// command, flags before or after the arguments), and it keeps the tool's
// dependencies to Nova's own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	shutdown := startTelemetry(ctx, os.Stderr)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	shutdown()
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
	// jsonHelp says what --json prints.
	jsonHelp string
	// run parses args with fs (already holding the common flags) and runs.
	run func(ctx context.Context, env *env, args []string) error
	// flags adds the command's own flags.
	flags func(fs *flag.FlagSet, env *env)
	// broker is the --broker flag's help; empty means the command has no
	// --broker flag. brokerRequired makes it required.
	broker         string
	brokerRequired bool
	// noStore leaves out --store: the command does not read a store.
	noStore bool
}

// env is what a command runs with: the parsed common flags and the output.
type env struct {
	store  string
	broker string
	json   bool
	stdout io.Writer
	stderr io.Writer
}

// usageError is bad command-line usage: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

const defaultStore = "./nova-demo.db"

func commands() []*command {
	return []*command{demoCommand(), streamsCommand(), readCommand(), sagasCommand(), sagaCommand(), projectionsCommand(), projectionCommand(), serveCommand(), migrateCommand(), tailCommand(), dlqCommand(), benchCommand()}
}

// run executes nova with args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help" {
		if len(args) > 1 && args[0] == "help" {
			return run(ctx, []string{args[1], "--help"}, stdout, stderr)
		}
		if len(args) == 0 {
			writeUsage(stderr)
			return 2
		}
		writeUsage(stdout)
		return 0
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == args[0] {
			cmd = c
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "nova: unknown command %q", args[0])
		if s := suggest(args[0]); s != "" {
			fmt.Fprintf(stderr, ": did you mean %s?", s)
		}
		fmt.Fprintf(stderr, "\n\n")
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
	if !cmd.noStore {
		fs.StringVar(&e.store, "store", storeDefault, "where the events are: a SQLite file path, a server URL (postgres://, mysql://, nats://), or "+memorySpec+" for a store kept in memory")
	}
	if cmd.broker != "" {
		fs.StringVar(&e.broker, "broker", "", cmd.broker)
	}
	fs.BoolVar(&e.json, "json", false, cmd.jsonHelp)
	if cmd.flags != nil {
		cmd.flags(fs, e)
	}
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: nova %s %s\n\n%s\n\nflags:\n", cmd.name, cmd.usage, cmd.summary)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	// The flag package prints a parse error itself; the usage is printed
	// here, once: to stdout when asked for, else to stderr.
	fs.Usage = func() {}
	rest, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		usage(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr)
		usage(stderr)
		return 2
	}
	if cmd.brokerRequired && e.broker == "" {
		fmt.Fprintf(stderr, "nova %s: --broker is required\n\n", cmd.name)
		usage(stderr)
		return 2
	}
	// Nothing printed from here on shows the store's or the broker's
	// password: drivers' errors and logs may quote them.
	e.stdout = hidingSecrets(hidingSecrets(stdout, e.store), e.broker)
	e.stderr = hidingSecrets(hidingSecrets(stderr, e.store), e.broker)
	if err := cmd.run(ctx, e, rest); err != nil {
		fmt.Fprintf(e.stderr, "nova %s: %v\n", cmd.name, err)
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(e.stderr)
			usage(e.stderr)
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
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun 'nova COMMAND --help' for a command's flags.\n")
}

// suggest returns the command closest to a mistyped name, or "" when none
// is close: one that starts with it, or is at most two edits away.
func suggest(name string) string {
	best, bestDist := "", 3
	for _, c := range commands() {
		if len(name) >= 3 && strings.HasPrefix(c.name, name) {
			return c.name
		}
		if d := editDistance(strings.ToLower(name), c.name); d < bestDist {
			best, bestDist = c.name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// plural returns "1 item" or "n items"; many is the plural form, or "" for
// one+"s".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	if many == "" {
		many = one + "s"
	}
	return fmt.Sprintf("%d %s", n, many)
}
