package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/nova-go/nova/internal/bench"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novanats"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novarabbitmq"
	"github.com/nova-go/nova/novasqlite"
)

const benchStoreDefault = "./nova-bench.db"

const benchBrokerHelp = "measure the broker scenarios on this broker instead of a store: nats://host:4222 (JetStream) or " +
	"amqp://user:pass@host:5672/vhost (RabbitMQ); every run works in a fresh namespace, deleted afterwards, " +
	"named PREFIX-<random> (?namespace=PREFIX, default " + bench.DefaultBrokerPrefix + "); --store postgres://… or mysql://… " +
	"then holds the relay scenario's outbox, in a scratch schema or database per run (default a scratch SQLite file)"

func benchCommand() *command {
	var scenarios string
	var runs int
	var scale float64
	var sync, procs string
	return &command{
		name:         "bench",
		summary:      "measure the store's backend, or a broker's adapter, beside its raw driver (medians of alternating runs, events/s)",
		usage:        "[--store PATH | --broker URL [--store URL]] [--json] [--scenario NAME[,NAME…]] [--runs N] [--scale F] [--sync full|normal] [--procs N[,N…]]",
		jsonHelp:     "print one JSON object per scenario: {scenario, backend, nova_per_sec, raw_per_sec, ratio, unit, runs}",
		storeDefault: benchStoreDefault,
		broker:       benchBrokerHelp,
		flags: func(fs *flag.FlagSet, e *env) {
			fs.StringVar(&scenarios, "scenario", "", "scenarios to run, comma-separated (default "+strings.Join(bench.DefaultScenarioNames(), ", ")+
				"); also "+strings.Join(optInScenarios(), ", ")+", and saga for both saga scenarios; with --broker: "+
				strings.Join(bench.BrokerScenarioNames(), ", ")+" (default all of them, also named broker)")
			fs.IntVar(&runs, "runs", bench.DefaultRuns, "measured runs per side and scenario")
			fs.Float64Var(&scale, "scale", 1, "multiply every scenario's size")
			fs.StringVar(&procs, "procs", "", "saga-procs: the numbers of worker processes to measure, comma-separated, each 1 to "+strconv.Itoa(bench.MaxProcs)+" (default "+joinInts(bench.DefaultProcs())+")")
			fs.StringVar(&sync, "sync", "full", "SQLite durability: full (novasqlite.SyncFull, flush per commit) or normal (novasqlite.SyncNormal); with --broker, the relay scenario's outbox's")
			// Server backends measure in a scratch schema, database,
			// JetStream stream or broker namespace of their own and drop it
			// afterwards.
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if os.Getenv(bench.WorkerEnv) == "1" {
				// A worker process the saga-procs scenario started.
				return bench.ServeWorker(ctx, os.Stdin, e.stdout, e.stderr)
			}
			if len(args) != 0 {
				return usagef("bench takes no arguments, got %q", args)
			}
			if runs < 1 {
				return usagef("--runs must be at least 1, got %d", runs)
			}
			if !(scale > 0) || scale > 1000 {
				return usagef("--scale must be in (0, 1000], got %g", scale)
			}
			opts := bench.Options{Runs: runs, Scale: scale}
			if scenarios != "" {
				for _, name := range strings.Split(scenarios, ",") {
					opts.Scenarios = append(opts.Scenarios, scenarioGroups[name]...)
					if scenarioGroups[name] == nil {
						opts.Scenarios = append(opts.Scenarios, name)
					}
				}
			}
			if err := checkBenchTarget(e, opts.Scenarios); err != nil {
				return err
			}
			if procs != "" {
				if !slices.Contains(opts.Scenarios, "saga-procs") {
					return usagef("--procs sets the worker processes of the saga-procs scenario: add --scenario saga-procs")
				}
				var err error
				if opts.Procs, err = parseProcs(procs); err != nil {
					return err
				}
			}
			if slices.Contains(opts.Scenarios, "saga-procs") {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("bench: saga-procs starts this program as its workers: %w", err)
				}
				opts.WorkerCommand = []string{exe, "bench"}
			}
			// Progress, and scenarios the backend cannot run, go to stderr;
			// the table or the JSON goes to stdout.
			opts.Progress = e.stderr
			var results []bench.Result
			var runErr error
			if e.broker != "" {
				backend, err := benchBrokerBackend(e.broker, sync)
				if err != nil {
					return err
				}
				if backend.OutboxStore, err = benchOutbox(e); err != nil {
					return err
				}
				results, runErr = bench.RunBroker(ctx, backend, opts)
				if err := backend.OutboxStore.Close(); err != nil && runErr == nil {
					runErr = err
				}
			} else {
				backend, err := benchBackend(e.store, sync)
				if err != nil {
					return err
				}
				results, runErr = bench.Run(ctx, backend, opts)
				if err := backend.Close(); err != nil && runErr == nil {
					runErr = err
				}
			}
			if runErr != nil {
				return runErr
			}
			if e.json {
				return bench.WriteJSON(e.stdout, results)
			}
			return bench.WriteTable(e.stdout, results)
		},
	}
}

// checkBenchTarget refuses scenarios that need what the command line does
// not give: a broker scenario without --broker, a store scenario with it,
// or --store beside --broker. Unknown names are left to the runner.
func checkBenchTarget(e *env, scenarios []string) error {
	var store, brokers []string
	for _, name := range scenarios {
		switch {
		case slices.Contains(bench.BrokerScenarioNames(), name):
			brokers = append(brokers, name)
		case slices.Contains(bench.ScenarioNames(), name):
			store = append(store, name)
		}
	}
	switch {
	case e.broker == "" && len(brokers) > 0:
		return usagef("--scenario %s measures a broker: give it with --broker URL (nats://host:4222 or amqp://user:pass@host:5672/)", strings.Join(brokers, ","))
	case e.broker != "" && len(store) > 0:
		return usagef("--scenario %s measures a store, and --broker runs only the broker scenarios (%s): run the store's without --broker", strings.Join(store, ","), strings.Join(bench.BrokerScenarioNames(), ", "))
	case e.broker != "" && e.store != benchStoreDefault:
		b, err := parseStore(e.store)
		if err != nil {
			return err
		}
		if b != postgresBackend && b != mysqlBackend {
			return usagef("--store and --broker: with --broker, --store holds the relay scenario's outbox and takes a postgres:// or mysql:// URL (without it, a scratch SQLite file); the other broker scenarios use no store")
		}
		if len(scenarios) > 0 && !slices.Contains(scenarios, "relay") {
			return usagef("--store and --broker: --store holds the relay scenario's outbox, and --scenario %s has no relay", strings.Join(scenarios, ","))
		}
	}
	return nil
}

// benchOutbox returns the backend of the relay scenario's outbox that
// --store names beside --broker (checked by checkBenchTarget), or the
// zero Backend for the default scratch SQLite file.
func benchOutbox(e *env) (bench.Backend, error) {
	if e.store == benchStoreDefault {
		return bench.Backend{}, nil
	}
	return benchBackend(e.store, "full")
}

// benchBrokers maps a --broker URL's scheme to the benchmark backend of
// its adapter, given the URL without Nova's parameters and the prefix of
// the runs' namespaces. A scheme of brokerSchemes missing here has no
// benchmark.
var benchBrokers = map[string]func(url, prefix string) (bench.BrokerBackend, error){
	"nats":  benchJetStream,
	"tls":   benchJetStream,
	"amqp":  benchRabbitMQ,
	"amqps": benchRabbitMQ,
}

func benchJetStream(url, prefix string) (bench.BrokerBackend, error) {
	return bench.NATSBroker(url, novanats.BrokerConfig{Namespace: prefix})
}

func benchRabbitMQ(url, prefix string) (bench.BrokerBackend, error) {
	return bench.RabbitMQ(url, novarabbitmq.Config{Namespace: prefix})
}

// benchBrokerBackend returns the benchmark backend of the broker spec
// names, reading it as openBroker does; ?namespace= is the prefix of the
// runs' namespaces.
func benchBrokerBackend(spec, sync string) (bench.BrokerBackend, error) {
	scheme, err := brokerScheme(spec)
	if err != nil {
		return bench.BrokerBackend{}, err
	}
	newBackend, ok := benchBrokers[scheme]
	if !ok {
		return bench.BrokerBackend{}, usagef("--broker %q: the %s adapter has no benchmark", redact(spec), scheme)
	}
	rest, prefix, err := novaParams(spec)
	if err != nil {
		return bench.BrokerBackend{}, err
	}
	if !validPrefix(prefix) {
		return bench.BrokerBackend{}, usagef("--broker %q: namespace %q: bench takes a prefix of at most %d letters, digits, '-' or '_' for its runs' namespaces", redact(spec), prefix, bench.MaxBrokerPrefixLen)
	}
	syncMode, ok := syncModes[sync]
	if !ok {
		return bench.BrokerBackend{}, usagef("--sync must be full or normal, got %q", sync)
	}
	be, err := newBackend(rest, prefix)
	if err != nil {
		return bench.BrokerBackend{}, fmt.Errorf("bench on %s: %w", redact(spec), err)
	}
	be.Outbox = novasqlite.Config{Synchronous: syncMode}
	return be, nil
}

// validPrefix reports whether p can start the namespaces of bench's runs
// (bench.BrokerBackend.Prefix): at most bench.MaxBrokerPrefixLen letters,
// digits, '-' and '_'.
func validPrefix(p string) bool {
	if len(p) > bench.MaxBrokerPrefixLen {
		return false
	}
	for _, c := range []byte(p) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// parseProcs reads --procs: distinct whole numbers from 1 to
// bench.MaxProcs, comma-separated.
func parseProcs(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		switch {
		case err != nil:
			return nil, usagef("--procs %q: %q is not a number of processes", s, f)
		case n < 1 || n > bench.MaxProcs:
			return nil, usagef("--procs %q: %d processes, want 1 to %d", s, n, bench.MaxProcs)
		case slices.Contains(out, n):
			return nil, usagef("--procs %q: %d is there twice", s, n)
		}
		out = append(out, n)
	}
	return out, nil
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// scenarioGroups are names that stand for several scenarios.
var scenarioGroups = map[string][]string{"saga": {"saga-3step", "saga-3step-8"}, "broker": bench.BrokerScenarioNames()}

// optInScenarios are the scenarios that run only when named.
func optInScenarios() []string {
	var out []string
	for _, name := range bench.ScenarioNames() {
		if !slices.Contains(bench.DefaultScenarioNames(), name) {
			out = append(out, name)
		}
	}
	return out
}

// syncModes maps the values of --sync to SQLite's synchronous settings.
var syncModes = map[string]novasqlite.Synchronous{
	"full":   novasqlite.SyncFull,
	"normal": novasqlite.SyncNormal,
}

func benchBackend(spec, sync string) (bench.Backend, error) {
	b, err := parseStore(spec)
	if err != nil {
		return bench.Backend{}, err
	}
	syncMode, ok := syncModes[sync]
	if !ok {
		return bench.Backend{}, usagef("--sync must be full or normal, got %q", sync)
	}
	var be bench.Backend
	switch b {
	case memoryBackend:
		return bench.Memory(), nil
	case sqliteBackend:
		be, err = bench.SQLite(spec, novasqlite.Config{Synchronous: syncMode})
	case postgresBackend:
		var cfg novapg.Config
		if cfg, err = novapg.ParseURL(spec); err == nil {
			be, err = bench.Postgres(cfg.URL, novapg.Config{})
		}
	case mysqlBackend:
		be, err = bench.MySQL(spec, novamysql.Config{})
	case natsBackend:
		be, err = bench.NATS(spec, novanats.Config{})
	default:
		return bench.Backend{}, fmt.Errorf("the %s backend has no benchmark", b.name)
	}
	if err != nil {
		return bench.Backend{}, fmt.Errorf("bench on %s: %w", redact(spec), err)
	}
	return be, nil
}
