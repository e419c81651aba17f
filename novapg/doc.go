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
// that had passed 8 would never see 7. So the log is ordered by a pair,
// (label, seq), the event's [nova.Position] (Commit, Prepare) and what
// checkpoints store, and readers read only below a horizon that no
// append still running can commit under.
//
// The label comes from the schema's clock, a sequence (CACHE 1, so every
// session draws from and sees one last value), drawn by nextval in the
// SET of the statement that updates the stream's row, which PostgreSQL
// computes on the locked, latest version of the row: an append that
// waited for the row draws its label after the one before it committed,
// so one stream's events reach readers in version order. (A writing
// transaction's ID, the obvious key, is taken at the transaction's first
// write, which may come before the append takes the stream's lock: a
// stream's versions then reached readers out of order.) seq, an identity
// column, orders the events of one append.
//
// Every append first takes its guard, in a statement of its own that
// completes before the one that draws the label, in the same
// transaction: a shared transaction-level advisory lock on P = the
// clock's next value, with a marker of the schema in the key's high bits
// (P in the low 48). So P ≤ the append's label, and the lock is held
// until the append commits or rolls back. A reader takes, in order,
// X = the clock's next value; then, in a later statement, the smallest P
// held under the schema's marker in pg_locks; the horizon is H = min(X,
// that P); then, in a new READ COMMITTED statement, it reads the events
// with label < H past its position. All three share one round trip. No
// append can commit an event under H later: one that held its guard
// when pg_locks was read has P ≥ H; one that took it later drew its
// label after X was read, so label ≥ X ≥ H; one that had released it
// had committed (PostgreSQL makes a commit visible before it releases
// its locks), and the new statement sees its events, or it rolled back.
// No timeouts are involved: a reader never skips an event for having
// waited long enough.
//
// The price: an append that is still running holds the schema's readers
// before its place until its transaction ends. For [Store.Append] that
// is one round trip; for [Store.AppendTx], as long as the caller keeps
// the transaction open. Events committed after it wait; none is lost or
// reordered. [Store.Holder] names the session that holds readers, and
// `nova projections` shows it. Other transactions of the server, and
// other schemas' appends, hold nothing. ReadAll waits briefly (up to
// Config.PollInterval or a second) for appends that began before the
// store's own last one, so that a process reads what it wrote. Stream
// reads need no horizon: one stream's versions commit in order.
//
// Readers must run on the primary (a standby's pg_locks shows no
// appends). After restoring a backup, set the clock to the largest label
// stored (SELECT setval('<schema>.clock', max(label)) FROM
// <schema>.events) before appending. Labels stay below 2^48 (at 100,000
// appends a second, 89 years).
//
// # Group commit
//
// A commit waits for the server's disk flush, and appends that commit one
// by one each pay for one. So [Store.Append] commits in groups, with
// package internal/groupcommit: an append that finds fewer than
// Config.Writers (default 2) groups committing commits at once, on its
// own goroutine, as one transaction of its own; appends that arrive
// meanwhile queue, and the next of them to lead commits all those queued
// (up to Config.MaxGroup, default 128) in one transaction and one round
// trip: the guard, then each append's statement, each with its own
// expected-version check and result. A lone writer thus pays no hand-off
// and no wait, and 64 writers share a few flushes. No goroutine is
// started. Config.MaxGroup = 1 turns it off; [Store.AppendTx] never
// groups (the caller's transaction is the group).
//
// The gap-free order holds: the group's one guard is taken before any of
// its labels is drawn and held to its commit, so it guards them all. The
// statements run in the order of their streams (appends to one stream in
// the order they came), so two groups lock streams' rows in one order and
// do not deadlock, and each is checked against the stream's row as the
// earlier statements of the group left it: appends to one stream in one
// group behave as if they ran one after the other, each with its own
// label. An append whose expected version does not hold writes nothing and
// the others go on; its *nova.ConcurrencyError reports the stream's
// version read once the group has committed. In a group, a statement
// whose events' IDs are stored writes nothing rather than failing on the
// unique index, and is settled as an idempotent retry (Duplicate) or a
// *nova.DuplicateEventError, as alone. Any statement that fails (a
// constraint of the database's, a broken connection, a deadlock with a
// caller's transaction) aborts the whole transaction, which leaves no row:
// every append of the group then runs again alone, under the retry rules
// below, so that only the one at fault fails, and one whose group did
// commit before the connection broke is found stored (Duplicate). The
// price of a group is that its appends wait for one another: an append
// held up by a stream's row locked elsewhere (an open transaction of
// AppendTx) holds its group's appends with it.
//
// Saga transitions ([RunStore.Record]) at an exact expected version join
// the same groups: a transition queues as an append does, and in a group
// its append is followed by the checked upsert of its run's row (its own
// version check and its own lease check) and its outbox insert, under
// the group's one guard. A lone transition commits at once on its own
// goroutine, in one round trip, as before. Unlike an append's, a
// transition's statements raise an error when its append or its lease
// check fails, which aborts the group: nothing of it is written, and
// every member runs again alone, where the transition at fault gets its
// own result (saga.ErrLeaseLost, a *nova.ConcurrencyError, or the run's
// row for an idempotent retry). A transition of a stream that an earlier
// write of its group appends to runs alone after the group, since its
// run's check could not tell its own append from the other's.
//
// # Waking subscribers
//
// A NOTIFY inside the append transaction would make every commit take the
// server's notification queue lock in turn, serializing concurrent
// appends at their commits. So Append commits first, wakes the
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
// envelopes in one transaction (one round trip to the server in the
// common case, shared with concurrent transitions by group commit) and
// claims due runs with FOR UPDATE SKIP
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
// instead of four wins little beside it. Group commit shares the flush:
// 64 writers (append-1-64w, beside 64 goroutines on 64 connections) went
// from 0.80 to 3.22 times the baseline with it, 8 writers from 0.93 to
// 1.55, medians of three invocations (docs/BENCHMARKS.md).
package novapg
