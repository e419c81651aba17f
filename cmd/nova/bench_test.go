package main

import (
	"context"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/nova-go/nova/internal/bench"
	"github.com/nova-go/nova/internal/testenv"
)

// init serves the worker processes TestBenchSagaProcs makes the CLI
// start: this test binary, run as `nova bench` with bench.WorkerEnv set,
// runs the CLI as the nova binary would, and exits.
func init() {
	if os.Getenv(bench.WorkerEnv) != "1" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// `nova bench --scenario saga-procs` starts its worker processes as
// `nova bench` (here, this test binary: see init) on a PostgreSQL store,
// and reports one result per number of processes, with the speed-up over
// one; every run checks that all its sagas completed.
func TestBenchSagaProcs(t *testing.T) {
	t.Parallel()
	url := testenv.Need(t, testenv.Postgres)
	code, out, stderr := runNova(t, "bench", "--store", url, "--scenario", "saga-procs", "--procs", "1,2", "--runs", "1", "--scale", "0.01", "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	lines := jsonLines(t, out)
	if len(lines) != 2 {
		t.Fatalf("%d results, want 2:\n%s", len(lines), out)
	}
	for i, l := range lines {
		nps, _ := l["nova_per_sec"].(float64)
		sp, _ := l["speedup"].(float64)
		if l["scenario"] != "saga-procs" || l["backend"] != "postgres" || l["procs"] != float64(i+1) || l["unit"] != "sagas" || nps <= 0 || sp <= 0 || i == 0 && sp != 1 {
			t.Errorf("result %v: want saga-procs on postgres with %d processes, a rate and a speed-up", l, i+1)
		}
	}
	if !strings.Contains(stderr, "postgres saga-procs 2 processes run 1/1") {
		t.Errorf("no progress line for 2 processes on stderr:\n%s", stderr)
	}
}

// Broker scenarios need --broker, store scenarios refuse it, and a bad
// --broker is refused: exit 2 with a clear message and the usage, before
// connecting to anything, never showing the URL's password.
func TestBenchBrokerUsage(t *testing.T) {
	t.Parallel()
	const nats = "nats://127.0.0.1:1"
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bench", "--scenario", "broker-publish"}, 2, "--scenario broker-publish measures a broker: give it with --broker URL"},
		{[]string{"bench", "--scenario", "append-1,relay,broker-consume"}, 2, "--scenario relay,broker-consume measures a broker"},
		{[]string{"bench", "--scenario", "broker", "--store", "memory:"}, 2, "--scenario " + strings.Join(bench.BrokerScenarioNames(), ",") + " measures a broker"},
		{[]string{"bench", "--broker", nats, "--scenario", "append-1"}, 2, "--scenario append-1 measures a store, and --broker runs only the broker scenarios"},
		{[]string{"bench", "--broker", nats, "--scenario", "saga,relay"}, 2, "--scenario saga-3step,saga-3step-8 measures a store"},
		{[]string{"bench", "--broker", nats, "--store", "memory:"}, 2, "--store and --broker"},
		{[]string{"bench", "--broker", nats, "--store", "/tmp/outbox.db"}, 2, "takes a postgres:// or mysql:// URL"},
		{[]string{"bench", "--broker", nats, "--store", "postgres://u:hunter2@h:1/db", "--scenario", "broker-publish"}, 2, "--scenario broker-publish has no relay"},
		{[]string{"bench", "--broker", "127.0.0.1:4222"}, 2, "want a URL"},
		{[]string{"bench", "--broker", "redis://u:hunter2@h:6379"}, 2, `unknown scheme "redis"`},
		{[]string{"bench", "--broker", "amqp://u:hunter2@h:1/?namespace=a.b"}, 2, `namespace "a.b": bench takes a prefix`},
		{[]string{"bench", "--broker", nats + "?namespace=" + strings.Repeat("n", bench.MaxBrokerPrefixLen+1)}, 2, "bench takes a prefix of at most"},
		{[]string{"bench", "--broker", nats, "--sync", "sometimes"}, 2, "--sync must be"},
		{[]string{"bench", "--broker", nats, "--runs", "0"}, 2, "--runs must be"},
		// Unknown names are the runner's: exit 1, still before connecting.
		{[]string{"bench", "--broker", "amqp://u:hunter2@h:1/", "--scenario", "broker-poll"}, 1, `unknown scenario "broker-poll", want one of broker-publish`},
	} {
		code, out, stderr := runNova(t, tt.args...)
		if code != tt.code || out != "" || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr:\n%s\nwant exit %d and %q", tt.args, code, out, stderr, tt.code, tt.want)
		}
		if code == 2 && !strings.Contains(stderr, "usage: nova bench") {
			t.Errorf("%q: no usage on stderr:\n%s", tt.args, stderr)
		}
		if strings.Contains(stderr, "hunter2") {
			t.Errorf("%q: stderr shows the broker's password:\n%s", tt.args, stderr)
		}
	}
}

// --procs takes distinct numbers of worker processes for saga-procs:
// anything else is a usage error (exit 2), before connecting.
func TestBenchProcsUsage(t *testing.T) {
	t.Parallel()
	const pg = "postgres://u:hunter2@127.0.0.1:1/db"
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--procs", "1,2"}, "--procs sets the worker processes of the saga-procs scenario"},
		{[]string{"--scenario", "saga-procs", "--procs", "1,two"}, `"two" is not a number of processes`},
		{[]string{"--scenario", "saga-procs", "--procs", "0"}, "0 processes, want 1 to 16"},
		{[]string{"--scenario", "saga-procs", "--procs", "1,17"}, "17 processes, want 1 to 16"},
		{[]string{"--scenario", "saga-procs", "--procs", "2,1,2"}, "2 is there twice"},
		{[]string{"--scenario", "saga-procs", "--procs", "1,,2"}, `"" is not a number`},
	} {
		args := append([]string{"bench", "--store", pg}, tt.args...)
		code, out, stderr := runNova(t, args...)
		if code != 2 || out != "" || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "usage: nova bench") {
			t.Errorf("%q: exit %d, stdout %q, stderr:\n%s\nwant exit 2, %q and the usage", args, code, out, stderr, tt.want)
		}
		if strings.Contains(stderr, "hunter2") {
			t.Errorf("%q: stderr shows the password:\n%s", args, stderr)
		}
	}
}

// `nova bench --broker` runs the broker scenarios on the machine's
// JetStream server and prints the store scenarios' JSON.
func TestBenchBroker(t *testing.T) {
	t.Parallel()
	url := testenv.Need(t, testenv.NATS)
	code, out, stderr := runNova(t, "bench", "--broker", url+"?namespace=clitest", "--json", "--runs", "1", "--scale", "0.01")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	lines := jsonLines(t, out)
	var names []string
	for _, l := range lines {
		names = append(names, l["scenario"].(string))
		nps, _ := l["nova_per_sec"].(float64)
		_, hasRaw := l["raw_per_sec"]
		if l["backend"] != "nats" || l["unit"] != "envelopes" || l["runs"] != float64(1) || nps <= 0 || hasRaw != (l["scenario"] != "relay") {
			t.Errorf("result %v: want nats, envelopes, 1 run, a positive rate, a raw side unless relay", l)
		}
	}
	if !slices.Equal(names, bench.BrokerScenarioNames()) {
		t.Errorf("scenarios %v, want %v", names, bench.BrokerScenarioNames())
	}
}
