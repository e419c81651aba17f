// Package pgfault holds the tests that break PostgreSQL under a running
// projection and saga workers, and nothing else: the transient faults a
// production server goes through must not stop them.
//
// TestTerminatedConnections terminates the test's own connections to the
// shared server (pg_terminate_backend on its application_name, SQLSTATE
// 57P01) again and again while writers append, a leased projection runner
// commits its SQL read model and saga workers drive runs.
// TestRestartedServer does the same work on a private throwaway cluster
// (initdb into a temporary directory, as the postgres user when the test
// runs as root) and stops and starts that server in the middle of it,
// once by a crash (immediate mode) and once for longer than novapg's own
// retries last. Afterwards the runner must be running again on its own,
// its read model must hold each event's effect once and equal a fresh
// rebuild, and every saga run must have ended as its data says, with its
// steps' side effects consistent with its stream and its lifecycle events
// relayed.
//
// NOVA_PGFAULT_EVENTS, NOVA_PGFAULT_RUNS, NOVA_PGFAULT_KILLS and
// NOVA_PGFAULT_OUTAGE (the long outage, a duration) set the sizes; the
// defaults are modest so that `go test ./...` stays quick, and CI runs a
// bigger size in a step of its own. The tests need PostgreSQL's server
// binaries for the restart (found under /usr/lib/postgresql); without them
// it skips, or fails under NOVA_REQUIRE_SERVICES=1.
package pgfault
