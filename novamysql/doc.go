// Package novamysql is Nova's event store on MySQL 8 and MariaDB 10.11 (and
// later), built on github.com/go-sql-driver/mysql, with everything else
// Nova keeps in a SQL database on the same connection: durable saga runs
// and their outbox ([RunStore]), projection checkpoints and leases with
// rebuilds ([Checkpoints]), and read models ([QueryStore]). Open refuses
// servers older than MariaDB 10.6 and MySQL 8.0.1, which lack the SELECT
// ... FOR UPDATE SKIP LOCKED that saga workers claim runs with
// ([ErrServerTooOld]).
//
// # The idea
//
// The global log must be gap-free: a reader that has seen position P must
// never later find an event at or below P. With AUTO_INCREMENT that fails,
// because ids are taken at insert and transactions commit in another order,
// so a reader may see 7 before 6 commits. This store allocates positions
// from one counter row instead, inside the append transaction:
//
//	UPDATE nova_counter SET position = LAST_INSERT_ID(position + n) WHERE id = 1
//
// The statement takes the row's exclusive lock, which the transaction holds
// until it commits. The next append's transaction waits for the lock, so it
// allocates its positions only after the previous one has committed: commit
// order is position order, and a reader's snapshot that contains an event
// contains every event before it. Positions are also dense (no holes): a
// rolled-back append rolls the counter back with it. An event's
// nova.Position is {Commit: position}.
//
// Readers rely on density as well as on the order. InnoDB builds a
// reader's snapshot by walking its table of active transactions while
// commits go on, so on a busy server a snapshot can, rarely, miss one
// commit and include the next (seen here on MariaDB 10.11 with three
// writing processes). A page of ReadAll or Subscribe that finds a
// position missing below one it can see is therefore cut before the
// hole, and the read waits a moment and reads again from there: nothing
// is ever skipped, and a hole that stays open (which only deleting rows
// by hand could make) is logged every few seconds while the reader waits.
//
//	s, err := novamysql.Open(ctx, novamysql.Config{DSN: "mysql://nova:secret@db:3306/app"})
//	if err != nil { ... }
//	defer s.Close()
//	res, err := s.Append(ctx, "order-1", nova.NoStream, nova.EventData{Type: "order.placed", Data: data})
//
// # What the counter row costs
//
// Every append to any stream of a store, from any process, holds that one
// row lock from the moment it allocates until its transaction commits: the
// statements after the allocation (the version check, the INSERT) and the
// commit itself. Appends to different streams therefore never run side by
// side in the database; they queue on the lock, and a transaction that
// stays open while holding it (see [Store.AppendTx]) stops every other
// append until it ends.
//
// What the lock does not cover, on MariaDB with the binary log off (as
// here) and on MySQL without it, is the flush of the redo log: InnoDB
// releases a transaction's locks and makes it visible when it commits in
// memory, then flushes. So the serialized part of an append is its
// statements, a few round trips, while the flushes of concurrent appends
// still overlap in InnoDB's own group commit. With the binary log on
// (MySQL 8's default) the lock is held until the binary log is synced as
// well (by the design of its two-phase commit; not measured here), and
// the serialized part grows by that sync.
//
// The same order has a consequence for crashes, shared by every reader of
// InnoDB: a commit is visible to other sessions a moment before its redo
// log is on disk. If the server crashes in that moment, a subscriber may
// have seen events that the restarted server does not have, and whose
// positions it will give to new events. The appends themselves were never
// acknowledged (their COMMIT had not returned).
//
// In all, with one append per transaction the lock costs a single writer
// one statement, and caps the store's appends per second at one over the
// lock's hold time (mostly round trips), however many writers there are,
// where the same transactions without the lock keep growing with more
// writers. TestMeasureCounterCost measures both side by side on the
// store's tables (NOVA_MEASURE=1 go test -run MeasureCounterCost -v
// ./novamysql/); docs/BENCHMARKS.md has the figures.
//
// # Group commit
//
// The store turns most of that cost into throughput. Appends do not each
// get a transaction: up to [Config.Writers] groups (2 by default) commit
// at a time, each on a connection of its own, and an append that finds
// them all busy queues. The caller of the first append queued when a
// group ends leads the next: on its own goroutine it takes whatever is
// queued (up to [Config.MaxGroup] appends), takes the counter lock once
// for all of them, writes them in one transaction and commits once: one
// lock hold and one flush for the whole group. While one group's commit
// is being flushed, the other already holds the lock for the next.
// Appends that arrive meanwhile form the next group; a leader never
// waits for more to arrive, so a lone writer pays nothing for this and
// commits on its own goroutine.
//
// Each append in a group keeps its own expected-version check and its own
// result. The check is one conditional statement on the stream's row
// (INSERT for a new stream, UPDATE ... WHERE version = expected for an
// exact version; for Any and StreamExists the row is read under a lock
// first), and a failed check writes nothing, so the group is written
// straight through: the events of every append that passed go in as few
// multi-row INSERTs as possible. Only when an insert fails (an event ID
// already stored, error 1062) is the transaction rolled back and the group
// written again with every append in its own SAVEPOINT, rolled back to on
// failure and then decided by the rule shared by every backend
// (internal/retry: an exact retry succeeds with Duplicate set, anything
// else is a nova.DuplicateEventError). An append whose check fails is
// looked up by its IDs the same way, since a retry of an append that did
// commit finds its stream moved on.
//
// An append whose context ends while it is queued, or while its group
// waits for the counter lock, is withdrawn and returns ctx.Err() having
// written nothing (the leader's context ends the wait; the others of its
// group queue again). Once the lock is held the group has taken the append,
// which then gets its real result. When the connection breaks during the
// COMMIT the outcome is unknown and the append returns an error; a retry
// with the same event IDs (and expected version) is safe and reports what
// happened. An append or a read that failed on a broken connection, a
// server going away, a deadlock or a lock wait timeout returns an error
// that nova.IsTransient reports: trying again later may succeed.
//
// # Isolation
//
// The store does not set an isolation level: it works the same at the
// server's default REPEATABLE READ, at READ COMMITTED, and in a caller's
// transaction at either. Every read inside an append is a locking read
// (FOR UPDATE, or the implicit one of UPDATE and INSERT), which sees the
// latest committed row whatever the level, and every append takes the
// counter lock first, so no two appends ever interleave and none can
// deadlock another. Reads outside appends (ReadStream, ReadAll, Subscribe,
// Streams) are single statements in autocommit mode: each page is its own
// consistent snapshot.
//
// # Reads and subscriptions
//
// ReadStream, ReadAll and Streams page with keyset pagination (position,
// version or stream name): each page ([Config.PageSize] rows) is one short
// query on a pooled connection, read to the end and returned to the pool
// before its events are yielded, so a slow consumer holds no connection and
// no snapshot. Subscribe catches up the same way, then waits for the signal
// the writer raises after every commit, polling every [Config.PollInterval]
// as a fallback for appends of other processes (MariaDB has no LISTEN); the
// signal is only a hint to read again. A subscription whose query fails
// because its connection broke or the server restarted retries from the
// last position it delivered, so it never ends, skips or repeats because of
// a dropped connection.
//
// # Saga runs and the outbox
//
// [NewRunStore] returns the store's [saga.RunStore]: the runs' streams are
// the store's events, and a transition is one transaction of the store's
// database, the run's row in nova_saga_runs, read under its lock to
// check the writer's lease and then written, the lifecycle envelopes in
// nova_outbox and the append, or nothing of it. Its statements are
// prepared once per connection, and it takes the counter lock, which
// every append waits for, only for its last three round trips (the
// positions, the events and the commit). A worker whose lease ran
// out or passed to another writes nothing: its Record fails with an error
// matching saga.ErrLeaseLost, decided on the row it holds locked, and
// rolls back the append with it. Workers claim due runs with SELECT ...
// FOR UPDATE SKIP LOCKED in the order of the (due_at, saga, run_id)
// index, so that claims on any number of connections and processes never
// take one run twice nor wait for each other. Leases and due times are
// the server's clock (UTC_TIMESTAMP(6)).
//
// # Projections
//
// [NewCheckpoints] returns the store's [projection.TxCheckpoints]: a
// projection runner commits each batch's read-model writes (through a
// [QueryStore], or the handlers' own SQL on [TxFromContext]'s
// transaction) with the checkpoint in one transaction, so each event's
// effect is applied once. It is also the [projection.Leaser] (one
// running instance of a projection at a time) and the
// [projection.Rebuilder]: a rebuild fills shadow tables (CREATE TABLE
// ... LIKE) and swaps them in with one RENAME TABLE, which MySQL runs
// atomically for every table it names. Because DDL commits at once, the
// swap is recorded on the checkpoint's row before the rename and
// finished after it, and a swap cut short in between is finished or
// undone by the projection's next writer; see [Checkpoints].
//
// # Schema
//
// Open creates and migrates the tables itself unless [Config.SkipMigrate]
// is set; [Migrate] does only that (nova migrate). The version is kept in
// PREFIXschema ([SchemaVersion]); tables of a newer version are refused
// with [ErrSchemaTooNew]. Tables, all InnoDB, named with
// [Config.TablePrefix] (default "nova_") so that several stores share a
// database:
//
//	nova_schema    (id, version)                       -- schema version
//	nova_counter   (id, position)                      -- the one counter row
//	nova_streams   (stream VARBINARY(256) PRIMARY KEY, version)
//	nova_events    (position BIGINT UNSIGNED PRIMARY KEY, id CHAR(36) UNIQUE,
//	                stream VARBINARY(256), version, type, data LONGBLOB,
//	                metadata LONGTEXT (JSON: schema and extra keys),
//	                correlation_id, causation_id, recorded_at DATETIME(6),
//	                UNIQUE (stream, version))
//	nova_snapshots (stream PRIMARY KEY, version, schema_version, data, recorded_at)
//	nova_saga_runs (saga, run_id VARBINARY(256), PRIMARY KEY (saga, run_id),
//	                status, version, step, attempt, error, due_at, deadline_at,
//	                lease_owner, lease_until, created_at, updated_at,
//	                INDEX (due_at, saga, run_id), INDEX (status, saga, run_id))
//	nova_outbox    (seq AUTO_INCREMENT PRIMARY KEY, id, topic, event_type,
//	                payload LONGBLOB, key, headers (JSON), attempts,
//	                stamped_at (Unix microseconds), created_at)
//	nova_checkpoints (name VARBINARY(256) PRIMARY KEY, commit_pos, prepare_pos,
//	                lease_owner, lease_until, updated_at,
//	                swap_commit, swap_prepare, swap_shadow, swap_tables)
//
// Stream IDs are binary strings, so they compare byte by byte, with no
// collation folding case or trailing spaces. recorded_at is UTC with
// microseconds.
//
// # Event size
//
// An event's row must fit in the server's max_allowed_packet, which
// bounds every value sent and every row read back. Open reads it; Append
// and AppendTx refuse, before any I/O, an event whose row would not fit,
// with an error matching nova.ErrInvalid that names the setting and says
// to raise it. The default of MariaDB 10.2 and later (16 MiB) and of
// MySQL 8 (64 MiB) hold every event Nova allows (nova.MaxEventLen,
// 8 MiB); older servers' 4 MiB does not.
//
// # Performance
//
// internal/bench runs each scenario through the store and through a
// hand-written database/sql baseline doing the same rows into the same
// tables with the same serialization (BEGIN; lock the counter and
// allocate; move the stream's row with its version check; INSERT the
// events; COMMIT, one transaction per append, prepared statements), each
// in a scratch database of its own, alternating the two in slices;
// docs/BENCHMARKS.md has the figures:
//
//	NOVA_BENCH_MYSQL=1 go test ./internal/bench -run MySQLMeasure -v -timeout 30m
//	go test -run '^$' -bench . ./novamysql/
//
// The trade-off: single appends and batches cost what the baseline's
// transactions cost, and reads what its queries cost; concurrent writers
// go faster than the baseline's because a group takes the counter lock
// and pays the flush once for all its appends, and because with two
// writers (the default) one group's flush overlaps the next group's lock
// hold. With one writer and MaxGroup 1 (no group commit) every append
// waits for the previous one's flush, and the store falls well below the
// baseline's concurrent writers, which at least overlap their flushes.
package novamysql
