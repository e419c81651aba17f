// Package bench measures Nova's event stores and broker adapters beside
// the raw driver or client they are built on. It holds the scenarios
// shared by `nova bench` and by the `go test -bench` benchmarks, and the
// runner that reports medians and ratios.
//
// # The idea
//
// A figure like "12,000 events/s" says little on its own: it depends on the
// disk, the CPU and the day. What says something is the ratio between Nova
// and what a competent engineer would write by hand with the same driver,
// on the same machine, in the same run, writing or reading the same rows
// with the same schema and settings. Every scenario is therefore run twice
// over: once through a [nova.Store], once through a [Raw] baseline, and the
// runner reports both medians and nova/raw.
//
// # Scenarios
//
//   - append-1: one writer appends one event per append to one stream.
//   - append-1-8w: eight writers, each on its own stream, append one event
//     per append at the same time. On SQLite this is where group commit
//     shows: the raw baseline's eight writers take turns, one transaction
//     (and one flush) per event.
//   - append-100: one writer appends 100 events per append.
//   - read-10k: read a 10,000-event stream from start to end, 10 times.
//   - readall: read the whole global log of 100,000 events in position
//     order, 3 times.
//
// Every event carries 1 KB of JSON data of its own (it includes the
// event's ID, so no two events share data). [Options.Scale] shrinks or grows
// every size, for quick tests or longer measurements.
//
// # How a measurement is made
//
// Each run, measured or warm-up, gets a fresh, empty Nova store and a
// fresh, empty raw baseline from its [Backend] (on SQLite a fresh file each
// in a scratch directory the backend owns and removes), so runs never see
// each other's data. Pre-filling (the 10,000-event stream, the
// 100,000-event log) and generating events are not timed; only the appends
// or the reads are.
//
// Within a run the two sides alternate slice by slice: nova appends 10
// events, raw appends 10, raw the next 10, nova the next 10, and so on (5
// appends per writer for append-1-8w, 2 appends for append-100, one whole
// read for the reads). A run's rate for a side is its events over the time
// of its own slices. Alternating finely matters on a shared machine: the
// time of a disk flush varies by two orders of magnitude with what else
// the machine does, in bursts. Whole runs taking turns let a burst decide
// a run's ratio; slices of 50 appends still let one land on one side;
// slices of 10 keep the runs' ratios close together, and Nova measured
// against itself comes out even (docs/BENCHMARKS.md, "Method", has the
// figures).
//
// After one warm-up run, [Run] reports the median of each side's rates
// over the measured runs (5 by default) and the median of the runs'
// ratios. The ratio is taken run by run because the two sides of a run are
// measured together: the ratio of the two medians would divide rates from
// different runs, and the machine drifts between runs.
//
// Reads are checked: a read that returns fewer or more events than were
// written fails the run instead of producing a flattering figure.
//
// # Saga worker processes
//
// The saga-procs scenario (opt-in, no raw side) measures how durable sagas
// scale out over worker processes of one service sharing one database
// (PostgreSQL or MySQL). A run starts its sagas (2,000 3-step sagas of
// no-op steps) with [saga.Start], untimed, then starts N worker processes
// ([Options.Procs], default 1, 2 and 3): each is this program again
// ([Options.WorkerCommand]) with [WorkerEnv] set, which calls
// [ServeWorker]: it opens the run's store, runs a [saga.Worker] driving
// [ProcsConcurrency] runs at once, and says it is ready. Once all are, the
// runner tells them to go and times until the runs table holds no run
// that is not terminal; the run fails unless every saga completed. The
// workers are then told to stop (their standard input closes) and waited
// for; one that does not stop is killed with its process group, and on
// Linux the kernel kills a worker whose parent died. Each round measures
// every N once, in turn, and a result's speed-up is the median over the
// rounds of that N's rate over the rate of 1 process in the same round.
//
// # Fairness of the baselines
//
// The SQLite baseline ([SQLite]) creates its file by opening and closing a
// novasqlite store, so schema, indexes and pragmas are Nova's own, then
// drives it with the ncruces driver directly, as a careful engineer would:
// BEGIN IMMEDIATE, prepared statements kept for the connection's life, one
// UPDATE/INSERT of the stream row and one INSERT per event row, and reads
// that scan every column into a [nova.Event] as Nova does. Its eight
// concurrent writers each have their own connection with a busy timeout and
// commit one transaction per event: that is what the driver does without
// group commit.
//
// The memory baseline ([Memory]) is a mutex-protected slice and map doing
// the same bookkeeping as an in-memory store: version check, stream index,
// global log, copies of the events.
//
// # Brokers
//
// [RunBroker] measures a message broker adapter the same way, beside a
// [RawBroker] written on the client the adapter uses, on a
// [BrokerBackend] ([NATSBroker], [RabbitMQ]):
//
//   - broker-publish: 2,000 envelopes of 1 KB, each Publish confirmed by
//     the server before the next (slices of 20).
//   - broker-publish-batch: 20,000 envelopes in batches of 100, through
//     [broker.PublishAll] (the adapter's BatchPublisher) against the raw
//     client's asynchronous publishing and a wait for every confirmation
//     (slices of 2 batches).
//   - broker-consume: 5,000 envelopes waiting for a consumer group,
//     consumed one at a time and acknowledged, through SubscribeGroup
//     against a durable consumer (JetStream) or quorum queue (RabbitMQ) of
//     the same settings with manual acknowledgements (slices of 50).
//   - relay: the saga outbox relayed to the broker: about 7,000 lifecycle
//     envelopes left in an outbox by 1,000 durable sagas run with no
//     broker, flushed by a [broker.Relay] (reading 100, publishing them with
//     PublishAll, marking them sent). No raw side. The outbox is a scratch
//     SQLite file, or a fresh store of [BrokerBackend.OutboxStore] (a
//     PostgreSQL schema or MySQL database of its own).
//
// Every run of a side gets a namespace of its own, made fresh and deleted
// after the run (a JetStream stream, RabbitMQ exchanges and queues). The
// baseline publishes into the layout the adapter declared (the same stream
// or queues) and sends the same payloads, so the server does the same work
// for both; what differs is the client's. Every run checks its work,
// untimed: the server holds every envelope published, a consumer saw each
// envelope once, the outbox is empty.
//
// # Using it
//
// The CLI builds a [Backend] (for example with [SQLite]), calls [Run], then
// [WriteTable] or [WriteJSON], and closes the backend. A backend's tests call
// [Benchmark] from their bench_test.go so `go test -bench` measures the same
// scenarios with Nova and raw sub-benchmarks that benchstat can compare.
//
// The package imports the backends it measures (novamem, novasqlite, the
// server backends and the broker adapters beside them); only cmd/nova and
// tests import it, so no library code depends on a backend through it.
package bench
