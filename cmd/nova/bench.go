package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/nova-go/nova/internal/bench"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novanats"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novasqlite"
)

func benchCommand() *command {
	var scenarios string
	var runs int
	var scale float64
	var sync string
	return &command{
		name:         "bench",
		summary:      "measure the store's backend beside its raw driver (medians of alternating runs, events/s)",
		usage:        "[--store PATH] [--json] [--scenario NAME[,NAME…]] [--runs N] [--scale F] [--sync full|normal]",
		jsonHelp:     "print one JSON object per scenario: {scenario, backend, nova_per_sec, raw_per_sec, ratio, unit, runs}",
		storeDefault: "./nova-bench.db",
		flags: func(fs *flag.FlagSet, e *env) {
			fs.StringVar(&scenarios, "scenario", "", "scenarios to run, comma-separated (default "+strings.Join(bench.DefaultScenarioNames(), ", ")+
				"); also "+strings.Join(optInScenarios(), ", ")+", and saga for both saga scenarios")
			fs.IntVar(&runs, "runs", bench.DefaultRuns, "measured runs per side and scenario")
			fs.Float64Var(&scale, "scale", 1, "multiply every scenario's size")
			fs.StringVar(&sync, "sync", "full", "SQLite durability: full (novasqlite.SyncFull, flush per commit) or normal (novasqlite.SyncNormal)")
			// Server backends measure in a scratch schema, database or
			// JetStream stream of their own and drop it afterwards.
		},
		run: func(ctx context.Context, e *env, args []string) error {
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
			// Progress, and scenarios the backend cannot run, go to stderr;
			// the table or the JSON goes to stdout.
			opts.Progress = e.stderr
			backend, err := benchBackend(e.store, sync)
			if err != nil {
				return err
			}
			results, runErr := bench.Run(ctx, backend, opts)
			if err := backend.Close(); err != nil && runErr == nil {
				runErr = err
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

// scenarioGroups are names that stand for several scenarios.
var scenarioGroups = map[string][]string{"saga": {"saga-3step", "saga-3step-8"}}

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
