// Package scaleout holds the scale-out tests and nothing else: three
// processes of one service share a PostgreSQL schema, or a MySQL/MariaDB
// database, as a service deployed on three machines would, and one of
// them is killed with SIGKILL in the middle of the work and started
// again.
//
// Each process runs a saga worker and the service's projection. The
// saga has four steps; each run's data decides which of its steps fail
// a few attempts before they succeed, and whether one step fails on
// every attempt, so that the run compensates. The projection keeps a SQL
// read model of the runs from their streams, through the backend's
// checkpoint store, and runs in one process at a time by lease. The test
// starts the runs, kills the process holding the projection's lease
// once half of them have ended, starts a new one in its place and waits
// for every process to drain. Then:
//
//   - every run has ended as its data says, completed runs with each
//     step's side effect written and none undone, compensated runs with
//     each step that wrote its effect undone;
//   - no step ran in two processes at once: every call of a step counts
//     itself in and out of a row of its own in the same database
//     (step_exec), and a call that finds another one in records an
//     overlap; none may be recorded, and every row must end at zero but
//     for a call of the killed process, which a later call may take over
//     once the test has recorded that process as dead;
//   - every batch of the projection committed while the checkpoint
//     store's lease row named its process as holder, the read model
//     holds each event once, agrees with the runs table, and equals a
//     fresh rebuild swapped in;
//   - every run's end reached the broker through the outbox relays of
//     the three processes.
//
// The test binary re-executes itself as the service's process when
// childEnv is set. NOVA_SCALE_RUNS sets the number of runs on PostgreSQL
// (default 3,000; 600 under the race detector) and NOVA_SCALE_MYSQL_RUNS
// on MySQL/MariaDB (default 600; 200 under the race detector). MySQL gets
// fewer: every saga transition appends to its run's stream, and
// novamysql's appends take turns on one counter row, which holds it to 60
// to 120 three-step sagas a second where PostgreSQL drives several
// hundred; the four-step runs here, with their retries, make nearly twice
// a three-step saga's transitions.
//
// The tests use pgx and database/sql with go-sql-driver/mysql directly
// for the side-effect tables and the read model, as a service's own code
// would.
package scaleout
