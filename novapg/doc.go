// Package novapg is a Nova event store on PostgreSQL, built on pgx/v5.
//
// # The idea
//
// One schema holds three tables: streams (each stream's last version),
// events (the log) and snapshots. An append is one statement, so one
// round trip: a common table expression creates or updates the stream's
// row under the expected-version condition (INSERT ... ON CONFLICT for
// Any and NoStream, UPDATE ... WHERE version = $n for an exact version),
// and inserts the batch from arrays (unnest) only when that row came
// back. Concurrent appends to one stream queue on that row; appends to
// different streams never wait for each other. When the condition fails,
// or an event ID is already stored (a unique violation), a second query
// looks the IDs up and decides, with the rule every backend shares, between
// an idempotent retry and an error.
//
// # Gap-free order
//
// A sequence number is taken at insert time, not at commit time: with
// several writers, sequence 7 can commit after sequence 8, and a reader
// that had passed 8 would never see 7. So every event also carries the
// writing transaction's ID (xid8, pg_current_xact_id()), and readers
// return only events of transactions older than the oldest transaction
// still running, pg_snapshot_xmin(pg_current_snapshot()), in (xid, seq)
// order. Below that horizon every transaction has committed or rolled
// back, and every one still to commit has a larger ID, so the log below
// it is final. (xid, seq) is the event's [nova.Position] (Commit, Prepare)
// and what checkpoints store; xid8 is 64 bits wide and never wraps.
//
// The price: a transaction that holds an ID holds readers back until it
// ends, whatever it does and whichever database of the server it runs
// in. Events committed after it wait for it; none is lost or reordered.
// Keep transactions given to [Store.AppendTx] short, and watch for long
// transactions on the server. ReadAll waits briefly (up to
// Config.PollInterval or a second) for transactions older than the
// store's own last append, so that a process reads what it wrote. Stream
// reads need no horizon: one stream's versions commit in order.
//
// # Waking subscribers
//
// A NOTIFY inside the append transaction would make every commit take the
// server's notification queue lock in turn (measured: 8 concurrent writers
// fell from 8.2k to 3.9k events/s). So Append commits first, wakes the
// store's own subscriptions at once, and asks the store's notifier
// goroutine for a NOTIFY, which sends at most one per
// Config.NotifyCoalesce (default 5 ms) for all the appends of that
// interval. One connection per store, outside the pool, LISTENs and wakes
// all of the store's subscriptions; when it drops it wakes them and
// reconnects. A notification is only a hint: subscriptions also poll
// (Config.PollInterval), and when events are committed but held back by an
// older transaction they look again after a short, growing pause, since
// that transaction may send no notification.
//
// # Transactions of the caller
//
// [Store.AppendTx] appends in the caller's pgx.Tx, so events commit with a
// read model or an outbox row; it runs under a savepoint so a conflict or
// an idempotent retry leaves the transaction usable. Call [Store.Notify]
// after committing, or subscribers see the events at their next poll.
//
// The package's other services work the same way in the store's schema:
// [RunStore] records a saga transition, its runs-table row and its outbox
// envelopes in one transaction and claims due runs with FOR UPDATE SKIP
// LOCKED, on the database's clock; [Checkpoints] commits a projection
// batch's read-model writes with its checkpoint and hands the transaction
// to the handlers in their ctx ([WithTx], [TxFromContext]), where
// [QueryStore] (a jsonb table) and the caller's own SQL find it.
//
// # Schema and migrations
//
// Config.Schema names the schema (default "nova"), so several stores can
// share a database. Open creates and migrates it with embedded, numbered
// migrations in one transaction, serialized between processes by an
// advisory lock; the version is kept in the schema's schema_version
// table. [Migrate] does the same alone, for `nova migrate`; a schema newer
// than the package fails with [ErrSchemaTooNew]. With Config.SkipMigrate,
// Open creates and migrates nothing: a missing schema (a mistyped name),
// one without a store, or one with migrations pending fails with
// [ErrSchemaOutdated], which says what is missing. [ParseURL] reads the
// nova command's store URLs strictly. A store works on a
// pgxpool.Pool of the caller's (Config.Pool), which Close leaves open, or
// creates its own from Config.URL.
//
// # Broken connections
//
// Reads, and appends, that fail because their connection broke (the
// server restarted, the session was terminated) are retried a few times
// on other connections. A repeated append is safe: its events' IDs make it
// an idempotent retry if the first attempt had committed. Subscriptions
// resume from the last event they yielded. When the server stays away
// longer (about ten seconds), the error returned is one nova.IsTransient
// reports, as are serialization failures (40001), deadlocks (40P01), an
// administrator's shutdown or termination (57P01 to 57P03) and a
// [Checkpoints.Commit] whose connection died under the handlers: the
// projection runner and the saga workers wait those out with backoff
// instead of failing.
//
// # Figures
//
// internal/bench measures the store beside pgx by hand on the same tables
// (BEGIN; the stream's row with the version check; INSERT, or COPY for a
// batch; COMMIT), interleaved, on PostgreSQL 15 on a shared 2-core
// machine with pgxpool's default 4 connections. Ratios nova/raw, medians
// of 5 runs, in three invocations:
//
//	append-1      1.21  1.05  1.07   one event per append, 1 writer
//	append-1-8w   0.97  0.93  0.94   one event per append, 8 writers
//	append-100    0.96  1.01  1.08   100 events per append
//	read-10k      1.00  1.27  1.08   ReadStream of 10,000 events
//	readall       1.30  1.10  1.05   ReadAll of 100,000 events
//
// Appends are bound by the server's disk flush at commit: one round trip
// instead of four wins little beside it.
package novapg
